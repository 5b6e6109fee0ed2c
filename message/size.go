package message

import "time"

// BatchHeaderBytes is the fixed size of a Kafka v2 record batch header
// (baseOffset through records count).
const BatchHeaderBytes = 61

// RecordSize is the encoded size of m as record number offsetDelta of a v2
// record batch whose first timestamp is firstTS, the length prefix included.
// It matches what sarama writes for the record.
func RecordSize(m *Message, offsetDelta int, firstTS time.Time) int {
	body := 1 + // attributes
		varlongLen(timestampDelta(m.Timestamp, firstTS)) +
		varlongLen(int64(offsetDelta)) +
		bytesLen(m.Key) +
		bytesLen(m.Value) +
		varlongLen(int64(len(m.Headers)))
	for i := range m.Headers {
		h := &m.Headers[i]
		body += varlongLen(int64(len(h.Key))) + len(h.Key) + bytesLen(h.Value)
	}
	return varlongLen(int64(body)) + body
}

// BatchSize is the encoded size of msgs as one v2 record batch, header
// included, before compression. The first message's timestamp is the
// batch's first timestamp.
func BatchSize(msgs []Message) int {
	if len(msgs) == 0 {
		return 0
	}
	n := BatchHeaderBytes
	first := msgs[0].Timestamp
	for i := range msgs {
		n += RecordSize(&msgs[i], i, first)
	}
	return n
}

// timestampDelta is the record's timestamp delta in milliseconds, as Kafka
// stores it.
func timestampDelta(ts, first time.Time) int64 {
	return ts.UnixMilli() - first.UnixMilli()
}

// bytesLen is the size of a varint-length-prefixed byte field; nil is -1.
func bytesLen(b []byte) int {
	if b == nil {
		return 1
	}
	return varlongLen(int64(len(b))) + len(b)
}

// varlongLen is the size of v as a zigzag varint.
func varlongLen(v int64) int {
	u := uint64(v<<1) ^ uint64(v>>63)
	n := 1
	for u >= 0x80 {
		u >>= 7
		n++
	}
	return n
}

// RecordSizeAt returns RecordSize(m, offsetDelta, firstTS) from alone, the
// already computed RecordSize(m, 0, m.Timestamp), without walking m's key,
// value and headers again.
func RecordSizeAt(alone int, m *Message, offsetDelta int, firstTS time.Time) int {
	// alone = varlongLen(body) + body, and body+varlongLen(body) grows with
	// body, so exactly one prefix length fits.
	body := alone - 1
	for k := 1; k <= 10; k++ {
		if varlongLen(int64(alone-k)) == k {
			body = alone - k
			break
		}
	}
	// alone has 1-byte timestamp and offset deltas (both 0).
	body += varlongLen(timestampDelta(m.Timestamp, firstTS)) - 1 + varlongLen(int64(offsetDelta)) - 1
	return varlongLen(int64(body)) + body
}
