package kafkabatcherexporter

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.uber.org/zap"
	zapobserver "go.uber.org/zap/zaptest/observer"

	"github.com/kafkabatcher/kafkabatcherexporter/internal/delivery"
	"github.com/kafkabatcher/kafkabatcherexporter/internal/diskfault"
	"github.com/kafkabatcher/kafkabatcherexporter/internal/kfaketest"
	"github.com/kafkabatcher/kafkabatcherexporter/internal/metadatatest"
	"github.com/kafkabatcher/kafkabatcherexporter/partitioner"
)

// smallDiskConfig is outageConfig with batches small enough for a disk of
// a few hundred KiB (validation wants one to fit).
func smallDiskConfig(t *testing.T, port int) *Config {
	cfg := outageConfig(t, port)
	cfg.Batch.MaxBytes = 8 << 10
	cfg.Producer.MaxMessageBytes = 8 << 10
	cfg.TempStorage.SegmentBytes = 8 << 10
	return cfg
}

// onDisk makes the exporter write its temp storage through disk.
func onDisk(disk *diskfault.Disk) func(*kafkaBatcherExporter) {
	return func(e *kafkaBatcherExporter) { e.storageFS = disk }
}

// logged returns set with a logger the test can read.
func logged(set exporter.Settings) (exporter.Settings, *zapobserver.ObservedLogs) {
	core, logs := zapobserver.New(zap.InfoLevel)
	set.Logger = zap.New(core)
	return set, logs
}

// sendUntilRefused sends calls of 100 records from first on until one is
// refused and returns the seqs of the accepted calls and the refusal.
func sendUntilRefused(t *testing.T, exp *harness, first int) (accepted []int, next int, err error) {
	t.Helper()
	for next = first; next < first+100_000; next += 100 {
		if err = exp.consumeLogs(context.Background(), seqLogs(next, 100, 32)); err != nil {
			return accepted, next + 100, err
		}
		for i := next; i < next+100; i++ {
			accepted = append(accepted, i)
		}
	}
	t.Fatalf("100000 records accepted with Kafka down on a small disk")
	return nil, 0, nil
}

// requireAcceptedOnce checks that each accepted seq is in recs exactly once,
// that no seq is there twice (a refused call may have been stored in part:
// the client retries it) and that each partition holds its seqs in order.
func requireAcceptedOnce(t *testing.T, recs []seqRecord, accepted []int) {
	t.Helper()
	count := map[int]int{}
	for _, r := range recs {
		count[r.seq]++
		require.Equal(t, 1, count[r.seq], "seq %d delivered twice", r.seq)
	}
	var missing []int
	for _, s := range accepted {
		if count[s] == 0 {
			missing = append(missing, s)
		}
	}
	require.Empty(t, missing, "accepted records missing (%d of %d)", len(missing), len(accepted))
	requireOrdered(t, recs, func(r seqRecord) string { return fmt.Sprint("partition ", r.partition) })
}

// TestFullDiskSyncReplaysEveryAcceptedRecordOnce is the 2 MiB tmpfs of the
// issue on a disk that fills up: with Kafka down the disk fills and new
// records are refused as "disk full"; with Kafka back, and the disk still
// completely full, replay drains every accepted record once, in order, and
// records are accepted again; a restart resends nothing.
func TestFullDiskSyncReplaysEveryAcceptedRecordOnce(t *testing.T) {
	port := kfaketest.FreePort(t)
	c1 := clusterOnPort(t, port, 6)
	cfg := smallDiskConfig(t, port)
	cfg.Delivery = DeliverySync
	disk := diskfault.New(cfg.TempStorage.Directory, 96<<10)
	host := newStatusHost()
	exp := runOn(t, host, cfg, nopSettings(), onDisk(disk))
	waitPartitions(t, exp, outageTopic, 6)
	c1.Close()

	accepted, next, err := sendUntilRefused(t, exp, 0)
	require.ErrorIs(t, err, delivery.ErrDiskFull)
	require.False(t, consumererror.IsPermanent(err))
	require.Positive(t, disk.Refused())
	require.True(t, exp.disp.DiskFull())
	require.Equal(t, componentstatus.StatusRecoverableError, host.last())
	require.ErrorIs(t, host.lastErr(), delivery.ErrDiskFull, "the status says disk full, not Kafka")
	t.Logf("%d records accepted before the disk refused: %v", len(accepted), err)
	disk.SetCapacity(disk.Used()) // not a byte left, as on a tmpfs counted in pages
	require.ErrorIs(t, exp.consumeLogs(context.Background(), seqLogs(next, 100, 32)), delivery.ErrDiskFull,
		"refused at once while the disk is full")
	next += 100

	c2 := clusterOnPort(t, port, 6)
	waitFor(t, 30*time.Second, func() bool { return exp.store.Len() == 0 }, "the backlog replayed on a full disk (%d left)", exp.store.Len())
	waitFor(t, 10*time.Second, func() bool { return !exp.disp.DiskFull() }, "room again after the replay")
	for i := next; i < next+300; i++ {
		accepted = append(accepted, i)
	}
	sendSeq(t, exp, next, 300) // accepted again, sent directly
	require.Equal(t, componentstatus.StatusOK, host.last())
	total := int(totalRecords(c2, outageTopic))
	requireAcceptedOnce(t, readSeq(t, c2, outageTopic, total), accepted)
	require.NoError(t, exp.stop())

	// A restart on the same directory finds nothing to send again.
	exp2 := run(t, cfg, nopSettings(), onDisk(disk))
	require.Zero(t, exp2.store.Len(), "acknowledged entries left to replay after a restart")
	sendSeq(t, exp2, next+300, 100)
	waitRecords(t, c2, outageTopic, int64(total+100), 10*time.Second)
	require.NoError(t, exp2.stop())
	require.EqualValues(t, total+100, totalRecords(c2, outageTopic), "records sent twice")
}

