package kafkabatcherexporter

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/zap"

	"github.com/kafkabatcher/kafkabatcherexporter/internal/delivery"
	"github.com/kafkabatcher/kafkabatcherexporter/internal/kfaketest"
	"github.com/kafkabatcher/kafkabatcherexporter/logmsg"
	"github.com/kafkabatcher/kafkabatcherexporter/message"
	"github.com/kafkabatcher/kafkabatcherexporter/tempstorage"
)

const outageTopic = "otlp_logs"

// clusterOnPort starts a one-broker cluster listening on 127.0.0.1:port
// with outageTopic of partitions.
func clusterOnPort(t *testing.T, port int, partitions int32) *kfake.Cluster {
	t.Helper()
	return kfaketest.OnPort(t, port, kfake.SeedTopics(partitions, outageTopic))
}

// outageConfig: raw records keyed over 32 keys, batches of 100, a fast
// replay loop, small segments so an outage spans several.
func outageConfig(t *testing.T, port int) *Config {
	cfg := testConfig(t, []string{"127.0.0.1:" + strconv.Itoa(port)})
	cfg.Encoding = logmsg.EncodingRaw
	cfg.KeyFrom = []string{"attributes.k"}
	cfg.Batch.Size = 100
	cfg.TempStorage.RetryInterval = 100 * time.Millisecond
	cfg.TempStorage.SegmentBytes = 64 << 10
	return cfg
}

// sendSeq sends records [first, first+n) in calls of 100, each accepted.
func sendSeq(t *testing.T, exp *harness, first, n int) {
	t.Helper()
	for i := first; i < first+n; i += 100 {
		require.NoError(t, exp.consumeLogs(context.Background(), seqLogs(i, min(100, first+n-i), 32)))
	}
}

// segments lists the segment files of every partition queue in dir.
func segments(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "queue", "*", "*", "segment-*.log"))
	require.NoError(t, err)
	return m
}

// requireMurmur2Placement checks every record is on its key's partition.
func requireMurmur2Placement(t *testing.T, recs []seqRecord, n int32) {
	t.Helper()
	for _, r := range recs {
		require.Equal(t, javaMurmur2Partition([]byte(r.key), n), r.partition, "key %q", r.key)
	}
}

// requireKeyedSeq waits for records [0, n) of sendSeq on outageTopic (6
// partitions) and checks each arrived once, in order per partition, on its
// key's partition.
func requireKeyedSeq(t *testing.T, c *kfake.Cluster, n int) {
	t.Helper()
	waitRecords(t, c, outageTopic, int64(n), 30*time.Second)
	recs := readSeq(t, c, outageTopic, n)
	requireExactlyInOrder(t, recs, n)
	requireMurmur2Placement(t, recs, 6)
}

func TestBrokerOutageRecordsSpillAndReplayInOrder(t *testing.T) {
	port := kfaketest.FreePort(t)
	c1 := clusterOnPort(t, port, 6)
	cfg := outageConfig(t, port)
	exp, tt := runObserved(t, cfg)
	waitPartitions(t, exp, outageTopic, 6)

	c1.Close()
	const total = 5000
	sendSeq(t, exp, 0, total)
	// Every record is accepted and, once the producer fails, on disk.
	waitFor(t, 20*time.Second, func() bool {
		return counter(t, tt, "otelcol_kafkabatcher_records_spilled") == total
	}, "%d records spilled (have %d)", total, counter(t, tt, "otelcol_kafkabatcher_records_spilled"))
	require.Positive(t, exp.store.Len())
	require.Greater(t, len(segments(t, cfg.TempStorage.Directory)), 1, "the backlog spans segments")
	require.Equal(t, dirBytes(t, cfg.TempStorage.Directory), gauge(t, tt, "otelcol_kafkabatcher_temp_storage_bytes"),
		"temp storage bytes gauge is the segment files' size")
	require.Zero(t, gauge(t, tt, "otelcol_kafkabatcher_pending_records"), "spilled batches left memory")

	c2 := clusterOnPort(t, port, 6)
	requireKeyedSeq(t, c2, total)
	waitFor(t, 10*time.Second, func() bool {
		return counter(t, tt, "otelcol_kafkabatcher_records_replayed") == total && exp.store.Len() == 0
	}, "queue drained")
	var sent int64
	for _, v := range sumByAttrs(t, tt, "otelcol_kafkabatcher_records_sent") {
		sent += v
	}
	require.EqualValues(t, total, sent, "replayed records count as sent")
	require.Zero(t, latencyCount(t, tt), "replayed batches have no delivery latency")
	waitFor(t, 10*time.Second, func() bool { return gauge(t, tt, "otelcol_kafkabatcher_temp_storage_bytes") == 0 },
		"temp storage bytes back to 0")
	require.NoError(t, exp.stop())
}

