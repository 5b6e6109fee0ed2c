//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafkabatcher/kafkabatcherexporter/testbench/realkafka"
)

// TestRealKafkaStaticHeaders: each pipeline's static headers (headers for
// the logs, traces.headers, metrics.headers) reach a one-node Apache Kafka
// 4.4 on every record, after the headers_from ones, in name order; a static
// header named like a headers_from path is a second header of that name.
// The Java client and kcat read them.
func TestRealKafkaStaticHeaders(t *testing.T) {
	c := sharedCluster(t, realkafka.Options{Nodes: 1})
	e := newEnv(t)
	topics := signalTopics{newTopic(t, c, 3, nil), newTopic(t, c, 3, nil), newTopic(t, c, 3, nil)}
	conf := e.signalsConfig(c.Bootstrap(), topics, "otlp_proto")
	conf.set("headers_from", []string{"resource.service.name"})
	conf.set("headers", map[string]any{"source": "logs", "env": "e2e"})
	conf.set("traces.headers_from", []string{"resource.service.name"})
	conf.set("traces.headers", map[string]any{"source": "traces", "resource.service.name": "static"})
	conf.set("metrics.headers_from", []string{"resource.service.name"})
	conf.set("metrics.headers", map[string]any{"source": "metrics"})
	col := e.startCollector(conf)
	cl := dialSignals(t, col.otlp)
	const logs = 40
	cl.sendLogs(t, richLogs(0, logs))
	cl.sendTraces(t, richTraces(0, 40))
	cl.sendMetrics(t, richMetrics(0, 8))
	if !col.stop() { // shutdown sends what is pending
		t.Fatal("the collector did not stop")
	}

	for _, tc := range []struct {
		signal, topic string
		want          *regexp.Regexp // Java's print.headers form
		min           int            // messages at least
	}{
		{"logs", topics.logs, regexp.MustCompile(`^resource\.service\.name:e2e-[01],env:e2e,source:logs$`), logs},
		{"traces", topics.traces, regexp.MustCompile(`^resource\.service\.name:e2e-[01],resource\.service\.name:static,source:traces$`), 2},
		{"metrics", topics.metrics, regexp.MustCompile(`^resource\.service\.name:e2e-[01],source:metrics$`), 2},
	} {
		java := javaHeaders(t, c, tc.topic)
		kcat := kcatHeaders(t, c.Bootstrap()[0], tc.topic)
		t.Logf("%s: %d messages read by the Java client, %d by kcat; first: %q", tc.signal, len(java), len(kcat), java[0])
		if len(java) < tc.min || len(java) != len(kcat) {
			t.Errorf("%s: the Java client read %d messages, kcat %d; want the same, at least %d", tc.signal, len(java), len(kcat), tc.min)
		}
		if tc.signal == "logs" && len(java) != logs {
			t.Errorf("logs: %d messages, want one per record (%d)", len(java), logs)
		}
		for i, h := range java {
			if !tc.want.MatchString(h) {
				t.Errorf("%s: Java record %d headers %q, want %s", tc.signal, i, h, tc.want)
				break
			}
		}
		// kcat shows name=value; the same pairs in the same order.
		for i, h := range kcat {
			if !tc.want.MatchString(strings.ReplaceAll(h, "=", ":")) {
				t.Errorf("%s: kcat record %d headers %q, want %s with =", tc.signal, i, h, tc.want)
				break
			}
		}
	}
}

