package logmsg

import (
	"encoding/binary"
	"math"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// appendLogRecord appends lr's LogRecord protobuf bytes as pdata's
// generated MarshalProto writes them: the same fields in the same order
// (that code writes from the end of the buffer, so its output runs from the
// last field it writes to the first), so the bytes are the same (tested
// against it, and TestLogRecordFieldsKnown fails when pdata adds a field).
// It reads the record through the public API, so no copy of the request is
// marshaled and nothing is allocated per record. It is one pass: a nested
// message gets a one-byte length, widened once its length is known if it
// needs more (a map entry of 128 bytes or more, a container value).
func appendLogRecord(b []byte, lr plog.LogRecord) []byte {
	if s := lr.EventName(); s != "" {
		b = appendString(b, 0x62, s)
	}
	if id := lr.SpanID(); !id.IsEmpty() {
		b = append(append(b, 0x52, byte(len(id))), id[:]...)
	} else {
		b = append(b, 0x52, 0)
	}
	if id := lr.TraceID(); !id.IsEmpty() {
		b = append(append(b, 0x4a, byte(len(id))), id[:]...)
	} else {
		b = append(b, 0x4a, 0)
	}
	if f := lr.Flags(); f != 0 {
		b = binary.LittleEndian.AppendUint32(append(b, 0x45), uint32(f))
	}
	if d := lr.DroppedAttributesCount(); d != 0 {
		b = binary.AppendUvarint(append(b, 0x38), uint64(d))
	}
	for k, v := range lr.Attributes().All() {
		b = appendKeyValue(b, 0x32, k, v)
	}
	b = appendValueField(b, 0x2a, lr.Body())
	if s := lr.SeverityText(); s != "" {
		b = appendString(b, 0x1a, s)
	}
	if s := lr.SeverityNumber(); s != 0 {
		b = binary.AppendUvarint(append(b, 0x10), uint64(s))
	}
	if t := lr.ObservedTimestamp(); t != 0 {
		b = binary.LittleEndian.AppendUint64(append(b, 0x59), uint64(t))
	}
	if t := lr.Timestamp(); t != 0 {
		b = binary.LittleEndian.AppendUint64(append(b, 0x09), uint64(t))
	}
	return b
}

// appendKeyValue appends a KeyValue field tagged tag: its value (field 2),
// then its key (field 1) unless empty, as pdata orders them.
func appendKeyValue(b []byte, tag byte, k string, v pcommon.Value) []byte {
	b, mark := beginLen(b, tag)
	b = appendValueField(b, 0x12, v)
	if k != "" {
		b = appendString(b, 0x0a, k)
	}
	return endLen(b, mark)
}

// appendValueField appends v as an AnyValue field tagged tag: its length,
// then its one field (none for an empty value).
func appendValueField(b []byte, tag byte, v pcommon.Value) []byte {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		s := v.Str()
		b = binary.AppendUvarint(append(b, tag), uint64(1+uvarintLen(len(s))+len(s)))
		return appendString(b, 0x0a, s)
	case pcommon.ValueTypeBool:
		if v.Bool() {
			return append(b, tag, 2, 0x10, 1)
		}
		return append(b, tag, 2, 0x10, 0)
	case pcommon.ValueTypeInt:
		n := uint64(v.Int())
		return binary.AppendUvarint(append(b, tag, byte(1+uvarintLen64(n)), 0x18), n)
	case pcommon.ValueTypeDouble:
		return binary.LittleEndian.AppendUint64(append(b, tag, 9, 0x21), math.Float64bits(v.Double()))
	case pcommon.ValueTypeSlice:
		b, mark := beginLen(b, tag)
		b, inner := beginLen(b, 0x2a)
		s := v.Slice()
		for i := range s.Len() {
			b = appendValueField(b, 0x0a, s.At(i))
		}
		return endLen(endLen(b, inner), mark)
	case pcommon.ValueTypeMap:
		b, mark := beginLen(b, tag)
		b, inner := beginLen(b, 0x32)
		for k, e := range v.Map().All() {
			b = appendKeyValue(b, 0x0a, k, e)
		}
		return endLen(endLen(b, inner), mark)
	case pcommon.ValueTypeBytes:
		raw := v.Bytes().AsRaw()
		b = binary.AppendUvarint(append(b, tag), uint64(1+uvarintLen(len(raw))+len(raw)))
		return append(binary.AppendUvarint(append(b, 0x3a), uint64(len(raw))), raw...)
	}
	return append(b, tag, 0)
}

