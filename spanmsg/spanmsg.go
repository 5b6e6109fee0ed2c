// Package spanmsg turns pipeline spans into Kafka messages.
//
// A message is an OTLP TracesData with one ResourceSpans (the resource and
// its schema URL) holding the spans of one (resource, key value) of the
// call, under their scopes (ScopeSpans in the order of the request, each
// with its scope and schema URL), spans in request order. With the default
// key trace_id, all spans of a trace from one call are one message, and
// every span of a trace lands on one partition. Spans whose topic or
// headers_from values differ are in different messages, so a message's
// topic and headers are true of every span in it.
//
// # Field paths
//
// key_from and headers_from take:
//
//	trace_id         trace id, lowercase hex (absent when all zero)
//	span_id          span id, lowercase hex (absent when all zero)
//	name             the span's name (absent when empty)
//	attributes.NAME  span attribute NAME
//	resource.NAME    resource attribute NAME
//	scope.NAME       instrumentation scope attribute NAME
//	metadata.NAME    client metadata NAME of the request
//
// topic_from takes resource.NAME, scope.NAME and metadata.NAME. A field's
// text is as in logmsg: strings as is, other values as text or JSON.
//
// # Encodings
//
// otlp_proto and otlp_json: what ptrace.ProtoMarshaler and
// ptrace.JSONMarshaler write for the message's TracesData.
//
// # Size, timestamp, flush
//
// A message that would not fit a record batch of its own under
// producer.max_message_bytes is split into several messages of the same
// topic, key and headers, each a valid TracesData with a run of the spans
// in order; a single span too large alone stays one message, which the
// exporter rejects to the dead-letter file. The Kafka timestamp is the
// start time of the message's first span, else the now passed to Append.
// flush_when holds OTTL conditions in the span context (ottlspan) with the
// standard converters; a message with a matching span has Message.Trigger
// set. A condition that fails at run time counts as false.
package spanmsg

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/ottl"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/ottl/contexts/ottlspan"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/ottl/ottlfuncs"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/kafkabatcher/kafkabatcherexporter/internal/fieldpath"
	"github.com/kafkabatcher/kafkabatcherexporter/internal/msggroup"
	"github.com/kafkabatcher/kafkabatcherexporter/internal/ottlcond"
	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// Encoding names, as in the traces.encoding config key.
const (
	EncodingOTLPProto = "otlp_proto"
	EncodingOTLPJSON  = "otlp_json"
)

// Encodings lists the encoding names NewBuilder accepts.
func Encodings() []string { return []string{EncodingOTLPProto, EncodingOTLPJSON} }

// DefaultKeyFrom is the default of traces.key_from: the spans of a trace
// travel together.
func DefaultKeyFrom() []string { return []string{"trace_id"} }

// FieldKinds are the forms of key_from and headers_from, in the order
// errors list them.
var FieldKinds = []fieldpath.Kind{
	fieldpath.TraceID, fieldpath.SpanID, fieldpath.Name, fieldpath.Attribute,
	fieldpath.Resource, fieldpath.Scope, fieldpath.Metadata,
}

// TopicKinds are the forms of topic_from.
var TopicKinds = []fieldpath.Kind{fieldpath.Resource, fieldpath.Scope, fieldpath.Metadata}

// Options configure a Builder.
type Options struct {
	Encoding    string // otlp_proto (also when empty) | otlp_json
	Topic       string // default topic; required
	TopicFrom   string // field path; optional
	KeyFrom     []string
	HeadersFrom []string
	// Headers are static headers added to every message after the
	// headers_from ones, in name order.
	Headers   map[string]string
	FlushWhen []string // OTTL span conditions
	// MaxMessageBytes is producer.max_message_bytes; larger messages are
	// split. 0 means never.
	MaxMessageBytes int
}

// Builder converts spans to messages. It is safe for concurrent use.
type Builder struct {
	b       *msggroup.Builder
	marshal func(ptrace.Traces) ([]byte, error)
	match   *ottlcond.Matcher[*ottlspan.TransformContext]
}

func newParser(set component.TelemetrySettings) (ottl.Parser[*ottlspan.TransformContext], error) {
	return ottlspan.NewParser(ottlfuncs.StandardConverters[*ottlspan.TransformContext](), set)
}

// ValidateCondition parses one OTTL span condition and returns the
// parser's error as it is, for callers that name the condition themselves.
func ValidateCondition(condition string) error { return ottlcond.Validate(newParser, condition) }

// ParseFieldPath parses a key_from or headers_from path of a span.
func ParseFieldPath(s string) (fieldpath.Path, error) { return fieldpath.Parse(s, FieldKinds) }

// ParseTopicPath parses a topic_from path of a span.
func ParseTopicPath(s string) (fieldpath.Path, error) { return fieldpath.Parse(s, TopicKinds) }

