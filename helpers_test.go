package kafkabatcherexporter

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/kafkabatcher/kafkabatcherexporter/internal/kfaketest"
	"github.com/kafkabatcher/kafkabatcherexporter/internal/metadata"
	"github.com/kafkabatcher/kafkabatcherexporter/internal/metadatatest"
	"github.com/kafkabatcher/kafkabatcherexporter/logmsg"
	"github.com/kafkabatcher/kafkabatcherexporter/partitioner"
)

// newCluster starts an in-process Kafka-protocol broker with topic.
func newCluster(t *testing.T, partitions int32, topic string, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(partitions, topic)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

func testConfig(t *testing.T, brokers []string) *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.Brokers = brokers
	cfg.TempStorage.Directory = t.TempDir()
	cfg.Batch.MaxWait = 20 * time.Millisecond
	return cfg
}

// observedRawSetup starts a broker with topic otlp_logs of partitions
// partitions whose produce requests are observed, and a raw-encoding config
// pointing at it.
func observedRawSetup(t *testing.T, partitions int32) (*kfake.Cluster, *kfaketest.ProduceLog, *Config) {
	t.Helper()
	c := newCluster(t, partitions, "otlp_logs")
	obs := kfaketest.ObserveProduce(t, c)
	cfg := testConfig(t, c.ListenAddrs())
	cfg.Encoding = logmsg.EncodingRaw
	return c, obs, cfg
}

func startExporter(t testing.TB, cfg *Config) *kafkaBatcherExporter {
	t.Helper()
	exp, err := newExporter(cfg, exportertest.NewNopSettings(metadata.Type))
	require.NoError(t, err)
	require.NoError(t, exp.start(context.Background(), componenttest.NewNopHost()))
	return exp
}

func logsWithBodies(bodies ...string) plog.Logs {
	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	for _, b := range bodies {
		lr := lrs.AppendEmpty()
		lr.Body().SetStr(b)
		lr.Attributes().PutStr("id", b)
	}
	return ld
}

// consumeAll reads n records of topic from the cluster.
func consumeAll(t *testing.T, c *kfake.Cluster, topic string, n int, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	opts = append(opts, kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	cl, err := kgo.NewClient(opts...)
	require.NoError(t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for len(recs) < n {
		fs := cl.PollFetches(ctx)
		require.NoError(t, ctx.Err(), "got %d of %d records", len(recs), n)
		fs.EachRecord(func(r *kgo.Record) { recs = append(recs, r) })
	}
	return recs
}

// harness is a started exporter that the test's cleanup shuts down unless
// the test did.
type harness struct {
	*kafkaBatcherExporter
	once    sync.Once
	stopErr error
}

// stop shuts the exporter down once; later calls return the first result.
func (h *harness) stop() error {
	h.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		h.stopErr = h.shutdown(ctx)
	})
	return h.stopErr
}

// run starts an exporter for cfg; set mutates it before start (clock,
// settings). Cleanup shuts it down before the clusters started earlier close.
func run(t *testing.T, cfg *Config, set exporter.Settings, before ...func(*kafkaBatcherExporter)) *harness {
	t.Helper()
	return runOn(t, componenttest.NewNopHost(), cfg, set, before...)
}

// runOn is run with the host given to start.
func runOn(t *testing.T, host component.Host, cfg *Config, set exporter.Settings, before ...func(*kafkaBatcherExporter)) *harness {
	t.Helper()
	require.NoError(t, cfg.Validate())
	exp, err := newExporter(cfg, set)
	require.NoError(t, err)
	for _, f := range before {
		f(exp)
	}
	require.NoError(t, exp.start(context.Background(), host))
	h := &harness{kafkaBatcherExporter: exp}
	t.Cleanup(func() { _ = h.stop() })
	return h
}

// runObserved is run with the exporter's telemetry recorded in tt, which
// the test's cleanup shuts down after the exporter.
func runObserved(t *testing.T, cfg *Config, before ...func(*kafkaBatcherExporter)) (exp *harness, tt *componenttest.Telemetry) {
	t.Helper()
	tt = componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	return run(t, cfg, metadatatest.NewSettings(tt), before...), tt
}

func nopSettings() exporter.Settings { return exportertest.NewNopSettings(metadata.Type) }

// waitFor polls cond every 10ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s: "+format, append([]any{timeout}, args...)...)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitPartitions waits until the exporter's producer knows topic's
// partition count.
func waitPartitions(t *testing.T, exp *harness, topic string, n int32) {
	t.Helper()
	waitFor(t, 10*time.Second, func() bool {
		got, ok := exp.prod.Partitions(topic)
		return ok && got == n
	}, "partition count %d of %s", n, topic)
}

// highWatermarks returns the records stored per partition of topic.
func highWatermarks(c *kfake.Cluster, topic string) map[int32]int64 {
	out := map[int32]int64{}
	for _, pi := range c.PartitionInfos(topic) {
		out[pi.Partition] = pi.HighWatermark
	}
	return out
}

func totalRecords(c *kfake.Cluster, topic string) int64 {
	var n int64
	for _, hw := range highWatermarks(c, topic) {
		n += hw
	}
	return n
}

// waitRecords waits until topic holds n records at the broker.
func waitRecords(t *testing.T, c *kfake.Cluster, topic string, n int64, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, func() bool { return totalRecords(c, topic) >= n },
		"%d records in %s (have %d)", n, topic, totalRecords(c, topic))
}

