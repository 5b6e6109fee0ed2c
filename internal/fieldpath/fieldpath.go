// Package fieldpath parses the field paths of key_from, headers_from and
// topic_from, and reads the forms every signal shares: resource.NAME,
// scope.NAME and metadata.NAME. Each signal's package reads its own forms
// (a log record's body, a span's name, as an ItemField) and says which forms
// it accepts. Fields holds a signal's topic, topic_from, key_from and
// headers_from, parsed once, and reads an item's topic, key and headers:
// logs, spans and metrics share it.
//
// NAME is everything after the first dot and may itself hold dots:
// resource.host.name is the resource attribute "host.name". scope.NAME is
// the scope attribute NAME. metadata.NAME is the client metadata key NAME
// (client.Info, set by receivers with include_metadata: true, e.g. a request
// header); several values of one key are joined with ",".
package fieldpath

import (
	"encoding/hex"
	"fmt"
	"strings"

	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/kafkabatcher/kafkabatcherexporter/internal/jsonvalue"
)

// Kind says which field a Path reads.
type Kind uint8

// Kinds of field paths.
const (
	Attribute    Kind = iota + 1 // attributes.NAME: attribute of the record, span or data
	Resource                     // resource.NAME: resource attribute
	Scope                        // scope.NAME: instrumentation scope attribute
	Metadata                     // metadata.NAME: client metadata of the request
	Body                         // body: a log record's body as text
	BodyKey                      // body.NAME: key NAME of a map body
	TraceID                      // trace_id, lowercase hex
	SpanID                       // span_id, lowercase hex
	SeverityText                 // severity_text
	Name                         // name: a span's or metric's name
)

// prefixed kinds take a NAME; the others are one word.
var forms = map[Kind]string{
	Attribute: "attributes", Resource: "resource", Scope: "scope", Metadata: "metadata",
	Body: "body", BodyKey: "body", TraceID: "trace_id", SpanID: "span_id",
	SeverityText: "severity_text", Name: "name",
}

func (k Kind) named() bool {
	return k == Attribute || k == Resource || k == Scope || k == Metadata || k == BodyKey
}

// shared reports whether every signal reads the kind the same way.
func (k Kind) shared() bool { return k == Resource || k == Scope || k == Metadata }

// Form is how the kind is written: attributes.NAME, trace_id, ...
func (k Kind) Form() string {
	if k.named() {
		return forms[k] + ".NAME"
	}
	return forms[k]
}

// Forms lists the forms of kinds, in their order, for error messages.
func Forms(kinds []Kind) string {
	s := make([]string, len(kinds))
	for i, k := range kinds {
		s[i] = k.Form()
	}
	return strings.Join(s, ", ")
}

// Path is a parsed field path. The zero Path is invalid; use Parse.
type Path struct {
	raw  string
	kind Kind
	name string // attribute, map or metadata key of the NAME forms
}

// String returns the path as written; it is the header name for headers_from.
func (p Path) String() string { return p.raw }

// Kind returns the field the path reads.
func (p Path) Kind() Kind { return p.kind }

// Name returns NAME of the NAME forms, else "".
func (p Path) Name() string { return p.name }

// Parse parses s as one of kinds' forms; NAME must not be empty. The error
// lists the accepted forms.
func Parse(s string, kinds []Kind) (Path, error) {
	prefix, name, dotted := strings.Cut(s, ".")
	for _, k := range kinds {
		if forms[k] != prefix {
			continue
		}
		if k.named() && dotted && name != "" {
			return Path{raw: s, kind: k, name: name}, nil
		}
		if !k.named() && !dotted {
			return Path{raw: s, kind: k}, nil
		}
	}
	return Path{}, fmt.Errorf("invalid field path %q: want one of %s", s, Forms(kinds))
}

// ParseAll parses paths, each error prefixed with key[i].
func ParseAll(key string, paths []string, kinds []Kind) ([]Path, error) {
	out := make([]Path, 0, len(paths))
	for i, s := range paths {
		p, err := Parse(s, kinds)
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %w", key, i, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// Shared is what the shared forms read: the request's client metadata and
// the resource and scope of the record at hand.
type Shared struct {
	Metadata client.Metadata
	Resource pcommon.Resource
	Scope    pcommon.InstrumentationScope
}

// ItemField reads a field path of the item at hand (a log record, a span, a
// metric) that is not one of the shared forms: it appends the field's text
// to dst and reports whether the field is present.
type ItemField func(p *Path, dst []byte) ([]byte, bool)

// ItemText is ItemField as a string; it may return a string field without
// a copy.
type ItemText func(p Path) string

// Append appends the field's text to dst and reports whether the field is
// present (an empty value is absent): a shared form is read from s, another
// with item.
func (p *Path) Append(dst []byte, s *Shared, item ItemField) ([]byte, bool) {
	if p.kind.shared() {
		return p.appendShared(dst, s)
	}
	return item(p, dst)
}

// Text is Append as a string: a shared form is read from s, another with
// item; a nil item reads nothing (""). A string attribute or a single
// metadata value is returned without a copy.
func (p Path) Text(s *Shared, item ItemText) string {
	if p.kind.shared() {
		return p.textShared(s)
	}
	if item == nil {
		return ""
	}
	return item(p)
}

// appendShared appends the text of a resource, scope or metadata path and
// reports whether the field is present.
func (p *Path) appendShared(dst []byte, s *Shared) ([]byte, bool) {
	switch p.kind {
	case Resource:
		v, ok := s.Resource.Attributes().Get(p.name)
		return AppendValue(dst, v, ok)
	case Scope:
		v, ok := s.Scope.Attributes().Get(p.name)
		return AppendValue(dst, v, ok)
	}
	vals := s.Metadata.Get(p.name)
	start := len(dst)
	for i, v := range vals {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, v...)
	}
	return dst, len(dst) > start
}

// textShared is appendShared as a string.
func (p Path) textShared(s *Shared) string {
	switch p.kind {
	case Resource, Scope:
		attrs := s.Resource.Attributes()
		if p.kind == Scope {
			attrs = s.Scope.Attributes()
		}
		if v, ok := attrs.Get(p.name); ok && v.Type() == pcommon.ValueTypeStr {
			return v.Str()
		}
	case Metadata:
		if vals := s.Metadata.Get(p.name); len(vals) == 1 {
			return vals[0]
		}
	}
	b, _ := p.appendShared(nil, s)
	return string(b)
}

// AppendValue appends v's text (jsonvalue.AppendText) when ok and v is not
// empty, and reports whether it did.
func AppendValue(dst []byte, v pcommon.Value, ok bool) ([]byte, bool) {
	if !ok || v.Type() == pcommon.ValueTypeEmpty {
		return dst, false
	}
	return jsonvalue.AppendText(dst, v), true
}

// AppendID appends id as lowercase hex unless it is all zero.
func AppendID(dst []byte, id []byte) ([]byte, bool) {
	for _, b := range id {
		if b != 0 {
			return hex.AppendEncode(dst, id), true
		}
	}
	return dst, false
}
