// Package logmsg turns pipeline log records into Kafka messages: the value
// in the configured encoding, key and headers from field paths, the topic,
// the record timestamp, and whether the record matches a flush_when
// condition. A message holds one log record, or with MessagePerKey the
// records of one resource, scope and key of a call (see Grouped messages).
//
// # Field paths
//
// key_from, headers_from and topic_from name fields of a log record:
//
//	attributes.NAME  log record attribute NAME
//	resource.NAME    resource attribute NAME
//	scope.NAME       instrumentation scope attribute NAME (not the scope's
//	                 name or version: scope.name is the attribute "name")
//	metadata.NAME    client metadata NAME of the request (receivers with
//	                 include_metadata: true), values joined with ","
//	body             the body as text
//	body.NAME        key NAME of a map body (absent for other bodies)
//	trace_id         trace id, lowercase hex (absent when all zero)
//	span_id          span id, lowercase hex (absent when all zero)
//	severity_text    severity text (absent when empty)
//
// NAME is everything after the first dot and may itself hold dots:
// resource.host.name is the resource attribute "host.name". Paths are parsed
// once, by NewBuilder.
//
// A field's text is: a string as is, bytes as is, an int, double or bool in
// its usual text form (doubles as pcommon.Value.AsString writes them), a map
// or slice as JSON; an empty value is absent. The key is the first key_from
// field whose text is not empty (none: nil key). Each present headers_from
// field gives a header named after the path as written, with the field's
// text as value (an empty string gives an empty header value; an absent
// field gives no header). The topic is the topic_from field's text when set
// and not empty, else Options.Topic.
//
// # Encodings
//
//   - otlp_proto, otlp_json: an OTLP LogsData holding one ResourceLogs (the
//     resource and its schema URL), one ScopeLogs (the scope and its schema
//     URL) and the one LogRecord (grouped: the message's records), byte for
//     byte what plog.ProtoMarshaler and plog.JSONMarshaler write for that
//     LogsData, so any OTLP consumer (the contrib kafka receiver included)
//     decodes it. For speed otlp_proto writes each record's bytes itself,
//     as pdata does, between the resource's and scope's own fields taken
//     from marshaling the request's resources and scopes once (a protobuf
//     message is the concatenation of its fields); output it does not
//     recognise makes it fall back to marshaling a copy of the message's
//     records, which is what otlp_json always does.
//   - json: one flat object per record, empty fields left out:
//     {"time", "observed_time" (RFC 3339, nanoseconds, UTC), "severity_number",
//     "severity_text", "event_name", "body" (a string or JSON value),
//     "attributes", "resource" (resource attributes), "scope" ({"name",
//     "version", "attributes"}), "trace_id", "span_id" (lowercase hex),
//     "flags"}. Map keys keep their order; bytes values are base64 strings;
//     NaN and infinite doubles are the strings "NaN", "Infinity", "-Infinity".
//     Schema URLs and dropped-attribute counts are not written.
//   - raw: a string body as its UTF-8 bytes, a bytes body as is, a map or
//     slice body as JSON, another scalar as its text; an empty body gives an
//     empty, non-nil value.
//
// # Grouped messages
//
// With MessagePer MessagePerKey (otlp_proto and otlp_json only) the records
// of one Append call that share resource, scope, key (the key_from text;
// keyless is a value of its own), topic and headers_from values are one
// message: a LogsData with one ResourceLogs holding one ScopeLogs holding
// those records in request order, what the OTLP marshalers write for it.
// Messages come in the order of their first record. The message's topic
// and headers are true of every record in it. Its timestamp is its first
// record's (as below); it has Message.Trigger set when any of its records
// matches flush_when. A message that would not fit a record batch of its
// own under Options.MaxMessageBytes is split into several of the same
// topic, key and headers, each a run of the records in order; a single
// record too large alone stays one message (the exporter rejects it as
// oversize). This is how spanmsg groups spans, through internal/msggroup.
//
// # Timestamp and flush
//
// The Kafka record timestamp is the log record's time, else its observed
// time, else the now passed to Append. flush_when holds OTTL conditions in
// the log context (ottllog, contrib pkg/ottl v0.163.0) with the standard
// OTTL converters (IsMatch, Len, ...; editors such as set are not conditions
// and are rejected); a record matching any of them has Message.Trigger set.
// A condition that fails at run time for a record (e.g. a type error) is
// logged at warn level and counts as false: one odd record must not fail an
// export. Errors of a bad condition are the OTTL parser's, prefixed with
// flush_when[i].
//
// # Memory
//
// The values, keys and header values of one Append call share slabs of at
// most 256 KiB (each a capacity-clipped slice, so appending to one cannot
// touch another): one allocation for many records. A record kept long can
// keep the rest of its slab alive. The headers of one call share one array.
// Grouped messages share slabs of values; each group has its own key and
// header values. Nothing of the input plog.Logs is retained except strings
// used as topics.
package logmsg

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/kafkabatcher/kafkabatcherexporter/internal/fieldpath"
	"github.com/kafkabatcher/kafkabatcherexporter/internal/msggroup"
	"github.com/kafkabatcher/kafkabatcherexporter/internal/slab"
	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// Encoding names, as in the encoding config key.
