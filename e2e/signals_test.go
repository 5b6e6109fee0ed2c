//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	_ "google.golang.org/grpc/encoding/gzip" // the otlp_grpc exporter compresses by default

	"github.com/kafkabatcher/kafkabatcherexporter/testbench/realkafka"
)

// The three signals' topics of a round trip.
type signalTopics struct{ logs, traces, metrics string }

// otlpSink is an OTLP gRPC server in the test process: what the collector's
// otlp_grpc exporter sends it is kept, for comparing with what went in.
type otlpSink struct {
	addr    string
	mu      sync.Mutex
	logs    []plog.Logs
	traces  []ptrace.Traces
	metrics []pmetric.Metrics
}

type sinkLogs struct {
	plogotlp.UnimplementedGRPCServer
	s *otlpSink
}

func (x *sinkLogs) Export(_ context.Context, r plogotlp.ExportRequest) (plogotlp.ExportResponse, error) {
	x.s.mu.Lock()
	defer x.s.mu.Unlock()
	ld := plog.NewLogs()
	r.Logs().CopyTo(ld)
	x.s.logs = append(x.s.logs, ld)
	return plogotlp.NewExportResponse(), nil
}

type sinkTraces struct {
	ptraceotlp.UnimplementedGRPCServer
	s *otlpSink
}

func (x *sinkTraces) Export(_ context.Context, r ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	x.s.mu.Lock()
	defer x.s.mu.Unlock()
	td := ptrace.NewTraces()
	r.Traces().CopyTo(td)
	x.s.traces = append(x.s.traces, td)
	return ptraceotlp.NewExportResponse(), nil
}

type sinkMetrics struct {
	pmetricotlp.UnimplementedGRPCServer
	s *otlpSink
}

func (x *sinkMetrics) Export(_ context.Context, r pmetricotlp.ExportRequest) (pmetricotlp.ExportResponse, error) {
	x.s.mu.Lock()
	defer x.s.mu.Unlock()
	md := pmetric.NewMetrics()
	r.Metrics().CopyTo(md)
	x.s.metrics = append(x.s.metrics, md)
	return pmetricotlp.NewExportResponse(), nil
}

func newOTLPSink(t *testing.T) *otlpSink {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &otlpSink{addr: lis.Addr().String()}
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(64 << 20))
	plogotlp.RegisterGRPCServer(srv, &sinkLogs{s: s})
	ptraceotlp.RegisterGRPCServer(srv, &sinkTraces{s: s})
	pmetricotlp.RegisterGRPCServer(srv, &sinkMetrics{s: s})
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return s
}

// received returns what the sink holds as canonical items.
func (s *otlpSink) received() (logs, spans, metrics []string, points int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ld := range s.logs {
		logs = append(logs, logItems(ld)...)
	}
	for _, td := range s.traces {
		spans = append(spans, spanItems(td)...)
	}
	for _, md := range s.metrics {
		metrics = append(metrics, metricItems(md)...)
		points += md.DataPointCount()
	}
	return logs, spans, metrics, points
}

// logItems renders each log record with its resource and scope as OTLP
// JSON: two Logs hold the same records when their sorted items are equal.
func logItems(ld plog.Logs) []string {
	var out []string
	m := &plog.JSONMarshaler{}
	for i := 0; i < ld.ResourceLogs().Len(); i++ {
		rl := ld.ResourceLogs().At(i)
		for j := 0; j < rl.ScopeLogs().Len(); j++ {
			sl := rl.ScopeLogs().At(j)
			for k := 0; k < sl.LogRecords().Len(); k++ {
				one := plog.NewLogs()
				orl := one.ResourceLogs().AppendEmpty()
				rl.Resource().CopyTo(orl.Resource())
				orl.SetSchemaUrl(rl.SchemaUrl())
				osl := orl.ScopeLogs().AppendEmpty()
				sl.Scope().CopyTo(osl.Scope())
				osl.SetSchemaUrl(sl.SchemaUrl())
				sl.LogRecords().At(k).CopyTo(osl.LogRecords().AppendEmpty())
				b, _ := m.MarshalLogs(one)
				out = append(out, string(b))
			}
		}
	}
	return out
}

