package logmsg

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

func build(t testing.TB, opts Options, ld plog.Logs) []message.Message {
	t.Helper()
	if opts.Topic == "" {
		opts.Topic = "logs"
	}
	b, err := NewBuilder(opts, nopTelemetry())
	require.NoError(t, err)
	msgs, err := b.Append(context.Background(), nil, ld, t0.Add(time.Hour))
	require.NoError(t, err)
	return msgs
}

// otlpJSON is the canonical text of ld, to compare two Logs.
func otlpJSON(t testing.TB, ld plog.Logs) string {
	t.Helper()
	b, err := (&plog.JSONMarshaler{}).MarshalLogs(ld)
	require.NoError(t, err)
	return string(b)
}

func TestOTLPRoundTrip(t *testing.T) {
	ld := testLogs()
	want := records(ld)
	for _, tc := range []struct {
		encoding  string
		unmarshal plog.Unmarshaler
	}{
		{EncodingOTLPProto, &plog.ProtoUnmarshaler{}},
		{"", &plog.ProtoUnmarshaler{}}, // the default
		{EncodingOTLPJSON, &plog.JSONUnmarshaler{}},
	} {
		t.Run(tc.encoding, func(t *testing.T) {
			msgs := build(t, Options{Encoding: tc.encoding}, ld)
			require.Len(t, msgs, len(want))
			for i, m := range msgs {
				got, err := tc.unmarshal.UnmarshalLogs(m.Value)
				require.NoError(t, err, "message %d", i)
				require.Equal(t, 1, got.ResourceLogs().Len())
				require.Equal(t, 1, got.ResourceLogs().At(0).ScopeLogs().Len())
				require.Equal(t, 1, got.LogRecordCount())
				exp := single(want[i])
				assert.Equal(t, otlpJSON(t, exp), otlpJSON(t, got), "message %d", i)

				// Field by field too, so a fault in the JSON marshaler cannot hide one.
				grl := got.ResourceLogs().At(0)
				gsl := grl.ScopeLogs().At(0)
				glr := gsl.LogRecords().At(0)
				assert.Equal(t, want[i].rl.SchemaUrl(), grl.SchemaUrl())
				assert.True(t, want[i].rl.Resource().Attributes().Equal(grl.Resource().Attributes()))
				assert.Equal(t, want[i].rl.Resource().DroppedAttributesCount(), grl.Resource().DroppedAttributesCount())
				assert.Equal(t, want[i].sl.SchemaUrl(), gsl.SchemaUrl())
				assert.Equal(t, want[i].sl.Scope().Name(), gsl.Scope().Name())
				assert.Equal(t, want[i].sl.Scope().Version(), gsl.Scope().Version())
				assert.True(t, want[i].sl.Scope().Attributes().Equal(gsl.Scope().Attributes()))
				wlr := want[i].lr
				assert.Equal(t, wlr.Timestamp(), glr.Timestamp())
				assert.Equal(t, wlr.ObservedTimestamp(), glr.ObservedTimestamp())
				assert.Equal(t, wlr.SeverityNumber(), glr.SeverityNumber())
				assert.Equal(t, wlr.SeverityText(), glr.SeverityText())
				assert.Equal(t, wlr.EventName(), glr.EventName())
				assert.True(t, wlr.Body().Equal(glr.Body()), "body of message %d", i)
				assert.True(t, wlr.Attributes().Equal(glr.Attributes()))
				assert.Equal(t, wlr.TraceID(), glr.TraceID())
				assert.Equal(t, wlr.SpanID(), glr.SpanID())
				assert.Equal(t, wlr.Flags(), glr.Flags())
				assert.Equal(t, wlr.DroppedAttributesCount(), glr.DroppedAttributesCount())
			}
		})
	}
}

// TestOTLPProtoIdentical checks that each value is byte for byte what
// plog.ProtoMarshaler writes for the record's own LogsData.
func TestOTLPProtoIdentical(t *testing.T) {
	ld := testLogs()
	want := records(ld)
	msgs := build(t, Options{Encoding: EncodingOTLPProto}, ld)
	require.Len(t, msgs, len(want))
	for i, m := range msgs {
		exp, err := (&plog.ProtoMarshaler{}).MarshalLogs(single(want[i]))
		require.NoError(t, err)
		assert.Equal(t, exp, m.Value, "message %d", i)
	}
}

// jsonRecord is the json encoding, decoded.
type jsonRecord struct {
	Time           string         `json:"time"`
	ObservedTime   string         `json:"observed_time"`
	SeverityNumber int32          `json:"severity_number"`
	SeverityText   string         `json:"severity_text"`
	EventName      string         `json:"event_name"`
	Body           any            `json:"body"`
	Attributes     map[string]any `json:"attributes"`
	Resource       map[string]any `json:"resource"`
	Scope          *struct {
		Name       string         `json:"name"`
		Version    string         `json:"version"`
		Attributes map[string]any `json:"attributes"`
	} `json:"scope"`
	TraceID string `json:"trace_id"`
	SpanID  string `json:"span_id"`
	Flags   uint32 `json:"flags"`
}

