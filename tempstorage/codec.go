package tempstorage

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"time"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// Entry frame (little endian):
//
//	0  magic    2 bytes  0xFE 0x4B (0xFE never occurs in UTF-8 text, which keeps resync scans cheap)
//	2  version  1 byte   payload format, formatV1
//	3  flags    1 byte   0 in v1
//	4  length   uint32   payload bytes
//	8  crc      uint32   CRC-32C of bytes 0..7 and the payload
//	12 payload
//
// Payload v1: topic (uvarint length + bytes), partition (varint), flush
// reason (1 byte), record count (uvarint), then per record: flags (1 byte,
// bit 0 = Flush, bits 1-2 = message.Signal), timestamp seconds (varint) and nanoseconds (uvarint), key
// and value (varint length, -1 = nil, + bytes), header count (uvarint),
// each header key (uvarint length + bytes) and value (varint length, -1 =
// nil, + bytes).
const (
	frameHeaderLen = 12
	magic0         = 0xFE
	magic1         = 0x4B
	formatV1       = 1
	// maxPayload bounds a frame so a corrupt length cannot ask for more.
	maxPayload = 1<<31 - 1
)

var frameMagic = []byte{magic0, magic1}

// Reasons an entry is rejected. errTruncated means the bytes end inside the
// entry (a torn write when it is the end of the last segment).
var (
	errTruncated = errors.New("entry truncated")
	errMagic     = errors.New("bad entry magic")
	errCRC       = errors.New("entry checksum mismatch")
	errVersion   = errors.New("unsupported entry version")
	errPayload   = errors.New("malformed entry payload")
)

func castagnoli() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) }

// appendEntry appends b, framed as one entry, to dst.
func appendEntry(dst []byte, b *message.Batch) []byte {
	start := len(dst)
	dst = append(dst, magic0, magic1, formatV1, 0, 0, 0, 0, 0, 0, 0, 0, 0)
	dst = binary.AppendUvarint(dst, uint64(len(b.Topic)))
	dst = append(dst, b.Topic...)
	dst = binary.AppendVarint(dst, int64(b.Partition))
	dst = append(dst, byte(b.Reason))
	dst = binary.AppendUvarint(dst, uint64(len(b.Messages)))
	for i := range b.Messages {
		m := &b.Messages[i]
		var flags byte
		if m.Flush {
			flags |= 1
		}
		flags |= byte(m.Signal&3) << 1
		dst = append(dst, flags)
		dst = binary.AppendVarint(dst, m.Timestamp.Unix())
		dst = binary.AppendUvarint(dst, uint64(m.Timestamp.Nanosecond()))
		dst = appendBytes(dst, m.Key)
		dst = appendBytes(dst, m.Value)
		dst = binary.AppendUvarint(dst, uint64(len(m.Headers)))
		for _, h := range m.Headers {
			dst = binary.AppendUvarint(dst, uint64(len(h.Key)))
			dst = append(dst, h.Key...)
			dst = appendBytes(dst, h.Value)
		}
	}
	frame := dst[start:]
	binary.LittleEndian.PutUint32(frame[4:8], uint32(len(frame)-frameHeaderLen))
	crc := crc32.Update(0, castagnoli(), frame[:8])
	crc = crc32.Update(crc, castagnoli(), frame[frameHeaderLen:])
	binary.LittleEndian.PutUint32(frame[8:12], crc)
	return dst
}

// appendBytes writes a nil-able byte string: length -1 is nil.
func appendBytes(dst, b []byte) []byte {
	if b == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(b)))
	return append(dst, b...)
}

// checkFrame validates the frame at the start of buf and returns its payload
// and its length on disk.
func checkFrame(buf []byte) (payload []byte, n int, err error) {
	if len(buf) < 2 {
		return nil, 0, errTruncated
	}
	if buf[0] != magic0 || buf[1] != magic1 {
		return nil, 0, errMagic
	}
	if len(buf) < frameHeaderLen {
		return nil, 0, errTruncated
	}
	plen := binary.LittleEndian.Uint32(buf[4:8])
	if plen > maxPayload || int64(plen) > int64(len(buf)-frameHeaderLen) {
		return nil, 0, errTruncated
	}
	n = frameHeaderLen + int(plen)
	crc := crc32.Update(0, castagnoli(), buf[:8])
	crc = crc32.Update(crc, castagnoli(), buf[frameHeaderLen:n])
	if crc != binary.LittleEndian.Uint32(buf[8:12]) {
		return nil, 0, errCRC
	}
	if buf[2] != formatV1 || buf[3] != 0 {
		return nil, 0, errVersion
	}
	return buf[frameHeaderLen:n], n, nil
}