// spanItems is logItems for spans.
func spanItems(td ptrace.Traces) []string {
	var out []string
	m := &ptrace.JSONMarshaler{}
	for i := 0; i < td.ResourceSpans().Len(); i++ {
		rs := td.ResourceSpans().At(i)
		for j := 0; j < rs.ScopeSpans().Len(); j++ {
			ss := rs.ScopeSpans().At(j)
			for k := 0; k < ss.Spans().Len(); k++ {
				one := ptrace.NewTraces()
				ors := one.ResourceSpans().AppendEmpty()
				rs.Resource().CopyTo(ors.Resource())
				ors.SetSchemaUrl(rs.SchemaUrl())
				oss := ors.ScopeSpans().AppendEmpty()
				ss.Scope().CopyTo(oss.Scope())
				oss.SetSchemaUrl(ss.SchemaUrl())
				ss.Spans().At(k).CopyTo(oss.Spans().AppendEmpty())
				b, _ := m.MarshalTraces(one)
				out = append(out, string(b))
			}
		}
	}
	return out
}

// metricItems is logItems for metrics, each with all its data points.
func metricItems(md pmetric.Metrics) []string {
	var out []string
	m := &pmetric.JSONMarshaler{}
	for i := 0; i < md.ResourceMetrics().Len(); i++ {
		rm := md.ResourceMetrics().At(i)
		for j := 0; j < rm.ScopeMetrics().Len(); j++ {
			sm := rm.ScopeMetrics().At(j)
			for k := 0; k < sm.Metrics().Len(); k++ {
				one := pmetric.NewMetrics()
				orm := one.ResourceMetrics().AppendEmpty()
				rm.Resource().CopyTo(orm.Resource())
				orm.SetSchemaUrl(rm.SchemaUrl())
				osm := orm.ScopeMetrics().AppendEmpty()
				sm.Scope().CopyTo(osm.Scope())
				osm.SetSchemaUrl(sm.SchemaUrl())
				sm.Metrics().At(k).CopyTo(osm.Metrics().AppendEmpty())
				b, _ := m.MarshalMetrics(one)
				out = append(out, string(b))
			}
		}
	}
	return out
}

var t0 = time.Date(2026, 12, 1, 8, 0, 0, 123456789, time.UTC)

func ts(d time.Duration) pcommon.Timestamp { return pcommon.NewTimestampFromTime(t0.Add(d)) }

// putRich puts attributes of every value type into m.
func putRich(m pcommon.Map, seq int) {
	m.PutStr("seq", strconv.Itoa(seq))
	m.PutInt("n", int64(seq))
	m.PutDouble("ratio", float64(seq)/7)
	m.PutBool("even", seq%2 == 0)
	m.PutEmptyBytes("raw").FromRaw([]byte{byte(seq), 0xff, 0})
	kv := m.PutEmptyMap("kv")
	kv.PutStr("a", "ünï "+strconv.Itoa(seq))
	kv.PutEmptySlice("s").AppendEmpty().SetInt(int64(seq))
	m.PutEmptySlice("list").FromRaw([]any{"x", int64(seq), 1.5, true})
}

func resourceOf(m pcommon.Resource, r int) {
	m.Attributes().PutStr("service.name", "e2e-"+strconv.Itoa(r))
	m.Attributes().PutStr("host.name", "node-"+strconv.Itoa(r))
	m.SetDroppedAttributesCount(uint32(r))
}

func scopeOf(s pcommon.InstrumentationScope, j int) {
	s.SetName("lib-" + strconv.Itoa(j))
	s.SetVersion("1." + strconv.Itoa(j))
	s.Attributes().PutStr("team", "t"+strconv.Itoa(j))
}

// richLogs are n records numbered from first over two resources and two scopes.
func richLogs(first, n int) plog.Logs {
	ld := plog.NewLogs()
	seq := first
	for r := 0; r < 2; r++ {
		rl := ld.ResourceLogs().AppendEmpty()
		rl.SetSchemaUrl("https://opentelemetry.io/schemas/1.26.0")
		resourceOf(rl.Resource(), r)
		for j := 0; j < 2; j++ {
			sl := rl.ScopeLogs().AppendEmpty()
			scopeOf(sl.Scope(), j)
			for k := 0; k < n/4; k++ {
				lr := sl.LogRecords().AppendEmpty()
				lr.SetTimestamp(ts(time.Duration(seq) * time.Millisecond))
				lr.SetObservedTimestamp(ts(time.Duration(seq)*time.Millisecond + 1))
				lr.SetSeverityNumber(plog.SeverityNumberWarn)
				lr.SetSeverityText("WARN")
				lr.SetEventName("e2e.event")
				lr.Body().SetStr("record " + strconv.Itoa(seq))
				putRich(lr.Attributes(), seq)
				lr.SetTraceID(pcommon.TraceID([16]byte{1, byte(seq >> 8), byte(seq), 9}))
				lr.SetSpanID(pcommon.SpanID([8]byte{2, byte(seq >> 8), byte(seq)}))
				lr.SetFlags(plog.DefaultLogRecordFlags.WithIsSampled(true))
				seq++
			}
		}
	}
	return ld
}