// beginLen appends tag and a one-byte length to fill in by endLen; mark is
// where the message starts.
func beginLen(b []byte, tag byte) (_ []byte, mark int) {
	b = append(b, tag, 0)
	return b, len(b)
}

// endLen sets the length before mark to that of the bytes after it,
// moving them up when the length takes more than one byte.
func endLen(b []byte, mark int) []byte {
	n := len(b) - mark
	if n < 0x80 {
		b[mark-1] = byte(n)
		return b
	}
	extra := uvarintLen(n) - 1
	b = append(b, make([]byte, extra)...)
	copy(b[mark+extra:], b[mark:mark+n])
	binary.PutUvarint(b[mark-1:], uint64(n))
	return b
}

// recordSize is the size of lr's LogRecord message.
func recordSize(lr plog.LogRecord) int {
	n := 2 + 2 // span and trace id fields, always written
	if s := lr.EventName(); s != "" {
		n += 1 + uvarintLen(len(s)) + len(s)
	}
	if id := lr.SpanID(); !id.IsEmpty() {
		n += len(id)
	}
	if id := lr.TraceID(); !id.IsEmpty() {
		n += len(id)
	}
	if lr.Flags() != 0 {
		n += 5
	}
	if d := lr.DroppedAttributesCount(); d != 0 {
		n += 1 + uvarintLen64(uint64(d))
	}
	n += mapEntriesSize(lr.Attributes())
	vs := valueSize(lr.Body())
	n += 1 + uvarintLen(vs) + vs
	if s := lr.SeverityText(); s != "" {
		n += 1 + uvarintLen(len(s)) + len(s)
	}
	if s := lr.SeverityNumber(); s != 0 {
		n += 1 + uvarintLen64(uint64(s))
	}
	if lr.ObservedTimestamp() != 0 {
		n += 9
	}
	if lr.Timestamp() != 0 {
		n += 9
	}
	return n
}

// valueSize is the size of v's AnyValue message.
func valueSize(v pcommon.Value) int {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		n := len(v.Str())
		return 1 + uvarintLen(n) + n
	case pcommon.ValueTypeBool:
		return 2
	case pcommon.ValueTypeInt:
		return 1 + uvarintLen64(uint64(v.Int()))
	case pcommon.ValueTypeDouble:
		return 9
	case pcommon.ValueTypeSlice:
		n := sliceSize(v.Slice())
		return 1 + uvarintLen(n) + n
	case pcommon.ValueTypeMap:
		n := mapEntriesSize(v.Map())
		return 1 + uvarintLen(n) + n
	case pcommon.ValueTypeBytes:
		n := v.Bytes().Len()
		return 1 + uvarintLen(n) + n
	}
	return 0
}

// sliceSize is the size of an ArrayValue message holding s.
func sliceSize(s pcommon.Slice) int {
	n := 0
	for i := range s.Len() {
		vs := valueSize(s.At(i))
		n += 1 + uvarintLen(vs) + vs
	}
	return n
}

// mapEntriesSize is the size of m's entries as KeyValue fields (a
// KeyValueList message holding m, or a record's attributes).
func mapEntriesSize(m pcommon.Map) int {
	n := 0
	for k, v := range m.All() {
		vs := valueSize(v)
		e := 1 + uvarintLen(vs) + vs
		if k != "" {
			e += 1 + uvarintLen(len(k)) + len(k)
		}
		n += 1 + uvarintLen(e) + e
	}
	return n
}

func appendString(b []byte, tag byte, s string) []byte {
	return append(binary.AppendUvarint(append(b, tag), uint64(len(s))), s...)
}

func uvarintLen64(v uint64) int {
	l := 1
	for ; v >= 0x80; v >>= 7 {
		l++
	}
	return l
}
