// Package metricmsg turns pipeline metrics into Kafka messages.
//
// A message is an OTLP MetricsData with one ResourceMetrics (the resource
// and its schema URL) holding the metrics of one (resource, key value) of
// the call, under their scopes (ScopeMetrics in request order, each with its
// scope and schema URL), metrics in request order with all their data
// points. With the default key_from (none), all metrics of a resource from
// one call are one keyless message. Metrics whose topic or headers_from
// values differ are in different messages.
//
// # Field paths
//
// key_from and headers_from take:
//
//	name             the metric's name
//	resource.NAME    resource attribute NAME
//	scope.NAME       instrumentation scope attribute NAME
//	metadata.NAME    client metadata NAME of the request
//
// topic_from takes resource.NAME, scope.NAME and metadata.NAME.
//
// # Encodings
//
// otlp_proto and otlp_json: what pmetric.ProtoMarshaler and
// pmetric.JSONMarshaler write for the message's MetricsData.
//
// # Size and timestamp
//
// A message that would not fit a record batch of its own under
// producer.max_message_bytes is split into several messages of the same
// topic, key and headers, each a valid MetricsData with a run of the
// metrics in order; a single metric too large alone stays one message, which
// the exporter rejects to the dead-letter file. The Kafka timestamp is the
// now passed to Append (data points of one message carry many times).
package metricmsg

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/kafkabatcher/kafkabatcherexporter/internal/fieldpath"
	"github.com/kafkabatcher/kafkabatcherexporter/internal/msggroup"
	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// Encoding names, as in the metrics.encoding config key.
const (
	EncodingOTLPProto = "otlp_proto"
	EncodingOTLPJSON  = "otlp_json"
)

// Encodings lists the encoding names NewBuilder accepts.
func Encodings() []string { return []string{EncodingOTLPProto, EncodingOTLPJSON} }

// FieldKinds are the forms of key_from and headers_from, in the order
// errors list them.
var FieldKinds = []fieldpath.Kind{fieldpath.Name, fieldpath.Resource, fieldpath.Scope, fieldpath.Metadata}

// TopicKinds are the forms of topic_from.
var TopicKinds = []fieldpath.Kind{fieldpath.Resource, fieldpath.Scope, fieldpath.Metadata}

// ParseFieldPath parses a key_from or headers_from path of a metric.
func ParseFieldPath(s string) (fieldpath.Path, error) { return fieldpath.Parse(s, FieldKinds) }

// ParseTopicPath parses a topic_from path of a metric.
func ParseTopicPath(s string) (fieldpath.Path, error) { return fieldpath.Parse(s, TopicKinds) }

// Options configure a Builder.
type Options struct {
	Encoding    string // otlp_proto (also when empty) | otlp_json
	Topic       string // default topic; required
	TopicFrom   string // field path; optional
	KeyFrom     []string
	HeadersFrom []string
	// Headers are static headers added to every message after the
	// headers_from ones, in name order.
	Headers map[string]string
	// MaxMessageBytes is producer.max_message_bytes; larger messages are
	// split. 0 means never.
	MaxMessageBytes int
}

// Builder converts metrics to messages. It is safe for concurrent use.
type Builder struct {
	b       *msggroup.Builder
	marshal func(pmetric.Metrics) ([]byte, error)
}

// NewBuilder parses opts once. An unknown encoding is
// message.ErrUnknownEncoding, an empty topic message.ErrNoTopic.
func NewBuilder(opts Options) (*Builder, error) {
	b := &Builder{}
	switch opts.Encoding {
	case EncodingOTLPProto, "":
		m := &pmetric.ProtoMarshaler{}
		b.marshal = m.MarshalMetrics
	case EncodingOTLPJSON:
		m := &pmetric.JSONMarshaler{}
		b.marshal = m.MarshalMetrics
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
	b.b = msggroup.NewBuilder(fields, message.SignalMetrics, opts.MaxMessageBytes)
	return b, nil
}

// Append appends the messages of md to dst, in the order of each message's
// first metric, each with timestamp now. On error dst is returned as it was
// given. md is only read.
func (b *Builder) Append(ctx context.Context, dst []message.Message, md pmetric.Metrics, now time.Time) ([]message.Message, error) {
	if md.MetricCount() == 0 {
		return dst, nil
	}
	out, err := b.b.Append(ctx, dst, request{md}, now, func(_ *msggroup.Group, items []msggroup.Item, buf []byte) ([]byte, error) {
		return b.encode(md, items, buf)
	})
	if err != nil {
		return out, fmt.Errorf("encode metrics: %w", err)
	}
	return out, nil
}

// request is md as msggroup walks it.
type request struct{ md pmetric.Metrics }

func (r request) Resources() int { return r.md.ResourceMetrics().Len() }

func (r request) Resource(i int) (pcommon.Resource, int) {
	rm := r.md.ResourceMetrics().At(i)
	return rm.Resource(), rm.ScopeMetrics().Len()
}

func (r request) Scope(i, j int) (pcommon.InstrumentationScope, int) {
	sm := r.md.ResourceMetrics().At(i).ScopeMetrics().At(j)
	return sm.Scope(), sm.Metrics().Len()
}

// Item: metrics have no flush_when, and their messages take the time of
// the call.
func (r request) Item(_ context.Context, i, j, k int) (fieldpath.ItemField, bool, pcommon.Timestamp) {
	metric := r.md.ResourceMetrics().At(i).ScopeMetrics().At(j).Metrics().At(k)
	return func(p *fieldpath.Path, dst []byte) ([]byte, bool) { return appendField(p, dst, metric) }, false, 0
}

// encode appends the MetricsData of items (all of one resource) to dst.
func (b *Builder) encode(md pmetric.Metrics, items []msggroup.Item, dst []byte) ([]byte, error) {
	out := pmetric.NewMetrics()
	src := md.ResourceMetrics().At(items[0].Resource)
	rm := out.ResourceMetrics().AppendEmpty()
	src.Resource().CopyTo(rm.Resource())
	rm.SetSchemaUrl(src.SchemaUrl())
	var sm pmetric.ScopeMetrics
	scope := -1
	for _, it := range items {
		from := src.ScopeMetrics().At(it.Scope)
		if it.Scope != scope {
			scope = it.Scope
			sm = rm.ScopeMetrics().AppendEmpty()
			from.Scope().CopyTo(sm.Scope())
			sm.SetSchemaUrl(from.SchemaUrl())
		}
		from.Metrics().At(it.Index).CopyTo(sm.Metrics().AppendEmpty())
	}
	v, err := b.marshal(out)
	if err != nil {
		return dst, err
	}
	return append(dst, v...), nil
}

// appendField reads the metric's own field paths.
func appendField(p *fieldpath.Path, dst []byte, metric pmetric.Metric) ([]byte, bool) {
	if p.Kind() == fieldpath.Name {
		n := metric.Name()
		return append(dst, n...), n != ""
	}
	return dst, false
}
