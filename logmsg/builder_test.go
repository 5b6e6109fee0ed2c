package logmsg

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/kafkabatcher/kafkabatcherexporter/internal/fieldpath"
	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

func TestFieldPathText(t *testing.T) {
	ld := testLogs()
	recs := records(ld)
	first, second, third := recs[0], recs[1], recs[2]
	tests := []struct {
		path   string
		r      recordRef
		want   string
		absent bool
	}{
		{"attributes.user", first, "alice", false},
		{"attributes.items", first, "3", false},
		{"attributes.amount", first, "12.5", false},
		{"attributes.paid", first, "true", false},
		{"attributes.blob", first, "\x00\x01\x02\xff", false},
		{"attributes.cart", first, `{"sku":"A-1","qty":2}`, false},
		{"attributes.tags", first, `["x",7]`, false},
		{"attributes.missing", first, "", true},
		{"resource.service.name", first, "checkout", false},
		{"resource.host.name", first, "node-1", false},
		{"resource.pid", first, "4242", false},
		{"resource.host", first, "", true},
		{"scope.team", first, "payments", false},
		{"scope.name", first, "", true}, // scope attribute "name", not the scope's name
		{"body", first, "order placed: \"42\" <ok> ünïcode\n", false},
		{"body.msg", first, "", true}, // string body has no keys
		{"body", second, `{"msg":"payment failed","code":402,"nested":{"retry":false}}`, false},
		{"body.msg", second, "payment failed", false},
		{"body.code", second, "402", false},
		{"body.nested", second, `{"retry":false}`, false},
		{"body.nested.retry", second, "", true}, // a key named "nested.retry", not a path into nested
		{"body", third, "-17", false},
		{"trace_id", first, "4bf92f3577b34da6a3ce929d0e0e4736", false},
		{"span_id", first, "00f067aa0ba902b7", false},
		{"trace_id", second, "", true},
		{"span_id", second, "", true},
		{"severity_text", first, "INFO", false},
		{"severity_text", third, "", true},
		{"body", recs[4], "", true}, // empty body
		{"metadata.x-tenant", withMetadata(first, "x-tenant", "acme"), "acme", false},
		{"metadata.x-tenant", withMetadata(first, "x-tenant", "acme", "beta"), "acme,beta", false},
		{"metadata.x-tenant", withMetadata(first, "x-tenant", ""), "", true},
		{"metadata.x-tenant", first, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			p, err := ParseFieldPath(tc.path)
			require.NoError(t, err)
			sh := &fieldpath.Shared{Metadata: tc.r.md, Resource: tc.r.rl.Resource(), Scope: tc.r.sl.Scope()}
			got, ok := appendText(p, []byte("prefix:"), sh, tc.r.lr)
			assert.Equal(t, !tc.absent, ok)
			assert.Equal(t, "prefix:"+tc.want, string(got))
			assert.Equal(t, tc.want, text(p, sh, tc.r.lr))
		})
	}
}

func TestDottedAttributeNames(t *testing.T) {
	ld := plog.NewLogs()
	lr := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.Attributes().PutStr("http", "nope")
	lr.Attributes().PutStr("http.route", "/orders")
	msgs := build(t, Options{KeyFrom: []string{"attributes.http.route"}}, ld)
	assert.Equal(t, "/orders", string(msgs[0].Key))
}

func oneRecord(set func(rl plog.ResourceLogs, sl plog.ScopeLogs, lr plog.LogRecord)) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	sl := rl.ScopeLogs().AppendEmpty()
	set(rl, sl, sl.LogRecords().AppendEmpty())
	return ld
}