// NewBuilder parses opts once. set is used for the OTTL conditions'
// run-time error logs. An unknown encoding is message.ErrUnknownEncoding, an
// empty topic message.ErrNoTopic.
func NewBuilder(opts Options, set component.TelemetrySettings) (*Builder, error) {
	b := &Builder{}
	switch opts.Encoding {
	case EncodingOTLPProto, "":
		m := &ptrace.ProtoMarshaler{}
		b.marshal = m.MarshalTraces
	case EncodingOTLPJSON:
		m := &ptrace.JSONMarshaler{}
		b.marshal = m.MarshalTraces
	default:
		return nil, fmt.Errorf("encoding: %w %q, want one of %s",
			message.ErrUnknownEncoding, opts.Encoding, strings.Join(Encodings(), ", "))
	}
	fields, err := fieldpath.NewFields(fieldpath.Options{
		Topic: opts.Topic, TopicFrom: opts.TopicFrom, KeyFrom: opts.KeyFrom,
		HeadersFrom: opts.HeadersFrom, Headers: opts.Headers,
	}, TopicKinds, FieldKinds)
	if err != nil {
		return nil, err
	}
	b.b = msggroup.NewBuilder(fields, message.SignalTraces, opts.MaxMessageBytes)
	if set.Logger == nil {
		set = ottlcond.NopTelemetry()
	}
	if b.match, err = ottlcond.NewMatcher(newParser, opts.FlushWhen, set); err != nil {
		return nil, err
	}
	return b, nil
}

// Append appends the messages of td to dst, in the order of each message's
// first span; now is the timestamp of messages whose first span has no start
// time. On error dst is returned as it was given. td is only read.
func (b *Builder) Append(ctx context.Context, dst []message.Message, td ptrace.Traces, now time.Time) ([]message.Message, error) {
	if td.SpanCount() == 0 {
		return dst, nil
	}
	out, err := b.b.Append(ctx, dst, request{td, b}, now, func(_ *msggroup.Group, items []msggroup.Item, buf []byte) ([]byte, error) {
		return b.encode(td, items, buf)
	})
	if err != nil {
		return out, fmt.Errorf("encode spans: %w", err)
	}
	return out, nil
}

// request is td as msggroup walks it.
type request struct {
	td ptrace.Traces
	b  *Builder
}

func (r request) Resources() int { return r.td.ResourceSpans().Len() }

func (r request) Resource(i int) (pcommon.Resource, int) {
	rs := r.td.ResourceSpans().At(i)
	return rs.Resource(), rs.ScopeSpans().Len()
}

func (r request) Scope(i, j int) (pcommon.InstrumentationScope, int) {
	ss := r.td.ResourceSpans().At(i).ScopeSpans().At(j)
	return ss.Scope(), ss.Spans().Len()
}

func (r request) Item(ctx context.Context, i, j, k int) (fieldpath.ItemField, bool, pcommon.Timestamp) {
	rs := r.td.ResourceSpans().At(i)
	ss := rs.ScopeSpans().At(j)
	span := ss.Spans().At(k)
	field := func(p *fieldpath.Path, dst []byte) ([]byte, bool) { return appendField(p, dst, span) }
	return field, r.b.matches(ctx, rs, ss, span), span.StartTimestamp()
}

func (b *Builder) matches(ctx context.Context, rs ptrace.ResourceSpans, ss ptrace.ScopeSpans, span ptrace.Span) bool {
	if b.match == nil {
		return false
	}
	tCtx := ottlspan.NewTransformContext(rs, ss, span)
	defer tCtx.Close()
	return b.match.Match(ctx, tCtx)
}

// encode appends the TracesData of items (all of one resource) to dst.
func (b *Builder) encode(td ptrace.Traces, items []msggroup.Item, dst []byte) ([]byte, error) {
	out := ptrace.NewTraces()
	src := td.ResourceSpans().At(items[0].Resource)
	rs := out.ResourceSpans().AppendEmpty()
	src.Resource().CopyTo(rs.Resource())
	rs.SetSchemaUrl(src.SchemaUrl())
	var ss ptrace.ScopeSpans
	scope := -1
	for _, it := range items {
		from := src.ScopeSpans().At(it.Scope)
		if it.Scope != scope {
			scope = it.Scope
			ss = rs.ScopeSpans().AppendEmpty()
			from.Scope().CopyTo(ss.Scope())
			ss.SetSchemaUrl(from.SchemaUrl())
		}
		from.Spans().At(it.Index).CopyTo(ss.Spans().AppendEmpty())
	}
	v, err := b.marshal(out)
	if err != nil {
		return dst, err
	}
	return append(dst, v...), nil
}

// appendField reads the span's own field paths.
func appendField(p *fieldpath.Path, dst []byte, span ptrace.Span) ([]byte, bool) {
	switch p.Kind() {
	case fieldpath.TraceID:
		id := span.TraceID()
		return fieldpath.AppendID(dst, id[:])
	case fieldpath.SpanID:
		id := span.SpanID()
		return fieldpath.AppendID(dst, id[:])
	case fieldpath.Name:
		n := span.Name()
		return append(dst, n...), n != ""
	case fieldpath.Attribute:
		v, ok := span.Attributes().Get(p.Name())
		return fieldpath.AppendValue(dst, v, ok)
	}
	return dst, false
}
