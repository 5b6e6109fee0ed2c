//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// item is one log record, span or metric read from Kafka: its sequence
// number and where its message was.
type item struct {
	seq       int
	partition int32
	offset    int64
}

// decodeItems returns the items of one message value of signal, in order.
func decodeItems(t *testing.T, signal string, v []byte) (items []int, points int) {
	t.Helper()
	seqAttr := func(s string) int {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Errorf("%s: no sequence number in %q", signal, s)
		}
		return n
	}
	switch signal {
	case "logs":
		ld, err := (&plog.ProtoUnmarshaler{}).UnmarshalLogs(v)
		if err != nil {
			t.Fatalf("logs: %v", err)
		}
		for i := 0; i < ld.ResourceLogs().Len(); i++ {
			sls := ld.ResourceLogs().At(i).ScopeLogs()
			for j := 0; j < sls.Len(); j++ {
				for k := 0; k < sls.At(j).LogRecords().Len(); k++ {
					s, _ := sls.At(j).LogRecords().At(k).Attributes().Get("seq")
					items = append(items, seqAttr(s.AsString()))
				}
			}
		}
	case "traces":
		td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(v)
		if err != nil {
			t.Fatalf("traces: %v", err)
		}
		for i := 0; i < td.ResourceSpans().Len(); i++ {
			sss := td.ResourceSpans().At(i).ScopeSpans()
			for j := 0; j < sss.Len(); j++ {
				for k := 0; k < sss.At(j).Spans().Len(); k++ {
					s, _ := sss.At(j).Spans().At(k).Attributes().Get("seq")
					items = append(items, seqAttr(s.AsString()))
				}
			}
		}
	case "traces-count":
		td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(v)
		if err != nil {
			t.Fatalf("traces: %v", err)
		}
		return nil, td.SpanCount()
	case "metrics-count":
		md, err := (&pmetric.ProtoUnmarshaler{}).UnmarshalMetrics(v)
		if err != nil {
			t.Fatalf("metrics: %v", err)
		}
		return nil, md.DataPointCount()
	case "metrics":
		md, err := (&pmetric.ProtoUnmarshaler{}).UnmarshalMetrics(v)
		if err != nil {
			t.Fatalf("metrics: %v", err)
		}
		points = md.DataPointCount()
		for i := 0; i < md.ResourceMetrics().Len(); i++ {
			sms := md.ResourceMetrics().At(i).ScopeMetrics()
			for j := 0; j < sms.Len(); j++ {
				for k := 0; k < sms.At(j).Metrics().Len(); k++ {
					items = append(items, seqAttr(strings.TrimPrefix(sms.At(j).Metrics().At(k).Name(), "metric.")))
				}
			}
		}
	}
	return items, points
}

// kafkaReader reads one topic from the start.
type kafkaReader struct {
	t      *testing.T
	cl     *kgo.Client
	signal string
	items  []item
	msgs   int
	points int // data points, or spans when counting spans
}

func newKafkaReader(t *testing.T, seeds []string, topic, signal string) *kafkaReader {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond),
		kgo.FetchMaxPartitionBytes(16<<20))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &kafkaReader{t: t, cl: cl, signal: signal}
}

// poll reads what is there within d.
func (r *kafkaReader) poll(d time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	r.cl.PollFetches(ctx).EachRecord(func(rec *kgo.Record) {
		seqs, points := decodeItems(r.t, r.signal, rec.Value)
		r.msgs++
		r.points += points
		for _, s := range seqs {
			r.items = append(r.items, item{seq: s, partition: rec.Partition, offset: rec.Offset})
		}
	})
}

// until polls until done holds or limit passes, then settle longer.
func (r *kafkaReader) until(done func() bool, limit, settle time.Duration) {
	deadline := time.Now().Add(limit)
	for !done() && time.Now().Before(deadline) {
		r.poll(300 * time.Millisecond)
	}
	end := time.Now().Add(settle)
	for time.Now().Before(end) {
		r.poll(200 * time.Millisecond)
	}
}

