package tempstorage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// The entry format versions: v1 as earlier builds wrote it (pinned by
// testdata/v1-segment.log, written by the encoder before v2 existed), v2
// with a sequence, and what recovery does with each.

// v1GoldenFile holds the entries of v1GoldenBatches, one after the other,
// as the encoder before format v2 wrote them.
const v1GoldenFile = "testdata/v1-segment.log"

// v1GoldenBatches are the batches of v1GoldenFile: seqBatch 1 to 4 of
// logs/0 with 1 to 4 records, flush flags, signals and flush reasons.
func v1GoldenBatches() []message.Batch {
	var bs []message.Batch
	for seq := 1; seq <= 4; seq++ {
		b := seqBatch("logs", 0, seq, seq, 40)
		b.Seq = nil
		b.Messages[0].Trigger = seq == 2
		b.Messages[len(b.Messages)-1].Signal = message.Signal(seq % 3)
		b.Reason = message.FlushReason(seq)
		bs = append(bs, b)
	}
	return bs
}

func readGolden(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(v1GoldenFile)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestV1EntriesOfEarlierBuildsDecode: the bytes an earlier build wrote
// decode to their batches, without a sequence.
func TestV1EntriesOfEarlierBuildsDecode(t *testing.T) {
	buf := readGolden(t)
	for i, want := range v1GoldenBatches() {
		if buf[2] != formatV1 {
			t.Fatalf("entry %d: version %d in the golden file", i, buf[2])
		}
		got, n, err := decodeEntry(buf)
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		if got.Seq != nil {
			t.Fatalf("entry %d: a v1 entry decoded with sequence %+v", i, *got.Seq)
		}
		if d := sameBatch(got, want); d != "" {
			t.Fatalf("entry %d: %s", i, d)
		}
		buf = buf[n:]
	}
	if len(buf) != 0 {
		t.Fatalf("%d bytes left after the golden entries", len(buf))
	}
}

// TestBatchWithoutSequenceIsWrittenAsV1: byte for byte what earlier builds
// wrote, so they read it after a downgrade.
func TestBatchWithoutSequenceIsWrittenAsV1(t *testing.T) {
	var got []byte
	for _, b := range v1GoldenBatches() {
		got = appendEntry(got, &b)
	}
	if !bytes.Equal(got, readGolden(t)) {
		t.Fatalf("entries without a sequence differ from %s:\n got %x\nwant %x", v1GoldenFile, got, readGolden(t))
	}
}

// TestV2Layout pins the bytes of a v2 entry.
func TestV2Layout(t *testing.T) {
	msgs := []message.Message{
		{Topic: "t", Partition: 1, Value: []byte("a"), Timestamp: time.Unix(1, 0)},
		{Topic: "t", Partition: 1, Value: []byte("a"), Timestamp: time.Unix(1, 0)},
	}
	b := message.Batch{Topic: "t", Partition: 1, Messages: msgs, Bytes: message.BatchSize(msgs), Reason: message.ReasonSize,
		Seq: &message.Sequence{ProducerID: 5, ProducerEpoch: 2, BaseSequence: 7, Counts: []int32{1, 1}, Unsure: true}}
	payload := []byte{
		0x01, 't', // topic
		0x02,       // partition 1 (varint)
		0x01,       // flush reason size
		0x0a,       // producer id 5 (varint)
		0x04,       // epoch 2 (varint)
		0x0e,       // base sequence 7 (varint)
		0x01,       // sequence flags: Unsure
		0x02,       // two record batches
		0x01, 0x01, // of one record each
		0x02,                                    // two records
		0x00, 0x02, 0x00, 0x01, 0x02, 'a', 0x00, // flags, 1 s, 0 ns, nil key, value "a", no headers
		0x00, 0x02, 0x00, 0x01, 0x02, 'a', 0x00,
	}
	want := append([]byte{magic0, magic1, formatV2, 0, byte(len(payload)), 0, 0, 0, 0, 0, 0, 0}, payload...)
	crcOf(want)
	got := encodeEntry(b)
	if !bytes.Equal(got, want) {
		t.Fatalf("v2 entry:\n got %x\nwant %x", got, want)
	}
	back, _, err := decodeEntry(got)
	if err != nil {
		t.Fatal(err)
	}
	if d := sameBatch(back, b); d != "" {
		t.Fatal(d)
	}
}

// seqSection returns the bytes of a v2 sequence section.
func seqSection(pid, epoch, base int64, flags byte, counts ...uint64) []byte {
	b := binary.AppendVarint(nil, pid)
	b = binary.AppendVarint(b, epoch)
	b = binary.AppendVarint(b, base)
	b = append(b, flags)
	b = binary.AppendUvarint(b, uint64(len(counts)))
	for _, c := range counts {
		b = binary.AppendUvarint(b, c)
	}
	return b
}

// rawV2Entry frames, CRC and all, a v2 entry of t/0 with the given
// sequence section and records empty records.
func rawV2Entry(seq []byte, records int) []byte {
	p := []byte{1, 't', 0, byte(message.ReasonSize)}
	p = append(p, seq...)
	p = binary.AppendUvarint(p, uint64(records))
	for range records {
		p = append(p, 0, 0, 0, 1, 1, 0) // flags, timestamp 0, nil key and value, no headers
	}
	b := []byte{magic0, magic1, formatV2, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	binary.LittleEndian.PutUint32(b[4:], uint32(len(p)))
	b = append(b, p...)
	crcOf(b)
	return b
}

// TestV2SequenceRejects: a sequence section that does not fit its records
// is a malformed payload, whose error says what is wrong, and recovery's
// scan (decodeRoute) finds it too.
func TestV2SequenceRejects(t *testing.T) {
	if _, _, err := decodeEntry(rawV2Entry(seqSection(9, 1, 100, 1, 1, 2), 3)); err != nil {
		t.Fatalf("the well-formed entry the cases are built from: %v", err)
	}
	cases := []struct {
		name, says string
		buf        []byte
	}{
		{"counts add up to less", "add up to 2 records, the batch has 3", rawV2Entry(seqSection(9, 1, 100, 0, 1, 1), 3)},
		{"counts add up to more", "add up to 4 records, the batch has 3", rawV2Entry(seqSection(9, 1, 100, 0, 2, 2), 3)},
		{"zero count", "record batch 1 of 2 counts 0", rawV2Entry(seqSection(9, 1, 100, 0, 0, 3), 3)},
		{"no counts", "without record batch counts", rawV2Entry(seqSection(9, 1, 100, 0), 0)},
		{"unknown flags", "unknown sequence flags 0x2", rawV2Entry(seqSection(9, 1, 100, 2, 3), 3)},
		{"negative producer id", "negative", rawV2Entry(seqSection(-1, 1, 100, 0, 3), 3)},
		{"negative epoch", "negative", rawV2Entry(seqSection(9, -1, 100, 0, 3), 3)},
		{"negative base sequence", "negative", rawV2Entry(seqSection(9, 1, -1, 0, 3), 3)},
		{"epoch beyond int16", "", rawV2Entry(seqSection(9, math.MaxInt16+1, 100, 0, 3), 3)},
		{"base beyond int32", "", rawV2Entry(seqSection(9, 1, math.MaxInt32+1, 0, 3), 3)},
		{"count beyond int32", "", rawV2Entry(seqSection(9, 1, 100, 0, math.MaxInt32+1), 3)},
		{"more counts than bytes", "", rawV2Entry(append(seqSection(9, 1, 100, 0), 0xff, 0x7f), 0)},
		{"v1 payload under version 2", "", func() []byte {
			b := encodeEntry(seqBatch("t", 1, 2, 3, 10))
			b[2] = formatV2
			crcOf(b)
			return b
		}()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := decodeEntry(c.buf)
			if !errors.Is(err, errPayload) || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("decode: %v, want %v saying %q", err, errPayload, c.says)
			}
			if _, _, err := validEntry(c.buf); !errors.Is(err, errPayload) {
				t.Fatalf("scan: %v, want %v", err, errPayload)
			}
		})
	}
}

