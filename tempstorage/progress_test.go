package tempstorage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// keys returns the keys of b's records: "k<seq>-<i>" for record i of
// seqBatch seq.
func keys(b message.Batch) []string {
	var ks []string
	for _, m := range b.Messages {
		ks = append(ks, string(m.Key))
	}
	return ks
}

// recordKeys names records is of seqBatch seq.
func recordKeys(seq int, is ...int) []string {
	var ks []string
	for _, i := range is {
		ks = append(ks, fmt.Sprintf("k%d-%d", seq, i))
	}
	return ks
}

// mustPeek returns the queue's oldest batch; an empty queue fails the test.
func mustPeek(t testing.TB, q *queue) message.Batch {
	t.Helper()
	b, ok, err := q.Peek()
	if err != nil || !ok {
		t.Fatalf("Peek: %v, %v", ok, err)
	}
	return b
}

// requireHead fails the test unless the oldest batch of q holds the
// records named by want, with sequence seq.
func requireHead(t testing.TB, q *queue, want []string, seq *message.Sequence) {
	t.Helper()
	b := mustPeek(t, q)
	if got := keys(b); !slices.Equal(got, want) {
		t.Fatalf("Peek returns records %v, want %v", got, want)
	}
	if d := sameSeq(b.Seq, seq); d != "" {
		t.Fatalf("Peek returns %s", d)
	}
	if len(b.Messages) > 0 && b.Bytes != message.BatchSize(b.Messages) {
		t.Fatalf("Peek returns Bytes %d for %d records, want %d", b.Bytes, len(b.Messages), message.BatchSize(b.Messages))
	}
}

// warnings returns the log entries at warning level or above.
func warnings(logs *observer.ObservedLogs) []observer.LoggedEntry {
	return logs.Filter(func(e observer.LoggedEntry) bool { return e.Level >= zap.WarnLevel }).All()
}

func unsureSeq(base int32, counts ...int32) *message.Sequence {
	return &message.Sequence{ProducerID: 77, ProducerEpoch: 2, BaseSequence: base, Counts: counts, Unsure: true}
}

// progressQueue opens a queue in dir holding seqBatch 1 (6 records, with a
// sequence) and seqBatch 2 (3 records).
func progressQueue(t *testing.T, dir string, opts Options) *queue {
	t.Helper()
	q := mustOpen(t, dir, opts)
	for _, b := range []message.Batch{seqBatch("t", 0, 1, 6, 50), seqBatch("t", 0, 2, 3, 50)} {
		if err := q.Append(b); err != nil {
			t.Fatal(err)
		}
	}
	return q
}

// TestSetHeadPersistsTheProgressOfTheOldestEntry: SetHead makes Peek
// return the oldest entry less the records marked done, with the new
// sequence; a second call composes (its indices are those of the batch
// Peek returns); the progress survives a reopen; Ack deletes it.
func TestSetHeadPersistsTheProgressOfTheOldestEntry(t *testing.T) {
	dir := t.TempDir()
	q := progressQueue(t, dir, Options{})
	requireHead(t, q, recordKeys(1, 0, 1, 2, 3, 4, 5), seqFor(1, 6))

	first := unsureSeq(100, 2, 2)
	if err := q.SetHead([]bool{true, false, true, false, false}, first); err != nil {
		t.Fatal(err)
	}
	requireHead(t, q, recordKeys(1, 1, 3, 4, 5), first)
	if q.Len() != 2 || backlogs(t, q)[tp("t", 0)] != 2 {
		t.Fatalf("Len %d, Backlog %d after SetHead, want 2", q.Len(), backlogs(t, q)[tp("t", 0)])
	}

	// Indices of the batch Peek returns now: records 1 and 5 of the entry.
	second := &message.Sequence{ProducerID: 78, BaseSequence: 7, Counts: []int32{2}}
	if err := q.SetHead([]bool{true, false, false, true}, second); err != nil {
		t.Fatal(err)
	}
	requireHead(t, q, recordKeys(1, 3, 4), second)
	closeQueue(t, q)

	log, logs := observed()
	q = mustOpen(t, dir, Options{Logger: log})
	requireHead(t, q, recordKeys(1, 3, 4), second)
	if w := warnings(logs); len(w) != 0 {
		t.Fatalf("Open warned %v", w)
	}

	// Without a sequence: the stored one is not used either.
	if err := q.SetHead([]bool{false, true}, nil); err != nil {
		t.Fatal(err)
	}
	requireHead(t, q, recordKeys(1, 3), nil)

	if err := q.Ack(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, headProgressName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("head progress left after Ack: %v", err)
	}
	requireHead(t, q, recordKeys(2, 0, 1, 2), nil)
	closeQueue(t, q)
	q = mustOpen(t, dir, Options{})
	defer closeQueue(t, q)
	requireHead(t, q, recordKeys(2, 0, 1, 2), nil)
}