// gauge reads an int64 gauge without attributes.
func gauge(t *testing.T, tt *componenttest.Telemetry, name string) int64 {
	t.Helper()
	m, err := tt.GetMetric(name)
	require.NoError(t, err)
	g, ok := m.Data.(metricdata.Gauge[int64])
	require.True(t, ok, "%s is %T", name, m.Data)
	require.Len(t, g.DataPoints, 1)
	return g.DataPoints[0].Value
}

func TestRestartDuringOutageReplaysEverythingInOrder(t *testing.T) {
	port := kfaketest.FreePort(t)
	c1 := clusterOnPort(t, port, 6)
	cfg := outageConfig(t, port)
	dir := cfg.TempStorage.Directory

	exp1 := run(t, cfg, nopSettings())
	waitPartitions(t, exp1, outageTopic, 6)
	sendSeq(t, exp1, 0, 500)
	waitRecords(t, c1, outageTopic, 500, 10*time.Second)
	// Stored at the broker is not yet acknowledged to the exporter: a
	// batch whose answer the close cuts off is spilled and replayed to c2,
	// which would count it twice.
	waitFor(t, 10*time.Second, func() bool { return exp1.pool.PendingRecords() == 0 }, "first 500 acknowledged")

	c1.Close()
	sendSeq(t, exp1, 500, 2000)
	require.NoError(t, exp1.stop(), "shutdown with Kafka down spills, nothing lost")
	require.NotEmpty(t, segments(t, dir), "the backlog is on disk")
	before := dirBytes(t, dir)

	// A new exporter on the same directory starts while Kafka is still
	// down: the stored batches and the partition cache are enough.
	exp2 := run(t, cfg, nopSettings())
	require.Positive(t, exp2.store.Len(), "backlog found at start")
	sendSeq(t, exp2, 2500, 2000)
	require.Greater(t, dirBytes(t, dir), before, "new records queue on disk behind the backlog")

	c2 := clusterOnPort(t, port, 6)
	const total = 4500 - 500 // written to c2
	waitRecords(t, c2, outageTopic, total, 30*time.Second)
	recs := readSeq(t, c2, outageTopic, total)
	for i := range recs {
		recs[i].seq -= 500
	}
	requireExactlyInOrder(t, recs, total)
	requireMurmur2Placement(t, recs, 6)

	// Replayed segments are deleted: the directory shrinks back.
	waitFor(t, 10*time.Second, func() bool {
		return exp2.store.Len() == 0 && len(segments(t, dir)) == 0
	}, "segments deleted after replay: %v", segments(t, dir))
	require.NoError(t, exp2.stop())
}

func TestShutdownWithKafkaDownSpillsPendingRecords(t *testing.T) {
	port := kfaketest.FreePort(t)
	c1 := clusterOnPort(t, port, 6)
	cfg := outageConfig(t, port)
	cfg.Batch.Size = 500
	cfg.Batch.MaxWait = time.Hour // everything stays in the accumulators
	dir := cfg.TempStorage.Directory

	exp1 := run(t, cfg, nopSettings())
	waitPartitions(t, exp1, outageTopic, 6)
	c1.Close()
	const total = 1200
	sendSeq(t, exp1, 0, total)
	require.EqualValues(t, total, exp1.pool.PendingRecords(), "held in memory before shutdown")
	require.NoError(t, exp1.stop())

	// Everything pending is in the queue, as shutdown batches.
	q, err := tempstorage.OpenStore(dir, tempstorage.Options{Logger: zap.NewNop()})
	require.NoError(t, err)
	require.Positive(t, q.Len())
	require.NotEmpty(t, q.Partitions())
	head := q.Partitions()[0]
	b, ok, err := q.Peek(head)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "shutdown", b.Reason.String())
	require.NoError(t, q.Close())

	// The next start replays it with Kafka back, while new records come
	// in: per partition they go behind the backlog.
	c2 := clusterOnPort(t, port, 6)
	cfg.Batch.Size = 50
	cfg.Batch.MaxWait = 5 * time.Millisecond
	exp2 := run(t, cfg, nopSettings())
	sendSeq(t, exp2, total, total)
	requireKeyedSeq(t, c2, 2*total)
	waitFor(t, 10*time.Second, func() bool { return exp2.store.Len() == 0 }, "queue drained")
	require.NoError(t, exp2.stop())
}