const (
	EncodingOTLPProto = "otlp_proto"
	EncodingOTLPJSON  = "otlp_json"
	EncodingJSON      = "json"
	EncodingRaw       = "raw"
)

// Encodings lists the encoding names NewBuilder accepts.
func Encodings() []string {
	return []string{EncodingOTLPProto, EncodingOTLPJSON, EncodingJSON, EncodingRaw}
}

// What a message holds, as in the message_per config key.
const (
	// MessagePerRecord makes one message per log record.
	MessagePerRecord = "record"
	// MessagePerKey makes one message per resource, scope and key of a
	// call (otlp_proto and otlp_json only).
	MessagePerKey = "key"
)

// MessagePers lists the message_per values NewBuilder accepts.
func MessagePers() []string { return []string{MessagePerRecord, MessagePerKey} }

// GroupEncodings lists the encodings MessagePerKey takes.
func GroupEncodings() []string { return []string{EncodingOTLPProto, EncodingOTLPJSON} }

// Options configure a Builder.
type Options struct {
	Encoding    string // otlp_proto (also when empty) | otlp_json | json | raw
	Topic       string // default topic; required
	TopicFrom   string // field path; optional
	KeyFrom     []string
	HeadersFrom []string
	// Headers are static headers added to every message after the
	// headers_from ones, in name order.
	Headers   map[string]string
	FlushWhen []string // OTTL log conditions
	// MessagePer is MessagePerRecord (also when empty) or MessagePerKey.
	MessagePer string
	// MaxMessageBytes is producer.max_message_bytes: with MessagePerKey,
	// larger messages are split. 0 means never.
	MaxMessageBytes int
}

// Builder converts log records to messages. It is safe for concurrent use.
type Builder struct {
	newEncoder func() encoder
	fields     fieldpath.Fields
	match      *matcher
	scratch    sync.Pool // *scratch, per-call working memory
	// group is set with MessagePerKey: the records of a message are
	// grouped there.
	group *msggroup.Builder
}

// scratch is the working memory of one Append call.
type scratch struct {
	enc encoder
	buf []byte // value, then key, then header values of one record
	hdr []int  // end offsets in buf of the header values; -1 for absent
	// slab holds the bytes of the messages of one Append call. Reset per
	// call, never reused across calls, since the messages keep referring to it.
	slab slab.Slab
}

// NewBuilder parses opts once: encoding, message_per, field paths and
// flush_when conditions. set is used for the OTTL conditions' run-time error
// logs. An unknown encoding is message.ErrUnknownEncoding, an empty topic
// message.ErrNoTopic; an unknown message_per, or MessagePerKey with an
// encoding it does not take, is an error naming message_per.
func NewBuilder(opts Options, set component.TelemetrySettings) (*Builder, error) {
	b := &Builder{}
	switch opts.Encoding {
	case EncodingOTLPProto, "":
		b.newEncoder = newOTLPProtoEncoder
	case EncodingOTLPJSON:
		b.newEncoder = newOTLPJSONEncoder
	case EncodingJSON:
		b.newEncoder = newJSONEncoder
	case EncodingRaw:
		b.newEncoder = newRawEncoder
	default:
		return nil, fmt.Errorf("encoding: %w %q, want one of %s",
			message.ErrUnknownEncoding, opts.Encoding, strings.Join(Encodings(), ", "))
	}
	grouped, err := messagePer(opts)
	if err != nil {
		return nil, err
	}
	b.fields, err = fieldpath.NewFields(fieldpath.Options{
		Topic: opts.Topic, TopicFrom: opts.TopicFrom, KeyFrom: opts.KeyFrom,
		HeadersFrom: opts.HeadersFrom, Headers: opts.Headers,
	}, fieldKinds, fieldKinds)
	if err != nil {
		return nil, err
	}
	if grouped {
		b.group = msggroup.NewBuilder(b.fields, message.SignalLogs, opts.MaxMessageBytes, msggroup.PerScope())
	}
	if set.Logger == nil {
		set = nopTelemetry()
	}
	if b.match, err = newMatcher(opts.FlushWhen, set); err != nil {
		return nil, err
	}
	b.scratch.New = func() any { return &scratch{enc: b.newEncoder()} }
	return b, nil
}