// TestSetHeadOfEveryRecordLeavesAnEmptyHead: with every record done Peek
// returns the entry without records, for Ack.
func TestSetHeadOfEveryRecordLeavesAnEmptyHead(t *testing.T) {
	dir := t.TempDir()
	q := progressQueue(t, dir, Options{})
	defer closeQueue(t, q)
	all := make([]bool, 6)
	for i := range all {
		all[i] = true
	}
	if err := q.SetHead(all, nil); err != nil {
		t.Fatal(err)
	}
	requireHead(t, q, nil, nil)
	if err := q.Ack(); err != nil {
		t.Fatal(err)
	}
	requireHead(t, q, recordKeys(2, 0, 1, 2), nil)
}

// TestSetHeadRefusesWhatDoesNotFit: more marks than records, a sequence
// that does not count the records left, and an empty queue are errors
// that change nothing.
func TestSetHeadRefusesWhatDoesNotFit(t *testing.T) {
	dir := t.TempDir()
	q := progressQueue(t, dir, Options{})
	if err := q.SetHead([]bool{true}, unsureSeq(1, 5)); err != nil {
		t.Fatal(err)
	}
	for name, call := range map[string]func() error{
		"too many marks":         func() error { return q.SetHead(make([]bool, 6), nil) },
		"sequence of 4 records":  func() error { return q.SetHead(nil, unsureSeq(1, 4)) },
		"sequence of 5, 1 done":  func() error { return q.SetHead([]bool{true}, unsureSeq(1, 5)) },
		"negative base sequence": func() error { return q.SetHead(nil, unsureSeq(-1, 5)) },
	} {
		if err := call(); err == nil {
			t.Errorf("%s: SetHead accepted it", name)
		}
		requireHead(t, q, recordKeys(1, 1, 2, 3, 4, 5), unsureSeq(1, 5))
	}
	drain(t, q)
	if err := q.SetHead(nil, nil); !errors.Is(err, ErrEmpty) {
		t.Fatalf("SetHead on an empty queue: %v, want ErrEmpty", err)
	}
	closeQueue(t, q)
	if err := q.SetHead(nil, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("SetHead after Close: %v, want ErrClosed", err)
	}
}

