package kafkabatcherexporter

import (
	"context"
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
	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"

	"github.com/kafkabatcher/kafkabatcherexporter/internal/metadata"
	"github.com/kafkabatcher/kafkabatcherexporter/tempstorage"
)

// signalTopics are the default topics of logs, traces and metrics.
var signalTopics = []string{"otlp_logs", "otlp_spans", "otlp_metrics"}

// threePipelines creates the logs, traces and metrics exporters of one
// config through the factory, as the collector does for one component id.
type threePipelines struct {
	logs    exporter.Logs
	traces  exporter.Traces
	metrics exporter.Metrics
}

func newThreePipelines(t *testing.T, cfg *Config, set exporter.Settings) *threePipelines {
	t.Helper()
	f := NewFactory()
	ctx := context.Background()
	var p threePipelines
	var err error
	p.logs, err = f.CreateLogs(ctx, set, cfg)
	require.NoError(t, err)
	p.traces, err = f.CreateTraces(ctx, set, cfg)
	require.NoError(t, err)
	p.metrics, err = f.CreateMetrics(ctx, set, cfg)
	require.NoError(t, err)
	return &p
}

// spansOf is one resource with n spans of one trace.
func spansOf(trace byte, n int) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "checkout")
	ss := rs.ScopeSpans().AppendEmpty()
	for i := 0; i < n; i++ {
		sp := ss.Spans().AppendEmpty()
		sp.SetTraceID(pcommon.TraceID([16]byte{trace, 1}))
		sp.SetSpanID(pcommon.SpanID([8]byte{trace, byte(i), 1}))
		sp.SetName("op")
	}
	return td
}

// gaugesOf is one resource with n gauges of one data point.
func gaugesOf(n int) pmetric.Metrics {
	md := pmetric.NewMetrics()
	sm := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty()
	for i := 0; i < n; i++ {
		m := sm.Metrics().AppendEmpty()
		m.SetName("g")
		m.SetEmptyGauge().DataPoints().AppendEmpty().SetIntValue(int64(i))
	}
	return md
}

func locks(t *testing.T, dir string) []string {
	var found []string
	require.NoError(t, filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.Name() == "LOCK" {
			found = append(found, path)
		}
		return err
	}))
	return found
}

// TestPipelinesShareOneInstance: the three pipelines of one component id
// are one exporter (one temp storage and LOCK); it starts with the first
// pipeline and stops with the last, whatever the order.
func TestPipelinesShareOneInstance(t *testing.T) {
	c := newCluster(t, 2, signalTopics[0], kfake.SeedTopics(2, signalTopics[1:]...))
	cfg := testConfig(t, c.ListenAddrs())
	before := exporters.Len()
	p := newThreePipelines(t, cfg, exportertest.NewNopSettings(metadata.Type))
	require.Equal(t, before+1, exporters.Len(), "one instance for the three pipelines")
	ctx := context.Background()
	host := componenttest.NewNopHost()

	require.NoError(t, p.traces.Start(ctx, host))
	require.NoError(t, p.metrics.Start(ctx, host))
	require.NoError(t, p.logs.Start(ctx, host))
	assert.Len(t, locks(t, cfg.TempStorage.Directory), 1, "one LOCK")
	_, err := tempstorage.OpenStore(cfg.TempStorage.Directory, tempstorage.Options{MaxBytes: 1 << 20, SegmentBytes: 1 << 16})
	require.ErrorIs(t, err, tempstorage.ErrLocked, "the temp storage is held")

	require.NoError(t, p.logs.ConsumeLogs(ctx, logsWithBodies("a", "b")))
	require.NoError(t, p.traces.ConsumeTraces(ctx, spansOf(1, 3)))
	require.NoError(t, p.metrics.ConsumeMetrics(ctx, gaugesOf(4)))
	waitRecords(t, c, "otlp_logs", 2, 10*time.Second)
	waitRecords(t, c, "otlp_spans", 1, 10*time.Second)   // one trace, one message
	waitRecords(t, c, "otlp_metrics", 1, 10*time.Second) // one resource, one message

	// Stopping two pipelines leaves the third working.
	require.NoError(t, p.logs.Shutdown(ctx))
	require.NoError(t, p.traces.Shutdown(ctx))
	require.Equal(t, before+1, exporters.Len())
	require.NoError(t, p.metrics.ConsumeMetrics(ctx, gaugesOf(1)))
	waitRecords(t, c, "otlp_metrics", 2, 10*time.Second)
	_, err = tempstorage.OpenStore(cfg.TempStorage.Directory, tempstorage.Options{MaxBytes: 1 << 20, SegmentBytes: 1 << 16})
	require.ErrorIs(t, err, tempstorage.ErrLocked, "still held while a pipeline runs")

	// The last one stops the instance: the LOCK is free again.
	require.NoError(t, p.metrics.Shutdown(ctx))
	require.Equal(t, before, exporters.Len())
	st, err := tempstorage.OpenStore(cfg.TempStorage.Directory, tempstorage.Options{MaxBytes: 1 << 20, SegmentBytes: 1 << 16})
	require.NoError(t, err)
	require.NoError(t, st.Close())
}