// viaJSON is v as encoding/json renders its raw form, decoded again.
func viaJSON(t testing.TB, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	var out any
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	require.NoError(t, d.Decode(&out))
	return out
}

func decodeJSON(t testing.TB, b []byte) (jsonRecord, map[string]any) {
	t.Helper()
	var rec jsonRecord
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	d.DisallowUnknownFields()
	require.NoError(t, d.Decode(&rec), "%s", b)
	var generic map[string]any
	d = json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	require.NoError(t, d.Decode(&generic))
	return rec, generic
}

func parseTS(t testing.TB, s string) pcommon.Timestamp {
	t.Helper()
	if s == "" {
		return 0
	}
	tm, err := time.Parse(time.RFC3339Nano, s)
	require.NoError(t, err)
	return pcommon.NewTimestampFromTime(tm)
}

func TestJSONRoundTrip(t *testing.T) {
	ld := testLogs()
	want := records(ld)
	msgs := build(t, Options{Encoding: EncodingJSON}, ld)
	require.Len(t, msgs, len(want))
	for i, m := range msgs {
		w := want[i]
		rec, generic := decodeJSON(t, m.Value)
		assert.Equal(t, w.lr.Timestamp(), parseTS(t, rec.Time), "message %d", i)
		assert.Equal(t, w.lr.ObservedTimestamp(), parseTS(t, rec.ObservedTime))
		assert.Equal(t, int32(w.lr.SeverityNumber()), rec.SeverityNumber)
		assert.Equal(t, w.lr.SeverityText(), rec.SeverityText)
		assert.Equal(t, w.lr.EventName(), rec.EventName)
		if w.lr.Body().Type() == pcommon.ValueTypeEmpty {
			assert.NotContains(t, generic, "body")
		} else {
			assert.Equal(t, viaJSON(t, w.lr.Body().AsRaw()), viaJSON(t, rec.Body), "body of message %d", i)
		}
		assertJSONMap(t, w.lr.Attributes(), rec.Attributes, generic, "attributes")
		assertJSONMap(t, w.rl.Resource().Attributes(), rec.Resource, generic, "resource")
		sc := w.sl.Scope()
		if sc.Name() == "" && sc.Version() == "" && sc.Attributes().Len() == 0 {
			assert.Nil(t, rec.Scope)
		} else {
			require.NotNil(t, rec.Scope)
			assert.Equal(t, sc.Name(), rec.Scope.Name)
			assert.Equal(t, sc.Version(), rec.Scope.Version)
			if sc.Attributes().Len() > 0 {
				assert.Equal(t, viaJSON(t, sc.Attributes().AsRaw()), viaJSON(t, rec.Scope.Attributes))
			} else {
				assert.Nil(t, rec.Scope.Attributes)
			}
		}
		if w.lr.TraceID().IsEmpty() {
			assert.NotContains(t, generic, "trace_id")
		} else {
			id := w.lr.TraceID()
			assert.Equal(t, hex.EncodeToString(id[:]), rec.TraceID)
		}
		if w.lr.SpanID().IsEmpty() {
			assert.NotContains(t, generic, "span_id")
		} else {
			id := w.lr.SpanID()
			assert.Equal(t, hex.EncodeToString(id[:]), rec.SpanID)
		}
		assert.Equal(t, uint32(w.lr.Flags()), rec.Flags)
		for _, k := range []string{"time", "observed_time", "severity_number", "severity_text", "flags", "event_name"} {
			if v, ok := generic[k]; ok {
				assert.NotEmpty(t, v, "empty %s written", k)
				assert.NotEqual(t, json.Number("0"), v, "zero %s written", k)
			}
		}
	}
}

func assertJSONMap(t *testing.T, want pcommon.Map, got map[string]any, generic map[string]any, key string) {
	t.Helper()
	if want.Len() == 0 {
		assert.NotContains(t, generic, key)
		return
	}
	assert.Equal(t, viaJSON(t, want.AsRaw()), viaJSON(t, got), key)
}

