package kafkabatcherexporter

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/kafkabatcher/kafkabatcherexporter/internal/fakeclock"
)

// sumByAttrs returns the int64 sum metric name per attribute set (empty
// when nothing was recorded yet).
func sumByAttrs(t *testing.T, tt *componenttest.Telemetry, name string) map[attribute.Set]int64 {
	t.Helper()
	out := map[attribute.Set]int64{}
	m, err := tt.GetMetric(name)
	if err != nil {
		return out // not recorded yet
	}
	sum, ok := m.Data.(metricdata.Sum[int64])
	require.True(t, ok, "%s is %T", name, m.Data)
	for _, dp := range sum.DataPoints {
		out[dp.Attributes] += dp.Value
	}
	return out
}

func reasonSet(reason string) attribute.Set {
	return attribute.NewSet(attribute.String("reason", reason))
}

// flushes returns the flush counter of reason.
func flushes(t *testing.T, tt *componenttest.Telemetry, reason string) int64 {
	return sumByAttrs(t, tt, "otelcol_kafkabatcher_flushes")[reasonSet(reason)]
}

// fakeClockExporter starts an exporter on a fake clock with telemetry.
func fakeClockExporter(t *testing.T, cfg *Config) (*harness, *fakeclock.Clock, *componenttest.Telemetry) {
	t.Helper()
	clk := fakeclock.New(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	exp, tt := runObserved(t, cfg, func(e *kafkaBatcherExporter) { e.clock = clk })
	return exp, clk, tt
}

func TestMaxWaitSendsOnTheInjectedClock(t *testing.T) {
	c, obs, cfg := observedRawSetup(t, 1)
	cfg.Batch.Size = 500
	cfg.Batch.MaxWait = time.Second
	exp, clk, tt := fakeClockExporter(t, cfg)
	waitPartitions(t, exp, "otlp_logs", 1)

	require.NoError(t, exp.consumeLogs(context.Background(), seqLogs(0, 3, 0)))
	// Nothing is ready before max_wait on the exporter's clock: no flush,
	// the records are held, the broker saw no produce request.
	require.Zero(t, flushes(t, tt, "max_wait"))
	require.EqualValues(t, 3, exp.pool.PendingRecords())
	clk.Advance(999 * time.Millisecond)
	require.Zero(t, flushes(t, tt, "max_wait"))
	require.Empty(t, seen(obs))
	require.Zero(t, totalRecords(c, "otlp_logs"))

	// The timer fires inside Advance: the batch is handed off at once.
	clk.Advance(time.Millisecond)
	require.EqualValues(t, 1, flushes(t, tt, "max_wait"))
	requireBatchesOf(t, c, obs, 3)
	requireAllInOrder(t, c, "otlp_logs", 3)

	// The next batch's timer starts with its first record.
	clk.Advance(5 * time.Second)
	require.NoError(t, exp.consumeLogs(context.Background(), seqLogs(3, 2, 0)))
	clk.Advance(999 * time.Millisecond)
	require.EqualValues(t, 1, flushes(t, tt, "max_wait"))
	clk.Advance(time.Millisecond)
	require.EqualValues(t, 2, flushes(t, tt, "max_wait"))
	requireBatchesOf(t, c, obs, 3, 2)
	require.NoError(t, exp.stop())
}

func TestFlushWhenSendsTheMatchingBatchAtOnce(t *testing.T) {
	c, obs, cfg := observedRawSetup(t, 1)
	cfg.Batch.Size = 500
	cfg.Batch.MaxWait = time.Second
	cfg.Batch.FlushWhen = []string{`attributes["flush"] == true`}
	exp, clk, tt := fakeClockExporter(t, cfg)
	waitPartitions(t, exp, "otlp_logs", 1)

	// seq 0, 1, 2 (flush), 3: the batch up to and including the match goes
	// without the clock moving; seq 3 opens the next batch.
	ld := seqLogs(0, 4, 0)
	ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(2).Attributes().PutBool("flush", true)
	require.NoError(t, exp.consumeLogs(context.Background(), ld))
	require.EqualValues(t, 1, flushes(t, tt, "trigger"))
	requireBatchesOf(t, c, obs, 3)
	recs := readSeq(t, c, "otlp_logs", 3)
	requireExactlyOnce(t, recs, 3)
	require.EqualValues(t, 1, exp.pool.PendingRecords(), "seq 3 waits for max_wait")

	// A false value does not trigger.
	ld = seqLogs(4, 1, 0)
	ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Attributes().PutBool("flush", false)
	require.NoError(t, exp.consumeLogs(context.Background(), ld))
	require.EqualValues(t, 1, flushes(t, tt, "trigger"))

	clk.Advance(time.Second)
	require.EqualValues(t, 1, flushes(t, tt, "max_wait"))
	requireBatchesOf(t, c, obs, 3, 2)
	requireAllInOrder(t, c, "otlp_logs", 5)
	require.NoError(t, exp.stop())
}

func TestMinDelayHoldsFullBatchesOnTheInjectedClock(t *testing.T) {
	c, obs, cfg := observedRawSetup(t, 1)
	cfg.Batch.Size = 2
	cfg.Batch.MinDelay = time.Second
	cfg.Batch.MaxWait = 5 * time.Second
	exp, clk, tt := fakeClockExporter(t, cfg)
	waitPartitions(t, exp, "otlp_logs", 1)
	ctx := context.Background()

	// Before the first successful send min_delay holds nothing back.
	require.NoError(t, exp.consumeLogs(ctx, seqLogs(0, 2, 0)))
	require.EqualValues(t, 1, flushes(t, tt, "size"))
	waitRecords(t, c, "otlp_logs", 2, 10*time.Second)
	// Released after the exporter told the pool of the send.
	waitFor(t, 10*time.Second, func() bool { return exp.pool.PendingRecords() == 0 }, "first batch released")

	// Full again, but within min_delay of that send: it keeps growing.
	require.NoError(t, exp.consumeLogs(ctx, seqLogs(2, 2, 0)))
	require.NoError(t, exp.consumeLogs(ctx, seqLogs(4, 1, 0)))
	clk.Advance(999 * time.Millisecond)
	require.EqualValues(t, 1, flushes(t, tt, "size"))
	require.Zero(t, flushes(t, tt, "min_delay"))
	require.EqualValues(t, 3, exp.pool.PendingRecords())

	// min_delay passes: a timer sends the grown batch, no add needed.
	clk.Advance(time.Millisecond)
	require.EqualValues(t, 1, flushes(t, tt, "min_delay"))
	requireBatchesOf(t, c, obs, 2, 3)
	requireAllInOrder(t, c, "otlp_logs", 5)
	require.NoError(t, exp.stop())
}

func TestSyncCallDoesNotWaitForMaxWait(t *testing.T) {
	c, obs, cfg := observedRawSetup(t, 1)
	cfg.Delivery = DeliverySync
	cfg.Batch.Size = 500
	cfg.Batch.MaxWait = time.Hour
	exp, _, tt := fakeClockExporter(t, cfg)
	waitPartitions(t, exp, "otlp_logs", 1)

	// The clock never moves: a call returns because its own records were
	// cut when it had added them (reason call), not because a timer fired.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, exp.consumeLogs(ctx, seqLogs(0, 37, 0)))
	require.EqualValues(t, 37, totalRecords(c, "otlp_logs"))
	require.EqualValues(t, 1, flushes(t, tt, "call"))
	require.NoError(t, exp.consumeLogs(ctx, seqLogs(37, 3, 0)))
	require.EqualValues(t, 2, flushes(t, tt, "call"))
	require.Zero(t, flushes(t, tt, "max_wait"))
	requireBatchesOf(t, c, obs, 37, 3)
	requireAllInOrder(t, c, "otlp_logs", 40)
	require.NoError(t, exp.stop())
}
