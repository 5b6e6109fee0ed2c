package kafkabatcherexporter

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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
	port := kfaketest.FreePort(t)
	c1 := clusterOnPort(t, port, 1)
	cfg := outageConfig(t, port)
	cfg.KeyFrom = nil
	cfg.Batch.Size = 40
	cfg.Batch.MaxWait = time.Hour
	exp1 := run(t, cfg, nopSettings())
	waitPartitions(t, exp1, outageTopic, 1)
	c1.Close()

	// One stored batch of 40 records of about 100 bytes.
	ld := seqLogs(0, 40, 0)
	lrs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	for i := 0; i < lrs.Len(); i++ {
		lrs.At(i).Body().SetStr(fmt.Sprintf("rec-%d %s", i, strings.Repeat("z", 90)))
	}
	require.NoError(t, exp1.consumeLogs(context.Background(), ld))
	waitFor(t, 10*time.Second, func() bool { return exp1.store.Len() == 1 }, "the batch on disk")

	// The broker takes 3000-byte batches: the batch is split in two. The
	// second half fails until the first exporter has stopped.
	c2 := kfaketest.OnPort(t, port)
	var failing atomic.Bool
	var failed atomic.Int32
	failing.Store(true)
	c2.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c2.KeepControl()
		if !failing.Load() {
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
	recs := consumeAll(t, c2, outageTopic, int(totalRecords(c2, outageTopic)))
	var got []string
	for _, r := range recs {
		got = append(got, strings.Fields(string(r.Value))[0])
	}
	var want []string
	for i := 0; i < 40; i++ {
		want = append(want, fmt.Sprintf("rec-%d", i))
	}
	require.Equal(t, want, got, "each record once, in order")
	assert.False(t, exists(headProgressFile(cfg.TempStorage.Directory, outageTopic, 0)), "the head progress is deleted with its batch")
}
