package logmsg

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/kafkabatcher/kafkabatcherexporter/internal/fieldpath"
	"github.com/kafkabatcher/kafkabatcherexporter/internal/msggroup"
	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// messagePer reports whether opts group records (MessagePerKey), or the
// error naming message_per.
func messagePer(opts Options) (bool, error) {
	switch opts.MessagePer {
	case MessagePerRecord, "":
		return false, nil
	case MessagePerKey:
		enc := cmp.Or(opts.Encoding, EncodingOTLPProto)
		if !slices.Contains(GroupEncodings(), enc) {
			return false, fmt.Errorf("message_per: %s needs encoding %s, got %s",
				MessagePerKey, strings.Join(GroupEncodings(), " or "), enc)
		}
		return true, nil
	}
	return false, fmt.Errorf("message_per: unknown value %q, want one of %s",
		opts.MessagePer, strings.Join(MessagePers(), ", "))
}

// groupEncoder writes the records of one group as one LogsData.
type groupEncoder interface {
	encoder
	// appendRecords appends the LogsData of items, all of one resource and
	// one scope of the request given to begin, in their order.
	appendRecords(dst []byte, ld plog.Logs, items []msggroup.Item) ([]byte, error)
}

// appendGrouped is Append for MessagePerKey: msggroup groups the records by
// (resource, scope, topic, key, headers) and the encoder writes each group.
func (b *Builder) appendGrouped(ctx context.Context, dst []message.Message, ld plog.Logs, now time.Time) ([]message.Message, error) {
	st := b.scratch.Get().(*scratch)
	defer b.putScratch(st)
	enc, ok := st.enc.(groupEncoder)
	if !ok { // NewBuilder allows MessagePerKey only with encodings that group
		return dst, fmt.Errorf("encode log records: encoder %T cannot group", st.enc)
	}
	enc.begin(ld)
	req := &request{ld: ld, b: b}
	req.field = req.appendField
	out, err := b.group.Append(ctx, dst, req, now, func(_ *msggroup.Group, items []msggroup.Item, buf []byte) ([]byte, error) {
		return enc.appendRecords(buf, ld, items)
	})
	if err != nil {
		return out, fmt.Errorf("encode log records: %w", err)
	}
	return out, nil
}

// request is ld as msggroup walks it. Item's field reads the record of the
// last Item call: msggroup uses it before asking for the next item, and one
// method value serves the whole call instead of a closure per record.
type request struct {
	ld    plog.Logs
	b     *Builder
	lr    plog.LogRecord // the record at hand
	field fieldpath.ItemField
}

func (r *request) Resources() int { return r.ld.ResourceLogs().Len() }

func (r *request) Resource(i int) (pcommon.Resource, int) {
	rl := r.ld.ResourceLogs().At(i)
	return rl.Resource(), rl.ScopeLogs().Len()
}

func (r *request) Scope(i, j int) (pcommon.InstrumentationScope, int) {
	sl := r.ld.ResourceLogs().At(i).ScopeLogs().At(j)
	return sl.Scope(), sl.LogRecords().Len()
}

// Item returns how to read record k's fields, whether it matches
// flush_when, and its time, else its observed time.
func (r *request) Item(ctx context.Context, i, j, k int) (fieldpath.ItemField, bool, pcommon.Timestamp) {
	rl := r.ld.ResourceLogs().At(i)
	sl := rl.ScopeLogs().At(j)
	r.lr = sl.LogRecords().At(k)
	ts := r.lr.Timestamp()
	if ts == 0 {
		ts = r.lr.ObservedTimestamp()
	}
	return r.field, r.b.match.match(ctx, rl, sl, r.lr), ts
}

func (r *request) appendField(p *fieldpath.Path, dst []byte) ([]byte, bool) {
	return appendField(p, dst, r.lr)
}

