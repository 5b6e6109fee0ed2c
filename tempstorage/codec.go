package tempstorage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"time"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// Entry frame (little endian):
//
//	0  magic    2 bytes  0xFE 0x4B (0xFE never occurs in UTF-8 text, which keeps resync scans cheap)
//	2  version  1 byte   payload format: formatV1, or formatV2 for a batch with a sequence
//	3  flags    1 byte   0
//	4  length   uint32   payload bytes
//	8  crc      uint32   CRC-32C of bytes 0..7 and the payload
//	12 payload
//
// Payload v1: topic (uvarint length + bytes), partition (varint), flush
// reason (1 byte), record count (uvarint), then per record: flags (1 byte,
// bit 0 = Trigger (flush_when), bits 1-2 = message.Signal), timestamp seconds (varint) and nanoseconds (uvarint), key
// and value (varint length, -1 = nil, + bytes), header count (uvarint),
// each header key (uvarint length + bytes) and value (varint length, -1 =
// nil, + bytes).
//
// Payload v2 is v1 with the batch's message.Sequence between the flush
// reason and the record count: producer id (varint), producer epoch
// (varint), base sequence (varint), sequence flags (1 byte, bit 0 =
// Unsure, the others 0), number of record batches (uvarint, at least 1)
// and each one's record count (uvarint, at least 1), which add up to the
// record count. A batch without a sequence is written as v1, so builds
// that read only v1 still read it.
//
// A frame whose CRC holds but whose version or flags this build does not
// know was written by a newer build: recovery refuses the queue with
// errVersion rather than skipping the entry as corrupt.
const (
	frameHeaderLen = 12
	magic0         = 0xFE
	magic1         = 0x4B
	formatV1       = 1
	formatV2       = 2
	// seqUnsure is bit 0 of a v2 payload's sequence flags.
	seqUnsure = 1
	// maxPayload bounds a frame so a corrupt length cannot ask for more.
	maxPayload = 1<<31 - 1
)

var frameMagic = []byte{magic0, magic1}

// Reasons an entry is rejected. errTruncated means the bytes end inside the
// entry (a torn write when it is the end of the last segment). errVersion
// is a valid frame of a format this build does not read.
var (
	errTruncated = errors.New("entry truncated")
	errMagic     = errors.New("bad entry magic")
	errCRC       = errors.New("entry checksum mismatch")
	errVersion   = errors.New("unsupported entry version")
	errPayload   = errors.New("malformed entry payload")
)

func castagnoli() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) }

// appendEntry appends b, framed as one entry, to dst: v2 when b has a
// sequence (checkSequence must accept it), else v1.
func appendEntry(dst []byte, b *message.Batch) []byte {
	start := len(dst)
	version := byte(formatV1)
	if b.Seq != nil {
		version = formatV2
	}
	dst = append(dst, magic0, magic1, version, 0, 0, 0, 0, 0, 0, 0, 0, 0)
	dst = binary.AppendUvarint(dst, uint64(len(b.Topic)))
	dst = append(dst, b.Topic...)
	dst = binary.AppendVarint(dst, int64(b.Partition))
	dst = append(dst, byte(b.Reason))
	if b.Seq != nil {
		dst = appendSequence(dst, b.Seq)
	}
	dst = binary.AppendUvarint(dst, uint64(len(b.Messages)))
	for i := range b.Messages {
		dst = appendRecord(dst, &b.Messages[i])
	}
	frame := dst[start:]
	binary.LittleEndian.PutUint32(frame[4:8], uint32(len(frame)-frameHeaderLen))
	crc := crc32.Update(0, castagnoli(), frame[:8])
	crc = crc32.Update(crc, castagnoli(), frame[frameHeaderLen:])
	binary.LittleEndian.PutUint32(frame[8:12], crc)
	return dst
}

// appendSequence writes the sequence section of a v2 payload.
func appendSequence(dst []byte, s *message.Sequence) []byte {
	dst = binary.AppendVarint(dst, s.ProducerID)
	dst = binary.AppendVarint(dst, int64(s.ProducerEpoch))
	dst = binary.AppendVarint(dst, int64(s.BaseSequence))
	var flags byte
	if s.Unsure {
		flags |= seqUnsure
	}
	dst = append(dst, flags)
	dst = binary.AppendUvarint(dst, uint64(len(s.Counts)))
	for _, c := range s.Counts {
		dst = binary.AppendUvarint(dst, uint64(c))
	}
	return dst
}

