package logmsg

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"
)

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
	b, err := NewBuilder(Options{Topic: "t", Encoding: EncodingOTLPJSON}, nopTelemetry())
	require.NoError(t, err)
	assertJSONIdentical(t, testLogs(), b)
	assertJSONIdentical(t, edgeLogs(), b)
	r := rand.New(rand.NewPCG(3, 4))
	for range 100 {
		assertJSONIdentical(t, randomLogs(r), b)
	}
}