// Append appends the messages of ld to dst: one per log record, in order,
// or with MessagePerKey one per group of records, in the order of each
// group's first record. now is the timestamp of records that carry neither
// time nor observed time. On error dst is returned as it was given. ld is
// only read.
func (b *Builder) Append(ctx context.Context, dst []message.Message, ld plog.Logs, now time.Time) ([]message.Message, error) {
	n := ld.LogRecordCount()
	if n == 0 {
		return dst, nil
	}
	if b.group != nil {
		return b.appendGrouped(ctx, dst, ld, now)
	}
	start := len(dst)
	dst = growMessages(dst, n)
	var headers []message.Header
	if nh := b.fields.NumHeaders(); nh > 0 {
		// One backing array for the headers of all records of this call.
		headers = make([]message.Header, 0, n*nh)
	}

	st := b.scratch.Get().(*scratch)
	defer b.putScratch(st)
	st.slab.Reset(n)
	st.enc.begin(ld)
	sh := fieldpath.Shared{Metadata: client.FromContext(ctx).Metadata}
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		sh.Resource = rl.Resource()
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			sl := sls.At(j)
			sh.Scope = sl.Scope()
			lrs := sl.LogRecords()
			if lrs.Len() == 0 {
				continue
			}
			st.enc.startScope(i, j, rl, sl)
			for k := 0; k < lrs.Len(); k++ {
				lr := lrs.At(k)
				m, err := b.build(ctx, st, &headers, &sh, rl, sl, lr, now)
				if err != nil {
					return dst[:start], fmt.Errorf("encode log record %d of scope %d of resource %d: %w", k, j, i, err)
				}
				dst = append(dst, m)
			}
		}
	}
	return dst, nil
}

func (b *Builder) putScratch(st *scratch) {
	st.enc.end()
	st.slab.Reset(0)
	b.scratch.Put(st)
}

// build makes the message of one record.
// topic is the record's topic: topic_from's text, or the default topic.
func (b *Builder) topic(sh *fieldpath.Shared, lr plog.LogRecord) string {
	if t, static := b.fields.StaticTopic(); static {
		return t
	}
	return b.fields.Topic(sh, func(p FieldPath) string { return fieldText(p, lr) })
}

func (b *Builder) build(ctx context.Context, st *scratch, headers *[]message.Header,
	sh *fieldpath.Shared, rl plog.ResourceLogs, sl plog.ScopeLogs, lr plog.LogRecord, now time.Time,
) (message.Message, error) {
	var err error
	buf := st.buf[:0]
	if buf, err = st.enc.appendRecord(buf, lr); err != nil {
		st.buf = buf
		return message.Message{}, err
	}
	valueEnd := len(buf)
	field := func(p *FieldPath, dst []byte) ([]byte, bool) { return appendField(p, dst, lr) }
	buf, hasKey := b.fields.AppendKey(buf, sh, field)
	keyEnd := len(buf)
	buf, st.hdr = b.fields.AppendHeaderValues(buf, st.hdr[:0], sh, field)
	st.buf = buf

	// The slab holds the value, the key and the header values; each is a
	// capacity-clipped slice of it, so appending to one cannot touch another.
	block := st.slab.Take(buf)
	m := message.Message{
		Topic:     b.topic(sh, lr),
		Value:     block[:valueEnd:valueEnd],
		Timestamp: timestamp(lr, now),
		Trigger:   b.match.match(ctx, rl, sl, lr),
	}
	if hasKey {
		m.Key = block[valueEnd:keyEnd:keyEnd]
	}
	if b.fields.NumHeaders() > 0 {
		first := len(*headers)
		*headers = b.fields.AppendHeaders(*headers, block[keyEnd:], keyEnd, st.hdr)
		if len(*headers) > first {
			m.Headers = (*headers)[first:len(*headers):len(*headers)]
		}
	}
	return m, nil
}

// timestamp is the record's time, else its observed time, else now.
func timestamp(lr plog.LogRecord, now time.Time) time.Time {
	if ts := lr.Timestamp(); ts != 0 {
		return ts.AsTime()
	}
	if ts := lr.ObservedTimestamp(); ts != 0 {
		return ts.AsTime()
	}
	return now
}

// growMessages makes room for n more messages.
func growMessages(dst []message.Message, n int) []message.Message {
	if cap(dst)-len(dst) >= n {
		return dst
	}
	grown := make([]message.Message, len(dst), len(dst)+n)
	copy(grown, dst)
	return grown
}