// seen returns the batches log holds so far with their sizes zeroed, to
// compare by topic, partition and record count.
func seen(log *kfaketest.ProduceLog) []kfaketest.Batch {
	out := log.Batches()
	for i := range out {
		out[i].Bytes = 0
	}
	return out
}

// seqRecord is a record read back with its sequence attribute.
type seqRecord struct {
	partition int32
	offset    int64
	seq       int
	key       string
}

// seqLogs builds n records numbered from first; each has attribute seq
// and attribute k = "key-<seq % keys>" (keys 0: no k attribute). The body
// is "rec-<seq>".
func seqLogs(first, n, keys int) plog.Logs {
	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	lrs.EnsureCapacity(n)
	for i := first; i < first+n; i++ {
		lr := lrs.AppendEmpty()
		lr.Body().SetStr(fmt.Sprintf("rec-%d", i))
		lr.Attributes().PutInt("seq", int64(i))
		if keys > 0 {
			lr.Attributes().PutStr("k", fmt.Sprintf("key-%d", i%keys))
		}
	}
	return ld
}

// readSeq reads n records of topic (raw encoding of seqLogs) and checks
// that the topic holds exactly n.
func readSeq(t *testing.T, c *kfake.Cluster, topic string, n int, opts ...kgo.Opt) []seqRecord {
	t.Helper()
	recs := consumeAll(t, c, topic, n, opts...)
	require.Equal(t, n, len(recs), "records read (more than sent means duplicates)")
	require.EqualValues(t, n, totalRecords(c, topic), "records at the broker")
	out := make([]seqRecord, 0, len(recs))
	for _, r := range recs {
		var seq int
		_, err := fmt.Sscanf(string(r.Value), "rec-%d", &seq)
		require.NoError(t, err, "value %q", r.Value)
		out = append(out, seqRecord{partition: r.Partition, offset: r.Offset, seq: seq, key: string(r.Key)})
	}
	return out
}

// requireExactlyInOrder checks that recs hold every seq in [0, n) exactly
// once and that, per partition, seq grows with the offset.
func requireExactlyInOrder(t *testing.T, recs []seqRecord, n int) {
	t.Helper()
	requireExactlyOnce(t, recs, n)
	requireOrdered(t, recs, func(r seqRecord) string { return fmt.Sprint("partition ", r.partition) })
}

// requireAllInOrder reads the n records of topic (seqLogs, raw encoding)
// and checks that each seq in [0, n) arrived exactly once, in order per
// partition. opts are the reader's client options (SASL).
func requireAllInOrder(t *testing.T, c *kfake.Cluster, topic string, n int, opts ...kgo.Opt) {
	t.Helper()
	requireExactlyInOrder(t, readSeq(t, c, topic, n, opts...), n)
}

// requireBatchesOf waits until otlp_logs holds the records of batches of
// these record counts and checks that they came in exactly those batches,
// in order, each on partition 0.
func requireBatchesOf(t *testing.T, c *kfake.Cluster, obs *kfaketest.ProduceLog, records ...int) {
	t.Helper()
	var want []kfaketest.Batch
	total := 0
	for _, n := range records {
		want = append(want, kfaketest.Batch{Topic: "otlp_logs", Records: n})
		total += n
	}
	waitRecords(t, c, "otlp_logs", int64(total), 10*time.Second)
	require.Equal(t, want, seen(obs))
}

// requireValues reads len(want) records of topic and checks their values,
// in order.
func requireValues(t *testing.T, c *kfake.Cluster, topic string, want ...string) {
	t.Helper()
	recs := consumeAll(t, c, topic, len(want))
	require.Len(t, recs, len(want))
	for i, w := range want {
		require.Equal(t, w, string(recs[i].Value))
	}
}

// requireExactlyOnce checks that recs hold every seq in [0, n) exactly once.
func requireExactlyOnce(t *testing.T, recs []seqRecord, n int) {
	t.Helper()
	seen := make([]bool, n)
	for _, r := range recs {
		require.True(t, r.seq >= 0 && r.seq < n, "seq %d out of range", r.seq)
		require.False(t, seen[r.seq], "seq %d delivered twice", r.seq)
		seen[r.seq] = true
	}
	for i, ok := range seen {
		require.True(t, ok, "seq %d lost", i)
	}
}

// requireOrdered checks that within each group (records of one partition,
// or of one key) seq grows with the offset.
func requireOrdered(t *testing.T, recs []seqRecord, group func(seqRecord) string) {
	t.Helper()
	groups := map[string][]seqRecord{}
	for _, r := range recs {
		require.GreaterOrEqual(t, r.offset, int64(0))
		groups[group(r)] = append(groups[group(r)], r)
	}
	for g, rs := range groups {
		slices.SortFunc(rs, func(a, b seqRecord) int {
			return cmp.Or(cmp.Compare(a.partition, b.partition), cmp.Compare(a.offset, b.offset))
		})
		for i := 1; i < len(rs); i++ {
			require.Less(t, rs[i-1].seq, rs[i].seq, "%s: seq %d at %d/%d before seq %d at %d/%d", g,
				rs[i-1].seq, rs[i-1].partition, rs[i-1].offset, rs[i].seq, rs[i].partition, rs[i].offset)
		}
	}
}

// javaMurmur2Partition is the Java client's partition of a keyed record.
func javaMurmur2Partition(key []byte, n int32) int32 {
	return (partitioner.Murmur2Hash(key) & 0x7fffffff) % n
}