func TestKeySelection(t *testing.T) {
	opts := Options{Encoding: EncodingRaw, KeyFrom: []string{"attributes.request_id", "body.user", "resource.host.name"}}
	tests := []struct {
		name string
		set  func(plog.ResourceLogs, plog.ScopeLogs, plog.LogRecord)
		want []byte
	}{
		{"first path", func(rl plog.ResourceLogs, _ plog.ScopeLogs, lr plog.LogRecord) {
			lr.Attributes().PutStr("request_id", "r-1")
			lr.Body().SetEmptyMap().PutStr("user", "u")
			rl.Resource().Attributes().PutStr("host.name", "h")
		}, []byte("r-1")},
		{"empty first falls through", func(rl plog.ResourceLogs, _ plog.ScopeLogs, lr plog.LogRecord) {
			lr.Attributes().PutStr("request_id", "")
			lr.Body().SetEmptyMap().PutInt("user", 77)
			rl.Resource().Attributes().PutStr("host.name", "h")
		}, []byte("77")},
		{"last path", func(rl plog.ResourceLogs, _ plog.ScopeLogs, lr plog.LogRecord) {
			lr.Body().SetStr("not a map")
			rl.Resource().Attributes().PutStr("host.name", "h")
		}, []byte("h")},
		{"none: nil key", func(plog.ResourceLogs, plog.ScopeLogs, plog.LogRecord) {}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msgs := build(t, opts, oneRecord(tc.set))
			require.Len(t, msgs, 1)
			assert.Equal(t, tc.want, msgs[0].Key)
		})
	}
}

func TestHeaders(t *testing.T) {
	opts := Options{
		Encoding:    EncodingRaw,
		KeyFrom:     []string{"attributes.k"},
		HeadersFrom: []string{"resource.service.name", "attributes.missing", "trace_id", "attributes.empty", "severity_text"},
	}
	ld := oneRecord(func(rl plog.ResourceLogs, _ plog.ScopeLogs, lr plog.LogRecord) {
		rl.Resource().Attributes().PutStr("service.name", "checkout")
		lr.Attributes().PutStr("k", "key")
		lr.Attributes().PutStr("empty", "")
		lr.SetTraceID(traceID1)
		lr.SetSeverityText("WARN")
		lr.Body().SetStr("value")
	})
	rl2 := ld.ResourceLogs().AppendEmpty()
	lrs2 := rl2.ScopeLogs().AppendEmpty().LogRecords()
	lrs2.AppendEmpty().Body().SetStr("no header fields")
	rl2.Resource().Attributes().PutStr("service.name", "cart")
	lrs2.AppendEmpty().Body().SetStr("third")
	lrs2.At(0).Attributes().PutStr("severity_text", "not a header: an attribute")
	msgs := build(t, opts, ld)
	require.Len(t, msgs, 3)
	assert.Equal(t, []message.Header{
		{Key: "resource.service.name", Value: []byte("checkout")},
		{Key: "trace_id", Value: []byte("4bf92f3577b34da6a3ce929d0e0e4736")},
		{Key: "attributes.empty", Value: []byte{}},
		{Key: "severity_text", Value: []byte("WARN")},
	}, msgs[0].Headers)
	assert.Equal(t, "key", string(msgs[0].Key))
	assert.Equal(t, "value", string(msgs[0].Value))
	assert.Equal(t, []message.Header{{Key: "resource.service.name", Value: []byte("cart")}}, msgs[1].Headers)
	assert.Nil(t, msgs[1].Key)
	assert.Equal(t, []message.Header{{Key: "resource.service.name", Value: []byte("cart")}}, msgs[2].Headers)

	// Value, key and header values share one allocation, and the headers of
	// all messages one array; appending to one must not overwrite another.
	m := msgs[0]
	m.Value = append(m.Value, "XXXXXXXX"...)
	m.Key = append(m.Key, "YYYYYYYY"...)
	m.Headers[0].Value = append(m.Headers[0].Value, "ZZZZZZZZ"...)
	m.Headers = append(m.Headers, message.Header{Key: "extra"})
	assert.Equal(t, "key", string(msgs[0].Key))
	assert.Equal(t, "trace_id", msgs[0].Headers[1].Key)
	assert.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", string(msgs[0].Headers[1].Value))
	assert.Equal(t, "resource.service.name", msgs[1].Headers[0].Key)
	assert.Equal(t, "cart", string(msgs[1].Headers[0].Value))
}

