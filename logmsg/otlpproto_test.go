package logmsg

import (
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// edgeLogs has empty resources, scopes without records, empty records and
// records big enough for multi-byte length prefixes.
func edgeLogs() plog.Logs {
	ld := plog.NewLogs()
	ld.ResourceLogs().AppendEmpty() // no scopes
	rl := ld.ResourceLogs().AppendEmpty()
	rl.ScopeLogs().AppendEmpty()                            // no records
	rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty() // empty record, empty resource and scope
	big := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	big.Body().SetStr(strings.Repeat("x", 20000)) // 3-byte lengths
	mid := rl.ScopeLogs().AppendEmpty()
	mid.SetSchemaUrl("s")
	mid.LogRecords().AppendEmpty().Body().SetStr(strings.Repeat("y", 200)) // 2-byte lengths
	rl2 := ld.ResourceLogs().AppendEmpty()
	rl2.SetSchemaUrl("only-schema")
	rl2.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().SetSeverityNumber(plog.SeverityNumberWarn)
	rl2.Resource().Attributes().PutStr("big", strings.Repeat("r", 300))
	return ld
}

// randomLogs builds n random requests' worth of logs.
func randomLogs(r *rand.Rand) plog.Logs {
	ld := plog.NewLogs()
	const chars = `abcxyz"\\{}[],: é\n`
	str := func() string {
		var sb strings.Builder
		for range r.IntN(300) {
			sb.WriteByte(chars[r.IntN(len(chars))])
		}
		return sb.String()
	}
	putAttrs := func(m pcommon.Map) {
		for k := range r.IntN(4) {
			key := string(rune('a' + k))
			switch r.IntN(5) {
			case 0:
				m.PutStr(key, str())
			case 1:
				m.PutInt(key, r.Int64()-r.Int64())
			case 2:
				m.PutDouble(key, r.Float64())
			case 3:
				m.PutBool(key, r.IntN(2) == 0)
			case 4:
				m.PutEmptyMap(key).PutStr("inner", str())
			}
		}
	}
	for range r.IntN(4) {
		rl := ld.ResourceLogs().AppendEmpty()
		if r.IntN(2) == 0 {
			rl.SetSchemaUrl(str())
		}
		putAttrs(rl.Resource().Attributes())
		for range r.IntN(4) {
			sl := rl.ScopeLogs().AppendEmpty()
			sl.Scope().SetName(str())
			if r.IntN(2) == 0 {
				sl.SetSchemaUrl(str())
			}
			putAttrs(sl.Scope().Attributes())
			for range r.IntN(5) {
				lr := sl.LogRecords().AppendEmpty()
				lr.SetTimestamp(pcommon.Timestamp(r.Uint64()))
				lr.SetSeverityNumber(plog.SeverityNumber(r.IntN(25)))
				lr.Body().SetStr(str())
				putAttrs(lr.Attributes())
				if r.IntN(2) == 0 {
					lr.SetTraceID(pcommon.TraceID{byte(r.IntN(255) + 1)})
				}
			}
		}
	}
	return ld
}

func assertProtoIdentical(t *testing.T, ld plog.Logs, b *Builder) {
	t.Helper()
	want := records(ld)
	msgs, err := b.Append(context.Background(), nil, ld, t0)
	require.NoError(t, err)
	require.Len(t, msgs, len(want))
	for i, m := range msgs {
		exp, err := (&plog.ProtoMarshaler{}).MarshalLogs(single(want[i]))
		require.NoError(t, err)
		require.Equal(t, exp, m.Value, "message %d", i)
		got, err := (&plog.ProtoUnmarshaler{}).UnmarshalLogs(m.Value)
		require.NoError(t, err)
		require.Equal(t, otlpJSON(t, single(want[i])), otlpJSON(t, got))
	}
}

// spliceBuilder is an otlp_proto Builder whose encoder the test can see.
func spliceBuilder(t *testing.T) (*Builder, *protoEncoder) {
	b, err := NewBuilder(Options{Topic: "t"}, nopTelemetry())
	require.NoError(t, err)
	e := newOTLPProtoEncoder().(*protoEncoder)
	b.scratch.New = func() any { return &scratch{enc: e} }
	return b, e
}

func TestOTLPProtoEdgeCases(t *testing.T) {
	b, e := spliceBuilder(t)
	assertProtoIdentical(t, edgeLogs(), b)
	assertProtoIdentical(t, testLogs(), b)
	assert.Nil(t, e.slow, "the splicer handled it, no fallback")
	assert.Nil(t, e.wire, "request bytes dropped after Append")
}

func TestOTLPProtoRandom(t *testing.T) {
	b, e := spliceBuilder(t)
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		assertProtoIdentical(t, randomLogs(r), b)
	}
	assert.Nil(t, e.slow, "the splicer handled it, no fallback")
}

