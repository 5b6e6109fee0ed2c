package metricmsg

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

var now = time.Unix(1_700_000_000, 5)

// testMetrics: two resources; resource 0 has two scopes with a gauge
// "cpu" and a sum "requests" each; resource 1 one scope with "cpu".
func testMetrics() pmetric.Metrics {
	md := pmetric.NewMetrics()
	for r, host := range []string{"node-1", "node-2"} {
		rm := md.ResourceMetrics().AppendEmpty()
		rm.SetSchemaUrl("https://opentelemetry.io/schemas/1.26.0")
		rm.Resource().Attributes().PutStr("host.name", host)
		scopes := 2 - r
		for s := 0; s < scopes; s++ {
			sm := rm.ScopeMetrics().AppendEmpty()
			sm.Scope().SetName("lib" + string(rune('0'+s)))
			sm.Scope().Attributes().PutStr("team", "t"+string(rune('0'+s)))
			g := sm.Metrics().AppendEmpty()
			g.SetName("cpu")
			dp := g.SetEmptyGauge().DataPoints().AppendEmpty()
			dp.SetDoubleValue(0.5)
			dp.SetTimestamp(pcommon.NewTimestampFromTime(now))
			dp.Attributes().PutStr("core", "0")
			if r == 0 {
				m := sm.Metrics().AppendEmpty()
				m.SetName("requests")
				sum := m.SetEmptySum()
				sum.SetIsMonotonic(true)
				sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
				for i := 0; i < 3; i++ {
					dp := sum.DataPoints().AppendEmpty()
					dp.SetIntValue(int64(10 * i))
					dp.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(-time.Minute)))
					dp.SetTimestamp(pcommon.NewTimestampFromTime(now))
				}
			}
		}
	}
	return md
}

func build(t *testing.T, ctx context.Context, opts Options, md pmetric.Metrics) []message.Message {
	t.Helper()
	if opts.Topic == "" {
		opts.Topic = "metrics"
	}
	b, err := NewBuilder(opts)
	require.NoError(t, err)
	msgs, err := b.Append(ctx, nil, md, now)
	require.NoError(t, err)
	return msgs
}

func decode(t *testing.T, v []byte) pmetric.Metrics {
	t.Helper()
	md, err := (&pmetric.ProtoUnmarshaler{}).UnmarshalMetrics(v)
	require.NoError(t, err)
	require.Equal(t, 1, md.ResourceMetrics().Len(), "one ResourceMetrics per message")
	return md
}

func names(md pmetric.Metrics) []string {
	var out []string
	rm := md.ResourceMetrics().At(0)
	for j := 0; j < rm.ScopeMetrics().Len(); j++ {
		ms := rm.ScopeMetrics().At(j).Metrics()
		for k := 0; k < ms.Len(); k++ {
			out = append(out, rm.ScopeMetrics().At(j).Scope().Name()+"/"+ms.At(k).Name())
		}
	}
	return out
}

func TestOneMessagePerResourceByDefault(t *testing.T) {
	md := testMetrics()
	msgs := build(t, context.Background(), Options{}, md)
	require.Len(t, msgs, 2)
	assert.Nil(t, msgs[0].Key)
	assert.Equal(t, message.SignalMetrics, msgs[0].Signal)
	assert.Equal(t, now, msgs[0].Timestamp)
	assert.Equal(t, []string{"lib0/cpu", "lib0/requests", "lib1/cpu", "lib1/requests"}, names(decode(t, msgs[0].Value)))
	assert.Equal(t, []string{"lib0/cpu"}, names(decode(t, msgs[1].Value)))
	points := 0
	for _, m := range msgs {
		points += decode(t, m.Value).DataPointCount()
	}
	assert.Equal(t, md.DataPointCount(), points)
}

func TestGroupedByResourceAndName(t *testing.T) {
	msgs := build(t, context.Background(), Options{KeyFrom: []string{"name"}}, testMetrics())
	require.Len(t, msgs, 3) // (node-1, cpu), (node-1, requests), (node-2, cpu)
	assert.Equal(t, []string{"cpu", "requests", "cpu"}, []string{string(msgs[0].Key), string(msgs[1].Key), string(msgs[2].Key)})
	assert.Equal(t, []string{"lib0/requests", "lib1/requests"}, names(decode(t, msgs[1].Value)))
}

func TestValueIsWhatPdataWrites(t *testing.T) {
	md := testMetrics()
	want := pmetric.NewMetrics()
	src := md.ResourceMetrics().At(1)
	src.CopyTo(want.ResourceMetrics().AppendEmpty())
	for _, enc := range []struct {
		name    string
		marshal func(pmetric.Metrics) ([]byte, error)
	}{
		{EncodingOTLPProto, (&pmetric.ProtoMarshaler{}).MarshalMetrics},
		{EncodingOTLPJSON, (&pmetric.JSONMarshaler{}).MarshalMetrics},
	} {
		msgs := build(t, context.Background(), Options{Encoding: enc.name}, md)
		wantBytes, err := enc.marshal(want)
		require.NoError(t, err)
		assert.Equal(t, string(wantBytes), string(msgs[1].Value), enc.name)
	}
}

