package spanmsg

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/kafkabatcher/kafkabatcherexporter/internal/ottlcond"
	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

var (
	traceA = pcommon.TraceID([16]byte{0xa, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
	traceB = pcommon.TraceID([16]byte{0xb, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
	start  = pcommon.NewTimestampFromTime(time.Unix(1_700_000_000, 123456789))
)

// testTraces: two resources; resource 0 has two scopes, spans of traces A
// and B interleaved; resource 1 has one scope with a span of trace A.
func testTraces() ptrace.Traces {
	td := ptrace.NewTraces()
	for r, svc := range []string{"checkout", "billing"} {
		rs := td.ResourceSpans().AppendEmpty()
		rs.SetSchemaUrl("https://opentelemetry.io/schemas/1.26.0")
		rs.Resource().Attributes().PutStr("service.name", svc)
		scopes := 2
		if r == 1 {
			scopes = 1
		}
		for s := 0; s < scopes; s++ {
			ss := rs.ScopeSpans().AppendEmpty()
			ss.Scope().SetName("lib" + string(rune('0'+s)))
			ss.Scope().SetVersion("1.0")
			ss.Scope().Attributes().PutStr("team", "t"+string(rune('0'+s)))
			for i, tid := range []pcommon.TraceID{traceA, traceB, traceA} {
				if r == 1 && tid == traceB {
					continue
				}
				sp := ss.Spans().AppendEmpty()
				sp.SetTraceID(tid)
				sp.SetSpanID(pcommon.SpanID([8]byte{byte(r), byte(s), byte(i), 0, 0, 0, 0, 1}))
				sp.SetName("op" + string(rune('0'+i)))
				sp.SetStartTimestamp(start + pcommon.Timestamp(i))
				sp.SetEndTimestamp(start + pcommon.Timestamp(1000+i))
				sp.Attributes().PutStr("user", "u"+string(rune('0'+i)))
				sp.Attributes().PutInt("n", int64(i))
			}
		}
	}
	return td
}

func build(t *testing.T, opts Options, td ptrace.Traces) []message.Message {
	t.Helper()
	if opts.Topic == "" {
		opts.Topic = "spans"
	}
	b, err := NewBuilder(opts, ottlNop())
	require.NoError(t, err)
	msgs, err := b.Append(context.Background(), nil, td, time.Unix(1, 0))
	require.NoError(t, err)
	return msgs
}

func decode(t *testing.T, v []byte) ptrace.Traces {
	t.Helper()
	var u ptrace.ProtoUnmarshaler
	td, err := u.UnmarshalTraces(v)
	require.NoError(t, err)
	return td
}

// spanNames lists the names of the spans of td as resource/scope/span.
func spanIDs(td ptrace.Traces) []string {
	var out []string
	for i := 0; i < td.ResourceSpans().Len(); i++ {
		rs := td.ResourceSpans().At(i)
		for j := 0; j < rs.ScopeSpans().Len(); j++ {
			ss := rs.ScopeSpans().At(j)
			for k := 0; k < ss.Spans().Len(); k++ {
				out = append(out, ss.Spans().At(k).SpanID().String())
			}
		}
	}
	return out
}

func TestGroupedByResourceAndTraceID(t *testing.T) {
	td := testTraces()
	msgs := build(t, Options{KeyFrom: DefaultKeyFrom()}, td)
	// resource 0: trace A, trace B; resource 1: trace A.
	require.Len(t, msgs, 3)
	wantKeys := []string{traceA.String(), traceB.String(), traceA.String()}
	total := 0
	for i, m := range msgs {
		assert.Equal(t, wantKeys[i], string(m.Key))
		assert.Equal(t, "spans", m.Topic)
		assert.Equal(t, message.SignalTraces, m.Signal)
		got := decode(t, m.Value)
		require.Equal(t, 1, got.ResourceSpans().Len(), "one ResourceSpans per message")
		rs := got.ResourceSpans().At(0)
		assert.Equal(t, "https://opentelemetry.io/schemas/1.26.0", rs.SchemaUrl())
		for j := 0; j < rs.ScopeSpans().Len(); j++ {
			for k := 0; k < rs.ScopeSpans().At(j).Spans().Len(); k++ {
				assert.Equal(t, wantKeys[i], rs.ScopeSpans().At(j).Spans().At(k).TraceID().String())
			}
		}
		total += got.SpanCount()
	}
	assert.Equal(t, td.SpanCount(), total)
	// Message 0 holds trace A of resource 0: two spans in each of two scopes, in order.
	first := decode(t, msgs[0].Value)
	rs := first.ResourceSpans().At(0)
	v, _ := rs.Resource().Attributes().Get("service.name")
	assert.Equal(t, "checkout", v.Str())
	require.Equal(t, 2, rs.ScopeSpans().Len())
	assert.Equal(t, "lib1", rs.ScopeSpans().At(1).Scope().Name())
	assert.Equal(t, []string{"0000000000000001", "0000020000000001", "0001000000000001", "0001020000000001"}, spanIDs(first))
	// The timestamp is the first span's start time.
	assert.Equal(t, start.AsTime(), msgs[0].Timestamp)
	assert.Equal(t, (start + 1).AsTime(), msgs[1].Timestamp)
}

// TestValueIsWhatPdataWrites: the value is byte for byte what ptrace's
// marshalers write for the message's TracesData.
func TestValueIsWhatPdataWrites(t *testing.T) {
	td := testTraces()
	// What message 1 (trace B of resource 0) must hold.
	want := ptrace.NewTraces()
	src := td.ResourceSpans().At(0)
	rs := want.ResourceSpans().AppendEmpty()
	src.Resource().CopyTo(rs.Resource())
	rs.SetSchemaUrl(src.SchemaUrl())
	for j := 0; j < 2; j++ {
		ss := rs.ScopeSpans().AppendEmpty()
		src.ScopeSpans().At(j).Scope().CopyTo(ss.Scope())
		src.ScopeSpans().At(j).Spans().At(1).CopyTo(ss.Spans().AppendEmpty())
	}
	for _, enc := range []struct {
		name    string
		marshal func(ptrace.Traces) ([]byte, error)
	}{
		{EncodingOTLPProto, (&ptrace.ProtoMarshaler{}).MarshalTraces},
		{EncodingOTLPJSON, (&ptrace.JSONMarshaler{}).MarshalTraces},
	} {
		t.Run(enc.name, func(t *testing.T) {
			msgs := build(t, Options{Encoding: enc.name, KeyFrom: DefaultKeyFrom()}, td)
			require.Len(t, msgs, 3)
			wantBytes, err := enc.marshal(want)
			require.NoError(t, err)
			assert.Equal(t, string(wantBytes), string(msgs[1].Value))
		})
	}
}

func TestNoKeyOneMessagePerResource(t *testing.T) {
	msgs := build(t, Options{}, testTraces())
	require.Len(t, msgs, 2)
	assert.Nil(t, msgs[0].Key)
	assert.Equal(t, 6, decode(t, msgs[0].Value).SpanCount())
	assert.Equal(t, 2, decode(t, msgs[1].Value).SpanCount())
}

func TestFieldPaths(t *testing.T) {
	td := testTraces()
	ctx := client.NewContext(context.Background(), client.Info{
		Metadata: client.NewMetadata(map[string][]string{"x-tenant": {"acme"}}),
	})
	b, err := NewBuilder(Options{Topic: "spans", KeyFrom: []string{"attributes.missing", "span_id"}}, ottlNop())
	require.NoError(t, err)
	// The span at resource 0, scope 0, index 0 is alone in its message when
	// the key is the span id: every path is read from it.
	cases := []struct{ path, want string }{
		{"trace_id", traceA.String()},
		{"span_id", "0000000000000001"},
		{"name", "op0"},
		{"attributes.user", "u0"},
		{"attributes.n", "0"},
		{"resource.service.name", "checkout"},
		{"scope.team", "t0"},
		{"metadata.x-tenant", "acme"},
	}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			b, err := NewBuilder(Options{Topic: "spans", KeyFrom: []string{tc.path, "span_id"}, HeadersFrom: []string{tc.path, "attributes.missing"}}, ottlNop())
			require.NoError(t, err)
			msgs, err := b.Append(ctx, nil, td, time.Unix(1, 0))
			require.NoError(t, err)
			assert.Equal(t, tc.want, string(msgs[0].Key))
			require.Len(t, msgs[0].Headers, 1, "absent fields give no header")
			assert.Equal(t, message.Header{Key: tc.path, Value: []byte(tc.want)}, msgs[0].Headers[0])
		})
	}
	msgs, err := b.Append(ctx, nil, td, time.Unix(1, 0))
	require.NoError(t, err)
	assert.Len(t, msgs, td.SpanCount(), "span_id key: one message per span")

	// topic_from: resource, scope, metadata.
	for path, want := range map[string]string{"resource.service.name": "checkout", "scope.team": "t0", "metadata.x-tenant": "acme", "resource.missing": "spans"} {
		b, err := NewBuilder(Options{Topic: "spans", TopicFrom: path}, ottlNop())
		require.NoError(t, err)
		msgs, err := b.Append(ctx, nil, td, time.Unix(1, 0))
		require.NoError(t, err)
		assert.Equal(t, want, msgs[0].Topic, path)
	}
	// scope.team differs per scope, so the messages of resource 0 split by scope.
	b, err = NewBuilder(Options{Topic: "spans", TopicFrom: "scope.team"}, ottlNop())
	require.NoError(t, err)
	msgs, err = b.Append(ctx, nil, td, time.Unix(1, 0))
	require.NoError(t, err)
	require.Len(t, msgs, 3)
	assert.Equal(t, []string{"t0", "t1", "t0"}, []string{msgs[0].Topic, msgs[1].Topic, msgs[2].Topic})
}

// TestHeadersSplitGroups: spans of one trace with different header values
// are different messages, so each header is true of every span it carries.
func TestHeadersSplitGroups(t *testing.T) {
	msgs := build(t, Options{KeyFrom: DefaultKeyFrom(), HeadersFrom: []string{"name"}}, testTraces())
	for _, m := range msgs {
		got := decode(t, m.Value)
		rs := got.ResourceSpans().At(0)
		for j := 0; j < rs.ScopeSpans().Len(); j++ {
			for k := 0; k < rs.ScopeSpans().At(j).Spans().Len(); k++ {
				assert.Equal(t, string(m.Headers[0].Value), rs.ScopeSpans().At(j).Spans().At(k).Name())
			}
		}
	}
	// resource 0: (A, op0), (B, op1), (A, op2); resource 1: (A, op0), (A, op2).
	assert.Len(t, msgs, 5)
}

// TestStaticHeaders: every span message carries the static headers after
// the headers_from ones, in name order, and they do not split groups.
func TestStaticHeaders(t *testing.T) {
	static := map[string]string{"source": "traces", "name": "static"}
	plain := build(t, Options{KeyFrom: DefaultKeyFrom(), HeadersFrom: []string{"name"}}, testTraces())
	msgs := build(t, Options{KeyFrom: DefaultKeyFrom(), HeadersFrom: []string{"name"}, Headers: static}, testTraces())
	require.Len(t, msgs, len(plain))
	for i, m := range msgs {
		assert.Equal(t, append(plain[i].Headers[:1:1],
			message.Header{Key: "name", Value: []byte("static")},
			message.Header{Key: "source", Value: []byte("traces")}), m.Headers)
	}
	msgs = build(t, Options{KeyFrom: DefaultKeyFrom(), Headers: map[string]string{"source": "traces"}}, testTraces())
	for _, m := range msgs {
		assert.Equal(t, []message.Header{{Key: "source", Value: []byte("traces")}}, m.Headers)
	}
	_, err := NewBuilder(Options{Topic: "t", Headers: map[string]string{"": "x"}}, ottlNop())
	require.EqualError(t, err, "headers: header name must not be empty")
}

func TestFlushWhenSpanConditions(t *testing.T) {
	td := testTraces()
	td.ResourceSpans().At(0).ScopeSpans().At(1).Spans().At(1).Status().SetCode(ptrace.StatusCodeError)
	msgs := build(t, Options{KeyFrom: DefaultKeyFrom(), FlushWhen: []string{`status.code == STATUS_CODE_ERROR`, `attributes["n"] == 99`}}, td)
	require.Len(t, msgs, 3)
	assert.Equal(t, []bool{false, true, false}, []bool{msgs[0].Trigger, msgs[1].Trigger, msgs[2].Trigger})

	msgs = build(t, Options{KeyFrom: DefaultKeyFrom(), FlushWhen: []string{`name == "op2" and resource.attributes["service.name"] == "billing"`}}, td)
	assert.Equal(t, []bool{false, false, true}, []bool{msgs[0].Trigger, msgs[1].Trigger, msgs[2].Trigger})

	require.NoError(t, ValidateCondition(`kind == SPAN_KIND_SERVER`))
	require.Error(t, ValidateCondition(`severity_number > 1`), "a log path is not a span path")
	_, err := NewBuilder(Options{Topic: "t", FlushWhen: []string{`name == "x"`, `name ==`}}, ottlNop())
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "flush_when[1]: "), err.Error())
}

