package tempstorage

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/kafkabatcher/kafkabatcherexporter/message"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func TestAppendPeekAckInOrder(t *testing.T) {
	q := mustOpen(t, t.TempDir(), Options{})
	defer closeQueue(t, q)
	if _, ok, err := q.Peek(); ok || err != nil {
		t.Fatalf("empty queue Peek: ok=%v err=%v", ok, err)
	}
	if err := q.Ack(); !errors.Is(err, ErrEmpty) {
		t.Fatalf("Ack on empty queue: %v", err)
	}
	var want []message.Batch
	for i := range 10 {
		b := seqBatch("logs", int32(i%3), i, 1+i%4, 50)
		want = append(want, b)
		if err := q.Append(b); err != nil {
			t.Fatal(err)
		}
	}
	if q.Len() != 10 {
		t.Fatalf("Len = %d", q.Len())
	}
	for i, w := range want {
		got, ok, err := q.Peek()
		if !ok || err != nil {
			t.Fatalf("Peek %d: ok=%v err=%v", i, ok, err)
		}
		again, _, _ := q.Peek()
		if d := sameBatch(got, w); d != "" {
			t.Fatalf("entry %d: %s", i, d)
		}
		if d := sameBatch(again, w); d != "" {
			t.Fatalf("second Peek of entry %d: %s", i, d)
		}
		if err := q.Ack(); err != nil {
			t.Fatal(err)
		}
	}
	if q.Len() != 0 || q.Bytes() != 0 {
		t.Fatalf("drained queue: Len %d Bytes %d", q.Len(), q.Bytes())
	}
}