// dirBytes sums the sizes of the segment files in dir.
func dirBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	for _, p := range segments(t, dir) {
		fi, err := os.Stat(p)
		require.NoError(t, err)
		n += fi.Size()
	}
	return n
}

// hangProduce makes the cluster read produce requests and never answer
// them while hang is set; it counts the requests it swallowed.
func hangProduce(c *kfake.Cluster, hang *atomic.Bool) *atomic.Int32 {
	var n atomic.Int32
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if !hang.Load() {
			return nil, nil, false
		}
		n.Add(1)
		return nil, nil, true // no answer: the client waits for its timeout
	})
	return &n
}

func TestShutdownDuringHungReplayKeepsItsDeadline(t *testing.T) {
	port := kfaketest.FreePort(t)
	c1 := clusterOnPort(t, port, 6)
	cfg := outageConfig(t, port)
	cfg.Producer.Timeout = 5 * time.Second
	exp := run(t, cfg, nopSettings())
	waitPartitions(t, exp, outageTopic, 6)

	// A backlog on disk, then a broker that takes connections and never
	// answers a produce request: the replay loop hangs in a produce.
	c1.Close()
	sendSeq(t, exp, 0, 500)
	waitFor(t, 10*time.Second, func() bool { return exp.pool.PendingRecords() == 0 && exp.store.Len() > 0 },
		"records on disk")
	c2 := clusterOnPort(t, port, 6)
	var hang atomic.Bool
	hang.Store(true)
	swallowed := hangProduce(c2, &hang)
	waitFor(t, 10*time.Second, func() bool { return swallowed.Load() > 0 }, "a replay produce reached the broker")

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := exp.shutdown(ctx)
	took := time.Since(start)
	_ = exp.stop() // marks it stopped for the cleanup
	require.Less(t, took, 2*time.Second, "shutdown waited for the hung produce instead of its context")
	t.Logf("shutdown took %s: %v", took, err)

	// Nothing was lost: a new exporter replays the backlog.
	hang.Store(false)
	exp2 := run(t, cfg, nopSettings())
	requireAllInOrder(t, c2, outageTopic, 500)
	require.NoError(t, exp2.stop())
}

func TestFullStorageBacksCallersOffAndLosesNothing(t *testing.T) {
	port := kfaketest.FreePort(t)
	c1 := clusterOnPort(t, port, 6)
	cfg := outageConfig(t, port)
	cfg.TempStorage.MaxBytes = 16 << 10
	cfg.TempStorage.SegmentBytes = 4 << 10
	cfg.Batch.MaxBytes = 8 << 10
	cfg.Producer.MaxMessageBytes = 8 << 10
	cfg.MaxPendingBytes = 32 << 10
	// How long a call waits for memory: long, since a full disk must end
	// the wait at once (the call is refused, not left to time out).
	cfg.Producer.Timeout = 5 * time.Second
	exp := run(t, cfg, nopSettings())
	waitPartitions(t, exp, outageTopic, 6)
	c1.Close()

	// Calls are accepted until the disk refuses a batch; from then on a
	// call fails at once, retryably, with nothing of it accepted, rather
	// than filling memory that could not be saved.
	accepted := 0
	var err error
	for accepted < 100_000 {
		err = exp.consumeLogs(context.Background(), seqLogs(accepted, 100, 32))
		if err != nil {
			break
		}
		accepted += 100
	}
	require.Error(t, err)
	require.ErrorIs(t, err, delivery.ErrDiskFull)
	require.False(t, consumererror.IsPermanent(err))
	require.Positive(t, accepted)
	t.Logf("accepted %d records before backing off: %v", accepted, err)

	// Kafka returns: every accepted record arrives once, in order per
	// partition; those of the refused call never do.
	c2 := clusterOnPort(t, port, 6)
	waitRecords(t, c2, outageTopic, int64(accepted), 30*time.Second)
	recs := readSeq(t, c2, outageTopic, accepted)
	requireExactlyInOrder(t, recs, accepted)
	require.NoError(t, exp.stop())
}