// bigTrace is one trace of n spans of about pad bytes each.
func bigTrace(n, pad int) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "big")
	for s := 0; s < 2; s++ {
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName("lib" + string(rune('0'+s)))
		for i := 0; i < n/2; i++ {
			sp := ss.Spans().AppendEmpty()
			sp.SetTraceID(traceA)
			sp.SetSpanID(pcommon.SpanID([8]byte{byte(s), byte(i >> 8), byte(i), 1}))
			sp.SetStartTimestamp(start)
			sp.Attributes().PutStr("pad", strings.Repeat("x", pad))
		}
	}
	return td
}

func TestOversizeTraceSplitInOrder(t *testing.T) {
	td := bigTrace(200, 500) // about 100 kB
	for _, enc := range Encodings() {
		t.Run(enc, func(t *testing.T) {
			const limit = 10_000
			msgs := build(t, Options{Encoding: enc, KeyFrom: DefaultKeyFrom(), HeadersFrom: []string{"resource.service.name"}, MaxMessageBytes: limit}, td)
			require.Greater(t, len(msgs), 10)
			var ids []string
			for _, m := range msgs {
				assert.Equal(t, traceA.String(), string(m.Key), "every part has the trace's key")
				assert.Equal(t, "big", string(m.Headers[0].Value))
				assert.LessOrEqual(t, message.BatchSize([]message.Message{m}), limit)
				var got ptrace.Traces
				var err error
				if enc == EncodingOTLPJSON {
					got, err = (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(m.Value)
				} else {
					got, err = (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(m.Value)
				}
				require.NoError(t, err, "each part is a valid TracesData")
				require.Equal(t, 1, got.ResourceSpans().Len())
				ids = append(ids, spanIDs(got)...)
			}
			assert.Equal(t, spanIDs(td), ids, "all spans, in order")
		})
	}
}

func TestSpanTooLargeAloneStaysOneMessage(t *testing.T) {
	td := bigTrace(4, 100)
	td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(1).Attributes().PutStr("pad", strings.Repeat("y", 20_000))
	msgs := build(t, Options{KeyFrom: DefaultKeyFrom(), MaxMessageBytes: 10_000}, td)
	var sizes []int
	over := 0
	for _, m := range msgs {
		if message.BatchSize([]message.Message{m}) > 10_000 {
			over++
			assert.Equal(t, 1, decode(t, m.Value).SpanCount())
		}
		sizes = append(sizes, decode(t, m.Value).SpanCount())
	}
	assert.Equal(t, 1, over, "only the one span too large alone is over the limit")
	assert.Equal(t, 4, sum(sizes))
}

func sum(s []int) int {
	n := 0
	for _, v := range s {
		n += v
	}
	return n
}

func TestOptionErrors(t *testing.T) {
	_, err := NewBuilder(Options{Topic: "t", Encoding: "json"}, ottlNop())
	require.EqualError(t, err, `encoding: unknown encoding "json", want one of otlp_proto, otlp_json`)
	_, err = NewBuilder(Options{}, ottlNop())
	require.EqualError(t, err, "topic: topic must not be empty")
	_, err = NewBuilder(Options{Topic: "t", KeyFrom: []string{"trace_id", "body"}}, ottlNop())
	require.EqualError(t, err, `key_from[1]: invalid field path "body": want one of trace_id, span_id, name, attributes.NAME, resource.NAME, scope.NAME, metadata.NAME`)
	_, err = NewBuilder(Options{Topic: "t", TopicFrom: "attributes.x"}, ottlNop())
	require.EqualError(t, err, `topic_from: invalid field path "attributes.x": want one of resource.NAME, scope.NAME, metadata.NAME`)
}

func TestEmptyAndConcurrent(t *testing.T) {
	b, err := NewBuilder(Options{Topic: "t", KeyFrom: DefaultKeyFrom()}, ottlNop())
	require.NoError(t, err)
	msgs, err := b.Append(context.Background(), nil, ptrace.NewTraces(), time.Now())
	require.NoError(t, err)
	assert.Empty(t, msgs)
	done := make(chan []message.Message)
	for range 4 {
		go func() {
			m, _ := b.Append(context.Background(), nil, testTraces(), time.Now())
			done <- m
		}()
	}
	for range 4 {
		assert.Len(t, <-done, 3)
	}
}

func ottlNop() component.TelemetrySettings { return ottlcond.NopTelemetry() }