// TestPipelineNeverStartedStopsNothing: the collector shuts down every
// component after a failed start, also those never started; that must not
// stop the instance under a pipeline that runs.
func TestPipelineNeverStartedStopsNothing(t *testing.T) {
	c := newCluster(t, 1, signalTopics[0], kfake.SeedTopics(1, signalTopics[1:]...))
	cfg := testConfig(t, c.ListenAddrs())
	p := newThreePipelines(t, cfg, exportertest.NewNopSettings(metadata.Type))
	ctx := context.Background()
	require.NoError(t, p.logs.Start(ctx, componenttest.NewNopHost()))
	require.NoError(t, p.traces.Shutdown(ctx))
	require.NoError(t, p.metrics.Shutdown(ctx))
	require.NoError(t, p.logs.ConsumeLogs(ctx, logsWithBodies("still running")))
	waitRecords(t, c, "otlp_logs", 1, 10*time.Second)
	require.NoError(t, p.logs.Shutdown(ctx))
	require.NoError(t, p.logs.Shutdown(ctx), "a second shutdown is a no-op")
}

// TestInstancesPerComponentID: two component ids are two instances, each
// with its own temp storage.
func TestInstancesPerComponentID(t *testing.T) {
	c := newCluster(t, 1, signalTopics[0], kfake.SeedTopics(1, signalTopics[1:]...))
	a, b := testConfig(t, c.ListenAddrs()), testConfig(t, c.ListenAddrs())
	before := exporters.Len()
	pa := newThreePipelines(t, a, exportertest.NewNopSettings(metadata.Type))
	pb := newThreePipelines(t, b, exportertest.NewNopSettings(metadata.Type))
	require.Equal(t, before+2, exporters.Len())
	for _, p := range []*threePipelines{pa, pb} {
		require.NoError(t, p.traces.Start(context.Background(), componenttest.NewNopHost()))
	}
	assert.Len(t, locks(t, a.TempStorage.Directory), 1)
	assert.Len(t, locks(t, b.TempStorage.Directory), 1)
	for _, p := range []*threePipelines{pa, pb} {
		require.NoError(t, p.traces.Shutdown(context.Background()))
		require.NoError(t, p.logs.Shutdown(context.Background()))
		require.NoError(t, p.metrics.Shutdown(context.Background()))
	}
	require.Equal(t, before, exporters.Len())
}

// TestStatusReachesEveryPipeline: Kafka unreachable at start is reported to
// each pipeline's host, not only the first one's.
func TestStatusReachesEveryPipeline(t *testing.T) {
	cfg := testConfig(t, []string{"127.0.0.1:1"})
	p := newThreePipelines(t, cfg, exportertest.NewNopSettings(metadata.Type))
	ctx := context.Background()
	hosts := []*statusHost{newStatusHost(), newStatusHost(), newStatusHost()}
	require.NoError(t, p.logs.Start(ctx, hosts[0]))
	require.NoError(t, p.traces.Start(ctx, hosts[1]))
	require.NoError(t, p.metrics.Start(ctx, hosts[2]))
	for i, h := range hosts {
		waitFor(t, 10*time.Second, func() bool { return h.last() == componentstatus.StatusRecoverableError },
			"host %d gets the recoverable error", i)
	}
	for _, s := range []component.Component{p.logs, p.traces, p.metrics} {
		require.NoError(t, s.Shutdown(ctx))
	}
}