// copyGoldenSegment puts the v1 golden entries in dir as segment 1.
func copyGoldenSegment(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, segmentName(1)), readGolden(t), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestMigrateV1Queue: a store whose queue an earlier build wrote (v1
// entries) opens, replays them without a sequence, and takes v2 entries
// behind them in the same segment; replay keeps the order across the
// mixed segment, also after a reopen.
func TestMigrateV1Queue(t *testing.T) {
	dir := t.TempDir()
	qdir := filepath.Join(dir, "queue", "logs", "0")
	copyGoldenSegment(t, qdir)
	old := v1GoldenBatches()

	s := mustOpenStore(t, dir, Options{})
	if s.Len() != len(old) {
		t.Fatalf("store holds %d batches, want the %d v1 ones", s.Len(), len(old))
	}
	b, ok, err := s.Peek(tp("logs", 0))
	if err != nil || !ok {
		t.Fatalf("Peek: ok=%v, %v", ok, err)
	}
	if d := sameBatch(b, old[0]); d != "" {
		t.Fatalf("first v1 batch: %s", d)
	}
	var added []message.Batch
	for seq := 5; seq <= 8; seq++ {
		nb := seqBatch("logs", 0, seq, 3, 40)
		nb.Seq = seqFor(seq, 3)
		if err := s.Append(nb); err != nil {
			t.Fatal(err)
		}
		added = append(added, nb)
	}
	closeStore(t, s)
	if ids := segmentFiles(t, qdir); !slices.Equal(ids, []uint64{1}) {
		t.Fatalf("segments %v, want the v1 segment only (v2 entries appended to it)", ids)
	}
	seg, err := os.ReadFile(filepath.Join(qdir, segmentName(1)))
	if err != nil {
		t.Fatal(err)
	}
	versions := map[byte]int{}
	for _, e := range scanSegment(seg).entries {
		versions[seg[e.off+2]]++
	}
	if versions[formatV1] != 4 || versions[formatV2] != 4 {
		t.Fatalf("entry versions in the segment: %v, want 4 of each", versions)
	}

	rep, err := Inspect(dir, nil)
	if err != nil || rep.Damaged() || len(rep.Partitions) != 1 || rep.Partitions[0].Batches != 8 {
		t.Fatalf("Inspect of the mixed segment: %+v, %v", rep, err)
	}
	s = mustOpenStore(t, dir, Options{})
	defer closeStore(t, s)
	for i, want := range append(old, added...) {
		got, ok, err := s.Peek(tp("logs", 0))
		if err != nil || !ok {
			t.Fatalf("Peek %d: ok=%v, %v", i, ok, err)
		}
		if d := sameBatch(got, want); d != "" {
			t.Fatalf("batch %d: %s", i, d)
		}
		if err := s.Ack(tp("logs", 0)); err != nil {
			t.Fatal(err)
		}
	}
	if s.Len() != 0 || s.Corrupt() != 0 {
		t.Fatalf("after replay: %d left, %d corrupt", s.Len(), s.Corrupt())
	}
}

// TestMigrateV1SingleQueueLayout: v1 segments of the single-queue layout
// (directly in the store directory) are moved into their partition queue.
func TestMigrateV1SingleQueueLayout(t *testing.T) {
	dir := t.TempDir()
	copyGoldenSegment(t, dir)
	s := mustOpenStore(t, dir, Options{})
	defer closeStore(t, s)
	for i, want := range v1GoldenBatches() {
		got, ok, err := s.Peek(tp("logs", 0))
		if err != nil || !ok {
			t.Fatalf("Peek %d: ok=%v, %v", i, ok, err)
		}
		if d := sameBatch(got, want); d != "" {
			t.Fatalf("batch %d: %s", i, d)
		}
		if err := s.Ack(tp("logs", 0)); err != nil {
			t.Fatal(err)
		}
	}
}

// writeSegment writes entries as segment 1 of the queue of logs/0 in the
// store directory dir and returns the segment's path.
func writeSegment(t *testing.T, dir string, entries ...[]byte) string {
	t.Helper()
	qdir := filepath.Join(dir, "queue", "logs", "0")
	if err := os.MkdirAll(qdir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(qdir, segmentName(1))
	if err := os.WriteFile(path, slices.Concat(entries...), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestCorruptSequenceIsCorruption: a v2 entry whose sequence counts do not
// add up (CRC intact) is damage like a bad CRC: reported by Inspect, moved
// aside and counted by Open, the entries around it replayed.
func TestCorruptSequenceIsCorruption(t *testing.T) {
	dir := t.TempDir()
	bad := seqBatch("logs", 0, 2, 3, 20)
	bad.Seq = &message.Sequence{ProducerID: 1, Counts: []int32{1, 1}} // 2 of 3 records
	writeSegment(t, dir, encodeEntry(seqBatch("logs", 0, 1, 2, 20)), appendEntry(nil, &bad), encodeEntry(seqBatch("logs", 0, 3, 2, 20)))

	rep, err := Inspect(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 1 || rep.Problems[0].Kind != ProblemCorrupt || !strings.Contains(rep.Problems[0].Detail, "add up to 2 records") {
		t.Fatalf("Inspect problems: %+v", rep.Problems)
	}
	s := mustOpenStore(t, dir, Options{})
	defer closeStore(t, s)
	if s.Corrupt() != 1 {
		t.Fatalf("Corrupt = %d, want 1", s.Corrupt())
	}
	requirePartitionDrained(t, s, "logs", 0, []int{1, 3})
	kept, _ := filepath.Glob(filepath.Join(dir, "queue", "logs", "0", corruptDir, "*.bad"))
	if len(kept) != 1 {
		t.Fatalf("copies kept aside: %v, want the bad entry", kept)
	}
}

// newerEntry returns a CRC-valid entry of format version 3, as a later
// build might write.
func newerEntry() []byte {
	b := encodeEntry(seqBatch("logs", 0, 9, 1, 20))
	b[2] = 3
	crcOf(b)
	return b
}

// TestNewerFormatRefusesTheStore: entries of a format this build does not
// read are not damage to skip: Open refuses the store, naming the file,
// and changes nothing; Inspect reports them and what comes before them.
func TestNewerFormatRefusesTheStore(t *testing.T) {
	first := encodeEntry(seqBatch("logs", 0, 1, 2, 20))
	for _, c := range []struct {
		name    string
		entries [][]byte
		newer   int // index of the newer entry
	}{
		{"after an entry", [][]byte{first, newerEntry(), encodeEntry(seqBatch("logs", 0, 2, 2, 20))}, 1},
		{"after a corrupt range", [][]byte{first, []byte("garbage\xfe\x4b"), newerEntry()}, 2},
		{"last in the segment", [][]byte{first, newerEntry()}, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := writeSegment(t, dir, c.entries...)
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			newerAt := int64(len(slices.Concat(c.entries[:c.newer]...)))

			rep, err := Inspect(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			var newer *Problem
			for i := range rep.Problems {
				if rep.Problems[i].Kind == ProblemNewerFormat {
					newer = &rep.Problems[i]
				}
			}
			if newer == nil || newer.Offset != newerAt || !strings.Contains(newer.Detail, "version 3") {
				t.Fatalf("Inspect problems: %+v, want newer_format at %d", rep.Problems, newerAt)
			}
			if len(rep.Partitions) != 1 || rep.Partitions[0].Batches != 1 {
				t.Fatalf("Inspect partitions: %+v, want the entry before the newer one", rep.Partitions)
			}

			_, err = OpenStore(dir, Options{})
			if !errors.Is(err, errVersion) || !strings.Contains(err.Error(), segmentName(1)) || !strings.Contains(err.Error(), "newer build") {
				t.Fatalf("OpenStore: %v, want %v naming the segment", err, errVersion)
			}
			if err := Repair(dir, Options{}); !errors.Is(err, errVersion) {
				t.Fatalf("Repair: %v, want %v", err, errVersion)
			}
			after, err := os.ReadFile(path)
			if err != nil || !bytes.Equal(before, after) {
				t.Fatalf("segment changed by the refused opens (%v)", err)
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(path), corruptDir)); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("the refused opens wrote to %s/ (%v)", corruptDir, err)
			}
		})
	}
}

// TestAppendLeavesOutASequenceThatDoesNotFit: a sequence whose counts do
// not add up to the batch's records is not written (it would not read
// back), the records are, and the log says so.
func TestAppendLeavesOutASequenceThatDoesNotFit(t *testing.T) {
	log, logs := observed()
	q := mustOpen(t, t.TempDir(), Options{Logger: log})
	defer closeQueue(t, q)
	b := seqBatch("t", 0, 1, 3, 10)
	b.Seq = &message.Sequence{ProducerID: 1, Counts: []int32{2}}
	if err := q.Append(b); err != nil {
		t.Fatal(err)
	}
	got, ok, err := q.Peek()
	if err != nil || !ok {
		t.Fatalf("Peek: ok=%v, %v", ok, err)
	}
	if got.Seq != nil || len(got.Messages) != 3 {
		t.Fatalf("stored %d records with sequence %v, want 3 without", len(got.Messages), got.Seq)
	}
	if l := logs.FilterMessageSnippet("without its sequence").All(); len(l) != 1 ||
		!strings.Contains(l[0].ContextMap()["error"].(string), "add up to 2 records, the batch has 3") {
		t.Fatalf("log: %v", logs.All())
	}
}

// TestOldestReadsPastALongSequence: the age gauge finds the first record's
// timestamp behind a sequence of many record batches (more than its first
// read of the entry holds).
func TestOldestReadsPastALongSequence(t *testing.T) {
	s := mustOpenStore(t, t.TempDir(), Options{})
	defer closeStore(t, s)
	b := seqBatch("t", 0, 2, 1000, 1)
	b.Seq = &message.Sequence{ProducerID: 1, Counts: slices.Repeat([]int32{1}, 1000)}
	if len(encodeEntry(b)) < 2*headTimeBytes || 1000 < 2*headTimeBytes {
		t.Fatal("the counts fit the first read")
	}
	if err := s.Append(b); err != nil {
		t.Fatal(err)
	}
	if got := s.Oldest()[tp("t", 0)]; !got.Equal(b.Messages[0].Timestamp) {
		t.Fatalf("Oldest = %v, want %v", got, b.Messages[0].Timestamp)
	}
}
