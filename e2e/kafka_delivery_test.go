//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kafkabatcher/kafkabatcherexporter/testbench/realkafka"
)

// three is the shared 3-node cluster: replication factor 3,
// min.insync.replicas 2, acks all; toxiproxy in front of every broker.
func three(t *testing.T) *realkafka.Cluster {
	return sharedCluster(t, realkafka.Options{Nodes: 3, Proxy: true})
}

// kafkaConfig is the suite's collector config aimed at topic on c.
func (e *env) kafkaConfig(c *realkafka.Cluster, topic string) *cfg {
	conf := e.newConfig(c.Bootstrap()[0])
	conf.set("brokers", c.Bootstrap())
	conf.set("topic", topic)
	return conf
}

// TestRealKafkaDeliveryAndInterop sends 100,000 records into a 6-partition
// topic of the 3-node cluster once per compression codec, reads them back
// with franz-go (every record once, in order per partition), with the Java
// client (CRC checks on; keys, headers, timestamps, and Kafka's own murmur2
// partitioning of every key) and with kcat.
func TestRealKafkaDeliveryAndInterop(t *testing.T) {
	c := three(t)
	const n = 100_000
	for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		t.Run(codec, func(t *testing.T) {
			e := newEnv(t)
			name := newTopic(t, c, 6, nil)
			conf := e.kafkaConfig(c, name)
			conf.set("producer.compression", codec)
			conf.set("headers_from", []string{"attributes.key"})
			col := e.startCollector(conf)
			since := time.Now().Add(-time.Second)
			s := dial(t, col.otlp, 500, 100)
			start := time.Now()
			s.sendAll(0, n, 500)
			recs := newTopicConsumer(t, c.Bootstrap(), name).read(seqRange(0, n), 2*time.Minute, 2*time.Second)
			t.Logf("%s: %d records sent, %d read back in %s", codec, n, len(recs), time.Since(start).Round(time.Millisecond))
			checkExactlyOnce(t, recs, seqRange(0, n))
			checkOrder(t, recs)

			j := javaRead(t, c, name, "attributes.key", since)
			t.Logf("java client: %+v", j)
			if j.Records != n || j.Distinct != n || j.Duplicates != 0 || j.BadValue != 0 {
				t.Errorf("java client read %d records, %d distinct, %d duplicates, %d unparsable; want %d once each",
					j.Records, j.Distinct, j.Duplicates, j.BadValue, n)
			}
			if j.Keyed != n || j.Murmur2Mismatch != 0 {
				t.Errorf("java client: %d of %d keyed records off Kafka's murmur2 partition (first: %s)", j.Murmur2Mismatch, j.Keyed, j.FirstMismatch)
			}
			if j.HeaderMissing != 0 || j.HeaderMismatch != 0 {
				t.Errorf("java client: header attributes.key missing on %d, different from the key on %d", j.HeaderMissing, j.HeaderMismatch)
			}
			if j.NotCreateTime != 0 || j.TooOld != 0 || j.InFuture != 0 {
				t.Errorf("java client: timestamps: %d not CreateTime, %d before the test, %d in the future", j.NotCreateTime, j.TooOld, j.InFuture)
			}
			if k := kcatCount(t, c.Bootstrap()[0], name); k != n {
				t.Errorf("kcat read %d records, want %d", k, n)
			}
		})
	}
}

// javaSummary is what testdata/java/Interop.java prints.
type javaSummary struct {
	Records         int    `json:"records"`
	Distinct        int    `json:"distinct"`
	Duplicates      int    `json:"duplicates"`
	MaxSeq          int    `json:"max_seq"`
	Partitions      int    `json:"partitions"`
	Keyed           int    `json:"keyed"`
	Murmur2Mismatch int    `json:"murmur2_mismatch"`
	FirstMismatch   string `json:"first_mismatch"`
	HeaderMissing   int    `json:"header_missing"`
	HeaderMismatch  int    `json:"header_mismatch"`
	NotCreateTime   int    `json:"not_create_time"`
	TooOld          int    `json:"too_old"`
	InFuture        int    `json:"in_future"`
	BadValue        int    `json:"bad_value"`
}

// javaRead reads topic with the Java client and returns its summary.
func javaRead(t *testing.T, c *realkafka.Cluster, topic, header string, since time.Time) javaSummary {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	src, err := filepath.Abs("testdata/java/Interop.java")
	if err != nil {
		t.Fatal(err)
	}
	cmd := c.Dist().JavaCmd(ctx, src, strings.Join(c.Bootstrap(), ","), topic, header, strconv.FormatInt(since.UnixMilli(), 10))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("java Interop on %s: %v\n%s", topic, err, tailString(stderr.String(), 4000))
	}
	var s javaSummary
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &s); err != nil {
		t.Fatalf("java Interop output %q: %v", out, err)
	}
	return s
}

// kcatCount reads topic to its end with kcat (librdkafka, CRC checks on)
// and returns the number of records.
func kcatCount(t *testing.T, broker, topic string) int {
	t.Helper()
	return len(kcatRead(t, broker, topic, "%p %o"))
}

// kcatRead reads topic to its end with kcat (librdkafka, CRC checks on)
// and returns one line per record in kcat's -f format (without the
// newline, which it adds).
func kcatRead(t *testing.T, broker, topic, format string) []string {
	t.Helper()
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatalf("kcat is needed by this test (Debian: apt-get install kcat): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, kcat, "-C", "-b", broker, "-t", topic, "-o", "beginning", "-e", "-q",
		"-X", "check.crcs=true", "-f", format+"\n")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kcat on %s: %v\n%s", topic, err, tailString(stderr.String(), 2000))
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if sc.Text() != "" {
			lines = append(lines, sc.Text())
		}
	}
	return lines
}

func tailString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return fmt.Sprintf("...%s", s[len(s)-n:])
}
