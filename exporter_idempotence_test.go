package kafkabatcherexporter

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkabatcher/kafkabatcherexporter/logmsg"
)

// TestTimedOutAfterWriteIsNoDuplicateWithIdempotence: the broker writes
// batches and answers REQUEST_TIMED_OUT (as when replication is slow); the
// exporter resends them. With idempotence (the default with acks all) the
// broker drops the resends; without, every resent batch is in Kafka twice.
func TestTimedOutAfterWriteIsNoDuplicateWithIdempotence(t *testing.T) {
	for _, idempotent := range []bool{true, false} {
		t.Run(fmt.Sprintf("idempotent=%v", idempotent), func(t *testing.T) {
			c := newCluster(t, 2, "otlp_logs")
			cfg := testConfig(t, c.ListenAddrs())
			cfg.Encoding = logmsg.EncodingRaw
			cfg.KeyFrom = []string{"attributes.k"}
			cfg.Batch.Size = 50
			cfg.Producer.Idempotent = &idempotent
			cfg.Producer.MaxAttempts = 5 // three timeouts in a row on one batch are retried, not spilled
			exp, tt := runObserved(t, cfg)
			waitPartitions(t, exp, "otlp_logs", 2)
			faults := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: "otlp_logs", Err: kerr.RequestTimedOut, Count: 3})
			const total = 600
			for i := 0; i < total; i += 100 {
				require.NoError(t, exp.consumeLogs(context.Background(), seqLogs(i, 100, 8)))
			}
			waitRecords(t, c, "otlp_logs", total, 10*time.Second)
			waitFor(t, 5*time.Second, func() bool { return exp.pool.PendingRecords() == 0 }, "all records acknowledged")
			require.Equal(t, 3, faults.Hits())
			resends := sumByAttrs(t, tt, "otelcol_kafkabatcher_resends")
			assert.Positive(t, resends[reasonSet("retriable_error")], "resends: %v", resends)
			ids := counter(t, tt, "otelcol_kafkabatcher_producer_id_changes")
			require.NoError(t, exp.stop())
			if !idempotent {
				dups := totalRecords(c, "otlp_logs") - total
				t.Logf("idempotent=false: %d duplicate records", dups)
				require.Positive(t, dups, "the resends are duplicates")
				return
			}
			requireAllInOrder(t, c, "otlp_logs", total)
			assert.EqualValues(t, 1, ids)
		})
	}
}

// TestGivenUpBatchesReplayFromDiskWithTheirNumbers: the broker writes
// batches and answers REQUEST_TIMED_OUT until the exporter gives up on them
// (max_attempts 1): they go to the temp storage with their producer id,
// epoch and sequence numbers, and the replay resends them with those. The
// broker answers the resends as duplicates: every record once, in order,
// under one producer id, no possible duplicate.
func TestGivenUpBatchesReplayFromDiskWithTheirNumbers(t *testing.T) {
	c := newCluster(t, 2, "otlp_logs")
	cfg := givenUpConfig(t, c)
	exp, tt := runObserved(t, cfg)
	waitPartitions(t, exp, "otlp_logs", 2)
	faults := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: "otlp_logs", Err: kerr.RequestTimedOut, Count: 6})
	const total = 600
	for i := 0; i < total; i += 100 {
		require.NoError(t, exp.consumeLogs(context.Background(), seqLogs(i, 100, 8)))
	}
	waitFor(t, 10*time.Second, func() bool { return exp.pool.PendingRecords() == 0 && exp.store.Len() == 0 }, "all records acknowledged")
	require.Equal(t, 6, faults.Hits())
	assert.Positive(t, counter(t, tt, "otelcol_kafkabatcher_records_spilled"), "the timed-out batches went to disk")
	ids := counter(t, tt, "otelcol_kafkabatcher_producer_id_changes")
	dups := counter(t, tt, "otelcol_kafkabatcher_possible_duplicates")
	require.NoError(t, exp.stop())
	requireAllInOrder(t, c, "otlp_logs", total)
	assert.EqualValues(t, 1, ids, "replayed under the producer id they were sent with")
	assert.Zero(t, dups)
}

// TestRestartCountsStoredBatchesOfUnknownFate: every produce is written and
// answered REQUEST_TIMED_OUT, so the batches go to disk not knowing
// whether Kafka has them (it has). The exporter stops; a new one (a new
// producer id) replays them: the broker cannot tell they are resends, and
// each record is in Kafka twice. The possible-duplicates counter counts
// exactly those records.
func TestRestartCountsStoredBatchesOfUnknownFate(t *testing.T) {
	c := newCluster(t, 2, "otlp_logs")
	cfg := givenUpConfig(t, c)
	exp1 := run(t, cfg, nopSettings())
	waitPartitions(t, exp1, "otlp_logs", 2)
	faults := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: "otlp_logs", Err: kerr.RequestTimedOut, Count: -1})
	const total = 200
	require.NoError(t, exp1.consumeLogs(context.Background(), seqLogs(0, total, 8)))
	waitFor(t, 10*time.Second, func() bool { return exp1.store.Len() > 0 && exp1.pool.PendingRecords() == 0 }, "batches on disk")
	require.NoError(t, exp1.stop())
	require.Positive(t, totalRecords(c, "otlp_logs"), "the stored heads are in Kafka")
	faults.Remove()

	exp2, tt := runObserved(t, cfg)
	waitFor(t, 10*time.Second, func() bool { return exp2.store.Len() == 0 }, "replayed")
	waitRecords(t, c, "otlp_logs", total, 10*time.Second)
	dups := counter(t, tt, "otelcol_kafkabatcher_possible_duplicates")
	require.NoError(t, exp2.stop())
	inKafka := totalRecords(c, "otlp_logs")
	assert.Equal(t, inKafka-total, dups, "every duplicate in Kafka is counted, and nothing else")
	assert.Positive(t, dups)
}

// givenUpConfig gives up on a batch after one attempt and retries the
// temp storage every 50 ms, so that batches go to disk and replay at once.
func givenUpConfig(t *testing.T, c *kfake.Cluster) *Config {
	cfg := testConfig(t, c.ListenAddrs())
	cfg.Encoding = logmsg.EncodingRaw
	cfg.KeyFrom = []string{"attributes.k"}
	cfg.Batch.Size = 50
	cfg.Producer.MaxAttempts = 1
	cfg.TempStorage.RetryInterval = 50 * time.Millisecond
	return cfg
}
