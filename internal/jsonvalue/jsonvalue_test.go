package jsonvalue

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

func TestJSONStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{
		"", "plain", `quote " backslash \ slash /`, "\x00\x01\x1f\x7f", "tab\tnl\ncr\r",
		"ünïcödé 日本語 🎉", "bad \xff utf8 \xc3", "\u2028\u2029", "<html>&amp;",
	} {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		require.NoError(t, enc.Encode(s))
		assert.Equal(t, strings.TrimSuffix(buf.String(), "\n"), string(AppendString(nil, s)), "%q", s)
	}
}

func TestJSONFloatMatchesEncodingJSON(t *testing.T) {
	negZero := math.Copysign(0, -1) // the literal -0.0 is positive zero in Go
	require.True(t, math.Signbit(negZero))
	for _, f := range []float64{0, negZero, 1, -1.5, 0.1, 1e-6, 1e-7, 123456789.125, 1e20, 1e21, 1.5e300, -2.5e-300,
		math.MaxFloat64, math.SmallestNonzeroFloat64, 3.0e-9} {
		want, err := json.Marshal(f)
		require.NoError(t, err)
		assert.Equal(t, string(want), string(AppendFloat(nil, f)), "%v", f)
		assert.Equal(t, pcommon.NewValueDouble(f).AsString(), string(AppendFloatText(nil, f)), "%v", f)
	}
	// Negative zero keeps its sign, as encoding/json and pcommon write it.
	assert.Equal(t, "-0", string(AppendFloat(nil, negZero)))
	assert.Equal(t, "0", string(AppendFloat(nil, 0)))
	assert.Equal(t, `"NaN"`, string(AppendFloat(nil, math.NaN())))
	assert.Equal(t, `"Infinity"`, string(AppendFloat(nil, math.Inf(1))))
	assert.Equal(t, `"-Infinity"`, string(AppendFloat(nil, math.Inf(-1))))
}

func TestAppendText(t *testing.T) {
	m := pcommon.NewValueMap()
	m.Map().PutStr("a", "b")
	for want, v := range map[string]pcommon.Value{
		"s":         pcommon.NewValueStr("s"),
		"42":        pcommon.NewValueInt(42),
		"1.5":       pcommon.NewValueDouble(1.5),
		"true":      pcommon.NewValueBool(true),
		`{"a":"b"}`: m,
		"":          pcommon.NewValueEmpty(),
	} {
		assert.Equal(t, want, string(AppendText(nil, v)))
	}
}
