package logmsg

import (
	"encoding/binary"
	"errors"
	"fmt"

	"go.opentelemetry.io/collector/pdata/plog"
)

// protoEncoder writes otlp_proto values without building a LogsData per
// record. It marshals, with plog.ProtoMarshaler, a skeleton of the request
// (its resources and scopes, each scope with one empty record), finds in
// those bytes each ResourceLogs' and ScopeLogs' own fields before and after
// their children, and writes each record's LogsData from those pieces
// around the record's own bytes (appendLogRecord). A protobuf message is the
// concatenation of its fields, so this is byte for byte what
// plog.ProtoMarshaler writes for the record's own LogsData (tested). If the
// bytes ever hold something it does not expect, it falls back to copying
// the record into a one-record LogsData. Marshaling the skeleton rather
// than the request keeps a request-sized buffer per call out of the heap.
type protoEncoder struct {
	marshaler plog.ProtoMarshaler
	// marshalAll marshals the skeleton; a field so tests can feed bytes
	// laid out differently.
	marshalAll func(plog.Logs) ([]byte, error)
	wire       []byte    // the skeleton's bytes
	skel       plog.Logs // reused; cleared by end
	recLens    []int     // record sizes of one group
	rls        []wireParent
	sls        []wireParent
	lrs        []span
	rlSpans    []span     // scratch for index
	slSpans    []span     // scratch for index
	cur        wireParent // current ScopeLogs
	rl         wireParent // its ResourceLogs

	fallback *otlpEncoder // nil unless the wire bytes were not understood
	slow     *otlpEncoder // reused fallback encoder
}

// span is [off, end) in wire.
type span struct{ off, end int }

// wireParent is a ResourceLogs or ScopeLogs: its own fields before and after
// its children (field 2), and the index of its first child.
type wireParent struct {
	pre, suf      span
	first, nChild int
}

// errUnexpectedWire says the marshaled bytes are not laid out as expected.
var errUnexpectedWire = errors.New("unexpected OTLP wire layout")

func newOTLPProtoEncoder() encoder {
	e := &protoEncoder{}
	e.marshalAll = e.marshaler.MarshalLogs
	return e
}

func (e *protoEncoder) begin(ld plog.Logs) {
	e.fallback = nil
	wire, err := e.marshalAll(e.fillSkeleton(ld))
	if err == nil {
		e.wire = wire
		err = e.index(ld)
	}
	if err != nil {
		// Not expected with pdata's marshaler; stay correct anyway.
		e.useSlow()
		e.wire = nil
	}
}

func (e *protoEncoder) useSlow() {
	if e.slow == nil {
		e.slow = newOTLPEncoder(e.marshaler.MarshalLogs)
	}
	e.fallback = e.slow
}

// fillSkeleton makes e.skel a copy of ld's resources and scopes, each scope
// with one empty record in place of its records. It reuses the last call's
// skeleton: of a request of the usual shape only attribute values are
// copied anew.
func (e *protoEncoder) fillSkeleton(ld plog.Logs) plog.Logs {
	if e.skel == (plog.Logs{}) {
		e.skel = plog.NewLogs()
	}
	rls, to := ld.ResourceLogs(), e.skel.ResourceLogs()
	resize(to, rls.Len())
	for i := 0; i < rls.Len(); i++ {
		rl, rto := rls.At(i), to.At(i)
		rl.Resource().CopyTo(rto.Resource())
		rto.SetSchemaUrl(rl.SchemaUrl())
		sls, sto := rl.ScopeLogs(), rto.ScopeLogs()
		resize(sto, sls.Len())
		for j := 0; j < sls.Len(); j++ {
			sl, slto := sls.At(j), sto.At(j)
			sl.Scope().CopyTo(slto.Scope())
			slto.SetSchemaUrl(sl.SchemaUrl())
			if slto.LogRecords().Len() == 0 {
				slto.LogRecords().AppendEmpty()
			}
		}
	}
	return e.skel
}

// clearSkeleton drops what the skeleton copied of the request.
func (e *protoEncoder) clearSkeleton() {
	if e.skel == (plog.Logs{}) {
		return
	}
	rls := e.skel.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		rl.Resource().Attributes().Clear()
		rl.SetSchemaUrl("")
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			sc := sls.At(j).Scope()
			sc.SetName("")
			sc.SetVersion("")
			sc.Attributes().Clear()
			sls.At(j).SetSchemaUrl("")
		}
	}
}

// resize makes s n elements long, keeping the first ones.
func resize[S interface {
	Len() int
	EnsureCapacity(int)
	RemoveIf(func(E) bool)
	AppendEmpty() E
}, E any](s S, n int) {
	if s.Len() > n {
		i := 0
		s.RemoveIf(func(E) bool { i++; return i > n })
	}
	s.EnsureCapacity(n)
	for s.Len() < n {
		s.AppendEmpty()
	}
}