// TestRealKafkaCompressionLevels sends the same 5,000 log records with each
// codec at a level (gzip and zstd at their fastest and at a high level;
// lz4, snappy and none at 0, the only level they take) to a one-node Apache
// Kafka 4.4: every record arrives once with its headers, read by franz-go,
// the Java client and kcat; the broker stores batches of the codec, and a
// higher level stores fewer bytes. `otelcol validate` refuses a level with
// lz4.
func TestRealKafkaCompressionLevels(t *testing.T) {
	c := sharedCluster(t, realkafka.Options{Nodes: 1})
	const n = 5000
	bodies := wordyBodies(n)
	sizes := map[string]int64{}
	for _, tc := range []struct {
		codec string
		level int
		attr  int8 // the record batch's compression attribute
	}{
		{"gzip", 1, 1}, {"gzip", 9, 1},
		{"zstd", 1, 4}, {"zstd", 19, 4},
		{"lz4", 0, 3}, {"snappy", 0, 2}, {"none", 0, 0},
	} {
		name := fmt.Sprintf("%s-%d", tc.codec, tc.level)
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			topicName := newTopic(t, c, 1, nil)
			conf := e.kafkaConfig(c, topicName)
			conf.set("producer.compression", tc.codec)
			conf.set("producer.compression_level", tc.level)
			conf.set("headers_from", []string{"attributes.key"})
			conf.set("headers", map[string]any{"codec": name})
			col := e.startCollector(conf)
			s := dial(t, col.otlp, 50, 0)
			for lo := 0; lo < n; lo += 500 {
				if err := s.export(lo, lo+500, bodies); err != nil {
					t.Fatalf("export %d..%d: %v", lo, lo+499, err)
				}
			}
			recs := newTopicConsumer(t, c.Bootstrap(), topicName).read(seqRange(0, n), 2*time.Minute, time.Second)
			checkExactlyOnce(t, recs, seqRange(0, n))
			checkOrder(t, recs)
			col.stop()

			if got := batchCompression(t, c.Bootstrap(), topicName); got != tc.attr {
				t.Errorf("the broker holds batches of compression %d, want %d (%s)", got, tc.attr, tc.codec)
			}
			java := javaHeaders(t, c, topicName)
			kcat := kcatHeaders(t, c.Bootstrap()[0], topicName)
			want := regexp.MustCompile(`^attributes\.key:k[0-9]+,codec:` + regexp.QuoteMeta(name) + `$`)
			bad := 0
			for _, h := range java {
				if !want.MatchString(h) {
					bad++
				}
			}
			for _, h := range kcat {
				if !want.MatchString(strings.ReplaceAll(h, "=", ":")) {
					bad++
				}
			}
			sizes[name] = topicBytes(t, c.Bootstrap(), topicName)
			t.Logf("%s: %d records; read back by the Java client %d, by kcat %d; %d with other headers; %d bytes in the log",
				name, n, len(java), len(kcat), bad, sizes[name])
			if len(java) != n || len(kcat) != n || bad != 0 {
				t.Errorf("%s: the Java client read %d records, kcat %d, %d with other headers; want %d each, none other",
					name, len(java), len(kcat), bad, n)
			}
		})
	}
	for _, pair := range [][2]string{{"gzip-9", "gzip-1"}, {"zstd-19", "zstd-1"}, {"gzip-1", "none-0"}, {"zstd-1", "none-0"}} {
		if sizes[pair[0]] == 0 || sizes[pair[1]] == 0 {
			continue // a subtest failed before measuring
		}
		if sizes[pair[0]] >= sizes[pair[1]] {
			t.Errorf("%s stored %d bytes, not fewer than %s's %d", pair[0], sizes[pair[0]], pair[1], sizes[pair[1]])
		}
	}

	t.Run("lz4_level_refused", func(t *testing.T) {
		e := newEnv(t)
		conf := e.kafkaConfig(c, "e2e")
		conf.set("producer.compression", "lz4")
		conf.set("producer.compression_level", 9)
		code, out := validate(t, e.writeConfig("collector.yaml", conf))
		const want = "producer.compression_level: must be 0 with producer.compression lz4"
		if code == 0 || !strings.Contains(out, want) {
			t.Errorf("validate exit %d, want an error holding %q:\n%s", code, want, out)
		}
	})
}

// wordyBodies are raw-encoding bodies "<seq>|<words>" for records 0..n-1:
// text whose compressed size depends on the level.
func wordyBodies(n int) map[int]string {
	words := strings.Fields("order placed by user items total payment authorised shipped refund cart " +
		"checkout warehouse latency retry timeout region zone pod node")
	rng := rand.New(rand.NewPCG(7, 11))
	bodies := make(map[int]string, n)
	for seq := range n {
		var b strings.Builder
		b.WriteString(strconv.Itoa(seq) + "|")
		for range 30 {
			fmt.Fprintf(&b, " %s %d", words[rng.IntN(len(words))], rng.IntN(1000))
		}
		bodies[seq] = b.String()
	}
	return bodies
}

// javaHeaders reads topic to its end with the Java client
// (testdata/java/Headers.java) and returns each record's headers as the
// console consumer's print.headers shows them.
func javaHeaders(t *testing.T, c *realkafka.Cluster, topic string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	src, err := filepath.Abs("testdata/java/Headers.java")
	if err != nil {
		t.Fatal(err)
	}
	cmd := c.Dist().JavaCmd(ctx, src, strings.Join(c.Bootstrap(), ","), topic)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("java Headers on %s: %v\n%s", topic, err, tailString(stderr.String(), 4000))
	}
	var hs []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if _, h, ok := strings.Cut(line, "\t"); ok {
			hs = append(hs, h)
		}
	}
	return hs
}

// kcatHeaders reads topic to its end with kcat (librdkafka, CRC checks on)
// and returns each record's headers as kcat's %h shows them (name=value
// pairs joined by ",").
func kcatHeaders(t *testing.T, broker, topic string) []string {
	t.Helper()
	var hs []string
	for _, line := range kcatRead(t, broker, topic, "%p %o\t%h") {
		if _, h, ok := strings.Cut(line, "\t"); ok {
			hs = append(hs, h)
		}
	}
	return hs
}

// batchCompression returns the compression attribute of the record batches
// the broker holds for topic, or -1 if they differ.
func batchCompression(t *testing.T, seeds []string, topic string) int8 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	codec := int8(-2)
	for codec == -2 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("no record of %s within 30 s", topic)
		}
		fs.EachRecord(func(r *kgo.Record) {
			switch got := r.Attrs.CompressionType(); {
			case codec == -2:
				codec = int8(got)
			case codec != int8(got):
				codec = -1
			}
		})
	}
	return codec
}

// topicBytes is the size of the log of partition 0 of topic on the brokers.
func topicBytes(t *testing.T, seeds []string, topic string) int64 {
	t.Helper()
	cl, err := adminFor(seeds)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	set := kadm.TopicsSet{}
	set.Add(topic, 0)
	dirs, err := kadm.NewClient(cl).DescribeAllLogDirs(ctx, set)
	if err != nil {
		t.Fatalf("describe log dirs of %s: %v", topic, err)
	}
	var size int64
	dirs.Each(func(d kadm.DescribedLogDir) {
		if p, ok := d.Topics.Lookup(topic, 0); ok {
			size += p.Size
		}
	})
	return size
}
