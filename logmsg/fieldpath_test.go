package logmsg

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/kafkabatcher/kafkabatcherexporter/internal/fieldpath"
)

func TestParseFieldPath(t *testing.T) {
	valid := []struct {
		in   string
		kind fieldpath.Kind
		name string
	}{
		{"attributes.user", fieldpath.Attribute, "user"},
		{"attributes.http.request.method", fieldpath.Attribute, "http.request.method"},
		{"resource.host.name", fieldpath.Resource, "host.name"},
		{"resource.service.name", fieldpath.Resource, "service.name"},
		{"scope.name", fieldpath.Scope, "name"},
		{"scope.team.id", fieldpath.Scope, "team.id"},
		{"body", fieldpath.Body, ""},
		{"body.user_id", fieldpath.BodyKey, "user_id"},
		{"body.a.b", fieldpath.BodyKey, "a.b"},
		{"trace_id", fieldpath.TraceID, ""},
		{"span_id", fieldpath.SpanID, ""},
		{"severity_text", fieldpath.SeverityText, ""},
		{"attributes..x", fieldpath.Attribute, ".x"},
		{"metadata.x-tenant", fieldpath.Metadata, "x-tenant"},
	}
	for _, tc := range valid {
		t.Run(tc.in, func(t *testing.T) {
			p, err := ParseFieldPath(tc.in)
			require.NoError(t, err)
			assert.Equal(t, tc.kind, p.Kind())
			assert.Equal(t, tc.name, p.Name())
			assert.Equal(t, tc.in, p.String())
		})
	}
	invalid := []string{
		"", "attributes", "attributes.", "resource", "resource.", "scope", "scope.",
		"body.", "attribute.user", "Attributes.user", "trace_id.x", "span_id.x",
		"severity_text.x", "severity_number", "time", ".user", " body", "body ",
		"log.attributes.user", "traceid", "metadata", "metadata.", "name",
	}
	for _, in := range invalid {
		t.Run("invalid/"+in, func(t *testing.T) {
			_, err := ParseFieldPath(in)
			require.Error(t, err)
			assert.Contains(t, err.Error(), `"`+in+`"`, "error names the path")
			assert.Contains(t, err.Error(), "attributes.NAME, resource.NAME, scope.NAME, metadata.NAME, body, body.NAME, trace_id, span_id, severity_text", "error lists the accepted forms")
		})
	}
}

func TestValidateConditions(t *testing.T) {
	require.NoError(t, ValidateConditions(nil))
	require.NoError(t, ValidateConditions([]string{
		`severity_number >= SEVERITY_NUMBER_ERROR`,
		`attributes["flush"] == true`,
		`IsMatch(body, "panic.*")`,
		`resource.attributes["service.name"] == "checkout" and severity_text == "FATAL"`,
	}))

	err := ValidateConditions([]string{`severity_number >= SEVERITY_NUMBER_ERROR`, `severity_number >=`})
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "flush_when[1]: "), err.Error())
	assert.NotContains(t, err.Error(), "flush_when[0]")

	err = ValidateConditions([]string{`NoSuchFunc(body)`, `attributes["x"] == 1`, `bogus_path == 1`})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "flush_when[0]: ")
	assert.Contains(t, err.Error(), "NoSuchFunc")
	assert.Contains(t, err.Error(), "flush_when[2]: ")
	assert.NotContains(t, err.Error(), "flush_when[1]")

	// An editor is not a condition.
	require.Error(t, ValidateConditions([]string{`set(attributes["x"], 1)`}))
}

// appendText appends the text of any of lr's field paths to dst, as Builder
// reads key_from and headers_from, and reports whether the field is present.
func appendText(p FieldPath, dst []byte, sh *fieldpath.Shared, lr plog.LogRecord) ([]byte, bool) {
	return p.Append(dst, sh, func(p *FieldPath, dst []byte) ([]byte, bool) { return appendField(p, dst, lr) })
}

// text is appendText as a string, as Builder reads topic_from; for string
// values it does not copy.
func text(p FieldPath, sh *fieldpath.Shared, lr plog.LogRecord) string {
	return p.Text(sh, func(p FieldPath) string { return fieldText(p, lr) })
}