func TestTopicSelection(t *testing.T) {
	opts := Options{Encoding: EncodingRaw, Topic: "default", TopicFrom: "attributes.topic"}
	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	lrs.AppendEmpty().Attributes().PutStr("topic", "audit")
	lrs.AppendEmpty()                                  // absent
	lrs.AppendEmpty().Attributes().PutStr("topic", "") // empty
	lrs.AppendEmpty().Attributes().PutInt("topic", 7)
	msgs := build(t, opts, ld)
	require.Len(t, msgs, 4)
	assert.Equal(t, []string{"audit", "default", "default", "7"},
		[]string{msgs[0].Topic, msgs[1].Topic, msgs[2].Topic, msgs[3].Topic})

	msgs = build(t, Options{Topic: "only"}, ld)
	for _, m := range msgs {
		assert.Equal(t, "only", m.Topic)
		assert.Zero(t, m.Partition)
	}
}

func TestTimestampFallback(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	ts := time.Date(2026, 5, 1, 12, 0, 0, 123, time.UTC)
	obs := ts.Add(time.Minute)
	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	both := lrs.AppendEmpty()
	both.SetTimestamp(pcommon.NewTimestampFromTime(ts))
	both.SetObservedTimestamp(pcommon.NewTimestampFromTime(obs))
	lrs.AppendEmpty().SetObservedTimestamp(pcommon.NewTimestampFromTime(obs))
	lrs.AppendEmpty()
	b, err := NewBuilder(Options{Topic: "t"}, nopTelemetry())
	require.NoError(t, err)
	msgs, err := b.Append(context.Background(), nil, ld, now)
	require.NoError(t, err)
	require.Len(t, msgs, 3)
	assert.True(t, ts.Equal(msgs[0].Timestamp), msgs[0].Timestamp)
	assert.True(t, obs.Equal(msgs[1].Timestamp), msgs[1].Timestamp)
	assert.True(t, now.Equal(msgs[2].Timestamp), msgs[2].Timestamp)
}

func TestFlushWhen(t *testing.T) {
	opts := Options{Encoding: EncodingRaw, FlushWhen: []string{
		`severity_number >= SEVERITY_NUMBER_ERROR`,
		`attributes["flush"] == true`,
		`IsMatch(body, "panic.*")`,
		`resource.attributes["env"] == "prod" and instrumentation_scope.name == "critical"`,
	}}
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("env", "prod")
	sl := rl.ScopeLogs().AppendEmpty()
	lrs := sl.LogRecords()
	lr := lrs.AppendEmpty() // 0: info, no match
	lr.SetSeverityNumber(plog.SeverityNumberInfo)
	lr.Body().SetStr("all good")
	lrs.AppendEmpty().SetSeverityNumber(plog.SeverityNumberError)  // 1: error
	lrs.AppendEmpty().SetSeverityNumber(plog.SeverityNumberFatal4) // 2: above error
	lrs.AppendEmpty().Attributes().PutBool("flush", true)          // 3
	lrs.AppendEmpty().Attributes().PutStr("flush", "true")         // 4: string, not bool
	lrs.AppendEmpty().Body().SetStr("panic: nil map")              // 5
	lrs.AppendEmpty().Body().SetStr("no panic here")               // 6: IsMatch is anchored? no: regexp.MatchString
	lrs.AppendEmpty().Body().SetEmptyMap().PutStr("panic", "x")    // 7: map body, IsMatch sees its JSON
	lrs.AppendEmpty().Body().SetInt(5)                             // 8: no match
	sl2 := rl.ScopeLogs().AppendEmpty()
	sl2.Scope().SetName("critical")
	sl2.LogRecords().AppendEmpty() // 9: resource+scope condition

	msgs := build(t, opts, ld)
	require.Len(t, msgs, 10)
	var got []bool
	for _, m := range msgs {
		got = append(got, m.Trigger)
	}
	assert.Equal(t, []bool{false, true, true, true, false, true, true, true, false, true}, got)

	// No conditions: nothing flushes.
	for _, m := range build(t, Options{}, ld) {
		assert.False(t, m.Trigger)
	}
}