// appendRecord writes one record of the payload.
func appendRecord(dst []byte, m *message.Message) []byte {
	var flags byte
	if m.Trigger {
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

// checkSequence reports why s cannot be the sequence of a batch of records
// records (nil when it can): the producer id, epoch and base sequence are
// Kafka's (not negative), and there is at least one record batch count,
// each above 0, adding up to records. The error wraps errPayload.
func checkSequence(s *message.Sequence, records uint64) error {
	if s.ProducerID < 0 || s.ProducerEpoch < 0 || s.BaseSequence < 0 {
		return fmt.Errorf("%w: sequence with producer id %d, epoch %d, base sequence %d (negative)",
			errPayload, s.ProducerID, s.ProducerEpoch, s.BaseSequence)
	}
	if len(s.Counts) == 0 {
		return fmt.Errorf("%w: sequence without record batch counts", errPayload)
	}
	var sum uint64
	for i, c := range s.Counts {
		if c <= 0 {
			return fmt.Errorf("%w: sequence record batch %d of %d counts %d records", errPayload, i+1, len(s.Counts), c)
		}
		sum += uint64(c)
	}
	if sum != records {
		return fmt.Errorf("%w: sequence record batch counts add up to %d records, the batch has %d", errPayload, sum, records)
	}
	return nil
}

// frame is a checked entry frame: its payload and the format to read it by.
type frame struct {
	version byte
	payload []byte
}

// checkFrame validates the frame at the start of buf and returns it and
// its length on disk.
func checkFrame(buf []byte) (f frame, n int, err error) {
	if len(buf) < 2 {
		return frame{}, 0, errTruncated
	}
	if buf[0] != magic0 || buf[1] != magic1 {
		return frame{}, 0, errMagic
	}
	if len(buf) < frameHeaderLen {
		return frame{}, 0, errTruncated
	}
	plen := binary.LittleEndian.Uint32(buf[4:8])
	if plen > maxPayload || int64(plen) > int64(len(buf)-frameHeaderLen) {
		return frame{}, 0, errTruncated
	}
	n = frameHeaderLen + int(plen)
	crc := crc32.Update(0, castagnoli(), buf[:8])
	crc = crc32.Update(crc, castagnoli(), buf[frameHeaderLen:n])
	if crc != binary.LittleEndian.Uint32(buf[8:12]) {
		return frame{}, 0, errCRC
	}
	if (buf[2] != formatV1 && buf[2] != formatV2) || buf[3] != 0 {
		return frame{}, 0, fmt.Errorf("%w %d (flags %#x): this build reads versions %d to %d without flags",
			errVersion, buf[2], buf[3], formatV1, formatV2)
	}
	return frame{version: buf[2], payload: buf[frameHeaderLen:n]}, n, nil
}

// decodeEntry decodes the entry at the start of buf and returns it with its
// length on disk. Byte slices of the batch alias buf.
func decodeEntry(buf []byte) (message.Batch, int, error) {
	f, n, err := checkFrame(buf)
	if err != nil {
		return message.Batch{}, 0, err
	}
	b, err := decodePayload(f)
	if err != nil {
		return message.Batch{}, 0, err
	}
	return b, n, nil
}

// decodeRoute reads the topic and partition of a payload and checks what
// precedes its records (the sequence against the record count).
func decodeRoute(f frame) (string, int32, error) {
	r := reader{b: f.payload}
	h := r.head(f.version)
	return h.topic, h.partition, r.err
}

// decodePayload decodes a checked frame's payload.
func decodePayload(f frame) (message.Batch, error) {
	r := reader{b: f.payload}
	h := r.head(f.version)
	b := message.Batch{Topic: h.topic, Partition: h.partition, Reason: h.reason, Seq: h.seq}
	// Each record takes at least 6 bytes, which bounds the allocation.
	count := r.bound(h.records, 6)
	if r.err == nil && count > 0 {
		b.Messages = make([]message.Message, count)
	}
	for i := 0; i < count && r.err == nil; i++ {
		m := &b.Messages[i]
		m.Topic, m.Partition = b.Topic, b.Partition
		r.record(m)
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

// head is what a payload holds before its records.
type head struct {
	topic     string
	partition int32
	reason    message.FlushReason
	seq       *message.Sequence // v2 only
	records   uint64
}

// head reads a payload of the given version up to its records and checks
// the sequence against the record count. The record count is not bounded
// by the bytes left, so head also reads the start of an entry.
func (r *reader) head(version byte) head {
	var h head
	h.topic = r.str()
	h.partition = r.int32()
	h.reason = message.FlushReason(r.byte())
	if version == formatV2 {
		h.seq = r.sequence()
	}
	h.records = r.uvarint()
	if h.seq != nil && r.err == nil {
		if err := checkSequence(h.seq, h.records); err != nil {
			r.failWith(err)
		}
	}
	return h
}

// sequence reads the sequence section of a v2 payload; checkSequence
// checks the counts against the record count after it.
func (r *reader) sequence() *message.Sequence {
	s := &message.Sequence{ProducerID: r.varint()}
	s.ProducerEpoch = r.int16()
	s.BaseSequence = r.int32()
	flags := r.byte()
	if flags&^seqUnsure != 0 {
		r.failWith(fmt.Errorf("%w: unknown sequence flags %#x", errPayload, flags))
	}
	s.Unsure = flags&seqUnsure != 0
	// Each count takes at least a byte, which bounds the allocation.
	if n := r.count(1); r.err == nil {
		s.Counts = make([]int32, n)
		for i := range s.Counts {
			s.Counts[i] = r.uint31()
		}
	}
	if r.err != nil {
		return nil
	}
	return s
}

// record reads one record of the payload into m.
func (r *reader) record(m *message.Message) {
	flags := r.byte()
	m.Trigger = flags&1 != 0
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

// reader decodes a payload; the first error sticks and later reads return zero values.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail() { r.failWith(errPayload) }

// failWith records err (which wraps errPayload) unless an error came first.
func (r *reader) failWith(err error) {
	if r.err == nil {
		r.err = err
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

// uint31 reads a uvarint that must fit an int32.
func (r *reader) uint31() int32 {
	v := r.uvarint()
	if v > math.MaxInt32 {
		r.fail()
		return 0
	}
	return int32(v)
}

func (r *reader) int16() int16 {
	v := r.varint()
	if int64(int16(v)) != v {
		r.fail()
		return 0
	}
	return int16(v)
}

// count reads a count of items that take at least minSize bytes each.
func (r *reader) count(minSize int) int { return r.bound(r.uvarint(), minSize) }

// bound returns v, a count of items that take at least minSize bytes
// each, if the bytes left can hold them.
func (r *reader) bound(v uint64, minSize int) int {
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
	// maxSequenceBytes is the most a v2 sequence section takes besides its
	// record batch counts: producer id (varint, 10), epoch (3), base
	// sequence (5), flags (1), number of counts (uvarint, 5). A count c
	// takes at most 5 bytes and at most c (uvarint), so the counts of a
	// batch take at most a byte per record.
	maxSequenceBytes = 10 + 3 + 5 + 1 + 5
	// entryRecordExtra is the most an entry's record takes beyond the same
	// record in a v2 record batch: flags and the full timestamp (1 + 10 +
	// 5) where Kafka has a length, attributes and two deltas (4 at least),
	// and a byte of sequence counts. Keys, values and headers take no more
	// than in Kafka.
	entryRecordExtra = 13
	// minKafkaRecord is the least a record takes in a v2 record batch.
	minKafkaRecord = 7
)

// MaxEntryBytes is the most Append writes for a batch of at most records
// records whose v2 record batch (message.BatchSize) is at most batchBytes,
// with or without a sequence: an entry never needs more of MaxBytes than
// this.
func MaxEntryBytes(batchBytes, records int) int64 {
	body := max(batchBytes-message.BatchHeaderBytes, 0)
	records = min(records, body/minKafkaRecord)
	return int64(frameHeaderLen + maxRouteBytes + maxSequenceBytes + body + entryRecordExtra*records)
}
