package kafkabatcherexporter

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/kafkabatcher/kafkabatcherexporter/internal/delivery"
	"github.com/kafkabatcher/kafkabatcherexporter/logmsg"
	"github.com/kafkabatcher/kafkabatcherexporter/partitioner"
	"github.com/kafkabatcher/kafkabatcherexporter/tempstorage"
)

// failProduce answers produce requests with errCode for every partition
// they carry while fail(answered so far) is true; it returns the count of
// requests answered so.
func failProduce(c *kfake.Cluster, errCode int16, fail func(n int32) bool) *atomic.Int32 {
	var failed atomic.Int32
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		if !fail(failed.Load()) {
			// Not handled: the broker answers this one itself. The function
			// stays installed (kfake drops a control function only after it
			// handles a request without KeepControl).
			return nil, nil, false
		}
		c.KeepControl()
		failed.Add(1)
		pr := req.(*kmsg.ProduceRequest)
		resp := pr.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range pr.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = errCode
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	return &failed
}

// notLeaderExporter starts an exporter with telemetry on a 4-partition
// topic, keyed over 16 keys, batches of 50.
func notLeaderExporter(t *testing.T) (*kfake.Cluster, *harness, *componenttest.Telemetry) {
	c := newCluster(t, 4, "otlp_logs")
	cfg := testConfig(t, c.ListenAddrs())
	cfg.Encoding = logmsg.EncodingRaw
	cfg.KeyFrom = []string{"attributes.k"}
	cfg.Batch.Size = 50
	cfg.TempStorage.RetryInterval = 100 * time.Millisecond
	exp, tt := runObserved(t, cfg)
	waitPartitions(t, exp, "otlp_logs", 4)
	return c, exp, tt
}

// counter is the total of a counter over all its attribute sets.
func counter(t *testing.T, tt *componenttest.Telemetry, name string) int64 {
	var n int64
	for _, v := range sumByAttrs(t, tt, name) {
		n += v
	}
	return n
}

func TestNotLeaderErrorIsRetried(t *testing.T) {
	c, exp, tt := notLeaderExporter(t)
	// One failed request: its batches succeed on their second attempt.
	failed := failProduce(c, kerr.NotLeaderForPartition.Code, func(n int32) bool { return n < 1 })
	const total = 1000
	for i := 0; i < total; i += 100 {
		require.NoError(t, exp.consumeLogs(context.Background(), seqLogs(i, 100, 16)))
	}
	waitRecords(t, c, "otlp_logs", total, 20*time.Second)
	require.EqualValues(t, 1, failed.Load())
	requireAllInOrder(t, c, "otlp_logs", total)
	require.Zero(t, counter(t, tt, "otelcol_kafkabatcher_records_spilled"), "a retry, not a spill")
	require.NoError(t, exp.stop())
}

func TestNotLeaderErrorsPastMaxAttemptsSpillAndReplayInOrder(t *testing.T) {
	c, exp, tt := notLeaderExporter(t)
	// Fail every request until a batch used all its attempts and was
	// spilled; the records sent meanwhile queue behind it.
	// (Runs on the cluster's goroutine: no t here.)
	failed := failProduce(c, kerr.NotLeaderForPartition.Code, func(int32) bool {
		m, err := tt.GetMetric("otelcol_kafkabatcher_records_spilled")
		return err != nil || len(m.Data.(metricdata.Sum[int64]).DataPoints) == 0
	})
	const total = 2000
	for i := 0; i < total; i += 100 {
		require.NoError(t, exp.consumeLogs(context.Background(), seqLogs(i, 100, 16)))
	}
	waitRecords(t, c, "otlp_logs", total, 20*time.Second)
	require.GreaterOrEqual(t, failed.Load(), int32(3), "producer.max_attempts requests failed")
	requireAllInOrder(t, c, "otlp_logs", total)
	spilled := counter(t, tt, "otelcol_kafkabatcher_records_spilled")
	require.Positive(t, spilled)
	waitFor(t, 5*time.Second, func() bool {
		return counter(t, tt, "otelcol_kafkabatcher_records_replayed") == spilled
	}, "replayed == spilled (%d)", spilled)
	require.NoError(t, exp.stop())
}

