package tempstorage

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// fillStore writes batches seq 0..n-1 of topic/0 and n..2n-1 of topic/1
// and acknowledges the first acked of partition 0.
func fillStore(t *testing.T, dir string, n, acked int, opts Options) {
	t.Helper()
	s, err := OpenStore(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		for p := range int32(2) {
			if err := s.Append(seqBatch("logs", p, int(p)*n+i, 3, 40)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for range acked {
		if err := s.Ack(tp("logs", 0)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestInspectCountsWhatOpenReplays(t *testing.T) {
	dir := t.TempDir()
	fillStore(t, dir, 10, 4, Options{SegmentBytes: 600})
	var seqs []int
	rep, err := Inspect(dir, func(p message.TopicPartition, b message.Batch, _ *HeadProgress) error {
		if p.Partition == 0 {
			seqs = append(seqs, seqOf(t, b))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Damaged() {
		t.Fatalf("problems in a clean store: %+v", rep.Problems)
	}
	if got, want := seqs, seqRange(4, 10); !equalInts(got, want) {
		t.Errorf("partition 0 visits %v, want %v", got, want)
	}

	s, err := OpenStore(dir, Options{SegmentBytes: 600})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	var bytes int64
	for _, p := range rep.Partitions {
		if got := s.Backlog(tp(p.Topic, p.Partition)); got != p.Batches {
			t.Errorf("%s/%d: Inspect counts %d batches, Open %d", p.Topic, p.Partition, p.Batches, got)
		}
		if p.Records != 3*p.Batches {
			t.Errorf("%s/%d: %d records in %d batches of 3", p.Topic, p.Partition, p.Records, p.Batches)
		}
		head, _, err := s.Peek(tp(p.Topic, p.Partition))
		if err != nil {
			t.Fatal(err)
		}
		if !p.Oldest.Equal(head.Messages[0].Timestamp) {
			t.Errorf("%s/%d: oldest %v, head batch starts at %v", p.Topic, p.Partition, p.Oldest, head.Messages[0].Timestamp)
		}
		bytes += p.Bytes
	}
	if bytes != s.Bytes() {
		t.Errorf("Inspect counts %d bytes, the opened store %d", bytes, s.Bytes())
	}
	old := s.Oldest()
	if len(old) != 2 || !old[tp("logs", 0)].Equal(rep.Partitions[0].Oldest) || !old[tp("logs", 1)].Equal(rep.Partitions[1].Oldest) {
		t.Errorf("Store.Oldest %v, Inspect %v and %v", old, rep.Partitions[0].Oldest, rep.Partitions[1].Oldest)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// damageStore flips a byte in the second entry of partition 0's first
// segment (the first one not acknowledged), leaves half an entry at the end of partition 1 and destroys
// partition 1's checkpoint. It returns the sequence number of the batch
// the bit flip destroys.
func damageStore(t *testing.T, dir string) int {
	t.Helper()
	q0 := filepath.Join(dir, "queue", "logs", "0")
	ids := segmentFiles(t, q0)
	seg := filepath.Join(q0, segmentName(ids[0]))
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	res := scanSegment(b)
	second := res.entries[1]
	bad, _, err := decodeEntry(b[second.off : second.off+int64(second.size)])
	if err != nil {
		t.Fatal(err)
	}
	b[second.off+20] ^= 0x10
	if err := os.WriteFile(seg, b, 0o600); err != nil {
		t.Fatal(err)
	}

	q1 := filepath.Join(dir, "queue", "logs", "1")
	ids = segmentFiles(t, q1)
	last := filepath.Join(q1, segmentName(ids[len(ids)-1]))
	f, err := os.OpenFile(last, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	entry := encodeEntry(seqBatch("logs", 1, 999, 2, 30))
	if _, err := f.Write(entry[:len(entry)/2]); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	if err := os.WriteFile(filepath.Join(q1, checkpointName), make([]byte, checkpointLen), 0o600); err != nil {
		t.Fatal(err)
	}
	return seqOf(t, bad)
}

func TestInspectReportsDamageAndRepairMovesItAside(t *testing.T) {
	dir := t.TempDir()
	fillStore(t, dir, 10, 1, Options{SegmentBytes: 600})
	lost := damageStore(t, dir)

	rep, err := Inspect(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, p := range rep.Problems {
		kinds[p.Kind]++
		if p.Repair == "" {
			t.Errorf("problem without a repair: %+v", p)
		}
	}
	if kinds[ProblemCorrupt] != 1 || kinds[ProblemTorn] != 1 || kinds[ProblemCheckpoint] != 1 || len(rep.Problems) != 3 {
		t.Fatalf("problems %+v, want one corrupt, one torn, one checkpoint", rep.Problems)
	}
	// Partition 1's checkpoint is gone: all 10 are replayed again.
	if rep.Partitions[0].Batches != 8 || rep.Partitions[1].Batches != 10 {
		t.Errorf("batches %d and %d, want 8 (10, 1 acked, 1 corrupt) and 10 (checkpoint lost)",
			rep.Partitions[0].Batches, rep.Partitions[1].Batches)
	}

	if err := Repair(dir, Options{SegmentBytes: 600}); err != nil {
		t.Fatal(err)
	}
	after, err := Inspect(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if after.Damaged() {
		t.Fatalf("damage left after Repair: %+v", after.Problems)
	}
	var torn, corrupt int
	for _, k := range after.KeptAside {
		if k.Torn {
			torn++
		} else {
			corrupt++
		}
	}
	if torn != 1 || corrupt != 1 {
		t.Errorf("kept aside %+v, want one torn and one corrupt range", after.KeptAside)
	}
	if after.Partitions[0].Batches != 8 || after.Partitions[1].Batches != 10 {
		t.Errorf("after Repair: batches %d and %d, want 8 and 10", after.Partitions[0].Batches, after.Partitions[1].Batches)
	}

	q := mustOpen(t, filepath.Join(dir, "queue", "logs", "0"), Options{})
	got := drain(t, q)
	closeQueue(t, q)
	var want []int
	for i := 1; i < 10; i++ {
		if i != lost {
			want = append(want, i)
		}
	}
	if !equalInts(got, want) {
		t.Errorf("partition 0 replays %v after Repair, want %v", got, want)
	}
	if q.Corrupt() != 0 {
		t.Errorf("the range Repair moved aside is counted again at the next Open: %d", q.Corrupt())
	}
}

func TestInspectMissingSegment(t *testing.T) {
	dir := t.TempDir()
	fillStore(t, dir, 10, 0, Options{SegmentBytes: 300})
	q0 := filepath.Join(dir, "queue", "logs", "0")
	ids := segmentFiles(t, q0)
	if len(ids) < 3 {
		t.Fatalf("want 3 segments at least, got %d", len(ids))
	}
	if err := os.Remove(filepath.Join(q0, segmentName(ids[1]))); err != nil {
		t.Fatal(err)
	}
	rep, err := Inspect(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 1 || rep.Problems[0].Kind != ProblemMissingSegment ||
		!strings.Contains(rep.Problems[0].Detail, strconv.FormatUint(ids[1], 10)) {
		t.Errorf("problems %+v, want segment %d missing", rep.Problems, ids[1])
	}
}

func TestDeadLetterKeepDropsLinesAndKeepsWhatWasAppended(t *testing.T) {
	dir := t.TempDir()
	d, err := OpenDeadLetter(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := d.Write(tp("t", 0), "unknown_topic", message.Message{Value: []byte("v" + strconv.Itoa(i))}); err != nil {
			t.Fatal(err)
		}
	}
	files, err := ReadDeadLetters(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || len(files[0].Lines) != 5 {
		t.Fatalf("read %d files", len(files))
	}
	// A record rejected after the read must survive the rewrite.
	if _, err := d.Write(tp("t", 0), "oversize", message.Message{Value: []byte("late")}); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	f := files[0]
	if err := f.Keep([]DeadLetterLine{f.Lines[1], f.Lines[3]}); err != nil {
		t.Fatal(err)
	}
	if err := f.Keep(f.Lines[1:]); err != nil { // and again: the late line is kept once
		t.Fatal(err)
	}
	again, err := ReadDeadLetters(dir)
	if err != nil {
		t.Fatal(err)
	}
	var values []string
	for _, l := range again[0].Lines {
		values = append(values, string(l.Record.Value))
	}
	if strings.Join(values, ",") != "v3,late" {
		t.Errorf("left %v, want v3,late", values)
	}
	n, err := DeadLetterBytes(dir)
	if err != nil || n != again[0].Size {
		t.Errorf("DeadLetterBytes %d, %v; file holds %d", n, err, again[0].Size)
	}
}

func TestLockSharedRefusedWhileStoreOpen(t *testing.T) {
	dir := t.TempDir()
	release, err := LockShared(dir)
	if err != nil {
		t.Fatalf("no LOCK file yet: %v", err)
	}
	release()
	s, err := OpenStore(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = LockShared(dir)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
		t.Errorf("LockShared on an open store: %v, want ErrLocked naming pid %d", err, os.Getpid())
	}
	if _, err := LockDir(dir); !errors.Is(err, ErrLocked) {
		t.Errorf("LockDir on an open store: %v, want ErrLocked", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	release, err = LockShared(dir)
	if err != nil {
		t.Fatalf("after Close: %v", err)
	}
	release()
}