// TestStaleHeadProgressIsDeleted: a head progress naming an entry already
// acknowledged (a crash between Ack's checkpoint and the delete) is
// deleted at Open without a warning; the next entry replays whole.
func TestStaleHeadProgressIsDeleted(t *testing.T) {
	dir := t.TempDir()
	q := progressQueue(t, dir, Options{})
	if err := q.SetHead([]bool{true}, nil); err != nil {
		t.Fatal(err)
	}
	stale, err := os.ReadFile(filepath.Join(dir, headProgressName))
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Ack(); err != nil {
		t.Fatal(err)
	}
	closeQueue(t, q)
	if err := os.WriteFile(filepath.Join(dir, headProgressName), stale, 0o600); err != nil {
		t.Fatal(err)
	}

	log, logs := observed()
	q = mustOpen(t, dir, Options{Logger: log})
	defer closeQueue(t, q)
	requireHead(t, q, recordKeys(2, 0, 1, 2), nil)
	if _, err := os.Stat(filepath.Join(dir, headProgressName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stale head progress not deleted: %v", err)
	}
	if w := warnings(logs); len(w) != 0 {
		t.Fatalf("a stale head progress warned: %v", w)
	}
	if q.Corrupt() != 0 {
		t.Fatalf("Corrupt = %d", q.Corrupt())
	}
}

// TestCorruptHeadProgressIsIgnored: a head progress that does not decode
// is logged once (naming the file), deleted, and the oldest entry replays
// whole; Open does not fail and nothing counts as a corrupt entry.
func TestCorruptHeadProgressIsIgnored(t *testing.T) {
	for name, damage := range map[string]func([]byte) []byte{
		"bit flip":      func(b []byte) []byte { b[len(b)-1] ^= 0x10; return b },
		"truncated":     func(b []byte) []byte { return b[:len(b)-3] },
		"empty":         func([]byte) []byte { return nil },
		"newer version": func(b []byte) []byte { b[4] = 9; return resealHeadProgress(b) },
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			q := progressQueue(t, dir, Options{})
			if err := q.SetHead([]bool{true, true}, unsureSeq(3, 4)); err != nil {
				t.Fatal(err)
			}
			closeQueue(t, q)
			path := filepath.Join(dir, headProgressName)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, damage(b), 0o600); err != nil {
				t.Fatal(err)
			}

			log, logs := observed()
			q = mustOpen(t, dir, Options{Logger: log})
			requireHead(t, q, recordKeys(1, 0, 1, 2, 3, 4, 5), seqFor(1, 6))
			warned := logs.FilterMessageSnippet("head progress unreadable").FilterField(zap.String("file", path))
			if warned.Len() != 1 || !slices.ContainsFunc(warned.All()[0].Context, func(f zap.Field) bool { return f.Key == "error" }) {
				t.Fatalf("want one warning naming the file and the error; logs: %v", logs.All())
			}
			if q.Corrupt() != 0 {
				t.Fatalf("Corrupt = %d", q.Corrupt())
			}
			closeQueue(t, q)

			log, logs = observed()
			q = mustOpen(t, dir, Options{Logger: log})
			defer closeQueue(t, q)
			if w := warnings(logs); len(w) != 0 {
				t.Fatalf("warned again at the next Open: %v", w)
			}
			requireHead(t, q, recordKeys(1, 0, 1, 2, 3, 4, 5), seqFor(1, 6))
		})
	}
}

// resealHeadProgress recomputes the CRC of a head progress file.
func resealHeadProgress(b []byte) []byte {
	crc := crc32.Update(0, castagnoli(), b[:8])
	crc = crc32.Update(crc, castagnoli(), b[headProgressHdrLen:])
	binary.LittleEndian.PutUint32(b[12:16], crc)
	return b
}

