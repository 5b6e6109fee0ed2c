package kafkabatcherexporter

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/kafkabatcher/kafkabatcherexporter/internal/metadatatest"
)

// keyFor returns a key that murmur2 places on partition p of n.
func keyFor(t *testing.T, p, n int32) string {
	t.Helper()
	for i := 0; i < 1000; i++ {
		k := fmt.Sprintf("key-%d", i)
		if javaMurmur2Partition([]byte(k), n) == p {
			return k
		}
	}
	t.Fatalf("no key for partition %d of %d", p, n)
	return ""
}

// keyedLogs builds records seq first.. with attribute k = key; flushLast
// sets flush = true on the last one.
func keyedLogs(first, n int, key string, flushLast bool) plog.Logs {
	ld := seqLogs(first, n, 0)
	lrs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	for i := 0; i < lrs.Len(); i++ {
		lrs.At(i).Attributes().PutStr("k", key)
	}
	if flushLast {
		lrs.At(lrs.Len()-1).Attributes().PutBool("flush", true)
	}
	return ld
}

func partSet(topic string, partition int, alias string) attribute.Set {
	return attribute.NewSet(
		attribute.String("topic", topic),
		attribute.Int("partition", partition),
		attribute.String("topic_alias", alias),
	)
}

// withSignal is set with the signal label added.
func withSignal(set attribute.Set, signal string) attribute.Set {
	return attribute.NewSet(append(set.ToSlice(), attribute.String("signal", signal))...)
}

// histogramByAttrs returns the count and sum of an int64 histogram per
// attribute set.
func histogramByAttrs(t *testing.T, tt *componenttest.Telemetry, name string) map[attribute.Set][2]int64 {
	t.Helper()
	m, err := tt.GetMetric(name)
	require.NoError(t, err)
	h, ok := m.Data.(metricdata.Histogram[int64])
	require.True(t, ok, "%s is %T", name, m.Data)
	out := map[attribute.Set][2]int64{}
	for _, dp := range h.DataPoints {
		out[dp.Attributes] = [2]int64{int64(dp.Count), dp.Sum}
	}
	return out
}