func TestOversizeRecordGoesToDeadLetterAndTheRestArrives(t *testing.T) {
	c := newCluster(t, 1, "otlp_logs")
	cfg := testConfig(t, c.ListenAddrs())
	cfg.Encoding = logmsg.EncodingRaw
	cfg.Producer.MaxMessageBytes = 10_000
	cfg.Batch.MaxBytes = 10_000
	exp := run(t, cfg, nopSettings())
	waitPartitions(t, exp, "otlp_logs", 1)

	ld := seqLogs(0, 6, 0)
	big := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(3)
	big.Body().SetStr("rec-3" + strings.Repeat("x", 20_000))
	require.NoError(t, exp.consumeLogs(context.Background(), ld))

	// The other five arrive, in order, in the batch the big one was cut from.
	requireValues(t, c, "otlp_logs", "rec-0", "rec-1", "rec-2", "rec-4", "rec-5")
	require.NoError(t, exp.stop())
	require.EqualValues(t, 5, totalRecords(c, "otlp_logs"))

	lines := readDeadLetters(t, cfg.TempStorage.Directory)
	require.Len(t, lines, 1)
	require.Equal(t, "otlp_logs", lines[0].Topic)
	require.EqualValues(t, 0, lines[0].Partition)
	require.Equal(t, "oversize", lines[0].Reason)
	require.False(t, lines[0].Time.IsZero())
	require.Equal(t, "rec-3"+strings.Repeat("x", 20_000), string(lines[0].Value))
}

func TestSyncDeliveryReturnsOnceAcknowledged(t *testing.T) {
	c := newCluster(t, 3, "otlp_logs")
	cfg := testConfig(t, c.ListenAddrs())
	cfg.Encoding = logmsg.EncodingRaw
	cfg.KeyFrom = []string{"attributes.k"}
	cfg.Delivery = DeliverySync
	cfg.Batch.MaxWait = 50 * time.Millisecond
	exp := run(t, cfg, nopSettings())
	waitPartitions(t, exp, "otlp_logs", 3)

	sent := 0
	for _, n := range []int{1, 37, 500, 3} {
		require.NoError(t, exp.consumeLogs(context.Background(), seqLogs(sent, n, 5)))
		sent += n
		// No waiting: the call returned after the broker acknowledged.
		require.EqualValues(t, sent, totalRecords(c, "otlp_logs"), "after %d records", sent)
	}
	requireAllInOrder(t, c, "otlp_logs", sent)
	require.NoError(t, exp.stop())
}

// requireRetryableNotStored checks err is what a sync caller gets for
// records neither sent nor stored: not permanent, so the pipeline retries.
func requireRetryableNotStored(t *testing.T, err error) {
	t.Helper()
	require.Error(t, err)
	require.ErrorIs(t, err, delivery.ErrNotStored)
	require.False(t, consumererror.IsPermanent(err), "must be retryable: %v", err)
}

func TestSyncDeliveryFailsWhenKafkaDownAndNoStorage(t *testing.T) {
	c := newCluster(t, 2, "otlp_logs")
	cfg := testConfig(t, c.ListenAddrs())
	cfg.Encoding = logmsg.EncodingRaw
	cfg.Delivery = DeliverySync
	cfg.TempStorage.Enabled = false
	exp := run(t, cfg, nopSettings())
	waitPartitions(t, exp, "otlp_logs", 2)
	c.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	requireRetryableNotStored(t, exp.consumeLogs(ctx, seqLogs(0, 10, 3)))
	require.NoError(t, ctx.Err(), "failed fast, not by the deadline")
	require.NoError(t, exp.stop())
}

func TestSyncDeliveryFailsWhenKafkaDownAndStorageFull(t *testing.T) {
	c := newCluster(t, 1, "otlp_logs")
	cfg := testConfig(t, c.ListenAddrs())
	cfg.Encoding = logmsg.EncodingRaw
	cfg.Delivery = DeliverySync
	cfg.TempStorage.MaxBytes = 4096
	cfg.TempStorage.SegmentBytes = 4096
	cfg.Batch.Size = 10 // a batch per call; one fits on disk
	cfg.Batch.MaxBytes = 2048
	cfg.Producer.MaxMessageBytes = 2048
	exp := run(t, cfg, nopSettings())
	waitPartitions(t, exp, "otlp_logs", 1)
	c.Close()

	// The first batch fits on disk: accepted. Later ones do not.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, exp.consumeLogs(ctx, seqLogs(0, 10, 0)))
	require.Positive(t, exp.store.Len(), "the accepted batch is on disk")
	var err error
	for i := 1; i < 100 && err == nil; i++ {
		err = exp.consumeLogs(ctx, seqLogs(i*10, 10, 0))
	}
	requireRetryableNotStored(t, err)
	require.NoError(t, ctx.Err())
	require.NoError(t, exp.stop())
}