// TestHeadProgressOfAnotherEntryIsIgnoredAtPeek: a file at the head's
// position and size but of another entry (its CRC differs) is not applied.
func TestHeadProgressOfAnotherEntryIsIgnoredAtPeek(t *testing.T) {
	dir := t.TempDir()
	q := progressQueue(t, dir, Options{})
	if err := q.SetHead([]bool{true}, nil); err != nil {
		t.Fatal(err)
	}
	hp := *q.hp
	closeQueue(t, q)
	hp.entry.crc ^= 1
	if err := os.WriteFile(filepath.Join(dir, headProgressName), encodeHeadProgress(&hp), 0o600); err != nil {
		t.Fatal(err)
	}
	log, logs := observed()
	q = mustOpen(t, dir, Options{Logger: log})
	defer closeQueue(t, q)
	requireHead(t, q, recordKeys(1, 0, 1, 2, 3, 4, 5), seqFor(1, 6))
	if logs.FilterMessageSnippet("head progress names another entry").Len() != 1 {
		t.Fatalf("no warning; logs: %v", logs.All())
	}
	if _, err := os.Stat(filepath.Join(dir, headProgressName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("head progress of another entry not deleted: %v", err)
	}
}

// TestFailedSetHeadLeavesTheEarlierProgress: a head progress write that
// fails (ENOSPC creating or writing the file, EIO syncing it) returns the
// error and leaves the earlier progress in force, now and after a reopen;
// Ack still works and deletes it.
func TestFailedSetHeadLeavesTheEarlierProgress(t *testing.T) {
	for name, fail := range map[string]func(d *faultDisk){
		"create": func(d *faultDisk) { d.failOpen = syscall.ENOSPC },
		"sync":   func(d *faultDisk) { d.failSync = syscall.EIO },
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			disk := &faultDisk{budget: -1}
			q := progressQueue(t, dir, Options{FS: disk})
			if err := q.SetHead([]bool{true}, unsureSeq(5, 5)); err != nil {
				t.Fatal(err)
			}
			disk.set(fail)
			if err := q.SetHead([]bool{true, true}, unsureSeq(9, 3)); err == nil {
				t.Fatal("SetHead succeeded on a failing disk")
			}
			disk.set(func(d *faultDisk) { d.failOpen, d.failSync = nil, nil })
			requireHead(t, q, recordKeys(1, 1, 2, 3, 4, 5), unsureSeq(5, 5))
			if _, err := os.Stat(filepath.Join(dir, headProgressTmp)); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("temporary file left: %v", err)
			}
			closeQueue(t, q)

			q = mustOpen(t, dir, Options{FS: disk})
			defer closeQueue(t, q)
			requireHead(t, q, recordKeys(1, 1, 2, 3, 4, 5), unsureSeq(5, 5))
			if err := q.Ack(); err != nil {
				t.Fatal(err)
			}
			requireHead(t, q, recordKeys(2, 0, 1, 2), nil)
		})
	}
}

