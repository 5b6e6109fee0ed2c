package logmsg

import (
	"bytes"
	"fmt"

	"go.opentelemetry.io/collector/pdata/plog"
)

// jsonSpliceEncoder writes otlp_json values without building a LogsData per
// record, like protoEncoder: it marshals the whole request once with
// plog.JSONMarshaler and finds the text of each ResourceLogs, ScopeLogs and
// log record. A record's LogsData is then the text of each ancestor up to its
// first child, the record, and the text of each ancestor after its last
// child: what plog.JSONMarshaler writes for a LogsData whose arrays hold one
// element (tested byte for byte). Text it does not expect makes it fall back
// to copying the record into a one-record LogsData.
type jsonSpliceEncoder struct {
	marshaler plog.JSONMarshaler
	// marshalAll marshals the whole request; a field so tests can feed
	// other text.
	marshalAll func(plog.Logs) ([]byte, error)
	wire       []byte
	top        wireParent
	rls        []wireParent
	sls        []wireParent
	lrs        []span
	rlSpans    []span
	slSpans    []span
	cur        wireParent
	rl         wireParent
	next       int

	fallback *otlpEncoder
	slow     *otlpEncoder
}

func newOTLPJSONEncoder() encoder {
	e := &jsonSpliceEncoder{}
	e.marshalAll = e.marshaler.MarshalLogs
	return e
}

func (e *jsonSpliceEncoder) begin(ld plog.Logs) error {
	e.fallback = nil
	wire, err := e.marshalAll(ld)
	if err == nil {
		e.wire = wire
		err = e.index(ld)
	}
	if err != nil {
		if e.slow == nil {
			e.slow = newOTLPEncoder(e.marshaler.MarshalLogs)
		}
		e.fallback = e.slow
		e.wire = nil
	}
	return nil
}

func (e *jsonSpliceEncoder) end() {
	e.wire = nil
	if e.fallback != nil {
		e.fallback.end()
	}
}