func TestConsumeLogsAfterShutdownFails(t *testing.T) {
	c := newCluster(t, 1, "otlp_logs")
	cfg := testConfig(t, c.ListenAddrs())
	exp := run(t, cfg, nopSettings())
	waitPartitions(t, exp, "otlp_logs", 1)
	require.NoError(t, exp.stop())
	require.Error(t, exp.consumeLogs(context.Background(), seqLogs(0, 1, 0)))
}

// persistentCluster is clusterOnPort with 6 partitions and its log kept in
// dataDir across restarts.
func persistentCluster(t *testing.T, port int, dataDir string) *kfake.Cluster {
	t.Helper()
	return kfaketest.OnPort(t, port, kfake.DataDir(dataDir), kfake.SeedTopics(6, outageTopic))
}

// A broker restart while records stream in: at-least-once, and per
// partition the first copy of each record comes in acceptance order.
// Duplicates are allowed only for batches in flight at the restart.
func TestBrokerRestartMidStreamLosesNothing(t *testing.T) {
	port := kfaketest.FreePort(t)
	data := t.TempDir()
	c1 := persistentCluster(t, port, data)
	cfg := outageConfig(t, port)
	cfg.Batch.MaxWait = 5 * time.Millisecond
	exp := run(t, cfg, nopSettings())
	waitPartitions(t, exp, outageTopic, 6)

	// Stream until told to stop; total is what was accepted.
	stop := make(chan struct{})
	result := make(chan int, 1)
	errs := make(chan error, 1)
	go func() {
		n := 0
		defer func() { result <- n }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := exp.consumeLogs(context.Background(), seqLogs(n, 50, 32)); err != nil {
				errs <- err
				return
			}
			n += 50
		}
	}()
	waitFor(t, 10*time.Second, func() bool { return totalRecords(c1, outageTopic) >= 1000 }, "stream under way")
	c1.Close()
	c2 := persistentCluster(t, port, data)
	restored := totalRecords(c2, outageTopic)
	require.GreaterOrEqual(t, restored, int64(1000), "the broker kept its log")
	waitFor(t, 20*time.Second, func() bool { return totalRecords(c2, outageTopic) >= restored+2000 },
		"stream continues after the restart")
	close(stop)
	total := <-result
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	waitFor(t, 30*time.Second, func() bool { return distinctSeqs(t, c2) == total },
		"every record at the broker (%d distinct of %d)", distinctSeqs(t, c2), total)

	recs := consumeAll(t, c2, outageTopic, int(totalRecords(c2, outageTopic)))
	byPart := map[int32][]seqRecord{}
	seen := map[int]bool{}
	dups := 0
	for _, r := range recs {
		var seq int
		_, err := fmt.Sscanf(string(r.Value), "rec-%d", &seq)
		require.NoError(t, err)
		if seen[seq] {
			dups++
			continue
		}
		seen[seq] = true
		byPart[r.Partition] = append(byPart[r.Partition], seqRecord{partition: r.Partition, offset: r.Offset, seq: seq})
	}
	require.Len(t, seen, total)
	for p, rs := range byPart {
		for i := 1; i < len(rs); i++ {
			require.Less(t, rs[i-1].seq, rs[i].seq, "partition %d first copies out of order at offset %d", p, rs[i].offset)
		}
	}
	// At most one batch per partition was in flight.
	require.LessOrEqual(t, dups, 6*cfg.Batch.Size, "duplicates beyond the batches in flight")
	t.Logf("%d duplicates", dups)
	require.NoError(t, exp.stop())
}

// distinctSeqs counts the distinct records of outageTopic in c.
func distinctSeqs(t *testing.T, c *kfake.Cluster) int {
	n := int(totalRecords(c, outageTopic))
	if n == 0 {
		return 0
	}
	seen := map[string]bool{}
	for _, r := range consumeAll(t, c, outageTopic, n) {
		seen[string(r.Value)] = true
	}
	return len(seen)
}