// TestStaticHeaders: static headers follow the headers_from ones on every
// record, in name order; one named like a headers_from path is a second
// header of that name; they count in the record's size.
func TestStaticHeaders(t *testing.T) {
	ld := oneRecord(func(rl plog.ResourceLogs, _ plog.ScopeLogs, lr plog.LogRecord) {
		rl.Resource().Attributes().PutStr("service.name", "checkout")
		lr.Body().SetStr("value")
	})
	ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().AppendEmpty().Body().SetStr("second")
	static := map[string]string{"team": "shop", "env": "prod", "resource.service.name": "static", "empty": ""}
	msgs := build(t, Options{Encoding: EncodingRaw, HeadersFrom: []string{"resource.service.name"}, Headers: static}, ld)
	require.Len(t, msgs, 2)
	for _, m := range msgs {
		assert.Equal(t, []message.Header{
			{Key: "resource.service.name", Value: []byte("checkout")},
			{Key: "empty", Value: []byte{}},
			{Key: "env", Value: []byte("prod")},
			{Key: "resource.service.name", Value: []byte("static")},
			{Key: "team", Value: []byte("shop")},
		}, m.Headers)
	}
	// The values are shared by every record; appending to one is a copy.
	msgs[0].Headers[2].Value = append(msgs[0].Headers[2].Value, "XXXX"...)
	assert.Equal(t, "prod", string(msgs[1].Headers[2].Value))

	// Without headers_from, records still get the static headers.
	msgs = build(t, Options{Encoding: EncodingRaw, Headers: map[string]string{"env": "prod"}}, ld)
	for _, m := range msgs {
		assert.Equal(t, []message.Header{{Key: "env", Value: []byte("prod")}}, m.Headers)
	}
	// Record bytes (batch.max_bytes, producer.max_message_bytes) count them:
	// key length varint, key, value length varint, value (the header count
	// is one byte either way).
	plain := build(t, Options{Encoding: EncodingRaw}, ld)
	assert.Equal(t, message.RecordSize(&plain[0], 0, plain[0].Timestamp)+1+3+1+4,
		message.RecordSize(&msgs[0], 0, msgs[0].Timestamp))
	assert.Nil(t, plain[0].Headers, "no headers, none made")
}

func TestNewBuilderErrors(t *testing.T) {
	set := nopTelemetry()
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"no topic", Options{}, "topic: topic must not be empty"},
		{"encoding", Options{Topic: "t", Encoding: "avro"}, `encoding: unknown encoding "avro", want one of otlp_proto, otlp_json, json, raw`},
		{"topic_from", Options{Topic: "t", TopicFrom: "attrs.x"}, `topic_from: invalid field path "attrs.x"`},
		{"key_from", Options{Topic: "t", KeyFrom: []string{"body", "resource"}}, `key_from[1]: invalid field path "resource"`},
		{"headers_from", Options{Topic: "t", HeadersFrom: []string{"x"}}, `headers_from[0]: invalid field path "x"`},
		{"headers", Options{Topic: "t", Headers: map[string]string{"a": "1", "": "2"}}, `headers: header name must not be empty`},
		{"flush_when", Options{Topic: "t", FlushWhen: []string{"true", "body =="}}, `flush_when[1]: `},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := NewBuilder(tc.opts, set)
			require.Error(t, err)
			assert.Nil(t, b)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	_, err := NewBuilder(Options{Topic: "t", Encoding: "x"}, set)
	assert.ErrorIs(t, err, message.ErrUnknownEncoding)
	_, err = NewBuilder(Options{}, set)
	assert.ErrorIs(t, err, message.ErrNoTopic)
}