// TestFullDiskAsyncRefusesRecordsItCouldNotSave: under async delivery,
// once the disk refuses a batch, new records are refused at once instead
// of being accepted into memory that could not be saved. At shutdown with
// Kafka still down only what was in memory at that moment is lost; the
// rest is on disk and reaches Kafka once, in order.
func TestFullDiskAsyncRefusesRecordsItCouldNotSave(t *testing.T) {
	port := kfaketest.FreePort(t)
	c1 := clusterOnPort(t, port, 6)
	cfg := smallDiskConfig(t, port)
	cfg.MaxPendingBytes = 4 << 20 // memory alone would take far more than the disk
	disk := diskfault.New(cfg.TempStorage.Directory, 96<<10)
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	exp := run(t, cfg, metadatatest.NewSettings(tt), onDisk(disk))
	waitPartitions(t, exp, outageTopic, 6)
	c1.Close()

	accepted, next, err := sendUntilRefused(t, exp, 0)
	require.ErrorIs(t, err, delivery.ErrDiskFull)
	require.False(t, consumererror.IsPermanent(err))
	exposure := exp.pool.PendingRecords() // in memory when the disk refused; no call adds to it now
	for range 20 {
		require.ErrorIs(t, exp.consumeLogs(context.Background(), seqLogs(next, 100, 32)), delivery.ErrDiskFull,
			"accepted into memory while the disk is full")
		next += 100
	}
	require.LessOrEqual(t, exp.pool.PendingRecords(), exposure)

	// SIGTERM with Kafka down and the disk full.
	stopErr := exp.stop()
	lost := sumByAttrs(t, tt, "otelcol_kafkabatcher_records_rejected")[withSignal(reasonSet("not_stored"), "logs")]
	t.Logf("%d accepted, %d in memory when the disk refused, %d lost at shutdown: %v", len(accepted), exposure, lost, stopErr)
	require.LessOrEqual(t, lost, exposure, "records lost beyond those in memory when the disk refused")

	c2 := clusterOnPort(t, port, 6)
	exp2 := run(t, cfg, nopSettings(), onDisk(disk))
	stored := len(accepted) - int(lost)
	waitRecords(t, c2, outageTopic, int64(stored), 30*time.Second)
	waitFor(t, 10*time.Second, func() bool { return exp2.store.Len() == 0 }, "queue drained")
	recs := readSeq(t, c2, outageTopic, stored)
	seen := map[int]bool{}
	for _, r := range recs {
		require.Less(t, r.seq, accepted[len(accepted)-1]+1, "a refused record reached Kafka")
		require.False(t, seen[r.seq], "seq %d twice", r.seq)
		seen[r.seq] = true
	}
	requireOrdered(t, recs, func(r seqRecord) string { return fmt.Sprint("partition ", r.partition) })
	require.NoError(t, exp2.stop())
}

// stopAfterOutage spills records [0, n) of an outage to cfg's directory,
// keyed over 32 keys, and stops the exporter.
func stopAfterOutage(t *testing.T, port int, partitions int32, cfg *Config, n int) {
	t.Helper()
	c1 := clusterOnPort(t, port, partitions)
	exp := run(t, cfg, nopSettings())
	waitPartitions(t, exp, outageTopic, partitions)
	c1.Close()
	sendSeq(t, exp, 0, n)
	require.NoError(t, exp.stop(), "everything spilled")
	require.Equal(t, n, storedRecords(t, cfg.TempStorage.Directory))
}