func TestSyncDeliveryDuringOutageReturnsOnceOnDisk(t *testing.T) {
	port := kfaketest.FreePort(t)
	c1 := clusterOnPort(t, port, 6)
	cfg := outageConfig(t, port)
	cfg.Delivery = DeliverySync
	exp := run(t, cfg, nopSettings())
	waitPartitions(t, exp, outageTopic, 6)
	c1.Close()

	for i := 0; i < 1000; i += 100 {
		start := time.Now()
		require.NoError(t, exp.consumeLogs(context.Background(), seqLogs(i, 100, 32)))
		require.Less(t, time.Since(start), 2*time.Second, "a failed batch is on disk within about a second")
	}
	// Memory is released just after the caller is told.
	waitFor(t, 5*time.Second, func() bool { return exp.pool.PendingRecords() == 0 }, "spilled records leave memory")
	require.Positive(t, exp.store.Len())

	c2 := clusterOnPort(t, port, 6)
	requireAllInOrder(t, c2, outageTopic, 1000)
	require.NoError(t, exp.stop())
}

// A stored batch too large for the topic is split by the producer; when
// its first half is acknowledged and the second fails, the next replay
// must not send the first half again.
func TestReplayOfASplitBatchDoesNotRepeatItsAcknowledgedPart(t *testing.T) {
	port, _, exp := storeSplittableBatch(t)

	// The broker takes 3000-byte batches: the batch is split in two. The
	// first three requests carrying the second half fail (max_attempts).
	c2 := kfaketest.OnPort(t, port)
	var failedHalf atomic.Int32
	failSecondHalf(c2, func() bool { return failedHalf.Load() < 3 }, &failedHalf)
	require.NoError(t, c2.CreateTopic(outageTopic, 1, map[string]string{"max.message.bytes": "3000"}))

	waitFor(t, 20*time.Second, func() bool { return exp.store.Len() == 0 }, "the batch replayed")
	require.EqualValues(t, 3, failedHalf.Load())
	requireSplitBatchOnce(t, c2)
	require.NoError(t, exp.stop())
}

func TestEntryCorruptedWhileQueuedIsCountedAtReplay(t *testing.T) {
	port := kfaketest.FreePort(t)
	c1 := clusterOnPort(t, port, 1)
	cfg := outageConfig(t, port)
	cfg.TempStorage.SegmentBytes = 16 << 20 // one segment
	exp, tt := runObserved(t, cfg)
	waitPartitions(t, exp, outageTopic, 1)

	c1.Close()
	const total = 500 // five batches of 100
	sendSeq(t, exp, 0, total)
	waitFor(t, 20*time.Second, func() bool {
		return counter(t, tt, "otelcol_kafkabatcher_records_spilled") == total
	}, "%d records spilled", total)
	require.Zero(t, counter(t, tt, "otelcol_kafkabatcher_storage_corrupt_entries"))

	// Damage the middle of the queue on disk while the exporter runs.
	segs := segments(t, cfg.TempStorage.Directory)
	require.Len(t, segs, 1)
	data, err := os.ReadFile(segs[0])
	require.NoError(t, err)
	data[len(data)/2] ^= 0xff
	require.NoError(t, os.WriteFile(segs[0], data, 0o600))

	c2 := clusterOnPort(t, port, 1)
	waitFor(t, 20*time.Second, func() bool { return exp.store.Len() == 0 }, "queue drained")
	require.EqualValues(t, 1, counter(t, tt, "otelcol_kafkabatcher_storage_corrupt_entries"),
		"the entry skipped at replay is counted")
	require.EqualValues(t, total-100, totalRecords(c2, outageTopic), "the other four batches arrive")
	require.NoError(t, exp.stop())
}