// richTraces are n spans numbered from first, in traces of 5 spans, over two
// resources and two scopes.
func richTraces(first, n int) ptrace.Traces {
	td := ptrace.NewTraces()
	seq := first
	for r := 0; r < 2; r++ {
		rs := td.ResourceSpans().AppendEmpty()
		rs.SetSchemaUrl("https://opentelemetry.io/schemas/1.26.0")
		resourceOf(rs.Resource(), r)
		for j := 0; j < 2; j++ {
			ss := rs.ScopeSpans().AppendEmpty()
			scopeOf(ss.Scope(), j)
			for k := 0; k < n/4; k++ {
				sp := ss.Spans().AppendEmpty()
				trace := seq / 5
				sp.SetTraceID(pcommon.TraceID([16]byte{3, byte(trace >> 16), byte(trace >> 8), byte(trace), 7}))
				sp.SetSpanID(pcommon.SpanID([8]byte{4, byte(seq >> 16), byte(seq >> 8), byte(seq), 1}))
				sp.SetParentSpanID(pcommon.SpanID([8]byte{4, 0, 0, 0, 2}))
				sp.TraceState().FromRaw("vendor=e2e")
				sp.SetName("op " + strconv.Itoa(seq))
				sp.SetKind(ptrace.SpanKindServer)
				sp.SetStartTimestamp(ts(time.Duration(seq) * time.Millisecond))
				sp.SetEndTimestamp(ts(time.Duration(seq)*time.Millisecond + 5*time.Microsecond))
				putRich(sp.Attributes(), seq)
				ev := sp.Events().AppendEmpty()
				ev.SetName("ev")
				ev.SetTimestamp(ts(time.Duration(seq)*time.Millisecond + time.Microsecond))
				ev.Attributes().PutInt("seq", int64(seq))
				ln := sp.Links().AppendEmpty()
				ln.SetTraceID(pcommon.TraceID([16]byte{5, byte(seq)}))
				ln.SetSpanID(pcommon.SpanID([8]byte{6, byte(seq)}))
				sp.Status().SetCode(ptrace.StatusCodeError)
				sp.Status().SetMessage("failed " + strconv.Itoa(seq))
				seq++
			}
		}
	}
	return td
}

// richMetrics are n metrics numbered from first (gauges, sums, histograms,
// exponential histograms and summaries, three data points each) over two
// resources and two scopes.
func richMetrics(first, n int) pmetric.Metrics {
	md := pmetric.NewMetrics()
	seq := first
	for r := 0; r < 2; r++ {
		rm := md.ResourceMetrics().AppendEmpty()
		rm.SetSchemaUrl("https://opentelemetry.io/schemas/1.26.0")
		resourceOf(rm.Resource(), r)
		for j := 0; j < 2; j++ {
			sm := rm.ScopeMetrics().AppendEmpty()
			scopeOf(sm.Scope(), j)
			for k := 0; k < n/4; k++ {
				m := sm.Metrics().AppendEmpty()
				m.SetName("metric." + strconv.Itoa(seq))
				m.SetDescription("e2e metric")
				m.SetUnit("{x}")
				for p := 0; p < 3; p++ {
					start, at := ts(time.Duration(seq)*time.Second), ts(time.Duration(seq)*time.Second+time.Duration(p+1)*time.Millisecond)
					var attrs pcommon.Map
					switch seq % 5 {
					case 0:
						if p == 0 {
							m.SetEmptyGauge()
						}
						dp := m.Gauge().DataPoints().AppendEmpty()
						dp.SetDoubleValue(float64(seq) + 0.25)
						dp.SetTimestamp(at)
						attrs = dp.Attributes()
						ex := dp.Exemplars().AppendEmpty()
						ex.SetIntValue(int64(seq))
						ex.SetTimestamp(at)
						ex.SetTraceID(pcommon.TraceID([16]byte{8, byte(seq)}))
					case 1:
						if p == 0 {
							m.SetEmptySum().SetIsMonotonic(true)
							m.Sum().SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
						}
						dp := m.Sum().DataPoints().AppendEmpty()
						dp.SetIntValue(int64(seq * 10))
						dp.SetStartTimestamp(start)
						dp.SetTimestamp(at)
						attrs = dp.Attributes()
					case 2:
						if p == 0 {
							m.SetEmptyHistogram().SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
						}
						dp := m.Histogram().DataPoints().AppendEmpty()
						dp.SetCount(6)
						dp.SetSum(12.5)
						dp.SetMin(0.5)
						dp.SetMax(4)
						dp.ExplicitBounds().FromRaw([]float64{1, 2, 5})
						dp.BucketCounts().FromRaw([]uint64{1, 2, 3, 0})
						dp.SetStartTimestamp(start)
						dp.SetTimestamp(at)
						attrs = dp.Attributes()
					case 3:
						if p == 0 {
							m.SetEmptyExponentialHistogram().SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
						}
						dp := m.ExponentialHistogram().DataPoints().AppendEmpty()
						dp.SetScale(2)
						dp.SetCount(5)
						dp.SetSum(9)
						dp.SetZeroCount(1)
						dp.Positive().SetOffset(1)
						dp.Positive().BucketCounts().FromRaw([]uint64{1, 2, 1})
						dp.SetStartTimestamp(start)
						dp.SetTimestamp(at)
						attrs = dp.Attributes()
					default:
						if p == 0 {
							m.SetEmptySummary()
						}
						dp := m.Summary().DataPoints().AppendEmpty()
						dp.SetCount(4)
						dp.SetSum(10)
						q := dp.QuantileValues().AppendEmpty()
						q.SetQuantile(0.5)
						q.SetValue(2.5)
						dp.SetStartTimestamp(start)
						dp.SetTimestamp(at)
						attrs = dp.Attributes()
					}
					putRich(attrs, seq*10+p)
				}
				seq++
			}
		}
	}
	return md
}

