package kafkabatcherexporter

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkabatcher/kafkabatcherexporter/internal/kfaketest"
	"github.com/kafkabatcher/kafkabatcherexporter/tempstorage"
)

// headProgressFile is the file where the temp storage keeps how far the
// replay of a partition's oldest stored batch got.
func headProgressFile(dir, topic string, partition int32) string {
	return filepath.Join(dir, "queue", tempstorage.EscapeName(topic), fmt.Sprint(partition), "head-progress")
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// TestRestartCountsAStoredHeadWhoseReplayTimedOut: batches go to disk
// knowing Kafka did not write them (NOT_LEADER_FOR_PARTITION). The replay
// of the oldest is written and answered REQUEST_TIMED_OUT: Kafka has it,
// and the exporter cannot know. It stops; a new one (a new producer id)
// replays it again, which the broker cannot tell from new records, so it
// is in Kafka twice: the possible-duplicates counter counts exactly that,
// because the replay that timed out left its sequence, unsure, on disk.
func TestRestartCountsAStoredHeadWhoseReplayTimedOut(t *testing.T) {
	c := newCluster(t, 1, "otlp_logs")
	cfg := givenUpConfig(t, c)
	cfg.KeyFrom = nil
	exp1 := run(t, cfg, nopSettings())
	waitPartitions(t, exp1, "otlp_logs", 1)
	notLeader := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: "otlp_logs", Err: kerr.NotLeaderForPartition, Count: -1})
	const total = 200
	require.NoError(t, exp1.consumeLogs(context.Background(), seqLogs(0, total, 1)))
	waitFor(t, 10*time.Second, func() bool { return exp1.store.Len() > 1 && exp1.pool.PendingRecords() == 0 }, "batches on disk")
	require.Zero(t, totalRecords(c, "otlp_logs"), "NOT_LEADER_FOR_PARTITION writes nothing")

	timedOut := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: "otlp_logs", Err: kerr.RequestTimedOut, Count: -1})
	notLeader.Remove()
	// A second timed-out replay: the first one is settled.
	waitFor(t, 10*time.Second, func() bool { return totalRecords(c, "otlp_logs") > 0 && timedOut.Hits() >= 2 },
		"the oldest batch written and its replay settled")
	require.NoError(t, exp1.stop())
	timedOut.Remove()
	require.Positive(t, exp1.store.Len(), "the stored batches are still on disk")

	exp2, tt := runObserved(t, cfg)
	waitFor(t, 10*time.Second, func() bool { return exp2.store.Len() == 0 }, "replayed")
	waitRecords(t, c, "otlp_logs", total, 10*time.Second)
	dups := counter(t, tt, "otelcol_kafkabatcher_possible_duplicates")
	require.NoError(t, exp2.stop())
	inKafka := totalRecords(c, "otlp_logs")
	assert.Positive(t, inKafka-total, "the oldest batch is in Kafka twice")
	assert.Equal(t, inKafka-total, dups, "every duplicate in Kafka is counted, and nothing else")
	assert.False(t, exists(headProgressFile(cfg.TempStorage.Directory, "otlp_logs", 0)), "the head progress is deleted with its batch")
}

// TestRestartAfterAPartReplayOfASplitBatchDoesNotRepeatIt: a stored batch
// too large for the topic is split by the producer; its first half is
// acknowledged and the second keeps failing. The exporter stops; a new one
// (a new producer id) replays only the second half: the first half is not
// in Kafka twice.
func TestRestartAfterAPartReplayOfASplitBatchDoesNotRepeatIt(t *testing.T) {
	port, cfg, exp1 := storeSplittableBatch(t)

	// The broker takes 3000-byte batches: the batch is split in two. The
	// second half fails until the first exporter has stopped.
	c2 := kfaketest.OnPort(t, port)
	var failing atomic.Bool
	var failed atomic.Int32
	failing.Store(true)
	failSecondHalf(c2, failing.Load, &failed)
	require.NoError(t, c2.CreateTopic(outageTopic, 1, map[string]string{"max.message.bytes": "3000"}))
	// A replay makes max_attempts (3) attempts: a fourth failure is the
	// second replay, so the first one is settled.
	waitFor(t, 20*time.Second, func() bool { return totalRecords(c2, outageTopic) == 20 && failed.Load() > 3 },
		"the first half acknowledged and the replay settled")
	require.NoError(t, exp1.stop())
	require.Equal(t, 1, exp1.store.Len(), "the batch is still on disk")

	failing.Store(false)
	exp2 := run(t, cfg, nopSettings())
	waitFor(t, 20*time.Second, func() bool { return exp2.store.Len() == 0 }, "the batch replayed")
	require.NoError(t, exp2.stop())
	requireSplitBatchOnce(t, c2)
	assert.False(t, exists(headProgressFile(cfg.TempStorage.Directory, outageTopic, 0)), "the head progress is deleted with its batch")
}
