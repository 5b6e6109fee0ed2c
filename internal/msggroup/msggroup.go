// Package msggroup builds the messages of the signals whose message holds
// many items (spans, metrics, log records with message_per: key): items of
// one request are grouped by (resource, topic, key, headers), and by scope
// too when the Builder is PerScope; each group is encoded as one message,
// and a message too large for producer.max_message_bytes is split into
// several of the same key, in order, down to one item each.
//
// The signal's package reads its pdata types through Request; this one sees
// resources, scopes, indexes and bytes, and reads each item's topic, key and
// headers with fieldpath.Fields.
package msggroup

import (
	"context"
	"encoding/binary"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/kafkabatcher/kafkabatcherexporter/internal/fieldpath"
	"github.com/kafkabatcher/kafkabatcherexporter/internal/slab"
	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// Item is one span, metric or log record of a request: the indexes of its resource, of
// its scope within the resource and of itself within the scope.
type Item struct{ Resource, Scope, Index int }

// Group is the items of one message, in request order: one resource (and
// one scope when grouped PerScope), one topic, one key and the same header
// values for every item.
type Group struct {
	Topic     string
	Key       []byte // nil: keyless
	Headers   []message.Header
	Trigger   bool      // an item matched flush_when
	Timestamp time.Time // set by the caller for a new group
	// Items are set by Grouper.Groups, and valid until the Grouper's next
	// Reset.
	Items []Item
	n     int // items added
}

// Grouper groups the items of one request. It is used by one goroutine; a
// pool of them serves a Builder.
type Grouper struct {
	// PerScope puts items of different scopes in different groups.
	PerScope bool

	index  map[string]int
	groups []Group
	items  []Item  // the request's items, in order
	of     []int32 // of[i] is the group of items[i]
	flat   []Item  // the groups' Items, laid out one group after another
	buf    []byte  // key, header values, then topic of the item at hand
	ends   []int   // end offsets in buf of the header values; -1 for absent
	id     []byte  // identity of the item's group
}

// Reset starts a request.
func (g *Grouper) Reset() {
	if g.index == nil {
		g.index = map[string]int{}
	}
	clear(g.index)
	clear(g.groups) // drop references to the last request's data
	g.groups = g.groups[:0]
	g.items, g.of = g.items[:0], g.of[:0]
}

// Add places item in its group and returns the group, and whether it is
// new. The group's Items are set by Groups.
func (g *Grouper) Add(f *fieldpath.Fields, sh *fieldpath.Shared, item Item, field fieldpath.ItemField, flush bool) (*Group, bool) {
	buf, hasKey := f.AppendKey(g.buf[:0], sh, field)
	keyEnd := len(buf)
	buf, g.ends = f.AppendHeaderValues(buf, g.ends[:0], sh, field)
	hdrEnd := len(buf)
	buf = f.AppendTopic(buf, sh, field)
	g.buf = buf
	topic := buf[hdrEnd:]

	// The identity: resource (and scope), topic, key (keyless differs from
	// empty) and each header (absent differs from empty).
	id := binary.AppendUvarint(g.id[:0], uint64(item.Resource))
	if g.PerScope {
		id = binary.AppendUvarint(id, uint64(item.Scope))
	}
	id = binary.AppendUvarint(id, uint64(len(topic)))
	id = append(id, topic...)
	if hasKey {
		id = append(id, 1)
	} else {
		id = append(id, 0)
	}
	id = binary.AppendUvarint(id, uint64(keyEnd))
	id = append(id, buf[:keyEnd]...)
	off := keyEnd
	for _, end := range g.ends {
		if end < 0 {
			id = append(id, 0)
			continue
		}
		id = append(id, 1)
		id = binary.AppendUvarint(id, uint64(end-off))
		id = append(id, buf[off:end]...)
		off = end
	}
	g.id = id

	g.items = append(g.items, item)
	if i, ok := g.index[string(id)]; ok {
		g.of = append(g.of, int32(i))
		grp := &g.groups[i]
		grp.n++
		grp.Trigger = grp.Trigger || flush
		return grp, false
	}
	g.of = append(g.of, int32(len(g.groups)))
	// A new group owns copies of its topic, key and header values; the
	// default topic is shared.
	grp := Group{Trigger: flush, n: 1}
	if def, _ := f.StaticTopic(); string(topic) == def {
		grp.Topic = def
	} else {
		grp.Topic = string(topic)
	}
	if hasKey {
		grp.Key = append([]byte(nil), buf[:keyEnd]...)
	}
	if f.NumHeaders() > 0 {
		vals := append([]byte(nil), buf[keyEnd:hdrEnd]...)
		grp.Headers = f.AppendHeaders(nil, vals, keyEnd, g.ends)
	}
	g.index[string(id)] = len(g.groups)
	g.groups = append(g.groups, grp)
	return &g.groups[len(g.groups)-1], true
}

// Groups returns the groups of the request, in the order of their first
// item, each with its Items in request order. The Items of all groups share
// one array, reused by the next request.
func (g *Grouper) Groups() []Group {
	flat := slices.Grow(g.flat[:0], len(g.items))
	off := 0
	for i := range g.groups {
		grp := &g.groups[i]
		grp.Items = flat[off : off : off+grp.n]
		off += grp.n
	}
	for k, it := range g.items {
		grp := &g.groups[g.of[k]]
		grp.Items = append(grp.Items, it)
	}
	g.flat = flat
	return g.groups
}

// Encode writes items of grp (a run of grp.Items) as one message value,
// appended to dst.
type Encode func(grp *Group, items []Item, dst []byte) ([]byte, error)

// Encoder turns groups into messages.
type Encoder struct {
	Signal message.Signal
	// MaxMessageBytes is producer.max_message_bytes: a message that would
	// not fit a record batch of its own is split; 0 means never.
	MaxMessageBytes int

	buf  []byte
	slab slab.Slab
}

// Append appends the messages of groups to dst, in order: one per group,
// or, for a group too large, several of the same key, topic and headers,
// each holding a run of its items in order. A single item too large alone
// stays one message (the batcher rejects it as oversize).
func (e *Encoder) Append(dst []message.Message, groups []Group, encode Encode) ([]message.Message, error) {
	e.slab.Reset(len(groups))
	defer e.slab.Reset(0)
	for i := range groups {
		var err error
		if dst, err = e.appendRun(dst, &groups[i], groups[i].Items, encode); err != nil {
			return dst, err
		}
	}
	return dst, nil
}

func (e *Encoder) appendRun(dst []message.Message, grp *Group, items []Item, encode Encode) ([]message.Message, error) {
	value, err := encode(grp, items, e.buf[:0])
	if err != nil {
		return dst, err
	}
	e.buf = value
	m := message.Message{
		Topic: grp.Topic, Key: grp.Key, Headers: grp.Headers, Value: value,
		Timestamp: grp.Timestamp, Trigger: grp.Trigger, Signal: e.Signal,
	}
	if len(items) > 1 && e.tooLarge(&m) {
		half := len(items) / 2
		if dst, err = e.appendRun(dst, grp, items[:half], encode); err != nil {
			return dst, err
		}
		return e.appendRun(dst, grp, items[half:], encode)
	}
	m.Value = e.slab.Take(value)
	return append(dst, m), nil
}

// tooLarge is the batcher's oversize rule: m does not fit a batch of its own.
func (e *Encoder) tooLarge(m *message.Message) bool {
	return e.MaxMessageBytes > 0 && message.BatchHeaderBytes+message.RecordSize(m, 0, m.Timestamp) > e.MaxMessageBytes
}

// Request is the shape of one request: its resources, their scopes and the
// items (spans, metrics or log records) of each scope.
type Request interface {
	Resources() int
	// Resource returns resource i and its number of scopes.
	Resource(i int) (pcommon.Resource, int)
	// Scope returns scope j of resource i and its number of items.
	Scope(i, j int) (pcommon.InstrumentationScope, int)
	// Item returns how to read item k's own field paths, whether it matches
	// flush_when, and its timestamp (0: none).
	Item(ctx context.Context, i, j, k int) (fieldpath.ItemField, bool, pcommon.Timestamp)
}

// Builder is what spanmsg, metricmsg and logmsg's message_per: key share:
// fields, a pool of working memory, and the walk from a request to its
// messages.
type Builder struct {
	fields   fieldpath.Fields
	signal   message.Signal
	maxMsg   int
	perScope bool
	scratch  sync.Pool // *scratch
}

// Option configures a Builder.
type Option func(*Builder)

// PerScope groups items of different scopes apart, so that each message
// holds one scope: a log message is a LogsData with one ResourceLogs
// holding one ScopeLogs.
func PerScope() Option { return func(b *Builder) { b.perScope = true } }

type scratch struct {
	g   Grouper
	enc Encoder
}

// NewBuilder returns a Builder of signal's messages with fields f; messages
// over maxMessageBytes are split (0: never).
func NewBuilder(f fieldpath.Fields, signal message.Signal, maxMessageBytes int, opts ...Option) *Builder {
	b := &Builder{fields: f, signal: signal, maxMsg: maxMessageBytes}
	for _, o := range opts {
		o(b)
	}
	b.scratch.New = func() any {
		return &scratch{
			g:   Grouper{PerScope: b.perScope},
			enc: Encoder{Signal: b.signal, MaxMessageBytes: b.maxMsg},
		}
	}
	return b
}

// Append appends the messages of req to dst: items grouped, each group
// encoded with encode. A group's timestamp is its first item's, else now.
// On error dst is returned as it was given.
func (b *Builder) Append(ctx context.Context, dst []message.Message, req Request, now time.Time, encode Encode) ([]message.Message, error) {
	st := b.scratch.Get().(*scratch)
	defer b.scratch.Put(st)
	st.g.Reset()
	defer st.g.Reset()
	sh := fieldpath.Shared{Metadata: client.FromContext(ctx).Metadata}
	for i := 0; i < req.Resources(); i++ {
		var scopes int
		sh.Resource, scopes = req.Resource(i)
		for j := 0; j < scopes; j++ {
			var items int
			sh.Scope, items = req.Scope(i, j)
			for k := 0; k < items; k++ {
				field, flush, ts := req.Item(ctx, i, j, k)
				grp, isNew := st.g.Add(&b.fields, &sh, Item{Resource: i, Scope: j, Index: k}, field, flush)
				if isNew {
					grp.Timestamp = now
					if ts != 0 {
						grp.Timestamp = ts.AsTime()
					}
				}
			}
		}
	}
	start := len(dst)
	out, err := st.enc.Append(dst, st.g.Groups(), encode)
	if err != nil {
		return dst[:start], err
	}
	return out, nil
}
