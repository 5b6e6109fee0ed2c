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