func TestBacklogPerPartition(t *testing.T) {
	dir := t.TempDir()
	s := mustOpenStore(t, dir, Options{})
	defer func() { closeStore(t, s) }()
	for i, p := range []int32{0, 1, 0, 2, 0} {
		if err := s.Append(seqBatch("a", p, i, 1, 10)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Append(seqBatch("b", 0, 5, 1, 10)); err != nil {
		t.Fatal(err)
	}
	check := func(topic string, p int32, want int) {
		t.Helper()
		if got := s.Backlog(tp(topic, p)); got != want {
			t.Fatalf("Backlog(%s,%d) = %d, want %d", topic, p, got, want)
		}
	}
	check("a", 0, 3)
	check("a", 1, 1)
	check("a", 2, 1)
	check("b", 0, 1)
	check("b", 1, 0)
	check("c", 0, 0)
	for _, p := range []message.TopicPartition{tp("a", 0), tp("a", 1)} { // the two oldest
		if err := s.Ack(p); err != nil {
			t.Fatal(err)
		}
	}
	check("a", 0, 2)
	check("a", 1, 0)
	closeStore(t, s)

	s = mustOpenStore(t, dir, Options{})
	check("a", 0, 2)
	check("a", 1, 0)
	check("a", 2, 1)
	check("b", 0, 1)
}

func TestReopenResumesAfterCheckpoint(t *testing.T) {
	dir := t.TempDir()
	q := mustOpen(t, dir, Options{SegmentBytes: 1000})
	for i := range 20 {
		if err := q.Append(seqBatch("t", 0, i, 2, 100)); err != nil {
			t.Fatal(err)
		}
	}
	for range 7 {
		if err := q.Ack(); err != nil {
			t.Fatal(err)
		}
	}
	// Peeked but not acknowledged: must come again after reopen.
	if b, _, _ := q.Peek(); seqOf(t, b) != 7 {
		t.Fatalf("head %d", seqOf(t, b))
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if err := q.Append(seqBatch("t", 0, 99, 1, 1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
	q = mustOpen(t, dir, Options{SegmentBytes: 1000})
	defer closeQueue(t, q)
	if q.Len() != 13 {
		t.Fatalf("Len after reopen = %d, want 13", q.Len())
	}
	requireDrained(t, q, seqRange(7, 20))
}

func TestSegmentsDeletedAsBacklogDrains(t *testing.T) {
	dir := t.TempDir()
	q := mustOpen(t, dir, Options{SegmentBytes: 4096})
	defer closeQueue(t, q)
	for i := range 40 {
		if err := q.Append(seqBatch("t", 0, i, 1, 1000)); err != nil {
			t.Fatal(err)
		}
	}
	ids := segmentFiles(t, dir)
	if len(ids) < 10 {
		t.Fatalf("expected many segments, got %d", len(ids))
	}
	var total int64
	for _, id := range ids {
		sz := fileSize(t, filepath.Join(dir, segmentName(id)))
		if sz > 4096 {
			t.Fatalf("segment %d has %d bytes, above segment_bytes", id, sz)
		}
		total += sz
	}
	if q.Bytes() != total {
		t.Fatalf("Bytes = %d, files hold %d", q.Bytes(), total)
	}
	prevBytes, prevFiles := q.Bytes(), len(ids)
	for i := range 40 {
		if err := q.Ack(); err != nil {
			t.Fatal(err)
		}
		files := len(segmentFiles(t, dir))
		if q.Bytes() > prevBytes || files > prevFiles {
			t.Fatalf("after ack %d: bytes %d files %d grew", i, q.Bytes(), files)
		}
		prevBytes, prevFiles = q.Bytes(), files
	}
	if prevFiles != 0 || prevBytes != 0 {
		t.Fatalf("drained queue keeps %d files, %d bytes", prevFiles, prevBytes)
	}
	// The queue keeps working after the last segment was retired.
	if err := q.Append(seqBatch("t", 0, 100, 1, 10)); err != nil {
		t.Fatal(err)
	}
	requireDrained(t, q, []int{100})
}

func TestEntryLargerThanSegmentGetsOwnSegment(t *testing.T) {
	dir := t.TempDir()
	q := mustOpen(t, dir, Options{SegmentBytes: 1024})
	defer closeQueue(t, q)
	for i, size := range []int{100, 5000, 100, 100} {
		if err := q.Append(seqBatch("t", 0, i, 1, size)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(segmentFiles(t, dir)); n != 3 {
		t.Fatalf("%d segments, want 3", n)
	}
	requireDrained(t, q, seqRange(0, 4))
}

func TestFullAndTooLarge(t *testing.T) {
	dir := t.TempDir()
	entry := int64(len(encodeEntry(seqBatch("t", 0, 0, 1, 1000))))
	q := mustOpen(t, dir, Options{MaxBytes: 3*entry + entry/2, SegmentBytes: entry})
	defer closeQueue(t, q)
	for i := range 3 {
		if err := q.Append(seqBatch("t", 0, i, 1, 1000)); err != nil {
			t.Fatal(err)
		}
	}
	err := q.Append(seqBatch("t", 0, 3, 1, 1000))
	if !errors.Is(err, ErrFull) {
		t.Fatalf("fourth Append: %v, want ErrFull", err)
	}
	if !strings.Contains(err.Error(), dir) {
		t.Fatalf("error does not name the directory: %v", err)
	}
	if q.Len() != 3 {
		t.Fatalf("Len %d after refused Append", q.Len())
	}
	// Replaying one entry deletes its segment and makes room.
	if err := q.Ack(); err != nil {
		t.Fatal(err)
	}
	if err := q.Append(seqBatch("t", 0, 3, 1, 1000)); err != nil {
		t.Fatalf("Append after Ack: %v", err)
	}
	if err := q.Append(seqBatch("t", 0, 4, 1, 5000)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("huge Append: %v, want ErrTooLarge", err)
	}
	requireDrained(t, q, []int{1, 2, 3})
}

func TestLockedDirectory(t *testing.T) {
	dir := t.TempDir()
	s := mustOpenStore(t, dir, Options{})
	_, err := OpenStore(dir, Options{})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second OpenStore: %v, want ErrLocked", err)
	}
	if !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "pid") {
		t.Fatalf("error should name the directory and holder: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := mustOpenStore(t, dir, Options{})
	closeStore(t, s2)
}

func TestOpenCreatesDirectoryPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	q := mustOpen(t, dir, Options{})
	defer closeQueue(t, q)
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o700 {
		t.Fatalf("mode %v", st.Mode().Perm())
	}
}

func TestFsyncZeroValueIsBatch(t *testing.T) {
	if (Options{}).withDefaults().Fsync != FsyncBatch {
		t.Fatal("zero value is not batch")
	}
}

func TestConcurrentAppendAndReplay(t *testing.T) {
	q := mustOpen(t, t.TempDir(), Options{SegmentBytes: 8192, Fsync: FsyncNever})
	defer closeQueue(t, q)
	const partitions, perPartition = 4, 200
	var wg sync.WaitGroup
	for p := range partitions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perPartition {
				if err := q.Append(seqBatch("t", int32(p), i, 1, 64)); err != nil {
					t.Error(err)
					return
				}
				_ = q.Len()
			}
		}()
	}
	next := make([]int, partitions)
	got := 0
	appendersDone := make(chan struct{})
	go func() { wg.Wait(); close(appendersDone) }()
	for got < partitions*perPartition {
		b, ok, err := q.Peek()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			select {
			case <-appendersDone:
				if q.Len() == 0 {
					t.Fatalf("queue empty after %d of %d", got, partitions*perPartition)
				}
			default:
			}
			continue
		}
		if s := seqOf(t, b); s != next[b.Partition] {
			t.Fatalf("partition %d: got %d, want %d", b.Partition, s, next[b.Partition])
		}
		next[b.Partition]++
		got++
		if err := q.Ack(); err != nil {
			t.Fatal(err)
		}
	}
	<-appendersDone
	if q.Len() != 0 || q.Bytes() != 0 {
		t.Fatalf("Len %d Bytes %d", q.Len(), q.Bytes())
	}
}

// observed returns a logger whose entries the test can read.
func observed() (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(zap.DebugLevel)
	return zap.New(core), logs
}