// decodeEntry decodes the entry at the start of buf and returns it with its
// length on disk. Byte slices of the batch alias buf.
func decodeEntry(buf []byte) (message.Batch, int, error) {
	payload, n, err := checkFrame(buf)
	if err != nil {
		return message.Batch{}, 0, err
	}
	b, err := decodePayload(payload)
	if err != nil {
		return message.Batch{}, 0, err
	}
	return b, n, nil
}

// decodeRoute reads only the topic and partition of a v1 payload.
func decodeRoute(payload []byte) (string, int32, error) {
	r := reader{b: payload}
	topic := r.str()
	part := r.int32()
	return topic, part, r.err
}

func decodePayload(payload []byte) (message.Batch, error) {
	r := reader{b: payload}
	var b message.Batch
	b.Topic = r.str()
	b.Partition = r.int32()
	b.Reason = message.FlushReason(r.byte())
	// Each record takes at least 6 bytes, which bounds the allocation.
	count := r.count(6)
	if r.err == nil && count > 0 {
		b.Messages = make([]message.Message, count)
	}
	for i := 0; i < count && r.err == nil; i++ {
		m := &b.Messages[i]
		m.Topic, m.Partition = b.Topic, b.Partition
		flags := r.byte()
		m.Flush = flags&1 != 0
		m.Signal = message.Signal(flags>>1) & 3
		sec := r.varint()
		nsec := r.uvarint()
		if nsec >= 1e9 {
			r.fail()
		}
		m.Timestamp = time.Unix(sec, int64(nsec))
		m.Key = r.bytes()
		m.Value = r.bytes()
		if hc := r.count(2); hc > 0 && r.err == nil {
			m.Headers = make([]message.Header, hc)
			for j := 0; j < hc && r.err == nil; j++ {
				m.Headers[j].Key = r.str()
				m.Headers[j].Value = r.bytes()
			}
		}
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail()
	}
	if r.err != nil {
		return message.Batch{}, r.err
	}
	b.Bytes = message.BatchSize(b.Messages)
	return b, nil
}

// reader decodes a payload; the first error sticks and later reads return zero values.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail() {
	if r.err == nil {
		r.err = errPayload
	}
	r.b = nil
}