func (e *jsonSpliceEncoder) index(ld plog.Logs) error {
	e.rls, e.sls, e.lrs = e.rls[:0], e.sls[:0], e.lrs[:0]
	e.rlSpans = e.rlSpans[:0]
	w := e.wire
	start := skipSpace(w, 0)
	end, err := skipJSONValue(w, start)
	if err != nil {
		return err
	}
	if skipSpace(w, end) != len(w) {
		return fmt.Errorf("%w: text after the LogsData", errUnexpectedWire)
	}
	e.top, err = splitJSONChildren(w, span{start, end}, "resourceLogs", &e.rlSpans)
	if err != nil {
		return err
	}
	if e.top.nChild != ld.ResourceLogs().Len() {
		return fmt.Errorf("%w: %d resource logs, want %d", errUnexpectedWire, e.top.nChild, ld.ResourceLogs().Len())
	}
	for i, rs := range e.rlSpans {
		e.slSpans = e.slSpans[:0]
		rl, err := splitJSONChildren(w, rs, "scopeLogs", &e.slSpans)
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
			sl, err := splitJSONChildren(w, ss, "logRecords", &e.lrs)
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

func (e *jsonSpliceEncoder) startScope(i, j int, rl plog.ResourceLogs, sl plog.ScopeLogs) error {
	if e.fallback != nil {
		return e.fallback.startScope(i, j, rl, sl)
	}
	e.rl = e.rls[i]
	e.cur = e.sls[e.rl.first+j]
	e.next = e.cur.first
	return nil
}

func (e *jsonSpliceEncoder) appendRecord(dst []byte, lr plog.LogRecord) ([]byte, error) {
	if e.fallback != nil {
		return e.fallback.appendRecord(dst, lr)
	}
	if e.next >= e.cur.first+e.cur.nChild {
		return dst, fmt.Errorf("%w: more records than marshaled", errUnexpectedWire)
	}
	rec := e.lrs[e.next]
	e.next++
	w := e.wire
	for _, s := range [...]span{e.top.pre, e.rl.pre, e.cur.pre, rec, e.cur.suf, e.rl.suf, e.top.suf} {
		dst = append(dst, w[s.off:s.end]...)
	}
	return dst, nil
}

// splitJSONChildren parses the JSON object in s and the elements of its
// array member key. pre is the text from the object's start to the first
// element, suf from the end of the last element to the object's end; both
// are empty when the array is missing or empty.
func splitJSONChildren(w []byte, s span, key string, children *[]span) (wireParent, error) {
	p := wireParent{}
	pos := skipSpace(w, s.off)
	if pos >= s.end || w[pos] != '{' {
		return p, fmt.Errorf("%w: want an object", errUnexpectedWire)
	}
	pos = skipSpace(w, pos+1)
	if pos < s.end && w[pos] == '}' {
		return p, nil
	}
	found := false
	for pos < s.end {
		if w[pos] != '"' {
			return p, fmt.Errorf("%w: want a member name", errUnexpectedWire)
		}
		nameEnd, err := skipJSONString(w, pos)
		if err != nil {
			return p, err
		}
		name := w[pos+1 : nameEnd-1]
		pos = skipSpace(w, nameEnd)
		if pos >= s.end || w[pos] != ':' {
			return p, fmt.Errorf("%w: want ':'", errUnexpectedWire)
		}
		pos = skipSpace(w, pos+1)
		if bytes.Equal(name, []byte(key)) {
			if found {
				return p, fmt.Errorf("%w: %s twice", errUnexpectedWire, key)
			}
			found = true
			if pos >= s.end || w[pos] != '[' {
				return p, fmt.Errorf("%w: %s is not an array", errUnexpectedWire, key)
			}
			pos = skipSpace(w, pos+1)
			for pos < s.end && w[pos] != ']' {
				elemEnd, err := skipJSONValue(w, pos)
				if err != nil {
					return p, err
				}
				if p.nChild == 0 {
					p.pre = span{s.off, pos}
				}
				p.nChild++
				*children = append(*children, span{pos, elemEnd})
				p.suf = span{elemEnd, s.end}
				pos = skipSpace(w, elemEnd)
				if pos < s.end && w[pos] == ',' {
					pos = skipSpace(w, pos+1)
				}
			}
			if pos >= s.end {
				return p, fmt.Errorf("%w: unterminated array", errUnexpectedWire)
			}
			pos++ // ]
		} else {
			end, err := skipJSONValue(w, pos)
			if err != nil {
				return p, err
			}
			pos = end
		}
		pos = skipSpace(w, pos)
		if pos >= s.end {
			break
		}
		switch w[pos] {
		case ',':
			pos = skipSpace(w, pos+1)
		case '}':
			if pos != s.end-1 {
				return p, fmt.Errorf("%w: object ends early", errUnexpectedWire)
			}
			return p, nil
		default:
			return p, fmt.Errorf("%w: want ',' or '}'", errUnexpectedWire)
		}
	}
	return p, fmt.Errorf("%w: unterminated object", errUnexpectedWire)
}

func skipSpace(w []byte, pos int) int {
	for pos < len(w) && (w[pos] == ' ' || w[pos] == '\t' || w[pos] == '\n' || w[pos] == '\r') {
		pos++
	}
	return pos
}

// skipJSONString returns the position after the string starting at pos.
func skipJSONString(w []byte, pos int) (int, error) {
	i := pos + 1
	for {
		q := bytes.IndexByte(w[i:], '"')
		if q < 0 {
			return 0, fmt.Errorf("%w: unterminated string", errUnexpectedWire)
		}
		i += q
		// The quote ends the string unless an odd number of backslashes
		// precede it.
		n := 0
		for j := i - 1; j > pos && w[j] == '\\'; j-- {
			n++
		}
		if n%2 == 0 {
			return i + 1, nil
		}
		i++
	}
}

// skipJSONValue returns the position after the JSON value starting at pos.
// It checks nesting, not the grammar of literals.
func skipJSONValue(w []byte, pos int) (int, error) {
	if pos >= len(w) {
		return 0, fmt.Errorf("%w: want a value", errUnexpectedWire)
	}
	switch w[pos] {
	case '"':
		return skipJSONString(w, pos)
	case '{', '[':
		depth := 0
		for i := pos; i < len(w); i++ {
			switch w[i] {
			case '"':
				// Strings are skipped with IndexByte: measured twice as
				// fast as a byte-by-byte state machine on OTLP/JSON.
				end, err := skipJSONString(w, i)
				if err != nil {
					return 0, err
				}
				i = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, nil
				}
			}
		}
		return 0, fmt.Errorf("%w: unterminated value", errUnexpectedWire)
	case ',', ':', '}', ']':
		return 0, fmt.Errorf("%w: want a value", errUnexpectedWire)
	}
	i := pos
	for i < len(w) {
		switch w[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i, nil
		}
		i++
	}
	return i, nil
}