func TestTelemetryCountsSendsFlushesAndRejects(t *testing.T) {
	c, obs, cfg := observedRawSetup(t, 2)
	cfg.KeyFrom = []string{"attributes.k"}
	cfg.TopicAliases = map[string]string{"otlp_logs": "logs"}
	cfg.Batch.Size = 10
	cfg.Batch.MaxWait = time.Second
	cfg.Batch.FlushWhen = []string{`attributes["flush"] == true`}
	cfg.Producer.MaxMessageBytes = 2000
	cfg.Batch.MaxBytes = 2000
	exp, clk, tt := fakeClockExporter(t, cfg)
	waitPartitions(t, exp, "otlp_logs", 2)
	k0, k1 := keyFor(t, 0, 2), keyFor(t, 1, 2)
	ctx := context.Background()

	// Partition 0: one batch by size (10).
	require.NoError(t, exp.consumeLogs(ctx, keyedLogs(0, 10, k0, false)))
	// Partition 1: one batch by max_wait (3), one by trigger (2).
	require.NoError(t, exp.consumeLogs(ctx, keyedLogs(10, 3, k1, false)))
	clk.Advance(time.Second)
	require.NoError(t, exp.consumeLogs(ctx, keyedLogs(13, 2, k1, true)))
	// One record too large for any batch: rejected, the call succeeds.
	big := keyedLogs(15, 1, k0, false)
	big.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Body().SetStr(strings.Repeat("x", 5000))
	require.NoError(t, exp.consumeLogs(ctx, big))

	waitRecords(t, c, "otlp_logs", 15, 10*time.Second)
	waitFor(t, 10*time.Second, func() bool {
		var n int64
		for _, v := range sumByAttrs(t, tt, "otelcol_kafkabatcher_records_sent") {
			n += v
		}
		return n == 15 && exp.pool.PendingRecords() == 0
	}, "records_sent reaches 15 and every batch is released")

	p0, p1 := partSet("otlp_logs", 0, "logs"), partSet("otlp_logs", 1, "logs")
	metadatatest.AssertEqualKafkabatcherRecordsSent(t, tt, []metricdata.DataPoint[int64]{
		{Attributes: withSignal(p0, "logs"), Value: 10},
		{Attributes: withSignal(p1, "logs"), Value: 5},
	}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualKafkabatcherFlushes(t, tt, []metricdata.DataPoint[int64]{
		{Attributes: reasonSet("size"), Value: 1},
		{Attributes: reasonSet("max_wait"), Value: 1},
		{Attributes: reasonSet("trigger"), Value: 1},
	}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualKafkabatcherRecordsRejected(t, tt, []metricdata.DataPoint[int64]{
		{Attributes: withSignal(reasonSet("oversize"), "logs"), Value: 1},
	}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualKafkabatcherPendingRecords(t, tt, []metricdata.DataPoint[int64]{
		{Value: 0},
	}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualKafkabatcherTempStorageBytes(t, tt, []metricdata.DataPoint[int64]{
		{Value: 0},
	}, metricdatatest.IgnoreTimestamp())

	require.Equal(t, map[attribute.Set][2]int64{p0: {1, 10}, p1: {2, 5}},
		histogramByAttrs(t, tt, "otelcol_kafkabatcher_batch_records"), "records per batch: count, sum")

	// Bytes per batch are the record batches as the broker received them.
	wantBytes := map[attribute.Set][2]int64{}
	for _, b := range obs.Batches() {
		s := partSet(b.Topic, int(b.Partition), "logs")
		v := wantBytes[s]
		wantBytes[s] = [2]int64{v[0] + 1, v[1] + int64(b.Bytes)}
	}
	require.Equal(t, wantBytes, histogramByAttrs(t, tt, "otelcol_kafkabatcher_batch_bytes"))

	m, err := tt.GetMetric("otelcol_kafkabatcher_produce_duration")
	require.NoError(t, err)
	var durations uint64
	for _, dp := range m.Data.(metricdata.Histogram[float64]).DataPoints {
		durations += dp.Count
	}
	require.EqualValues(t, 3, durations, "one produce duration per batch")

	// Delivery latency on the exporter's (fake) clock: one per batch;
	// partition 1's max_wait batch waited the second the clock moved, its
	// trigger batch opened after that, so none of its time passed.
	lat := latencies(t, tt)
	require.EqualValues(t, 1, lat[p0].Count)
	require.EqualValues(t, 2, lat[p1].Count)
	require.InDelta(t, 1.0, lat[p1].Sum, 1e-9)
	require.NoError(t, exp.stop())
}

// latencies returns the delivery latency data points per attribute set
// (empty when nothing was recorded yet).
func latencies(t *testing.T, tt *componenttest.Telemetry) map[attribute.Set]metricdata.HistogramDataPoint[float64] {
	t.Helper()
	out := map[attribute.Set]metricdata.HistogramDataPoint[float64]{}
	m, err := tt.GetMetric("otelcol_kafkabatcher_delivery_latency")
	if err != nil {
		return out // not recorded yet
	}
	h, ok := m.Data.(metricdata.Histogram[float64])
	require.True(t, ok, "delivery latency is %T", m.Data)
	for _, dp := range h.DataPoints {
		out[dp.Attributes] = dp
	}
	return out
}

// latencyCount is the number of batches in the delivery latency histogram.
func latencyCount(t *testing.T, tt *componenttest.Telemetry) uint64 {
	var n uint64
	for _, dp := range latencies(t, tt) {
		n += dp.Count
	}
	return n
}

// Under async delivery ConsumeLogs returns before Kafka's ack; the delivery
// latency histogram still covers the whole wait, one value per batch sent.
func TestDeliveryLatencyFromAcceptToAck(t *testing.T) {
	c, obs, cfg := observedRawSetup(t, 2)
	cfg.KeyFrom = []string{"attributes.k"}
	cfg.Batch.Size = 10
	cfg.Batch.MaxWait = 50 * time.Millisecond
	require.Equal(t, DeliveryAsync, cfg.Delivery)
	exp, tt := runObserved(t, cfg)
	waitPartitions(t, exp, "otlp_logs", 2)
	k0, k1 := keyFor(t, 0, 2), keyFor(t, 1, 2)
	p0, p1 := partSet("otlp_logs", 0, "otlp_logs"), partSet("otlp_logs", 1, "otlp_logs")
	ctx := context.Background()

	// A single record waits max_wait in its accumulator, then for the ack.
	require.NoError(t, exp.consumeLogs(ctx, keyedLogs(0, 1, k0, false)))
	waitFor(t, 10*time.Second, func() bool { return latencyCount(t, tt) == 1 }, "one latency recorded")
	dp := latencies(t, tt)[p0]
	require.EqualValues(t, 1, dp.Count)
	require.GreaterOrEqual(t, dp.Sum, 0.05, "latency of a lone record covers max_wait")

	// Partition 1: two batches by size and one by max_wait; partition 0:
	// one by size and one by max_wait.
	require.NoError(t, exp.consumeLogs(ctx, keyedLogs(1, 25, k1, false)))
	require.NoError(t, exp.consumeLogs(ctx, keyedLogs(26, 12, k0, false)))
	waitRecords(t, c, "otlp_logs", 38, 10*time.Second)
	waitFor(t, 10*time.Second, func() bool {
		return latencyCount(t, tt) == uint64(len(seen(obs)))
	}, "a latency per batch the broker received (%d, have %d)", len(seen(obs)), latencyCount(t, tt))

	perPart := map[attribute.Set]uint64{}
	for _, b := range seen(obs) {
		perPart[partSet(b.Topic, int(b.Partition), "otlp_logs")]++
	}
	require.Equal(t, map[attribute.Set]uint64{p0: 3, p1: 3}, perPart, "batches at the broker")
	got := map[attribute.Set]uint64{}
	for s, dp := range latencies(t, tt) {
		got[s] = dp.Count
	}
	require.Equal(t, perPart, got, "one latency per batch sent")
	require.NoError(t, exp.stop())
}