// A partition Kafka keeps refusing after an outage (NOT_ENOUGH_REPLICAS)
// does not hold up the replay of the other partitions, nor their new
// records; once Kafka takes it, its backlog follows, in order.
func TestPartitionStillFailingDoesNotHoldUpOthers(t *testing.T) {
	port := kfaketest.FreePort(t)
	c1 := clusterOnPort(t, port, 6)
	cfg := outageConfig(t, port)
	exp := run(t, cfg, nopSettings())
	waitPartitions(t, exp, outageTopic, 6)

	c1.Close()
	const half = 1200
	sendSeq(t, exp, 0, half)
	waitFor(t, 20*time.Second, func() bool { return exp.pool.PendingRecords() == 0 && len(exp.store.Partitions()) == 6 },
		"every partition spilled")

	c2 := clusterOnPort(t, port, 6)
	fault := c2.Fault(kfake.Fault{
		Keys: []kmsg.Key{kmsg.Produce}, Topic: outageTopic, Partitions: []int32{0},
		Err: kerr.NotEnoughReplicas, Count: -1,
	})
	sendSeq(t, exp, half, half)
	var onZero int64
	for i := 0; i < 2*half; i++ {
		if javaMurmur2Partition([]byte(fmt.Sprintf("key-%d", i%32)), 6) == 0 {
			onZero++
		}
	}
	require.Positive(t, onZero)
	waitRecords(t, c2, outageTopic, 2*half-onZero, 20*time.Second)
	only0 := []message.TopicPartition{{Topic: outageTopic, Partition: 0}}
	waitFor(t, 10*time.Second, func() bool { return slices.Equal(exp.store.Partitions(), only0) },
		"only partition 0 still has a backlog: %v", exp.store.Partitions())
	require.Zero(t, highWatermarks(c2, outageTopic)[0], "partition 0 is refused")

	fault.Remove()
	requireKeyedSeq(t, c2, 2*half)
	waitFor(t, 10*time.Second, func() bool { return exp.store.Len() == 0 }, "queue drained")
	require.NoError(t, exp.stop())
}

// storeSplittableBatch stores one batch of 40 records of about 100 bytes
// ("rec-N zzz...") while Kafka is down, for a broker that will take at most
// 3000-byte batches (failSecondHalf): the producer splits it in two.
func storeSplittableBatch(t *testing.T) (int, *Config, *harness) {
	port := kfaketest.FreePort(t)
	c1 := clusterOnPort(t, port, 1)
	cfg := outageConfig(t, port)
	cfg.KeyFrom = nil
	cfg.Batch.Size = 40
	cfg.Batch.MaxWait = time.Hour
	exp := run(t, cfg, nopSettings())
	waitPartitions(t, exp, outageTopic, 1)
	c1.Close()
	ld := seqLogs(0, 40, 0)
	lrs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	for i := 0; i < lrs.Len(); i++ {
		lrs.At(i).Body().SetStr(fmt.Sprintf("rec-%d %s", i, strings.Repeat("z", 90)))
	}
	require.NoError(t, exp.consumeLogs(context.Background(), ld))
	waitFor(t, 10*time.Second, func() bool { return exp.store.Len() == 1 }, "the batch on disk")
	return port, cfg, exp
}

// failSecondHalf makes c answer NOT_LEADER_FOR_PARTITION to the record
// batch holding the stored batch's second half (rec-20 on) while fail says
// so, counting those answers in failed.
func failSecondHalf(c *kfake.Cluster, fail func() bool, failed *atomic.Int32) {
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if !fail() {
			return nil, nil, false
		}
		pr := req.(*kmsg.ProduceRequest)
		for _, rt := range pr.Topics {
			for _, rp := range rt.Partitions {
				var rb kmsg.RecordBatch
				if rb.ReadFrom(rp.Records) != nil || rb.NumRecords != 20 {
					continue
				}
				recs, err := kfake.BatchRecords(rb)
				if err != nil || !strings.HasPrefix(string(recs[0].Value), "rec-20 ") {
					continue
				}
				failed.Add(1)
				resp := pr.ResponseKind().(*kmsg.ProduceResponse)
				st := kmsg.NewProduceResponseTopic()
				st.Topic, st.TopicID = rt.Topic, rt.TopicID
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, kerr.NotLeaderForPartition.Code
				st.Partitions = append(st.Partitions, sp)
				resp.Topics = append(resp.Topics, st)
				return resp, nil, true
			}
		}
		return nil, nil, false
	})
}

// requireSplitBatchOnce checks that c holds the stored batch's 40 records
// each once, in order.
func requireSplitBatchOnce(t *testing.T, c *kfake.Cluster) {
	t.Helper()
	recs := consumeAll(t, c, outageTopic, int(totalRecords(c, outageTopic)))
	var got []string
	for _, r := range recs {
		got = append(got, strings.Fields(string(r.Value))[0])
	}
	var want []string
	for i := 0; i < 40; i++ {
		want = append(want, fmt.Sprintf("rec-%d", i))
	}
	require.Equal(t, want, got, "each record once, in order")
}
