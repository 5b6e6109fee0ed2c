package logmsg

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseFieldPath(t *testing.T) {
	valid := []struct {
		in   string
		kind fieldKind
		name string
	}{
		{"attributes.user", fieldAttribute, "user"},
		{"attributes.http.request.method", fieldAttribute, "http.request.method"},
		{"resource.host.name", fieldResource, "host.name"},
		{"resource.service.name", fieldResource, "service.name"},
		{"scope.name", fieldScope, "name"},
		{"scope.team.id", fieldScope, "team.id"},
		{"body", fieldBody, ""},
		{"body.user_id", fieldBodyKey, "user_id"},
		{"body.a.b", fieldBodyKey, "a.b"},
		{"trace_id", fieldTraceID, ""},
		{"span_id", fieldSpanID, ""},
		{"severity_text", fieldSeverityText, ""},
		{"attributes..x", fieldAttribute, ".x"},
	}
	for _, tc := range valid {
		t.Run(tc.in, func(t *testing.T) {
			p, err := ParseFieldPath(tc.in)
			require.NoError(t, err)
			assert.Equal(t, tc.kind, p.kind)
			assert.Equal(t, tc.name, p.name)
			assert.Equal(t, tc.in, p.String())
		})
	}
	invalid := []string{
		"", "attributes", "attributes.", "resource", "resource.", "scope", "scope.",
		"body.", "attribute.user", "Attributes.user", "trace_id.x", "span_id.x",
		"severity_text.x", "severity_number", "time", ".user", " body", "body ",
		"log.attributes.user", "traceid",
	}
	for _, in := range invalid {
		t.Run("invalid/"+in, func(t *testing.T) {
			_, err := ParseFieldPath(in)
			require.Error(t, err)
			assert.Contains(t, err.Error(), `"`+in+`"`, "error names the path")
			assert.Contains(t, err.Error(), acceptedForms, "error lists the accepted forms")
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