// storedRecords counts the records in dir's temp storage.
func storedRecords(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	for _, seg := range segments(t, dir) {
		b, err := os.ReadFile(seg)
		require.NoError(t, err)
		n += strings.Count(string(b), "rec-")
	}
	return n
}

// TestStraySegmentFilesAreLeftAlone: a look-alike segment name next to the
// real segments of a partition, and one alone in a partition directory,
// neither stall replay nor stop start: each is named in one warning and
// left where it is, and every record arrives once, in order.
func TestStraySegmentFilesAreLeftAlone(t *testing.T) {
	port := kfaketest.FreePort(t)
	cfg := outageConfig(t, port)
	cfg.TempStorage.SegmentBytes = 4 << 10 // several segments per partition
	const total = 3000
	stopAfterOutage(t, port, 6, cfg, total)
	q0 := filepath.Join(cfg.TempStorage.Directory, "queue", outageTopic, "0")
	second, err := os.ReadFile(filepath.Join(q0, "segment-00000000000000000002.log"))
	require.NoError(t, err)
	strays := []string{filepath.Join(q0, "segment-2.log"), filepath.Join(cfg.TempStorage.Directory, "queue", outageTopic, "5", "segment-123.log")}
	require.NoError(t, os.WriteFile(strays[0], second, 0o600))
	require.NoError(t, os.WriteFile(strays[1], second, 0o600))
	require.NoError(t, os.Remove(filepath.Join(filepath.Dir(strays[1]), "checkpoint"))) // partition 5's queue: the stray alone
	for _, s := range segments(t, cfg.TempStorage.Directory) {
		if filepath.Dir(s) == filepath.Dir(strays[1]) && s != strays[1] {
			require.NoError(t, os.Rename(s, filepath.Join(q0, "..", "..", "..", filepath.Base(s)+".moved")))
		}
	}
	moved := total - storedRecords(t, cfg.TempStorage.Directory) + strings.Count(string(second), "rec-")*2

	set, logs := logged(nopSettings())
	c2 := clusterOnPort(t, port, 6)
	exp := run(t, cfg, set)
	want := total - moved
	waitRecords(t, c2, outageTopic, int64(want), 30*time.Second)
	waitFor(t, 10*time.Second, func() bool { return exp.store.Len() == 0 }, "queue drained")
	require.EqualValues(t, want, totalRecords(c2, outageTopic), "a stray was replayed")
	require.NoError(t, exp.stop())
	for _, s := range strays {
		require.Equal(t, 1, logs.FilterField(zap.String("file", s)).Len(), "one warning naming %s", s)
		got, err := os.ReadFile(s)
		require.NoError(t, err)
		require.Equal(t, second, got, "%s left alone", s)
	}
}

// TestMissingMiddleSegmentIsCountedAndTheRestArrives: a segment deleted
// from the middle of a partition's queue is logged with its id and counted
// in the corrupt-entries counter; the records around it arrive in order.
func TestMissingMiddleSegmentIsCountedAndTheRestArrives(t *testing.T) {
	port := kfaketest.FreePort(t)
	cfg := outageConfig(t, port)
	cfg.KeyFrom = nil
	cfg.Partitioning.Strategy = partitioner.RoundRobin
	cfg.TempStorage.SegmentBytes = 4 << 10
	const total = 2000
	stopAfterOutage(t, port, 1, cfg, total)
	q0 := filepath.Join(cfg.TempStorage.Directory, "queue", outageTopic, "0")
	victim := filepath.Join(q0, "segment-00000000000000000002.log")
	require.FileExists(t, filepath.Join(q0, "segment-00000000000000000003.log"), "a segment after the victim")
	b, err := os.ReadFile(victim)
	require.NoError(t, err)
	lost := strings.Count(string(b), "rec-")
	require.NoError(t, os.Remove(victim))

	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	set, logs := logged(metadatatest.NewSettings(tt))
	c2 := clusterOnPort(t, port, 1)
	exp := run(t, cfg, set)
	waitRecords(t, c2, outageTopic, int64(total-lost), 30*time.Second)
	waitFor(t, 10*time.Second, func() bool { return exp.store.Len() == 0 }, "queue drained")
	require.EqualValues(t, 1, counter(t, tt, "otelcol_kafkabatcher_storage_corrupt_entries"))
	gap := logs.FilterMessage("temp storage: segments missing from the queue; their entries are lost").All()
	require.Len(t, gap, 1)
	require.EqualValues(t, 2, gap[0].ContextMap()["first_missing"])
	recs := readSeq(t, c2, outageTopic, total-lost)
	var seqs []int
	for _, r := range recs {
		seqs = append(seqs, r.seq)
	}
	require.True(t, slices.IsSorted(seqs), "out of order")
	require.NoError(t, exp.stop())
}

