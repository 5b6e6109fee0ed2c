package logmsg

import (
	"encoding/binary"
	"errors"
	"fmt"

	"go.opentelemetry.io/collector/pdata/plog"
)

// protoEncoder writes otlp_proto values without building a LogsData per
// record. It marshals the whole request once with plog.ProtoMarshaler,
// finds in the wire bytes the spans of each ResourceLogs, ScopeLogs and
// LogRecord, and writes each record's LogsData from those pieces: the
// ResourceLogs' own fields (resource, schema URL) around one ScopeLogs made
// of the scope's own fields around the one record. A protobuf message is the
// concatenation of its fields, so this is byte for byte what
// plog.ProtoMarshaler writes for the record's own LogsData (tested). If the
// bytes ever hold something it does not expect, it falls back to copying
// the record into a one-record LogsData.
type protoEncoder struct {
	marshaler plog.ProtoMarshaler
	// marshalAll marshals the whole request; a field so tests can feed
	// bytes laid out differently.
	marshalAll func(plog.Logs) ([]byte, error)
	wire       []byte // the whole request
	rls        []wireParent
	sls        []wireParent
	lrs        []span
	rlSpans    []span     // scratch for index
	slSpans    []span     // scratch for index
	cur        wireParent // current ScopeLogs
	rl         wireParent // its ResourceLogs
	next       int        // index in lrs of the next record

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
	wire, err := e.marshalAll(ld)
	if err == nil {
		e.wire = wire
		err = e.index(ld)
	}
	if err != nil {
		// Not expected with pdata's marshaler; stay correct anyway.
		if e.slow == nil {
			e.slow = newOTLPEncoder(e.marshaler.MarshalLogs)
		}
		e.fallback = e.slow
		e.wire = nil
	}
}

// index fills rls, sls and lrs from wire and checks them against ld.
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
		for j, ss := range e.slSpans {
			first := len(e.lrs)
			sl, err := splitChildren(e.wire, ss, 2, true, &e.lrs)
			if err != nil {
				return err
			}
			if n := sls.At(j).LogRecords().Len(); sl.nChild != n {
				return fmt.Errorf("%w: %d log records, want %d", errUnexpectedWire, sl.nChild, n)
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
	e.next = e.cur.first
}

func (e *protoEncoder) appendRecord(dst []byte, lr plog.LogRecord) ([]byte, error) {
	if e.fallback != nil {
		return e.fallback.appendRecord(dst, lr)
	}
	if e.next >= e.cur.first+e.cur.nChild {
		return dst, fmt.Errorf("%w: more records than marshaled", errUnexpectedWire)
	}
	rec := e.lrs[e.next]
	e.next++
	w := e.wire
	recLen := rec.end - rec.off
	slLen := spanLen(e.cur.pre) + 1 + uvarintLen(recLen) + recLen + spanLen(e.cur.suf)
	rlLen := spanLen(e.rl.pre) + 1 + uvarintLen(slLen) + slLen + spanLen(e.rl.suf)

	dst = append(dst, 0x0a) // LogsData.resource_logs
	dst = binary.AppendUvarint(dst, uint64(rlLen))
	dst = append(dst, w[e.rl.pre.off:e.rl.pre.end]...)
	dst = append(dst, 0x12) // ResourceLogs.scope_logs
	dst = binary.AppendUvarint(dst, uint64(slLen))
	dst = append(dst, w[e.cur.pre.off:e.cur.pre.end]...)
	dst = append(dst, 0x12) // ScopeLogs.log_records
	dst = binary.AppendUvarint(dst, uint64(recLen))
	dst = append(dst, w[rec.off:rec.end]...)
	dst = append(dst, w[e.cur.suf.off:e.cur.suf.end]...)
	dst = append(dst, w[e.rl.suf.off:e.rl.suf.end]...)
	return dst, nil
}

func spanLen(s span) int { return s.end - s.off }

func uvarintLen(n int) int {
	l := 1
	for v := uint64(n); v >= 0x80; v >>= 7 {
		l++
	}
	return l
}