// appendRecords copies items into a LogsData of their own and marshals it.
func (e *otlpEncoder) appendRecords(dst []byte, ld plog.Logs, items []msggroup.Item) ([]byte, error) {
	out := plog.NewLogs()
	src := ld.ResourceLogs().At(items[0].Resource)
	rl := out.ResourceLogs().AppendEmpty()
	src.Resource().CopyTo(rl.Resource())
	rl.SetSchemaUrl(src.SchemaUrl())
	from := src.ScopeLogs().At(items[0].Scope)
	sl := rl.ScopeLogs().AppendEmpty()
	from.Scope().CopyTo(sl.Scope())
	sl.SetSchemaUrl(from.SchemaUrl())
	lrs := sl.LogRecords()
	lrs.EnsureCapacity(len(items))
	for _, it := range items {
		if it.Resource != items[0].Resource || it.Scope != items[0].Scope {
			return dst, fmt.Errorf("records of resource %d scope %d and resource %d scope %d in one message",
				items[0].Resource, items[0].Scope, it.Resource, it.Scope)
		}
		from.LogRecords().At(it.Index).CopyTo(lrs.AppendEmpty())
	}
	v, err := e.marshal(out)
	if err != nil {
		return dst, err
	}
	return append(dst, v...), nil
}

// appendRecords writes the LogsData of items from the pieces of the
// skeleton's wire bytes, as appendRecord does for one record: the
// ResourceLogs' own fields around one ScopeLogs made of the scope's own
// fields around the records.
func (e *protoEncoder) appendRecords(dst []byte, ld plog.Logs, items []msggroup.Item) ([]byte, error) {
	if e.fallback != nil {
		return e.fallback.appendRecords(dst, ld, items)
	}
	first := items[0]
	if first.Resource >= len(e.rls) || first.Scope >= e.rls[first.Resource].nChild {
		return dst, fmt.Errorf("%w: no scope %d of resource %d", errUnexpectedWire, first.Scope, first.Resource)
	}
	rl := e.rls[first.Resource]
	sl := e.sls[rl.first+first.Scope]
	lrs := ld.ResourceLogs().At(first.Resource).ScopeLogs().At(first.Scope).LogRecords()
	slLen := spanLen(sl.pre) + spanLen(sl.suf)
	e.recLens = e.recLens[:0]
	for _, it := range items {
		if it.Resource != first.Resource || it.Scope != first.Scope {
			return dst, fmt.Errorf("records of resource %d scope %d and resource %d scope %d in one message",
				first.Resource, first.Scope, it.Resource, it.Scope)
		}
		if it.Index >= lrs.Len() {
			return dst, fmt.Errorf("%w: no record %d in scope %d of resource %d", errUnexpectedWire, it.Index, it.Scope, it.Resource)
		}
		recLen := recordSize(lrs.At(it.Index))
		e.recLens = append(e.recLens, recLen)
		slLen += 1 + uvarintLen(recLen) + recLen
	}
	rlLen := spanLen(rl.pre) + 1 + uvarintLen(slLen) + slLen + spanLen(rl.suf)

	w := e.wire
	dst = slices.Grow(dst, 1+uvarintLen(rlLen)+rlLen)
	dst = append(dst, 0x0a) // LogsData.resource_logs
	dst = binary.AppendUvarint(dst, uint64(rlLen))
	dst = append(dst, w[rl.pre.off:rl.pre.end]...)
	dst = append(dst, 0x12) // ResourceLogs.scope_logs
	dst = binary.AppendUvarint(dst, uint64(slLen))
	dst = append(dst, w[sl.pre.off:sl.pre.end]...)
	for i, it := range items {
		recLen := e.recLens[i]
		dst = append(dst, 0x12) // ScopeLogs.log_records
		dst = binary.AppendUvarint(dst, uint64(recLen))
		dst = appendLogRecord(dst, lrs.At(it.Index))
	}
	dst = append(dst, w[sl.suf.off:sl.suf.end]...)
	dst = append(dst, w[rl.suf.off:rl.suf.end]...)
	return dst, nil
}