// TestStoredBatchesOfAGonePartitionAreDeadLettered: the topic comes back
// with 3 partitions instead of 6; what was stored for partitions 3 to 5
// goes to the dead-letter file with reason partition_gone, counted and
// logged, and partitions 0 to 2 replay as usual.
func TestStoredBatchesOfAGonePartitionAreDeadLettered(t *testing.T) {
	port := kfaketest.FreePort(t)
	cfg := outageConfig(t, port)
	cfg.Metadata.RefreshInterval = 100 * time.Millisecond
	const total = 1200
	stopAfterOutage(t, port, 6, cfg, total)
	gone := 0
	for i := range total {
		if javaMurmur2Partition([]byte(fmt.Sprintf("key-%d", i%32)), 6) >= 3 {
			gone++
		}
	}
	require.Positive(t, gone)

	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	set, logs := logged(metadatatest.NewSettings(tt))
	c2 := clusterOnPort(t, port, 3)
	exp := run(t, cfg, set)
	waitFor(t, 30*time.Second, func() bool { return exp.store.Len() == 0 }, "stored batches replayed or dead-lettered")
	rejected := sumByAttrs(t, tt, "otelcol_kafkabatcher_records_rejected")[withSignal(reasonSet("partition_gone"), "logs")]
	require.EqualValues(t, gone, rejected)
	require.EqualValues(t, total-gone, totalRecords(c2, outageTopic))
	require.NotZero(t, logs.FilterMessage("stored batches of a partition that no longer exists moved to the dead-letter file").Len())
	require.NoError(t, exp.stop())

	lines := readDeadLetters(t, cfg.TempStorage.Directory)
	require.Len(t, lines, gone)
	for _, l := range lines {
		require.Equal(t, "partition_gone", l.Reason)
		require.GreaterOrEqual(t, l.Partition, int32(3))
		require.True(t, strings.HasPrefix(string(l.Value), "rec-"), "the record is kept: %q", l.Value)
	}
	recs := readSeq(t, c2, outageTopic, total-gone)
	for _, r := range recs {
		require.Less(t, r.partition, int32(3))
	}
	requireOrdered(t, recs, func(r seqRecord) string { return fmt.Sprint("partition ", r.partition) })
}

// TestHugeDeadLetterSaysItsContentWasNotKept: a rejected record too large
// for the dead-letter file's bound is written with "value": null and
// "truncated": true, and the warning says the content was not kept.
func TestHugeDeadLetterSaysItsContentWasNotKept(t *testing.T) {
	_, _, cfg := observedRawSetup(t, 1)
	set, logs := logged(nopSettings())
	exp := run(t, cfg, set, func(e *kafkaBatcherExporter) { e.deadLetters.maxBytes = 16 << 10 })
	waitPartitions(t, exp, "otlp_logs", 1)
	ld := seqLogs(0, 2, 0)
	ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(1).Body().SetStr("rec-1" + strings.Repeat("x", 2_000_000))
	require.NoError(t, exp.consumeLogs(context.Background(), ld))
	require.NoError(t, exp.stop())

	lines := readDeadLetters(t, cfg.TempStorage.Directory)
	require.Len(t, lines, 1)
	require.True(t, lines[0].Truncated)
	require.Nil(t, lines[0].Value)
	require.Equal(t, 2_000_005, lines[0].ValueBytes)
	warned := logs.FilterMessageSnippet("without its content").All()
	require.Len(t, warned, 1)
	require.Equal(t, true, warned[0].ContextMap()["truncated"])
	require.Equal(t, "oversize", warned[0].ContextMap()["reason"])
}

// TestStartAcceptsWhatValidateAccepts: values at the bounds validate
// checks start with them (start needs no broker).
func TestStartAcceptsWhatValidateAccepts(t *testing.T) {
	cfg := testConfig(t, []string{"127.0.0.1:" + strconv.Itoa(kfaketest.FreePort(t))})
	cfg.Producer.Timeout = time.Millisecond
	cfg.Producer.MaxMessageBytes = 100<<20 - 1
	cfg.Batch.MaxBytes = 64 << 10
	cfg.TempStorage.MaxBytes = int(cfg.maxEntryBytes())
	cfg.TempStorage.SegmentBytes = cfg.TempStorage.MaxBytes
	require.NoError(t, cfg.Validate())
	require.NoError(t, run(t, cfg, nopSettings()).stop())
}
