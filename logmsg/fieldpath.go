package logmsg

import (
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/kafkabatcher/kafkabatcherexporter/internal/fieldpath"
)

// FieldPath is a parsed field path of a log record, such as attributes.user
// or resource.host.name. Use ParseFieldPath.
type FieldPath = fieldpath.Path

// fieldKinds are the forms a log record's field path takes, in the order
// errors list them; topic_from takes them all too.
var fieldKinds = []fieldpath.Kind{
	fieldpath.Attribute, fieldpath.Resource, fieldpath.Scope, fieldpath.Metadata,
	fieldpath.Body, fieldpath.BodyKey, fieldpath.TraceID, fieldpath.SpanID, fieldpath.SeverityText,
}

// ParseFieldPath parses a field path: attributes.NAME (log record attribute),
// resource.NAME (resource attribute), scope.NAME (scope attribute),
// metadata.NAME (client metadata), body (body as text), body.NAME (key of a
// map body), trace_id, span_id or severity_text. NAME is everything after
// the first dot, dots included, and must not be empty.
func ParseFieldPath(s string) (FieldPath, error) { return fieldpath.Parse(s, fieldKinds) }

// ParseTopicPath parses a topic_from path; it takes what ParseFieldPath does.
func ParseTopicPath(s string) (FieldPath, error) { return fieldpath.Parse(s, fieldKinds) }

// appendField reads the record's own field paths (fieldpath.ItemField): it
// appends the field's text to dst and reports whether the field is present.
// Strings and bytes are appended as is, numbers and booleans as text, maps
// and slices as JSON, ids as lowercase hex (an all-zero id is absent). An
// empty value is absent.
func appendField(p *FieldPath, dst []byte, lr plog.LogRecord) ([]byte, bool) {
	switch p.Kind() {
	case fieldpath.TraceID:
		id := lr.TraceID()
		return fieldpath.AppendID(dst, id[:])
	case fieldpath.SpanID:
		id := lr.SpanID()
		return fieldpath.AppendID(dst, id[:])
	case fieldpath.SeverityText:
		t := lr.SeverityText()
		return append(dst, t...), t != ""
	case fieldpath.Attribute:
		v, ok := lr.Attributes().Get(p.Name())
		return fieldpath.AppendValue(dst, v, ok)
	case fieldpath.Body:
		b := lr.Body()
		return fieldpath.AppendValue(dst, b, true)
	case fieldpath.BodyKey:
		b := lr.Body()
		if b.Type() != pcommon.ValueTypeMap {
			return dst, false
		}
		v, ok := b.Map().Get(p.Name())
		return fieldpath.AppendValue(dst, v, ok)
	}
	return dst, false
}

// fieldText is appendField as a string (fieldpath.ItemText); for string
// values it does not copy.
func fieldText(p FieldPath, lr plog.LogRecord) string {
	switch p.Kind() {
	case fieldpath.SeverityText:
		return lr.SeverityText()
	case fieldpath.Attribute:
		if v, ok := lr.Attributes().Get(p.Name()); ok && v.Type() == pcommon.ValueTypeStr {
			return v.Str()
		}
	case fieldpath.Body:
		if b := lr.Body(); b.Type() == pcommon.ValueTypeStr {
			return b.Str()
		}
	}
	b, _ := appendField(&p, nil, lr)
	return string(b)
}