// otlpClients send the three signals to one collector.
type otlpClients struct {
	logs    plogotlp.GRPCClient
	traces  ptraceotlp.GRPCClient
	metrics pmetricotlp.GRPCClient
}

func dialSignals(t *testing.T, endpoint string) *otlpClients {
	t.Helper()
	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &otlpClients{plogotlp.NewGRPCClient(conn), ptraceotlp.NewGRPCClient(conn), pmetricotlp.NewGRPCClient(conn)}
}

// exportRetrying exports until the collector accepts, as an OTLP client
// with retries does: a retryable refusal is not a loss.
func exportRetrying(t *testing.T, what string, export func(ctx context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), exportTimeout)
		err := export(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (c *otlpClients) sendLogs(t *testing.T, ld plog.Logs) {
	exportRetrying(t, "export logs", func(ctx context.Context) error {
		_, err := c.logs.Export(ctx, plogotlp.NewExportRequestFromLogs(ld))
		return err
	})
}

func (c *otlpClients) sendTraces(t *testing.T, td ptrace.Traces) {
	exportRetrying(t, "export traces", func(ctx context.Context) error {
		_, err := c.traces.Export(ctx, ptraceotlp.NewExportRequestFromTraces(td))
		return err
	})
}

func (c *otlpClients) sendMetrics(t *testing.T, md pmetric.Metrics) {
	exportRetrying(t, "export metrics", func(ctx context.Context) error {
		_, err := c.metrics.Export(ctx, pmetricotlp.NewExportRequestFromMetrics(md))
		return err
	})
}

// signalsConfig is a collector with kafkabatcher in three pipelines writing
// the topics in encoding enc.
func (e *env) signalsConfig(brokers []string, topics signalTopics, enc string) *cfg {
	c := e.newConfig(brokers[0])
	c.set("brokers", brokers)
	c.set("topic", topics.logs)
	c.set("encoding", enc)
	c.set("key_from", []string{"trace_id"})
	c.set("traces", map[string]any{"topic": topics.traces, "encoding": enc})
	c.set("metrics", map[string]any{"topic": topics.metrics, "encoding": enc, "key_from": []string{"name"}})
	c.signals = []string{"logs", "traces", "metrics"}
	return c
}

// readBack adds to c the contrib kafka receiver on the three topics
// (decoding enc) and an OTLP exporter to sink, in pipelines of their own.
func (c *cfg) readBack(brokers []string, topics signalTopics, enc string, sink *otlpSink) {
	c.receivers = map[string]any{"kafka": map[string]any{
		"brokers":        brokers,
		"group_id":       fmt.Sprintf("e2e-%d", time.Now().UnixNano()),
		"initial_offset": "earliest",
		"logs":           map[string]any{"topics": []string{topics.logs}, "encoding": enc},
		"traces":         map[string]any{"topics": []string{topics.traces}, "encoding": enc},
		"metrics":        map[string]any{"topics": []string{topics.metrics}, "encoding": enc},
	}}
	c.exporters = map[string]any{"otlp_grpc": map[string]any{
		"endpoint": sink.addr, "tls": map[string]any{"insecure": true},
		"sending_queue": map[string]any{"enabled": false},
	}}
	c.pipelines = map[string]any{}
	for _, s := range []string{"logs", "traces", "metrics"} {
		c.pipelines[s+"/readback"] = map[string]any{"receivers": []string{"kafka"}, "exporters": []string{"otlp_grpc"}}
	}
}

// roundTrip sends rich logs, spans and metrics through a collector whose
// kafkabatcher writes them to Kafka in enc and whose kafka receiver reads
// them back; what the sink receives must equal what was sent. tweaks change
// the collector's config before it starts.
func roundTrip(t *testing.T, e *env, brokers []string, topics signalTopics, enc string, tweaks ...func(*cfg)) {
	sink := newOTLPSink(t)
	conf := e.signalsConfig(brokers, topics, enc)
	conf.readBack(brokers, topics, enc, sink)
	for _, tweak := range tweaks {
		tweak(conf)
	}
	col := e.startCollector(conf)
	cl := dialSignals(t, col.otlp)

	const calls, per = 10, 400
	var wantLogs, wantSpans, wantMetrics []string
	wantPoints := 0
	for i := 0; i < calls; i++ {
		ld, td, md := richLogs(i*per, per), richTraces(i*per, per), richMetrics(i*per/10, per/10)
		wantLogs = append(wantLogs, logItems(ld)...)
		wantSpans = append(wantSpans, spanItems(td)...)
		wantMetrics = append(wantMetrics, metricItems(md)...)
		wantPoints += md.DataPointCount()
		cl.sendLogs(t, ld)
		cl.sendTraces(t, td)
		cl.sendMetrics(t, md)
	}
	deadline := time.Now().Add(90 * time.Second)
	var logs, spans, metrics []string
	var points int
	for {
		logs, spans, metrics, points = sink.received()
		if len(logs) >= len(wantLogs) && len(spans) >= len(wantSpans) && len(metrics) >= len(wantMetrics) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(time.Second) // duplicates, if any, show too
	logs, spans, metrics, points = sink.received()
	t.Logf("%s: log records sent %d, arrived %d; spans sent %d, arrived %d; metrics sent %d, arrived %d; data points sent %d, arrived %d",
		enc, len(wantLogs), len(logs), len(wantSpans), len(spans), len(wantMetrics), len(metrics), wantPoints, points)
	sameItems(t, "log records", wantLogs, logs)
	sameItems(t, "spans", wantSpans, spans)
	sameItems(t, "metrics", wantMetrics, metrics)
	if points != wantPoints {
		t.Errorf("data points: sent %d, arrived %d", wantPoints, points)
	}
}

// sameItems compares sent and arrived as multisets.
func sameItems(t *testing.T, what string, sent, arrived []string) {
	t.Helper()
	a, b := slices.Clone(sent), slices.Clone(arrived)
	slices.Sort(a)
	slices.Sort(b)
	if slices.Equal(a, b) {
		return
	}
	t.Errorf("%s: sent %d, arrived %d, not the same", what, len(a), len(b))
	for i := 0; i < min(len(a), len(b)); i++ {
		if a[i] != b[i] {
			t.Errorf("first difference:\nsent    %.600s\narrived %.600s", a[i], b[i])
			return
		}
	}
}

// TestRoundTripAllSignals: OTLP in -> kafkabatcher (logs, traces and
// metrics pipelines of one instance) -> devbroker -> contrib kafka receiver
// -> OTLP out, in both OTLP encodings: what comes out is what went in.
func TestRoundTripAllSignals(t *testing.T) {
	for _, enc := range []string{"otlp_proto", "otlp_json"} {
		t.Run(enc, func(t *testing.T) {
			e := newEnv(t)
			topics := signalTopics{"rt_logs", "rt_spans", "rt_metrics"}
			b := e.startBrokerTopics(freePort(t), topics.logs+":3", topics.traces+":3", topics.metrics+":3")
			roundTrip(t, e, []string{b.addr}, topics, enc)
		})
	}
}

// TestRealKafkaRoundTripAllSignals is TestRoundTripAllSignals on a
// one-node Apache Kafka 4.4.
func TestRealKafkaRoundTripAllSignals(t *testing.T) {
	c := sharedCluster(t, realkafka.Options{Nodes: 1})
	for _, enc := range []string{"otlp_proto", "otlp_json"} {
		t.Run(enc, func(t *testing.T) {
			e := newEnv(t)
			topics := signalTopics{newTopic(t, c, 3, nil), newTopic(t, c, 3, nil), newTopic(t, c, 3, nil)}
			roundTrip(t, e, c.Bootstrap(), topics, enc)
		})
	}
}