func TestJSONExactText(t *testing.T) {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("host.name", "h")
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName("s")
	lr := sl.LogRecords().AppendEmpty()
	lr.SetTimestamp(pcommon.NewTimestampFromTime(time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 3600))))
	lr.SetSeverityNumber(plog.SeverityNumberInfo)
	lr.SetSeverityText("INFO")
	lr.Body().SetStr("hi")
	lr.Attributes().PutInt("n", 1)
	lr.Attributes().PutStr("a", "b") // insertion order kept
	lr.SetSpanID(spanID1)
	lr.SetFlags(1)
	sl.LogRecords().AppendEmpty() // all empty, scope and resource still there
	msgs := build(t, Options{Encoding: EncodingJSON}, ld)
	require.Len(t, msgs, 2)
	assert.Equal(t, `{"time":"2026-01-02T02:04:05.000000006Z","severity_number":9,"severity_text":"INFO","body":"hi",`+
		`"attributes":{"n":1,"a":"b"},"resource":{"host.name":"h"},"scope":{"name":"s"},"span_id":"00f067aa0ba902b7","flags":1}`,
		string(msgs[0].Value))
	assert.Equal(t, `{"resource":{"host.name":"h"},"scope":{"name":"s"}}`, string(msgs[1].Value))

	// Nothing at all: an empty object.
	ld = plog.NewLogs()
	ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	msgs = build(t, Options{Encoding: EncodingJSON}, ld)
	assert.Equal(t, `{}`, string(msgs[0].Value))
}

func TestRawBodies(t *testing.T) {
	tests := []struct {
		name string
		set  func(v pcommon.Value)
		want []byte
	}{
		{"str", func(v pcommon.Value) { v.SetStr("héllo\n\"x\"") }, []byte("héllo\n\"x\"")},
		{"empty str", func(v pcommon.Value) { v.SetStr("") }, []byte{}},
		{"bytes", func(v pcommon.Value) { v.SetEmptyBytes().FromRaw([]byte{0, 0xff, 'a'}) }, []byte{0, 0xff, 'a'}},
		{"empty bytes", func(v pcommon.Value) { v.SetEmptyBytes() }, []byte{}},
		{"int", func(v pcommon.Value) { v.SetInt(-9223372036854775808) }, []byte("-9223372036854775808")},
		{"double", func(v pcommon.Value) { v.SetDouble(3.25) }, []byte("3.25")},
		{"double big", func(v pcommon.Value) { v.SetDouble(1e21) }, []byte("1e+21")},
		{"double small", func(v pcommon.Value) { v.SetDouble(1e-7) }, []byte("1e-7")},
		{"double nan", func(v pcommon.Value) { v.SetDouble(math.NaN()) }, []byte("NaN")},
		{"bool", func(v pcommon.Value) { v.SetBool(true) }, []byte("true")},
		{"map", func(v pcommon.Value) {
			m := v.SetEmptyMap()
			m.PutStr("z", "1")
			m.PutInt("a", 2)
			m.PutEmptySlice("s").AppendEmpty().SetBool(false)
		}, []byte(`{"z":"1","a":2,"s":[false]}`)},
		{"empty map", func(v pcommon.Value) { v.SetEmptyMap() }, []byte(`{}`)},
		{"slice", func(v pcommon.Value) {
			s := v.SetEmptySlice()
			s.AppendEmpty().SetStr("a")
			s.AppendEmpty().SetDouble(0.5)
			s.AppendEmpty() // empty value: null
			s.AppendEmpty().SetEmptyBytes().FromRaw([]byte{1, 2})
		}, []byte(`["a",0.5,null,"AQI="]`)},
		{"empty", func(pcommon.Value) {}, []byte{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ld := plog.NewLogs()
			lr := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
			tc.set(lr.Body())
			msgs := build(t, Options{Encoding: EncodingRaw}, ld)
			require.Len(t, msgs, 1)
			assert.Equal(t, tc.want, msgs[0].Value)
			assert.NotNil(t, msgs[0].Value, "an empty body is still a (zero-length) value")
			// Decoding back: the body's text is the value.
			switch lr.Body().Type() {
			case pcommon.ValueTypeStr:
				assert.Equal(t, lr.Body().Str(), string(msgs[0].Value))
			case pcommon.ValueTypeBytes:
				assert.True(t, bytes.Equal(lr.Body().Bytes().AsRaw(), msgs[0].Value))
			case pcommon.ValueTypeMap, pcommon.ValueTypeSlice:
				var got any
				require.NoError(t, json.Unmarshal(msgs[0].Value, &got))
				assert.Equal(t, viaJSON(t, lr.Body().AsRaw()), viaJSON(t, got))
			default:
				assert.Equal(t, lr.Body().AsString(), string(msgs[0].Value))
			}
		})
	}
}

func TestJSONBytesAttributeIsBase64(t *testing.T) {
	ld := plog.NewLogs()
	lr := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.Attributes().PutEmptyBytes("b").FromRaw([]byte{0xde, 0xad})
	lr.Attributes().PutDouble("nan", math.NaN())
	msgs := build(t, Options{Encoding: EncodingJSON}, ld)
	rec, _ := decodeJSON(t, msgs[0].Value)
	assert.Equal(t, base64.StdEncoding.EncodeToString([]byte{0xde, 0xad}), rec.Attributes["b"])
	assert.Equal(t, "NaN", rec.Attributes["nan"])
}
