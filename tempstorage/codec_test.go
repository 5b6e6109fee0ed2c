package tempstorage

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

func codecCases() map[string]message.Batch {
	ts := time.Unix(1_700_000_000, 987654321)
	one := func(m message.Message) message.Batch {
		m.Topic, m.Partition = "logs", 3
		msgs := []message.Message{m}
		return message.Batch{Topic: "logs", Partition: 3, Messages: msgs, Bytes: message.BatchSize(msgs), Reason: message.ReasonSize}
	}
	return map[string]message.Batch{
		"nil key and value":   one(message.Message{Timestamp: ts}),
		"empty key and value": one(message.Message{Key: []byte{}, Value: []byte{}, Timestamp: ts}),
		"headers nil and empty values": one(message.Message{Key: []byte("k"), Value: []byte("v"), Timestamp: ts,
			Headers: []message.Header{{Key: "a", Value: nil}, {Key: "", Value: []byte{}}, {Key: "c", Value: []byte("x")}}}),
		"flush flag":             one(message.Message{Value: []byte("v"), Timestamp: ts, Trigger: true}),
		"traces signal":          one(message.Message{Value: []byte("v"), Timestamp: ts, Signal: message.SignalTraces}),
		"metrics signal, flush":  one(message.Message{Value: []byte("v"), Timestamp: ts, Signal: message.SignalMetrics, Trigger: true}),
		"zero timestamp":         one(message.Message{Value: []byte("v")}),
		"pre-1970 timestamp":     one(message.Message{Value: []byte("v"), Timestamp: time.Date(1900, 1, 1, 0, 0, 0, 1, time.UTC)}),
		"large value":            one(message.Message{Value: []byte(strings.Repeat("x", 200_000)), Timestamp: ts}),
		"many records":           seqBatch("t", 0, 7, 500, 20),
		"negative partition":     {Topic: "t", Partition: -1, Messages: seqBatch("t", -1, 1, 2, 5).Messages, Bytes: seqBatch("t", -1, 1, 2, 5).Bytes},
		"empty batch":            {Topic: "t", Partition: 1},
		"unicode topic":          seqBatch("журнал-ログ", 2147483647, 1, 1, 1),
		"binary value with 0xFE": one(message.Message{Value: []byte{0xFE, 0x4B, 1, 0, 0xFE, 0x4B}, Timestamp: ts}),
		"sequence, one count":    withSeq(seqBatch("t", 0, 2, 3, 10), 3),
		"sequence, several counts, unsure": func() message.Batch {
			b := withSeq(seqBatch("t", 5, 2, 10, 10), 1, 2, 3, 4)
			b.Seq.Unsure = true
			return b
		}(),
		"sequence, zero numbers": func() message.Batch {
			b := seqBatch("t", 0, 2, 1, 1)
			b.Seq = &message.Sequence{Counts: []int32{1}}
			return b
		}(),
		"sequence, largest numbers": func() message.Batch {
			b := seqBatch("t", 0, 2, 2, 1)
			b.Seq = &message.Sequence{ProducerID: math.MaxInt64, ProducerEpoch: math.MaxInt16, BaseSequence: math.MaxInt32,
				Counts: []int32{1, 1}, Unsure: true}
			return b
		}(),
		"sequence, 300 counts": func() message.Batch {
			b := seqBatch("t", 0, 2, 300, 1)
			b.Seq = &message.Sequence{ProducerID: 1, Counts: slices.Repeat([]int32{1}, 300)}
			return b
		}(),
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	for name, b := range codecCases() {
		t.Run(name, func(t *testing.T) {
			enc := encodeEntry(b)
			got, n, err := decodeEntry(enc)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if n != len(enc) {
				t.Fatalf("decoded length %d, encoded %d", n, len(enc))
			}
			if d := sameBatch(got, b); d != "" {
				t.Fatal(d)
			}
			// Trailing bytes (the next entry) are not part of this one.
			_, n2, err := decodeEntry(append(enc, encodeEntry(b)...))
			if err != nil || n2 != n {
				t.Fatalf("with trailing entry: n=%d err=%v, want %d", n2, err, n)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	good := encodeEntry(seqBatch("t", 1, 5, 3, 10))
	mutate := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	reframe := func(b []byte) []byte { // recompute length and CRC over a changed payload
		payload := append([]byte(nil), b[frameHeaderLen:]...)
		out := append([]byte(nil), b[:frameHeaderLen]...)
		binary.LittleEndian.PutUint32(out[4:8], uint32(len(payload)))
		out = append(out, payload...)
		crcOf(out)
		return out
	}
	cases := []struct {
		name string
		buf  []byte
		want error
	}{
		{"empty", nil, errTruncated},
		{"one byte", good[:1], errTruncated},
		{"header only", good[:frameHeaderLen], errTruncated},
		{"cut payload", good[:len(good)-1], errTruncated},
		{"bad magic", mutate(func(b []byte) []byte { b[0] = 'x'; return b }), errMagic},
		{"flipped payload bit", mutate(func(b []byte) []byte { b[20] ^= 0x10; return b }), errCRC},
		{"flipped crc", mutate(func(b []byte) []byte { b[9] ^= 1; return b }), errCRC},
		{"shorter length", mutate(func(b []byte) []byte { b[4]--; return b }), errCRC},
		{"longer length", mutate(func(b []byte) []byte { b[4]++; return b }), errTruncated},
		{"huge length", mutate(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[4:], 0xFFFFFFF0); return b }), errTruncated},
		{"future version", mutate(func(b []byte) []byte { b[2] = 3; crcOf(b); return b }), errVersion},
		{"version 0", mutate(func(b []byte) []byte { b[2] = 0; crcOf(b); return b }), errVersion},
		{"flags set", mutate(func(b []byte) []byte { b[3] = 1; crcOf(b); return b }), errVersion},
		{"trailing payload byte", mutate(func(b []byte) []byte { return reframe(append(b, 0)) }), errPayload},
		{"payload cut", mutate(func(b []byte) []byte { return reframe(b[:len(b)-3]) }), errPayload},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, _, err := decodeEntry(c.buf); !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
}

// crcOf rewrites the CRC of the frame at the start of b.
func crcOf(b []byte) {
	n := frameHeaderLen + int(binary.LittleEndian.Uint32(b[4:8]))
	crc := crc32.Update(0, castagnoli(), b[:8])
	crc = crc32.Update(crc, castagnoli(), b[frameHeaderLen:n])
	binary.LittleEndian.PutUint32(b[8:12], crc)
}

func TestCheckpointRoundTrip(t *testing.T) {
	p := position{seg: 1234567, off: 987654}
	b := encodeCheckpoint(7, p)
	got, seq, err := decodeCheckpoint(b)
	if err != nil || got != p || seq != 7 {
		t.Fatalf("got %v seq %d, %v", got, seq, err)
	}
	// A flip in one slot (a torn write) leaves the other.
	for _, slot := range []int{0, checkpointSlotStride} {
		for i := range checkpointSlotLen {
			c := append([]byte(nil), b...)
			c[slot+i] ^= 0x04
			if got, _, err := decodeCheckpoint(c); err != nil || got != p {
				t.Fatalf("flip in byte %d of the slot at %d: got %v, %v", i, slot, got, err)
			}
		}
	}
	// The newer slot wins.
	next := position{seg: 1234568, off: 0}
	copy(b[checkpointSlotStride*(8%2):], encodeCheckpointSlot(8, next))
	if got, seq, err := decodeCheckpoint(b); err != nil || got != next || seq != 8 {
		t.Fatalf("after writing slot 8: got %v seq %d, %v", got, seq, err)
	}
	c := append([]byte(nil), b...)
	c[3] ^= 1
	c[checkpointSlotStride+3] ^= 1
	if _, _, err := decodeCheckpoint(c); !errors.Is(err, errCheckpoint) {
		t.Fatal("both slots damaged accepted")
	}
	if _, _, err := decodeCheckpoint(b[:10]); !errors.Is(err, errCheckpoint) {
		t.Fatal("short checkpoint accepted")
	}
}

// TestCheckpointVersion1IsRead: the file earlier builds wrote (28 bytes,
// replaced by rename) still gives its position.
func TestCheckpointVersion1IsRead(t *testing.T) {
	b := make([]byte, checkpointV1Len)
	copy(b, "KBCP")
	b[4] = 1
	binary.LittleEndian.PutUint64(b[8:], 42)
	binary.LittleEndian.PutUint64(b[16:], 4096)
	binary.LittleEndian.PutUint32(b[24:], crc32.Checksum(b[:24], castagnoli()))
	if got, seq, err := decodeCheckpoint(b); err != nil || got != (position{42, 4096}) || seq != 0 {
		t.Fatalf("got %v seq %d, %v", got, seq, err)
	}
	for i := range b {
		c := append([]byte(nil), b...)
		c[i] ^= 0x04
		if _, _, err := decodeCheckpoint(c); !errors.Is(err, errCheckpoint) {
			t.Fatalf("flip in byte %d accepted", i)
		}
	}
}

// FuzzDecodeEntry: decoding arbitrary bytes never panics, and whatever
// decodes encodes back to something that decodes to the same batch. The
// input is tried as a whole entry and as a bare payload, since random
// frames rarely pass the CRC.
func FuzzDecodeEntry(f *testing.F) {
	for _, b := range codecCases() {
		if enc := encodeEntry(b); len(enc) < 4096 { // small seeds keep mutation fast
			f.Add(enc)
			f.Add(enc[frameHeaderLen:])
		}
	}
	f.Add([]byte{magic0, magic1, formatV1, 0, 5, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5})
	f.Add(encodeEntry(withSeq(seqBatch("t", 1, 2, 3, 4), 1, 2)))
	f.Add(rawV2Entry(seqSection(7, 1, 5, 1, 1, 2), 2)) // counts that do not add up
	f.Add(rawV2Entry(seqSection(7, 1, 5, 1, 1, 2), 3)[frameHeaderLen:])
	f.Fuzz(func(t *testing.T, data []byte) {
		if b, n, err := decodeEntry(data); err == nil {
			if n > len(data) {
				t.Fatalf("length %d beyond input %d", n, len(data))
			}
			checkReencode(t, b)
		}
		for _, v := range []byte{formatV1, formatV2} {
			if b, err := decodePayload(frame{version: v, payload: data}); err == nil {
				checkReencode(t, b)
			}
		}
	})
}

func checkReencode(t *testing.T, b message.Batch) {
	b2, _, err := decodeEntry(encodeEntry(b))
	if err != nil {
		t.Fatalf("re-encoded entry does not decode: %v", err)
	}
	if d := sameBatch(b, b2); d != "" {
		t.Fatal(d)
	}
}