// TestSignalLabel: records sent, spilled and rejected carry the signal.
func TestSignalLabel(t *testing.T) {
	c := newCluster(t, 1, signalTopics[0], kfake.SeedTopics(1, signalTopics[1:]...))
	cfg := testConfig(t, c.ListenAddrs())
	cfg.Producer.MaxMessageBytes = 2000
	cfg.Batch.MaxBytes = 2000
	exp, tt := runObserved(t, cfg)
	ctx := context.Background()
	require.NoError(t, exp.consumeLogs(ctx, logsWithBodies("a", "b")))
	require.NoError(t, exp.consumeTraces(ctx, spansOf(1, 2)))
	require.NoError(t, exp.consumeTraces(ctx, spansOf(2, 2)))
	require.NoError(t, exp.consumeMetrics(ctx, gaugesOf(3)))
	// A span too large alone: rejected as oversize, with its signal.
	big := spansOf(3, 1)
	big.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes().PutStr("pad", strings.Repeat("x", 5000))
	require.NoError(t, exp.consumeTraces(ctx, big))
	waitRecords(t, c, "otlp_metrics", 1, 10*time.Second)
	waitRecords(t, c, "otlp_spans", 2, 10*time.Second)
	waitRecords(t, c, "otlp_logs", 2, 10*time.Second)
	bySignal := map[string]int64{}
	waitFor(t, 5*time.Second, func() bool {
		clear(bySignal)
		for set, v := range sumByAttrs(t, tt, "otelcol_kafkabatcher_records_sent") {
			s, _ := set.Value("signal")
			bySignal[s.AsString()] += v
		}
		return bySignal["metrics"] == 1 && bySignal["traces"] == 2 && bySignal["logs"] == 2
	}, "records_sent by signal: %v", bySignal)
	rejected := sumByAttrs(t, tt, "otelcol_kafkabatcher_records_rejected")
	assert.Equal(t, map[attribute.Set]int64{
		attribute.NewSet(attribute.String("reason", "oversize"), attribute.String("signal", "traces")): 1,
	}, rejected)
}

// TestMetadataKeyKeptWhenSpilled: a key and a header derived from client
// metadata travel with the spilled batch and reach Kafka on replay.
func TestMetadataKeyKeptWhenSpilled(t *testing.T) {
	c := newCluster(t, 1, signalTopics[0], kfake.SeedTopics(1, signalTopics[1:]...))
	cfg := testConfig(t, c.ListenAddrs())
	cfg.Traces.KeyFrom = []string{"metadata.x-tenant"}
	cfg.Traces.HeadersFrom = []string{"metadata.x-tenant"}
	cfg.TempStorage.RetryInterval = 50 * time.Millisecond
	exp, tt := runObserved(t, cfg)
	ctx := client.NewContext(context.Background(), client.Info{
		Metadata: client.NewMetadata(map[string][]string{"x-tenant": {"acme"}}),
	})
	// Kafka answers NOT_LEADER past max_attempts: the batch is spilled.
	var spilling atomic.Bool
	spilling.Store(true)
	failProduce(c, kerr.NotLeaderForPartition.Code, func(int32) bool { return spilling.Load() })
	require.NoError(t, exp.consumeTraces(ctx, spansOf(1, 3)))
	waitFor(t, 10*time.Second, func() bool {
		return sumByAttrs(t, tt, "otelcol_kafkabatcher_records_spilled")[attribute.NewSet(attribute.String("signal", "traces"))] == 1
	}, "the span message is spilled, counted as traces")
	spilling.Store(false)
	recs := consumeAll(t, c, "otlp_spans", 1)
	assert.Equal(t, "acme", string(recs[0].Key))
	require.Len(t, recs[0].Headers, 1)
	assert.Equal(t, "metadata.x-tenant", recs[0].Headers[0].Key)
	assert.Equal(t, "acme", string(recs[0].Headers[0].Value))
	td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(recs[0].Value)
	require.NoError(t, err)
	assert.Equal(t, 3, td.SpanCount())
	waitFor(t, 5*time.Second, func() bool {
		return counter(t, tt, "otelcol_kafkabatcher_records_replayed") == 1
	}, "replayed")
	sent := sumByAttrs(t, tt, "otelcol_kafkabatcher_records_sent")
	var traces int64
	for set, v := range sent {
		if s, _ := set.Value("signal"); s.AsString() == "traces" {
			traces += v
		}
	}
	assert.EqualValues(t, 1, traces, "the replayed record is sent as traces")
}