// check requires every seq of want once at least, counts duplicates, and
// requires sequence numbers to rise per partition in offset order.
func (r *kafkaReader) check(want []int) {
	t := r.t
	t.Helper()
	count := map[int]int{}
	for _, it := range r.items {
		count[it.seq]++
	}
	missing, dups := 0, 0
	for _, s := range want {
		switch {
		case count[s] == 0:
			missing++
		case count[s] > 1:
			dups += count[s] - 1
		}
	}
	if missing > 0 {
		t.Errorf("%s: %d of %d missing", r.signal, missing, len(want))
	}
	last := map[int32]int{}
	bad := 0
	for _, it := range r.items {
		if prev, ok := last[it.partition]; ok && it.seq <= prev && count[it.seq] == 1 {
			bad++
		}
		last[it.partition] = it.seq
	}
	if bad > 0 {
		t.Errorf("%s: %d items out of order in their partition", r.signal, bad)
	}
	t.Logf("%s: %d sent, %d read in %d messages, %d missing, %d duplicates, order checked on %d partitions",
		r.signal, len(want), len(r.items), r.msgs, missing, dups, len(last))
}

// TestOutageAllSignals: with logs, traces and metrics pipelines of one
// kafkabatcher sending at once, the broker is killed and comes back: every
// log record, span and metric data point sent after the kill arrives, in
// order per partition, and the one temp storage held all three meanwhile.
func TestOutageAllSignals(t *testing.T) {
	const (
		warm   = 2  // calls per signal before the kill
		during = 25 // calls per signal while the broker is down
		after  = 3  // calls per signal once it is back
		per    = 80 // log records and spans per call; metrics per call: per/4 (each a multiple of 4)
	)
	e := newEnv(t)
	port := freePort(t)
	topics := signalTopics{"o_logs", "o_spans", "o_metrics"}
	specs := []string{topics.logs + ":3", topics.traces + ":3", topics.metrics + ":3"}
	b1 := e.startBrokerTopics(port, specs...)
	conf := e.signalsConfig([]string{b1.addr}, topics, "otlp_proto")
	conf.set("batch.max_wait", "200ms")
	col := e.startCollector(conf)
	cl := dialSignals(t, col.otlp)
	send := func(signal string, call int) {
		switch signal {
		case "logs":
			cl.sendLogs(t, richLogs(call*per, per))
		case "traces":
			cl.sendTraces(t, richTraces(call*per, per))
		case "metrics":
			cl.sendMetrics(t, richMetrics(call*per/4, per/4))
		}
	}
	signals := map[string]string{"logs": topics.logs, "traces": topics.traces, "metrics": topics.metrics}
	for s := range signals {
		for c := 0; c < warm; c++ {
			send(s, c)
		}
	}
	for s, tp := range signals {
		r := newKafkaReader(t, []string{b1.addr}, tp, s)
		want := warm * per
		if s == "metrics" {
			want = warm * per / 4
		}
		r.until(func() bool { return len(r.items) >= want }, 30*time.Second, 0)
		if len(r.items) < want {
			t.Fatalf("%s: %d of %d before the kill", s, len(r.items), want)
		}
	}

	b1.kill()
	killed := time.Now()
	var wg sync.WaitGroup
	for s := range signals {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := warm; c < warm+during; c++ {
				send(s, c)
				time.Sleep(100 * time.Millisecond)
			}
		}()
	}
	// The one temp storage holds all three topics while the broker is down.
	queue := filepath.Join(e.path("storage"), "queue")
	var held []string
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		held = held[:0]
		for _, tp := range signals {
			if segs, _ := filepath.Glob(filepath.Join(queue, tp, "*", "segment-*")); len(segs) > 0 {
				held = append(held, tp)
			}
		}
		if len(held) == 3 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("temp storage during the outage: %s", dirSummary(e.path("storage")))
	if len(held) != 3 {
		t.Errorf("temp storage holds %v, want all three topics", held)
	}
	if locks, _ := filepath.Glob(filepath.Join(e.path("storage"), "LOCK")); len(locks) != 1 {
		t.Errorf("LOCK files: %v", locks)
	}
	wg.Wait()
	b2 := e.startBrokerTopics(port, specs...)
	t.Logf("broker down for %s", time.Since(killed).Round(time.Millisecond))
	for s := range signals {
		for c := warm + during; c < warm+during+after; c++ {
			send(s, c)
		}
	}
	for s, tp := range signals {
		first, last := warm*per, (warm+during+after)*per
		if s == "metrics" {
			first, last = first/4, last/4
		}
		want := seqRangeOf(first, last)
		r := newKafkaReader(t, []string{b2.addr}, tp, s)
		r.until(func() bool { return len(r.items) >= len(want) }, 90*time.Second, time.Second)
		r.check(want)
		if s == "metrics" {
			t.Logf("metrics: %d data points read (3 per metric: want %d)", r.points, 3*len(want))
			if r.points < 3*len(want) {
				t.Errorf("metrics: %d data points, want %d", r.points, 3*len(want))
			}
		}
	}
}