// TestOTLPProtoFallback feeds wire bytes the splicer does not understand:
// the values must still be right.
func TestOTLPProtoFallback(t *testing.T) {
	for name, mangle := range map[string]func([]byte) []byte{
		"unknown top-level field": func(w []byte) []byte { return append(w, 0x10, 0x01) }, // field 2 varint
		"marshal error":           nil,
	} {
		t.Run(name, func(t *testing.T) {
			b, err := NewBuilder(Options{Topic: "t"}, nopTelemetry())
			require.NoError(t, err)
			e := newOTLPProtoEncoder().(*protoEncoder)
			e.marshalAll = func(ld plog.Logs) ([]byte, error) {
				if mangle == nil {
					return nil, errors.New("boom")
				}
				w, err := e.marshaler.MarshalLogs(ld)
				return mangle(w), err
			}
			b.scratch.New = func() any { return &scratch{enc: e} }
			assertProtoIdentical(t, testLogs(), b)
			assert.NotNil(t, e.slow, "fallback used")
		})
	}
}

func TestSplitChildren(t *testing.T) {
	field := func(num int, body string) []byte {
		b := binary.AppendUvarint(nil, uint64(num)<<3|2)
		b = binary.AppendUvarint(b, uint64(len(body)))
		return append(b, body...)
	}
	cat := func(parts ...[]byte) []byte {
		var out []byte
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	ok := cat(field(3, "schema"), field(2, "c1"), field(2, "c2"), field(1, "res"))
	var kids []span
	p, err := splitChildren(ok, span{0, len(ok)}, 2, true, &kids)
	require.NoError(t, err)
	assert.Equal(t, 2, p.nChild)
	assert.Equal(t, "schema", string(ok[p.pre.off+2:p.pre.end]))
	assert.Equal(t, "res", string(ok[p.suf.off+2:p.suf.end]))
	require.Len(t, kids, 2)
	assert.Equal(t, "c1", string(ok[kids[0].off:kids[0].end]))
	assert.Equal(t, "c2", string(ok[kids[1].off:kids[1].end]))

	for name, bad := range map[string][]byte{
		"interleaved":   cat(field(2, "c1"), field(1, "res"), field(2, "c2")),
		"unknown field": cat(field(2, "c1"), field(7, "x")),
		"bad length":    {0x12, 0x05, 'a'},
		"bad tag":       {0x80},
		"wire type 3":   {0x13},
		"fixed64 short": {0x09, 1, 2},
	} {
		t.Run(name, func(t *testing.T) {
			var kids []span
			_, err := splitChildren(bad, span{0, len(bad)}, 2, true, &kids)
			assert.ErrorIs(t, err, errUnexpectedWire)
		})
	}
	none := cat(field(1, "res"))
	p, err = splitChildren(none, span{0, len(none)}, 2, true, &kids)
	require.NoError(t, err)
	assert.Equal(t, 0, p.nChild)
	_, err = splitChildren(none, span{0, len(none)}, 2, false, &kids)
	assert.ErrorIs(t, err, errUnexpectedWire, "no own fields allowed at the top")
}