// TestStaticHeadersPerSignal: each pipeline's records reach Kafka with its
// own static headers after its headers_from ones, and the headers count in
// a record's size: a log record that fits producer.max_message_bytes
// alone is rejected as oversize once a static header makes it too large.
func TestStaticHeadersPerSignal(t *testing.T) {
	c := newCluster(t, 1, signalTopics[0], kfake.SeedTopics(1, signalTopics[1:]...))
	cfg := testConfig(t, c.ListenAddrs())
	cfg.Encoding = "raw"
	cfg.HeadersFrom = []string{"resource.service.name"}
	cfg.Headers = map[string]string{"source": "logs", "resource.service.name": "static"}
	cfg.Traces.HeadersFrom = []string{"name"}
	cfg.Traces.Headers = map[string]string{"source": "traces"}
	cfg.Metrics.Headers = map[string]string{"source": "metrics", "pad": strings.Repeat("p", 10)}
	exp, tt := runObserved(t, cfg)
	ctx := context.Background()
	ld := logsWithBodies("a")
	ld.ResourceLogs().At(0).Resource().Attributes().PutStr("service.name", "checkout")
	require.NoError(t, exp.consumeLogs(ctx, ld))
	require.NoError(t, exp.consumeTraces(ctx, spansOf(1, 2)))
	require.NoError(t, exp.consumeMetrics(ctx, gaugesOf(1)))

	headers := func(topic string) [][2]string {
		recs := consumeAll(t, c, topic, 1)
		var hs [][2]string
		for _, h := range recs[0].Headers {
			hs = append(hs, [2]string{h.Key, string(h.Value)})
		}
		return hs
	}
	assert.Equal(t, [][2]string{{"resource.service.name", "checkout"}, {"resource.service.name", "static"}, {"source", "logs"}},
		headers("otlp_logs"))
	assert.Equal(t, [][2]string{{"name", "op"}, {"source", "traces"}}, headers("otlp_spans"))
	assert.Equal(t, [][2]string{{"pad", "pppppppppp"}, {"source", "metrics"}}, headers("otlp_metrics"))
	require.NoError(t, exp.stop())

	// A 900-byte body fits a 1,000-byte record batch; with a 100-byte header
	// it does not.
	c = newCluster(t, 1, signalTopics[0])
	cfg = testConfig(t, c.ListenAddrs())
	cfg.Encoding = "raw"
	cfg.Producer.MaxMessageBytes, cfg.Batch.MaxBytes = 1000, 1000
	cfg.Headers = map[string]string{"pad": strings.Repeat("p", 100)}
	exp, tt = runObserved(t, cfg)
	require.NoError(t, exp.consumeLogs(ctx, logsWithBodies(strings.Repeat("x", 900), "small")))
	waitFor(t, 10*time.Second, func() bool {
		return sumByAttrs(t, tt, "otelcol_kafkabatcher_records_rejected")[attribute.NewSet(
			attribute.String("reason", "oversize"), attribute.String("signal", "logs"))] == 1
	}, "the record with its header is oversize")
	recs := consumeAll(t, c, "otlp_logs", 1)
	assert.Equal(t, "small", string(recs[0].Value))
}