func TestAppendKeepsDstAndOrder(t *testing.T) {
	ld := testLogs()
	b, err := NewBuilder(Options{Topic: "t", Encoding: EncodingRaw}, component0())
	require.NoError(t, err)
	dst := []message.Message{{Topic: "earlier"}}
	dst, err = b.Append(context.Background(), dst, ld, t0)
	require.NoError(t, err)
	require.Len(t, dst, 1+ld.LogRecordCount())
	assert.Equal(t, "earlier", dst[0].Topic)
	for i, r := range records(ld) {
		one, err := b.Append(context.Background(), nil, single(r), t0)
		require.NoError(t, err)
		assert.Equal(t, one[0], dst[i+1], "record %d in order", i)
	}
	// Empty input appends nothing.
	out, err := b.Append(context.Background(), dst, plog.NewLogs(), t0)
	require.NoError(t, err)
	assert.Len(t, out, len(dst))
}

// component0 is telemetry with no logger: NewBuilder must cope.
func component0() (set componentTelemetry) { return set }

func TestAppendConcurrent(t *testing.T) {
	for _, enc := range []string{EncodingOTLPProto, EncodingOTLPJSON, EncodingJSON, EncodingRaw} {
		b, err := NewBuilder(Options{Topic: "t", Encoding: enc, KeyFrom: []string{"attributes.user"},
			HeadersFrom: []string{"resource.service.name"}, FlushWhen: []string{`severity_number >= SEVERITY_NUMBER_ERROR`}}, nopTelemetry())
		require.NoError(t, err)
		ld := testLogs()
		ref, err := b.Append(context.Background(), nil, ld, t0)
		require.NoError(t, err)
		var wg sync.WaitGroup
		for g := 0; g < 4; g++ {
			wg.Go(func() {
				for range 50 {
					got, err := b.Append(context.Background(), nil, ld, t0)
					if !assert.NoError(t, err) || !assert.Equal(t, ref, got, enc) {
						return
					}
				}
			})
		}
		wg.Wait()
	}
}

type componentTelemetry = component.TelemetrySettings

func TestFlushWhenRuntimeErrorIsFalseAndLogged(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	set := nopTelemetry()
	set.Logger = zap.New(core)
	b, err := NewBuilder(Options{Topic: "t", Encoding: EncodingRaw, FlushWhen: []string{
		`Len(body) > 1`, // Len of an int body fails at run time
		`attributes["flush"] == true`,
	}}, set)
	require.NoError(t, err)
	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	lrs.AppendEmpty().Body().SetInt(12345)
	second := lrs.AppendEmpty()
	second.Body().SetInt(1)
	second.Attributes().PutBool("flush", true)
	msgs, err := b.Append(context.Background(), nil, ld, t0)
	require.NoError(t, err)
	require.Len(t, msgs, 2)
	assert.False(t, msgs[0].Trigger)
	assert.True(t, msgs[1].Trigger, "a failing condition does not stop the next one")
	assert.GreaterOrEqual(t, logs.FilterMessage("failed to eval condition").Len(), 1)
}

// TestMetadataFieldPaths: metadata.NAME reads the client metadata of the
// request from the context, for topic, key and headers.
func TestMetadataFieldPaths(t *testing.T) {
	b, err := NewBuilder(Options{
		Topic: "logs", TopicFrom: "metadata.x-topic", KeyFrom: []string{"metadata.x-tenant"},
		HeadersFrom: []string{"metadata.x-tenant", "metadata.missing"},
	}, nopTelemetry())
	require.NoError(t, err)
	ctx := client.NewContext(context.Background(), client.Info{Metadata: client.NewMetadata(map[string][]string{
		"x-tenant": {"acme"}, "x-topic": {"tenant_logs"},
	})})
	msgs, err := b.Append(ctx, nil, testLogs(), time.Unix(1, 0))
	require.NoError(t, err)
	for _, m := range msgs {
		assert.Equal(t, "tenant_logs", m.Topic)
		assert.Equal(t, "acme", string(m.Key))
		assert.Equal(t, []message.Header{{Key: "metadata.x-tenant", Value: []byte("acme")}}, m.Headers)
	}
	// Without metadata: the default topic, no key, no header.
	msgs, err = b.Append(context.Background(), nil, testLogs(), time.Unix(1, 0))
	require.NoError(t, err)
	assert.Equal(t, "logs", msgs[0].Topic)
	assert.Nil(t, msgs[0].Key)
	assert.Empty(t, msgs[0].Headers)
}
