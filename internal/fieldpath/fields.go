package fieldpath

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// Options name where a message's topic, key and headers come from.
type Options struct {
	Topic       string // default topic; required
	TopicFrom   string // field path; optional
	KeyFrom     []string
	HeadersFrom []string
	// Headers are static headers, name to value, added to every message
	// after the headers_from ones, in name order.
	Headers map[string]string
}

// ErrEmptyHeaderName is a static header without a name.
var ErrEmptyHeaderName = errors.New("header name must not be empty")

// Fields are Options parsed. A Fields is only read after NewFields, so one
// serves many goroutines.
type Fields struct {
	topic       string
	topicFrom   Path
	hasTopic    bool
	keyFrom     []Path
	headersFrom []Path
	static      []message.Header // Options.Headers in name order
}

// NewFields parses opts: topic_from takes topicKinds, key_from and
// headers_from take kinds. An empty Topic is message.ErrNoTopic. Errors name
// the key (key_from[1]: ...).
func NewFields(opts Options, topicKinds, kinds []Kind) (Fields, error) {
	f := Fields{topic: opts.Topic}
	if opts.Topic == "" {
		return f, fmt.Errorf("topic: %w", message.ErrNoTopic)
	}
	if opts.TopicFrom != "" {
		p, err := Parse(opts.TopicFrom, topicKinds)
		if err != nil {
			return f, fmt.Errorf("topic_from: %w", err)
		}
		f.topicFrom, f.hasTopic = p, true
	}
	var err error
	if f.keyFrom, err = ParseAll("key_from", opts.KeyFrom, kinds); err != nil {
		return f, err
	}
	if f.headersFrom, err = ParseAll("headers_from", opts.HeadersFrom, kinds); err != nil {
		return f, err
	}
	if f.static, err = StaticHeaders(opts.Headers); err != nil {
		return f, fmt.Errorf("headers: %w", err)
	}
	return f, nil
}

// StaticHeaders returns headers as record headers in name order, or
// ErrEmptyHeaderName. Each value is a capacity-clipped slice, shared by the
// messages that carry it and never written.
func StaticHeaders(headers map[string]string) ([]message.Header, error) {
	if len(headers) == 0 {
		return nil, nil
	}
	hs := make([]message.Header, 0, len(headers))
	for _, name := range slices.Sorted(maps.Keys(headers)) {
		if name == "" {
			return nil, ErrEmptyHeaderName
		}
		v := []byte(headers[name])
		hs = append(hs, message.Header{Key: name, Value: v[:len(v):len(v)]})
	}
	return hs, nil
}

// StaticTopic returns the default topic and true when there is no
// topic_from: every item goes there, and a hot path need not read its
// fields for it.
func (f *Fields) StaticTopic() (string, bool) { return f.topic, !f.hasTopic }

// Topic returns the text of the topic_from field when it is set and not
// empty, else the default topic.
func (f *Fields) Topic(s *Shared, item ItemText) string {
	if f.hasTopic {
		if t := f.topicFrom.Text(s, item); t != "" {
			return t
		}
	}
	return f.topic
}

// AppendTopic appends the topic to dst: the text of the topic_from field
// when it is set and not empty, else the default topic. It is Topic for a
// caller that reads the item as an ItemField.
func (f *Fields) AppendTopic(dst []byte, s *Shared, item ItemField) []byte {
	if f.hasTopic {
		start := len(dst)
		out, ok := f.topicFrom.Append(dst, s, item)
		if ok && len(out) > start {
			return out
		}
		dst = out[:start]
	}
	return append(dst, f.topic...)
}

// AppendKey appends the key to dst: the text of the first key_from field
// whose text is not empty. It reports whether there was one; none means the
// message is keyless, which differs from an empty key.
func (f *Fields) AppendKey(dst []byte, s *Shared, item ItemField) ([]byte, bool) {
	start := len(dst)
	for i := range f.keyFrom {
		var ok bool
		if dst, ok = f.keyFrom[i].Append(dst, s, item); ok && len(dst) > start {
			return dst, true
		}
		dst = dst[:start]
	}
	return dst, false
}

// NumHeaders returns the most headers a message gets: one per headers_from
// path and one per static header.
func (f *Fields) NumHeaders() int { return len(f.headersFrom) + len(f.static) }

// AppendHeaderValues appends the text of each present headers_from field to
// dst, and to ends the end offset in dst of each field's text, or -1 for an
// absent field (an empty text is present: an empty header value).
func (f *Fields) AppendHeaderValues(dst []byte, ends []int, s *Shared, item ItemField) ([]byte, []int) {
	for i := range f.headersFrom {
		var ok bool
		if dst, ok = f.headersFrom[i].Append(dst, s, item); ok {
			ends = append(ends, len(dst))
		} else {
			ends = append(ends, -1)
		}
	}
	return dst, ends
}

// AppendHeaders appends to dst the headers whose values AppendHeaderValues
// read: one per present field, named after the path as written; then every
// static header, whatever the fields gave (a static header with the name of
// a headers_from path is a second header of that name). vals holds what it
// appended, which started at offset start of its dst, and ends are as it
// returned them. Each field's value is a capacity-clipped slice of vals, so
// appending to one cannot touch another; the static values are shared,
// clipped too.
func (f *Fields) AppendHeaders(dst []message.Header, vals []byte, start int, ends []int) []message.Header {
	off := 0
	for i, end := range ends {
		if end < 0 {
			continue
		}
		end -= start
		dst = append(dst, message.Header{Key: f.headersFrom[i].String(), Value: vals[off:end:end]})
		off = end
	}
	return append(dst, f.static...)
}