func seqRangeOf(from, to int) []int { return seqRange(from, to) }

// telemetrygenRun runs telemetrygen and sums the count its workers report
// in the log line msg ("traces generated") under key ("traces").
func telemetrygenRun(t *testing.T, e *env, msg, key string, args ...string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, binaries.telemetrygen, args...).CombinedOutput()
	log := e.path("telemetrygen-" + args[0] + ".log")
	_ = os.WriteFile(log, out, 0o600)
	e.addShown(log)
	if err != nil {
		t.Fatalf("telemetrygen %s: %v", args[0], err)
	}
	total := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		i := strings.Index(line, msg)
		if i < 0 {
			continue
		}
		var fields map[string]any
		if j := strings.IndexByte(line[i:], '{'); j >= 0 && json.Unmarshal([]byte(line[i+j:]), &fields) == nil {
			if n, ok := fields[key].(float64); ok {
				total += int(n)
			}
		}
	}
	if total == 0 {
		t.Fatalf("telemetrygen %s reported nothing generated:\n%s", args[0], out)
	}
	return total
}

// TestTelemetrygenTracesAndMetrics: telemetrygen sends traces and metrics
// to the built collector; the counts it reports are what Kafka holds.
func TestTelemetrygenTracesAndMetrics(t *testing.T) {
	e := newEnv(t)
	topics := signalTopics{"tg_logs", "tg_spans", "tg_metrics"}
	b := e.startBrokerTopics(freePort(t), topics.logs+":1", topics.traces+":3", topics.metrics+":3")
	conf := e.signalsConfig([]string{b.addr}, topics, "otlp_proto")
	col := e.startCollector(conf)

	const children = 2
	traces := telemetrygenRun(t, e, "traces generated", "traces", "traces", "--otlp-endpoint", col.otlp, "--otlp-insecure",
		"--traces", "300", "--workers", "2", "--rate", "0", "--child-spans", strconv.Itoa(children))
	metrics := telemetrygenRun(t, e, "metrics generated", "metrics", "metrics", "--otlp-endpoint", col.otlp, "--otlp-insecure",
		"--metrics", "300", "--workers", "2", "--rate", "0", "--metric-type", "Sum")

	spans := newKafkaReader(t, []string{b.addr}, topics.traces, "traces-count")
	spans.until(func() bool { return spans.points >= traces*(1+children) }, 60*time.Second, time.Second)
	mr := newKafkaReader(t, []string{b.addr}, topics.metrics, "metrics-count")
	mr.until(func() bool { return mr.points >= metrics }, 60*time.Second, time.Second)
	t.Logf("telemetrygen: %d traces (%d spans) sent, Kafka holds %d spans in %d messages; %d metrics (one data point each) sent, Kafka holds %d data points in %d messages",
		traces, traces*(1+children), spans.points, spans.msgs, metrics, mr.points, mr.msgs)
	if spans.points != traces*(1+children) {
		t.Errorf("spans: telemetrygen sent %d, Kafka holds %d", traces*(1+children), spans.points)
	}
	if mr.points != metrics {
		t.Errorf("data points: telemetrygen sent %d, Kafka holds %d", metrics, mr.points)
	}
}