func TestAddedPartitionsReceiveRecords(t *testing.T) {
	c := newCluster(t, 2, "otlp_logs")
	cfg := testConfig(t, c.ListenAddrs())
	cfg.Encoding = logmsg.EncodingRaw
	cfg.Partitioning.Strategy = partitioner.RoundRobin
	cfg.Metadata.RefreshInterval = 100 * time.Millisecond
	exp := run(t, cfg, nopSettings())
	waitPartitions(t, exp, "otlp_logs", 2)

	ctx := context.Background()
	sent := 0
	send := func() {
		require.NoError(t, exp.consumeLogs(ctx, seqLogs(sent, 8, 0)))
		sent += 8
	}
	send()
	waitRecords(t, c, "otlp_logs", int64(sent), 10*time.Second)
	hw := highWatermarks(c, "otlp_logs")
	require.Len(t, hw, 2)
	require.Positive(t, hw[0])
	require.Positive(t, hw[1])

	admin, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	require.NoError(t, err)
	defer admin.Close()
	req := kmsg.NewPtrCreatePartitionsRequest()
	rt := kmsg.NewCreatePartitionsRequestTopic()
	rt.Topic, rt.Count = "otlp_logs", 4
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 5000
	resp, err := req.RequestWith(ctx, admin)
	require.NoError(t, err)
	require.Len(t, resp.Topics, 1)
	require.NoError(t, kerr.ErrorForCode(resp.Topics[0].ErrorCode))

	// Keep sending until the refresh loop has seen the new partitions and
	// round robin has used them.
	waitFor(t, 10*time.Second, func() bool {
		send()
		hw := highWatermarks(c, "otlp_logs")
		return hw[2] > 0 && hw[3] > 0
	}, "records on partitions 2 and 3: %v", highWatermarks(c, "otlp_logs"))
	n, ok := exp.partitionCache.Get("otlp_logs")
	require.True(t, ok)
	require.EqualValues(t, 4, n, "the partition cache follows")
	require.NoError(t, exp.stop())
	requireExactlyOnce(t, readSeq(t, c, "otlp_logs", sent), sent)
}

func TestRecordTheBrokerRefusesGoesToDeadLetter(t *testing.T) {
	c := newCluster(t, 1, "otlp_logs")
	require.NoError(t, c.CreateTopic("small", 1, map[string]string{"max.message.bytes": "2000"}))
	cfg := testConfig(t, c.ListenAddrs())
	cfg.Topic = "small"
	cfg.Encoding = logmsg.EncodingRaw
	exp := run(t, cfg, nopSettings())
	waitPartitions(t, exp, "small", 1)

	// The exporter allows 1 MB; the topic only 2000 bytes per batch.
	ld := seqLogs(0, 6, 0)
	ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(2).Body().SetStr("rec-2" + strings.Repeat("y", 5000))
	require.NoError(t, exp.consumeLogs(context.Background(), ld))

	requireValues(t, c, "small", "rec-0", "rec-1", "rec-3", "rec-4", "rec-5")
	require.NoError(t, exp.stop())
	lines := readDeadLetters(t, cfg.TempStorage.Directory)
	require.Len(t, lines, 1)
	require.Equal(t, "small", lines[0].Topic)
	require.Equal(t, "message_too_large", lines[0].Reason)
	require.Equal(t, "rec-2"+strings.Repeat("y", 5000), string(lines[0].Value))
}

// readDeadLetters reads the dead-letter file under dir.
func readDeadLetters(t *testing.T, dir string) []tempstorage.DeadLetterRecord {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "deadletter", "deadletter.jsonl"))
	require.NoError(t, err)
	defer func() { _ = f.Close() }() // read only: nothing to lose on close
	var lines []tempstorage.DeadLetterRecord
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r tempstorage.DeadLetterRecord
		require.NoError(t, json.Unmarshal(sc.Bytes(), &r), "line %q", sc.Text())
		lines = append(lines, r)
	}
	require.NoError(t, sc.Err())
	return lines
}

func TestRecordForMissingTopicIsDeadLetteredAndTheRestFlows(t *testing.T) {
	c := newCluster(t, 3, "otlp_logs")
	cfg := testConfig(t, c.ListenAddrs())
	cfg.Encoding = logmsg.EncodingRaw
	cfg.TopicFrom = "attributes.topic"
	exp := startExporter(t, cfg)
	ld := logsWithBodies("a", "lost", "b", "lost-too")
	lrs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	lrs.At(1).Attributes().PutStr("topic", "no_such_topic")
	lrs.At(3).Attributes().PutStr("topic", "no_such_topic")
	require.NoError(t, exp.consumeLogs(context.Background(), ld))
	recs := consumeAll(t, c, "otlp_logs", 2)
	require.NoError(t, exp.shutdown(context.Background()))
	got := []string{string(recs[0].Value), string(recs[1].Value)}
	require.ElementsMatch(t, []string{"a", "b"}, got)
	lines := readDeadLetters(t, cfg.TempStorage.Directory)
	require.Len(t, lines, 2)
	for i, want := range []string{"lost", "lost-too"} {
		require.Equal(t, "no_such_topic", lines[i].Topic)
		require.Equal(t, "unknown_topic", lines[i].Reason)
		require.Equal(t, want, string(lines[i].Value))
	}
}