// index fills rls, sls and lrs from wire and checks them against ld's
// skeleton.
func (e *protoEncoder) index(ld plog.Logs) error {
	e.rls, e.sls, e.lrs = e.rls[:0], e.sls[:0], e.lrs[:0]
	e.rlSpans = e.rlSpans[:0]
	top, err := splitChildren(e.wire, span{0, len(e.wire)}, 1, false, &e.rlSpans)
	if err != nil {
		return err
	}
	if top.pre.end > top.pre.off || top.suf.end > top.suf.off {
		return fmt.Errorf("%w: LogsData has fields besides resource_logs", errUnexpectedWire)
	}
	if top.nChild != ld.ResourceLogs().Len() {
		return fmt.Errorf("%w: %d resource logs, want %d", errUnexpectedWire, top.nChild, ld.ResourceLogs().Len())
	}
	for i, rs := range e.rlSpans {
		e.slSpans = e.slSpans[:0]
		rl, err := splitChildren(e.wire, rs, 2, true, &e.slSpans)
		if err != nil {
			return err
		}
		sls := ld.ResourceLogs().At(i).ScopeLogs()
		if rl.nChild != sls.Len() {
			return fmt.Errorf("%w: %d scope logs, want %d", errUnexpectedWire, rl.nChild, sls.Len())
		}
		rl.first = len(e.sls)
		e.rls = append(e.rls, rl)
		for _, ss := range e.slSpans {
			first := len(e.lrs)
			sl, err := splitChildren(e.wire, ss, 2, true, &e.lrs)
			if err != nil {
				return err
			}
			if sl.nChild != 1 {
				return fmt.Errorf("%w: %d log records, want the skeleton's 1", errUnexpectedWire, sl.nChild)
			}
			sl.first = first
			e.sls = append(e.sls, sl)
		}
	}
	return nil
}

// splitChildren parses the message in s: its fields numbered child
// (length-delimited) must be contiguous; the fields before and after them
// must be fields 1 or 3 (resource or scope, schema URL) when own is true,
// and there must be none when it is false. The children's contents are
// appended to children.
func splitChildren(wire []byte, s span, child int, own bool, children *[]span) (wireParent, error) {
	p := wireParent{pre: span{s.off, s.off}, suf: span{s.end, s.end}}
	seenChild, afterChild := false, false
	for pos := s.off; pos < s.end; {
		start := pos
		tag, n := binary.Uvarint(wire[pos:s.end])
		if n <= 0 {
			return p, fmt.Errorf("%w: bad tag", errUnexpectedWire)
		}
		pos += n
		num, typ := int(tag>>3), int(tag&7)
		var body span
		switch typ {
		case 0:
			_, n := binary.Uvarint(wire[pos:s.end])
			if n <= 0 {
				return p, fmt.Errorf("%w: bad varint", errUnexpectedWire)
			}
			pos += n
		case 1:
			pos += 8
		case 5:
			pos += 4
		case 2:
			l, n := binary.Uvarint(wire[pos:s.end])
			if n <= 0 || l > uint64(s.end-pos-n) {
				return p, fmt.Errorf("%w: bad length", errUnexpectedWire)
			}
			body = span{pos + n, pos + n + int(l)}
			pos = body.end
		default:
			return p, fmt.Errorf("%w: wire type %d", errUnexpectedWire, typ)
		}
		if pos > s.end {
			return p, fmt.Errorf("%w: truncated field", errUnexpectedWire)
		}
		if num == child && typ == 2 {
			if afterChild {
				return p, fmt.Errorf("%w: field %d not contiguous", errUnexpectedWire, child)
			}
			if !seenChild {
				p.pre.end = start
				seenChild = true
			}
			p.nChild++
			p.suf.off = pos
			*children = append(*children, body)
			continue
		}
		if !own || (num != 1 && num != 3) {
			return p, fmt.Errorf("%w: field %d", errUnexpectedWire, num)
		}
		if seenChild {
			afterChild = true
		}
	}
	if !seenChild {
		p.pre.end = s.end
		p.suf.off = s.end
	}
	return p, nil
}

// end drops the request's bytes so the pooled encoder does not keep them.
func (e *protoEncoder) end() {
	e.wire = nil
	e.clearSkeleton()
	if e.fallback != nil {
		e.fallback.end()
	}
}

func (e *protoEncoder) startScope(i, j int, rl plog.ResourceLogs, sl plog.ScopeLogs) {
	if e.fallback != nil {
		e.fallback.startScope(i, j, rl, sl)
		return
	}
	e.rl = e.rls[i]
	e.cur = e.sls[e.rl.first+j]
}

func (e *protoEncoder) appendRecord(dst []byte, lr plog.LogRecord) ([]byte, error) {
	if e.fallback != nil {
		return e.fallback.appendRecord(dst, lr)
	}
	w := e.wire
	// The record goes after room for the longest prefix; the prefix is
	// written once the record's length is known, and both moved down.
	start := len(dst)
	room := 1 + binary.MaxVarintLen32 + spanLen(e.rl.pre) + 1 + binary.MaxVarintLen32 +
		spanLen(e.cur.pre) + 1 + binary.MaxVarintLen32
	dst = append(dst, make([]byte, room)...)
	dst = appendLogRecord(dst, lr)
	recLen := len(dst) - start - room
	dst = append(dst, w[e.cur.suf.off:e.cur.suf.end]...)
	dst = append(dst, w[e.rl.suf.off:e.rl.suf.end]...)
	slLen := spanLen(e.cur.pre) + 1 + uvarintLen(recLen) + recLen + spanLen(e.cur.suf)
	rlLen := spanLen(e.rl.pre) + 1 + uvarintLen(slLen) + slLen + spanLen(e.rl.suf)

	pre := dst[start:start]
	pre = append(pre, 0x0a) // LogsData.resource_logs
	pre = binary.AppendUvarint(pre, uint64(rlLen))
	pre = append(pre, w[e.rl.pre.off:e.rl.pre.end]...)
	pre = append(pre, 0x12) // ResourceLogs.scope_logs
	pre = binary.AppendUvarint(pre, uint64(slLen))
	pre = append(pre, w[e.cur.pre.off:e.cur.pre.end]...)
	pre = append(pre, 0x12) // ScopeLogs.log_records
	pre = binary.AppendUvarint(pre, uint64(recLen))
	n := copy(dst[start+len(pre):], dst[start+room:])
	return dst[:start+len(pre)+n], nil
}

func spanLen(s span) int { return s.end - s.off }

func uvarintLen(n int) int {
	l := 1
	for v := uint64(n); v >= 0x80; v >>= 7 {
		l++
	}
	return l
}
