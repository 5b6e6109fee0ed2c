// Package topicdump reads a Kafka topic's record batches as the broker
// stored them and summarises them: records and batches per partition, and
// each batch's record count and size. It shows what arrived and how it was
// batched.
package topicdump

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// batchPrefixBytes is the base offset and length that precede every record
// batch (and every legacy message) on the wire; Length counts what follows.
const batchPrefixBytes = 12

// ErrCorruptBatch means fetched bytes do not hold a well-formed batch.
var ErrCorruptBatch = errors.New("corrupt record batch")

// Codec names a record batch compression codec.
type Codec string

// Codecs, as numbered in a batch's attributes.
const (
	CodecNone    Codec = "none"
	CodecGzip    Codec = "gzip"
	CodecSnappy  Codec = "snappy"
	CodecLZ4     Codec = "lz4"
	CodecZstd    Codec = "zstd"
	codecUnknown Codec = "unknown"
)

func codecOf(attrs int16) Codec {
	switch attrs & 0x07 {
	case 0:
		return CodecNone
	case 1:
		return CodecGzip
	case 2:
		return CodecSnappy
	case 3:
		return CodecLZ4
	case 4:
		return CodecZstd
	default:
		return codecUnknown
	}
}

// Batch is one record batch as the broker stored it.
type Batch struct {
	// BaseOffset is the offset of the batch's first record.
	BaseOffset int64
	// LastOffset is the offset of the batch's last record.
	LastOffset int64
	// Records is the number of records in the batch.
	Records int
	// Bytes is the whole batch as stored: for an uncompressed v2 batch this
	// is the 61-byte header plus the records, as the producer sent it.
	Bytes int
	// Codec is the batch's compression.
	Codec Codec
	// Magic is the batch format: 2 for record batches, 0 or 1 for legacy
	// message sets (counted as one record each).
	Magic int8
	// Control is set for transaction markers; they hold no user records.
	Control bool
	// FirstTimestamp is the batch's first timestamp.
	FirstTimestamp time.Time
}

// ParseBatches splits the RecordBatches bytes of one fetched partition into
// batches. A trailing partial batch, which a fetch may return when it hits
// its size limit, is left out: the next fetch returns it whole.
func ParseBatches(raw []byte) ([]Batch, error) {
	var out []Batch
	for len(raw) >= batchPrefixBytes+5 { // up to and including the magic byte
		length := int32(binary.BigEndian.Uint32(raw[8:12]))
		if length < 5 {
			return out, fmt.Errorf("%w: length %d at offset %d", ErrCorruptBatch, length, int64(binary.BigEndian.Uint64(raw[0:8])))
		}
		total := batchPrefixBytes + int(length)
		if total > len(raw) {
			break
		}
		b, err := parseOne(raw[:total])
		if err != nil {
			return out, err
		}
		out = append(out, b)
		raw = raw[total:]
	}
	return out, nil
}

// parseOne reads one complete batch or legacy message.
func parseOne(raw []byte) (Batch, error) {
	magic := int8(raw[16]) // same position in v2 batches and legacy messages
	if magic < 2 {
		return parseLegacy(raw, magic)
	}
	if magic > 2 {
		return Batch{}, fmt.Errorf("%w: unknown magic %d", ErrCorruptBatch, magic)
	}
	var rb kmsg.RecordBatch
	if err := rb.ReadFrom(raw); err != nil {
		return Batch{}, fmt.Errorf("%w: %v", ErrCorruptBatch, err)
	}
	if crc := int32(crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli))); crc != rb.CRC {
		return Batch{}, fmt.Errorf("%w: crc %08x, computed %08x at offset %d", ErrCorruptBatch, uint32(rb.CRC), uint32(crc), rb.FirstOffset)
	}
	if rb.NumRecords < 0 {
		return Batch{}, fmt.Errorf("%w: %d records at offset %d", ErrCorruptBatch, rb.NumRecords, rb.FirstOffset)
	}
	return Batch{
		BaseOffset:     rb.FirstOffset,
		LastOffset:     rb.FirstOffset + int64(rb.LastOffsetDelta),
		Records:        int(rb.NumRecords),
		Bytes:          len(raw),
		Codec:          codecOf(rb.Attributes),
		Magic:          rb.Magic,
		Control:        rb.Attributes&0x20 != 0,
		FirstTimestamp: time.UnixMilli(rb.FirstTimestamp),
	}, nil
}

// parseLegacy reads a magic 0 or 1 message: offset, size, crc, magic,
// attributes, (v1: timestamp), key, value.
func parseLegacy(raw []byte, magic int8) (Batch, error) {
	if len(raw) < 18 {
		return Batch{}, fmt.Errorf("%w: legacy message of %d bytes", ErrCorruptBatch, len(raw))
	}
	off := int64(binary.BigEndian.Uint64(raw[0:8]))
	b := Batch{
		BaseOffset: off,
		LastOffset: off, // a compressed wrapper carries its last inner offset
		Records:    1,
		Bytes:      len(raw),
		Codec:      codecOf(int16(raw[17])),
		Magic:      magic,
	}
	if magic == 1 && len(raw) >= 26 {
		b.FirstTimestamp = time.UnixMilli(int64(binary.BigEndian.Uint64(raw[18:26])))
	}
	return b, nil
}

// Partition is what one partition holds.
type Partition struct {
	ID int32
	// HighWatermark is the partition's next offset as the broker last
	// reported it.
	HighWatermark int64
	// Batches are the partition's batches in offset order.
	Batches []Batch
}

// Records is the number of user records in the partition's batches.
func (p Partition) Records() int {
	n := 0
	for _, b := range p.Batches {
		if !b.Control {
			n += b.Records
		}
	}
	return n
}

// DataBatches is the number of batches holding user records.
func (p Partition) DataBatches() int {
	n := 0
	for _, b := range p.Batches {
		if !b.Control {
			n++
		}
	}
	return n
}

// Bytes is the size of the partition's batches as stored.
func (p Partition) Bytes() int {
	n := 0
	for _, b := range p.Batches {
		n += b.Bytes
	}
	return n
}

// Topic is what a topic holds, partitions in ID order.
type Topic struct {
	Name       string
	Partitions []Partition
}

// Records is the number of user records in the topic.
func (t Topic) Records() int {
	n := 0
	for _, p := range t.Partitions {
		n += p.Records()
	}
	return n
}

// DataBatches is the number of batches holding user records.
func (t Topic) DataBatches() int {
	n := 0
	for _, p := range t.Partitions {
		n += p.DataBatches()
	}
	return n
}

// Bytes is the size of all batches as stored.
func (t Topic) Bytes() int {
	n := 0
	for _, p := range t.Partitions {
		n += p.Bytes()
	}
	return n
}