func (r *reader) byte() byte {
	if len(r.b) < 1 {
		r.fail()
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) int32() int32 {
	v := r.varint()
	if int64(int32(v)) != v {
		r.fail()
		return 0
	}
	return int32(v)
}

// count reads a count of items that take at least minSize bytes each.
func (r *reader) count(minSize int) int {
	v := r.uvarint()
	if v > uint64(len(r.b)/minSize) {
		r.fail()
		return 0
	}
	return int(v)
}

func (r *reader) take(n uint64) []byte {
	if n > uint64(len(r.b)) {
		r.fail()
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) str() string { return string(r.take(r.uvarint())) }

func (r *reader) bytes() []byte {
	n := r.varint()
	if n == -1 || r.err != nil {
		return nil
	}
	if n < 0 {
		r.fail()
		return nil
	}
	return r.take(uint64(n))
}

// position is a replay position: the segment id and the byte offset of the
// first unacknowledged entry in it.
type position struct {
	seg uint64
	off int64
}

// Checkpoint file, version 2: two slots, at offsets 0 and
// checkpointSlotStride (different disk sectors), each "KBCP", version 2, 3
// zero bytes, a write sequence number uint64, segment id uint64, offset
// uint64 and a CRC-32C of the preceding 32 bytes. Writes go to the slot of
// the next sequence number, in place, so the file never needs new space; a
// torn write damages only that slot and the other still holds the
// previous position. Version 1 (one slot without sequence number, 28
// bytes, replaced by rename) is read for queues written by earlier builds.
const (
	checkpointV1Len      = 28
	checkpointSlotLen    = 36
	checkpointSlotStride = 512
	checkpointLen        = checkpointSlotStride + checkpointSlotLen
)

var errCheckpoint = errors.New("malformed checkpoint")

// encodeCheckpointSlot returns the slot for write number seq of p.
func encodeCheckpointSlot(seq uint64, p position) []byte {
	b := make([]byte, checkpointSlotLen)
	copy(b, "KBCP")
	b[4] = 2
	binary.LittleEndian.PutUint64(b[8:], seq)
	binary.LittleEndian.PutUint64(b[16:], p.seg)
	binary.LittleEndian.PutUint64(b[24:], uint64(p.off))
	binary.LittleEndian.PutUint32(b[32:], crc32.Checksum(b[:32], castagnoli()))
	return b
}

// encodeCheckpoint returns a whole version 2 file holding p in both slots
// (write numbers seq-1 and seq).
func encodeCheckpoint(seq uint64, p position) []byte {
	b := make([]byte, checkpointLen)
	copy(b[checkpointSlotStride*(seq%2):], encodeCheckpointSlot(seq, p))
	copy(b[checkpointSlotStride*((seq+1)%2):], encodeCheckpointSlot(seq-1, p))
	return b
}

// decodeCheckpoint reads a checkpoint file: the position of its newest
// valid slot and that slot's write number (0 for version 1).
func decodeCheckpoint(b []byte) (position, uint64, error) {
	if len(b) == checkpointV1Len {
		p, err := decodeCheckpointV1(b)
		return p, 0, err
	}
	if len(b) != checkpointLen {
		return position{}, 0, errCheckpoint
	}
	var best position
	var bestSeq uint64
	found := false
	for _, slot := range [][]byte{b[:checkpointSlotLen], b[checkpointSlotStride:]} {
		seq, p, ok := decodeCheckpointSlot(slot)
		if ok && (!found || seq > bestSeq) {
			best, bestSeq, found = p, seq, true
		}
	}
	if !found {
		return position{}, 0, errCheckpoint
	}
	return best, bestSeq, nil
}

func decodeCheckpointSlot(b []byte) (uint64, position, bool) {
	if string(b[:4]) != "KBCP" || b[4] != 2 ||
		crc32.Checksum(b[:32], castagnoli()) != binary.LittleEndian.Uint32(b[32:]) {
		return 0, position{}, false
	}
	p := position{seg: binary.LittleEndian.Uint64(b[16:]), off: int64(binary.LittleEndian.Uint64(b[24:]))}
	return binary.LittleEndian.Uint64(b[8:]), p, p.off >= 0
}

// decodeCheckpointV1 reads the version 1 file: "KBCP", version 1, 3 zero
// bytes, segment id uint64, offset uint64, CRC-32C of the preceding 24
// bytes.
func decodeCheckpointV1(b []byte) (position, error) {
	if len(b) != checkpointV1Len || string(b[:4]) != "KBCP" || b[4] != 1 ||
		crc32.Checksum(b[:24], castagnoli()) != binary.LittleEndian.Uint32(b[24:]) {
		return position{}, errCheckpoint
	}
	p := position{seg: binary.LittleEndian.Uint64(b[8:]), off: int64(binary.LittleEndian.Uint64(b[16:]))}
	if p.off < 0 {
		return position{}, errCheckpoint
	}
	return p, nil
}

// Bounds of one entry against the Kafka record batch it holds.
const (
	// maxRouteBytes: topic (a Kafka topic has at most 249 bytes, uvarint
	// length 2), partition (varint, 5), flush reason (1), record count
	// (uvarint, 10).
	maxRouteBytes = 2 + 249 + 5 + 1 + 10
	// entryRecordExtra is the most an entry's record takes beyond the same
	// record in a v2 record batch: flags and the full timestamp (1 + 10 +
	// 5) where Kafka has a length, attributes and two deltas (4 at least).
	// Keys, values and headers take no more than in Kafka.
	entryRecordExtra = 12
	// minKafkaRecord is the least a record takes in a v2 record batch.
	minKafkaRecord = 7
)

// MaxEntryBytes is the most Append writes for a batch of at most records
// records whose v2 record batch (message.BatchSize) is at most batchBytes:
// an entry never needs more of MaxBytes than this.
func MaxEntryBytes(batchBytes, records int) int64 {
	body := max(batchBytes-message.BatchHeaderBytes, 0)
	records = min(records, body/minKafkaRecord)
	return int64(frameHeaderLen + maxRouteBytes + body + entryRecordExtra*records)
}
