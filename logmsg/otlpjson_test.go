package logmsg

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"
)

func jsonSpliceBuilder(t *testing.T) (*Builder, *jsonSpliceEncoder) {
	b, err := NewBuilder(Options{Topic: "t", Encoding: EncodingOTLPJSON}, nopTelemetry())
	require.NoError(t, err)
	e := newOTLPJSONEncoder().(*jsonSpliceEncoder)
	b.scratch.New = func() any { return &scratch{enc: e} }
	return b, e
}

func assertJSONIdentical(t *testing.T, ld plog.Logs, b *Builder) {
	t.Helper()
	want := records(ld)
	msgs, err := b.Append(context.Background(), nil, ld, t0)
	require.NoError(t, err)
	require.Len(t, msgs, len(want))
	for i, m := range msgs {
		exp := otlpJSON(t, single(want[i]))
		require.Equal(t, exp, string(m.Value), "message %d", i)
		got, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs(m.Value)
		require.NoError(t, err)
		require.Equal(t, exp, otlpJSON(t, got))
	}
}

func TestOTLPJSONIdentical(t *testing.T) {
	b, e := jsonSpliceBuilder(t)
	assertJSONIdentical(t, testLogs(), b)
	assertJSONIdentical(t, edgeLogs(), b)
	r := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		assertJSONIdentical(t, randomLogs(r), b)
	}
	assert.Nil(t, e.slow, "the splicer handled it, no fallback")
	assert.Nil(t, e.wire, "request text dropped after Append")
}

func TestOTLPJSONFallback(t *testing.T) {
	for name, mangle := range map[string]func([]byte) []byte{
		"trailing text": func(w []byte) []byte { return append(w, "x"...) },
		"truncated":     func(w []byte) []byte { return w[:len(w)-3] },
		"marshal error": nil,
	} {
		t.Run(name, func(t *testing.T) {
			b, e := jsonSpliceBuilder(t)
			e.marshalAll = func(ld plog.Logs) ([]byte, error) {
				if mangle == nil {
					return nil, errors.New("boom")
				}
				w, err := e.marshaler.MarshalLogs(ld)
				return mangle(w), err
			}
			assertJSONIdentical(t, testLogs(), b)
			assert.NotNil(t, e.slow, "fallback used")
		})
	}
}

func TestSplitJSONChildren(t *testing.T) {
	ok := ` { "a" : {"x":[1,"]}"]} , "kids" : [ {"k":1} , "s\"]" ,[2] ] , "z":"}" } `
	var kids []span
	start := skipSpace([]byte(ok), 0)
	end, err := skipJSONValue([]byte(ok), start)
	require.NoError(t, err)
	p, err := splitJSONChildren([]byte(ok), span{start, end}, "kids", &kids)
	require.NoError(t, err)
	require.Equal(t, 3, p.nChild)
	var got []string
	for _, k := range kids {
		got = append(got, ok[k.off:k.end])
	}
	assert.Equal(t, []string{`{"k":1}`, `"s\"]"`, `[2]`}, got)
	assert.Equal(t, `{ "a" : {"x":[1,"]}"]} , "kids" : [ `, ok[p.pre.off:p.pre.end])
	assert.Equal(t, ` ] , "z":"}" }`, ok[p.suf.off:p.suf.end])

	for name, bad := range map[string]string{
		"not an object":  `[1]`,
		"kids twice":     `{"kids":[1],"kids":[2]}`,
		"kids not array": `{"kids":{}}`,
		"no colon":       `{"kids" [1]}`,
		"unterminated":   `{"kids":[1,`,
		"bad separator":  `{"a":1 "b":2}`,
		"bad name":       `{a:1}`,
		"early end":      `{"a":1}}`,
	} {
		t.Run(name, func(t *testing.T) {
			var kids []span
			_, err := splitJSONChildren([]byte(bad), span{0, len(bad)}, "kids", &kids)
			assert.ErrorIs(t, err, errUnexpectedWire)
		})
	}
	p, err = splitJSONChildren([]byte(`{"a":1}`), span{0, 7}, "kids", &kids)
	require.NoError(t, err)
	assert.Equal(t, 0, p.nChild)
}