func TestFieldPaths(t *testing.T) {
	ctx := client.NewContext(context.Background(), client.Info{
		Metadata: client.NewMetadata(map[string][]string{"x-tenant": {"acme"}}),
	})
	for path, want := range map[string]string{
		"name": "cpu", "resource.host.name": "node-1", "scope.team": "t0", "metadata.x-tenant": "acme",
	} {
		msgs := build(t, ctx, Options{KeyFrom: []string{"resource.missing", path}, HeadersFrom: []string{path, "scope.missing"}}, testMetrics())
		assert.Equal(t, want, string(msgs[0].Key), path)
		assert.Equal(t, []message.Header{{Key: path, Value: []byte(want)}}, msgs[0].Headers, path)
	}
	for path, want := range map[string]string{"resource.host.name": "node-1", "scope.team": "t0", "metadata.x-tenant": "acme"} {
		msgs := build(t, ctx, Options{TopicFrom: path}, testMetrics())
		assert.Equal(t, want, msgs[0].Topic, path)
	}
	_, err := NewBuilder(Options{Topic: "m", KeyFrom: []string{"trace_id"}})
	require.EqualError(t, err, `key_from[0]: invalid field path "trace_id": want one of name, resource.NAME, scope.NAME, metadata.NAME`)
	_, err = NewBuilder(Options{Topic: "m", Encoding: "raw"})
	require.EqualError(t, err, `encoding: unknown encoding "raw", want one of otlp_proto, otlp_json`)
}

// TestStaticHeaders: every metric message carries the static headers after
// the headers_from ones, in name order.
func TestStaticHeaders(t *testing.T) {
	ctx := context.Background()
	static := map[string]string{"source": "metrics", "name": "static"}
	plain := build(t, ctx, Options{HeadersFrom: []string{"name"}}, testMetrics())
	msgs := build(t, ctx, Options{HeadersFrom: []string{"name"}, Headers: static}, testMetrics())
	require.Len(t, msgs, len(plain))
	for i, m := range msgs {
		assert.Equal(t, append(plain[i].Headers[:1:1],
			message.Header{Key: "name", Value: []byte("static")},
			message.Header{Key: "source", Value: []byte("metrics")}), m.Headers)
	}
	msgs = build(t, ctx, Options{Headers: map[string]string{"source": "metrics"}}, testMetrics())
	for _, m := range msgs {
		assert.Equal(t, []message.Header{{Key: "source", Value: []byte("metrics")}}, m.Headers)
	}
	_, err := NewBuilder(Options{Topic: "m", Headers: map[string]string{"": "x"}})
	require.EqualError(t, err, "headers: header name must not be empty")
}

func TestOversizeSplitInOrder(t *testing.T) {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("host.name", "big")
	sm := rm.ScopeMetrics().AppendEmpty()
	for i := 0; i < 200; i++ {
		m := sm.Metrics().AppendEmpty()
		m.SetName("m" + strings.Repeat("x", 300) + string(rune('a'+i%26)) + string(rune('a'+i/26)))
		m.SetEmptyGauge().DataPoints().AppendEmpty().SetIntValue(int64(i))
	}
	for _, enc := range Encodings() {
		const limit = 8_000
		msgs := build(t, context.Background(), Options{Encoding: enc, MaxMessageBytes: limit}, md)
		require.Greater(t, len(msgs), 8, enc)
		var got []int64
		for _, m := range msgs {
			assert.LessOrEqual(t, message.BatchSize([]message.Message{m}), limit)
			var part pmetric.Metrics
			var err error
			if enc == EncodingOTLPJSON {
				part, err = (&pmetric.JSONUnmarshaler{}).UnmarshalMetrics(m.Value)
			} else {
				part, err = (&pmetric.ProtoUnmarshaler{}).UnmarshalMetrics(m.Value)
			}
			require.NoError(t, err)
			ms := part.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics()
			for k := 0; k < ms.Len(); k++ {
				got = append(got, ms.At(k).Gauge().DataPoints().At(0).IntValue())
			}
		}
		require.Len(t, got, 200, enc)
		for i, v := range got {
			require.Equal(t, int64(i), v, "order kept")
		}
	}
	// One metric too large alone stays one message, over the limit.
	msgs := build(t, context.Background(), Options{MaxMessageBytes: 200}, testMetrics())
	assert.Len(t, msgs, 5)
}