// TestStoreSetHeadSurvivesReopen: Store.SetHead reaches the partition's
// queue, leaves the others alone, and the head progress file is the
// queue's own: no warning at OpenStore, Inspect reports it and counts the
// records left, and the directory goes once the queue is drained.
func TestStoreSetHeadSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	fillStore(t, dir, 3, 0, Options{})
	s := mustOpenStore(t, dir, Options{})
	if err := s.SetHead(tp("logs", 0), []bool{false, true}, unsureSeq(40, 2)); err != nil {
		t.Fatal(err)
	}
	if err := s.SetHead(tp("logs", 9), nil, nil); !errors.Is(err, ErrEmpty) {
		t.Fatalf("SetHead of a partition without entries: %v, want ErrEmpty", err)
	}
	closeStore(t, s)

	var visited []*HeadProgress
	rep, err := Inspect(dir, func(p message.TopicPartition, b message.Batch, progress *HeadProgress) error {
		if p.Partition == 0 {
			visited = append(visited, progress)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Damaged() || len(rep.Ignored) > 0 {
		t.Fatalf("problems %+v, ignored %v", rep.Problems, rep.Ignored)
	}
	p0 := rep.Partitions[0]
	if p0.Records != 8 || p0.Done != 1 || rep.Partitions[1].Records != 9 || rep.Partitions[1].Done != 0 {
		t.Fatalf("partitions %+v, want 8 records and 1 done of partition 0", rep.Partitions)
	}
	if len(visited) != 3 || visited[0] == nil || visited[1] != nil ||
		!slices.Equal(visited[0].Done, []bool{false, true, false}) || sameSeq(visited[0].Seq, unsureSeq(40, 2)) != "" {
		t.Fatalf("visits with progress %v", visited)
	}

	log, logs := observed()
	s = mustOpenStore(t, dir, Options{Logger: log})
	defer closeStore(t, s)
	if w := warnings(logs); len(w) != 0 {
		t.Fatalf("OpenStore warned %v", w)
	}
	b, ok, err := s.Peek(tp("logs", 0))
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if got, want := keys(b), recordKeys(0, 0, 2); !slices.Equal(got, want) || sameSeq(b.Seq, unsureSeq(40, 2)) != "" {
		t.Fatalf("Peek: %v %+v, want %v with the progress sequence", got, b.Seq, want)
	}
	requirePartitionDrained(t, s, "logs", 0, []int{0, 1, 2})
	if _, err := os.Stat(filepath.Join(dir, "queue", "logs", "0", headProgressName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("head progress left after the queue drained: %v", err)
	}
}

// TestEmptyQueueDirWithStaleHeadProgressIsRemoved: a stale head progress
// does not keep the directory of an empty queue.
func TestEmptyQueueDirWithStaleHeadProgressIsRemoved(t *testing.T) {
	dir := t.TempDir()
	s := mustOpenStore(t, dir, Options{})
	mustAppend(t, s, "t", 0, 1)
	if err := s.SetHead(tp("t", 0), []bool{false}, nil); err != nil {
		t.Fatal(err)
	}
	qdir := filepath.Join(dir, "queue", "t", "0")
	stale, err := os.ReadFile(filepath.Join(qdir, headProgressName))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(tp("t", 0)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(qdir, headProgressName), stale, 0o600); err != nil {
		t.Fatal(err)
	}
	closeStore(t, s)
	if _, err := os.Stat(qdir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("empty queue directory kept: %v", err)
	}
}

// TestHeadProgressRoundTrip: encode and decode agree, and every byte of
// the file is covered by its checks.
func TestHeadProgressRoundTrip(t *testing.T) {
	hp := headProgress{
		entry: entryID{pos: position{seg: 1 << 40, off: 123456}, size: 9999, crc: 0xdeadbeef, records: 10},
		done:  []bool{true, true, false, false, true, false, false, false, true, true},
		seq:   unsureSeq(2147483000, 1, 4),
	}
	b := encodeHeadProgress(&hp)
	got, err := decodeHeadProgress(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.entry != hp.entry || !slices.Equal(got.done, hp.done) || sameSeq(got.seq, hp.seq) != "" {
		t.Fatalf("decoded %+v, want %+v", got, hp)
	}
	for i := range b {
		c := slices.Clone(b)
		c[i] ^= 0x01
		if _, err := decodeHeadProgress(c); !errors.Is(err, errHeadProgress) {
			t.Fatalf("byte %d flipped: %v, want errHeadProgress", i, err)
		}
	}
	none := headProgress{entry: hp.entry, done: make([]bool, 10)}
	if got, err := decodeHeadProgress(encodeHeadProgress(&none)); err != nil || got.seq != nil || slices.Contains(got.done, true) {
		t.Fatalf("no progress: %+v, %v", got, err)
	}
}

// TestInspectReportsAnUnreadableHeadProgress: Inspect names a head
// progress that does not decode as damage; Repair (Open) deletes it.
func TestInspectReportsAnUnreadableHeadProgress(t *testing.T) {
	dir := t.TempDir()
	fillStore(t, dir, 2, 0, Options{})
	path := filepath.Join(dir, "queue", "logs", "1", headProgressName)
	if err := os.WriteFile(path, []byte("KBHP garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err := Inspect(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 1 || rep.Problems[0].Kind != ProblemHeadProgress ||
		rep.Problems[0].File != filepath.Join("queue", "logs", "1", headProgressName) || len(rep.Ignored) != 0 {
		t.Fatalf("problems %+v, ignored %v; want one head_progress", rep.Problems, rep.Ignored)
	}
	if rep.Partitions[1].Records != 6 || rep.Partitions[1].Done != 0 {
		t.Fatalf("partition 1: %+v, want its 6 records", rep.Partitions[1])
	}
	if err := Repair(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	if rep, err = Inspect(dir, nil); err != nil || rep.Damaged() {
		t.Fatalf("after Repair: %+v, %v", rep, err)
	}
}
