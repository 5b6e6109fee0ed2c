package logmsg

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// fieldKind says which part of a log record a FieldPath reads.
type fieldKind uint8

const (
	fieldAttribute    fieldKind = iota + 1 // attributes.NAME
	fieldResource                          // resource.NAME
	fieldScope                             // scope.NAME (scope attribute)
	fieldBody                              // body
	fieldBodyKey                           // body.NAME
	fieldTraceID                           // trace_id
	fieldSpanID                            // span_id
	fieldSeverityText                      // severity_text
)

// acceptedForms lists the field path forms, for error messages.
const acceptedForms = "attributes.NAME, resource.NAME, scope.NAME, body, body.NAME, trace_id, span_id, severity_text"

// FieldPath is a parsed field path such as attributes.user or
// resource.host.name. The zero FieldPath is invalid; use ParseFieldPath.
type FieldPath struct {
	raw  string
	kind fieldKind
	name string // attribute or map key for the NAME forms
}

// String returns the path as written; it is the header name for headers_from.
func (p FieldPath) String() string { return p.raw }

// ParseFieldPath parses a field path: attributes.NAME (log record attribute),
// resource.NAME (resource attribute), scope.NAME (scope attribute), body
// (body as text), body.NAME (key of a map body), trace_id, span_id or
// severity_text. NAME is everything after the first dot, dots included, and
// must not be empty.
func ParseFieldPath(s string) (FieldPath, error) {
	switch s {
	case "body":
		return FieldPath{raw: s, kind: fieldBody}, nil
	case "trace_id":
		return FieldPath{raw: s, kind: fieldTraceID}, nil
	case "span_id":
		return FieldPath{raw: s, kind: fieldSpanID}, nil
	case "severity_text":
		return FieldPath{raw: s, kind: fieldSeverityText}, nil
	}
	prefix, name, found := strings.Cut(s, ".")
	if found && name != "" {
		switch prefix {
		case "attributes":
			return FieldPath{raw: s, kind: fieldAttribute, name: name}, nil
		case "resource":
			return FieldPath{raw: s, kind: fieldResource, name: name}, nil
		case "scope":
			return FieldPath{raw: s, kind: fieldScope, name: name}, nil
		case "body":
			return FieldPath{raw: s, kind: fieldBodyKey, name: name}, nil
		}
	}
	return FieldPath{}, fmt.Errorf("invalid field path %q: want one of %s", s, acceptedForms)
}

// value returns the field's value when the field is one of the
// pcommon.Value forms (attributes, resource, scope, body, body key).
func (p FieldPath) value(res pcommon.Resource, scope pcommon.InstrumentationScope, lr plog.LogRecord) (pcommon.Value, bool) {
	switch p.kind {
	case fieldAttribute:
		return lr.Attributes().Get(p.name)
	case fieldResource:
		return res.Attributes().Get(p.name)
	case fieldScope:
		return scope.Attributes().Get(p.name)
	case fieldBody:
		b := lr.Body()
		return b, b.Type() != pcommon.ValueTypeEmpty
	case fieldBodyKey:
		b := lr.Body()
		if b.Type() != pcommon.ValueTypeMap {
			return pcommon.Value{}, false
		}
		return b.Map().Get(p.name)
	}
	return pcommon.Value{}, false
}

// appendText appends the field's text to dst and reports whether the field
// is present. Strings and bytes are appended as is, numbers and booleans as
// text, maps and slices as JSON, ids as lowercase hex (an all-zero id is
// absent). An empty value is absent.
func (p FieldPath) appendText(dst []byte, res pcommon.Resource, scope pcommon.InstrumentationScope, lr plog.LogRecord) ([]byte, bool) {
	switch p.kind {
	case fieldTraceID:
		id := lr.TraceID()
		if id.IsEmpty() {
			return dst, false
		}
		return hex.AppendEncode(dst, id[:]), true
	case fieldSpanID:
		id := lr.SpanID()
		if id.IsEmpty() {
			return dst, false
		}
		return hex.AppendEncode(dst, id[:]), true
	case fieldSeverityText:
		t := lr.SeverityText()
		return append(dst, t...), t != ""
	}
	v, ok := p.value(res, scope, lr)
	if !ok || v.Type() == pcommon.ValueTypeEmpty {
		return dst, false
	}
	return appendValueText(dst, v), true
}

// text returns the field's text; for string values it does not copy.
func (p FieldPath) text(res pcommon.Resource, scope pcommon.InstrumentationScope, lr plog.LogRecord) string {
	switch p.kind {
	case fieldSeverityText:
		return lr.SeverityText()
	case fieldTraceID, fieldSpanID:
		b, _ := p.appendText(nil, res, scope, lr)
		return string(b)
	}
	v, ok := p.value(res, scope, lr)
	if !ok {
		return ""
	}
	if v.Type() == pcommon.ValueTypeStr {
		return v.Str()
	}
	return string(appendValueText(nil, v))
}

// appendValueText appends v as text: strings and bytes as is, scalars in
// their usual text form, maps and slices as JSON, empty as nothing.
func appendValueText(dst []byte, v pcommon.Value) []byte {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return append(dst, v.Str()...)
	case pcommon.ValueTypeBytes:
		return append(dst, v.Bytes().AsRaw()...)
	case pcommon.ValueTypeInt:
		return strconv.AppendInt(dst, v.Int(), 10)
	case pcommon.ValueTypeDouble:
		return appendFloatText(dst, v.Double())
	case pcommon.ValueTypeBool:
		return strconv.AppendBool(dst, v.Bool())
	case pcommon.ValueTypeMap, pcommon.ValueTypeSlice:
		return appendJSONValue(dst, v)
	}
	return dst
}
