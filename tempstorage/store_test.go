package tempstorage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// TestStorePartitionsIndependent: a partition whose head is never
// acknowledged does not hold back the replay of another.
func TestStorePartitionsIndependent(t *testing.T) {
	s := mustOpenStore(t, t.TempDir(), Options{SegmentBytes: 1024})
	defer closeStore(t, s)
	for i := range 6 {
		mustAppend(t, s, "t", int32(i%2), i)
	}
	mustAppend(t, s, "a", 3, 100)
	if got, want := s.Partitions(), []message.TopicPartition{tp("a", 3), tp("t", 0), tp("t", 1)}; !slices.Equal(got, want) {
		t.Fatalf("Partitions %v, want %v", got, want)
	}
	if s.Len() != 7 || s.Backlog(tp("t", 0)) != 3 || s.Backlog(tp("t", 1)) != 3 || s.Backlog(tp("t", 9)) != 0 {
		t.Fatalf("Len %d, Backlog t/0 %d t/1 %d t/9 %d", s.Len(), s.Backlog(tp("t", 0)), s.Backlog(tp("t", 1)), s.Backlog(tp("t", 9)))
	}
	// t/0's head stays unacknowledged (its leader is down).
	if b, ok, err := s.Peek(tp("t", 0)); err != nil || !ok || seqOf(t, b) != 0 {
		t.Fatalf("Peek t/0: %v %v", ok, err)
	}
	requirePartitionDrained(t, s, "t", 1, []int{1, 3, 5})
	mustAppend(t, s, "t", 1, 7) // fits behind nothing now
	requirePartitionDrained(t, s, "t", 1, []int{7})
	if err := s.Ack(tp("t", 1)); !errors.Is(err, ErrEmpty) {
		t.Fatalf("Ack of an empty partition: %v", err)
	}
	if err := s.Ack(tp("nope", 0)); !errors.Is(err, ErrEmpty) || !strings.Contains(err.Error(), "nope/0") {
		t.Fatalf("Ack of an unknown partition: %v", err)
	}
	if got, want := s.Partitions(), []message.TopicPartition{tp("a", 3), tp("t", 0)}; !slices.Equal(got, want) {
		t.Fatalf("Partitions %v, want %v", got, want)
	}
	// The drained queue stays in the map but holds no file and no buffer
	// (nor a lock: the Store holds the directory's).
	q, _ := s.lookup(tp("t", 1))
	if q == nil || q.active != nil || q.rf != nil || q.buf != nil {
		t.Fatalf("drained queue %+v still holds files or a write buffer", q)
	}
	requirePartitionDrained(t, s, "t", 0, []int{0, 2, 4})
}

// TestStoreReopen: un-acknowledged entries of every partition come back in
// order; directories of empty queues are removed.
func TestStoreReopen(t *testing.T) {
	dir := t.TempDir()
	stray := filepath.Join(dir, storeQueueDir, "old", "7") // an empty queue left by an earlier run
	if err := os.MkdirAll(stray, 0o700); err != nil {
		t.Fatal(err)
	}
	s := mustOpenStore(t, dir, Options{SegmentBytes: 600})
	if _, err := os.Stat(stray); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("empty queue directory kept: %v", err)
	}
	for i := range 9 {
		mustAppend(t, s, "t", int32(i%3), i)
	}
	mustAppend(t, s, "u", -1, 50, 51)
	for range 2 {
		if err := s.Ack(tp("t", 0)); err != nil { // 0, 3
			t.Fatal(err)
		}
	}
	requirePartitionDrained(t, s, "u", -1, []int{50, 51})
	closeStore(t, s)
	if _, err := os.Stat(filepath.Join(dir, storeQueueDir, "u")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("directory of the drained topic kept: %v", err)
	}

	s = mustOpenStore(t, dir, Options{SegmentBytes: 600})
	want := map[message.TopicPartition][]int{tp("t", 0): {6}, tp("t", 1): {1, 4, 7}, tp("t", 2): {2, 5, 8}}
	if got := s.Partitions(); !slices.Equal(got, []message.TopicPartition{tp("t", 0), tp("t", 1), tp("t", 2)}) {
		t.Fatalf("Partitions after reopen %v", got)
	}
	if s.Len() != 7 {
		t.Fatalf("Len after reopen %d", s.Len())
	}
	for p, seqs := range want {
		requirePartitionDrained(t, s, p.Topic, p.Partition, seqs)
	}
	closeStore(t, s)
	des, err := os.ReadDir(filepath.Join(dir, storeQueueDir))
	if err != nil || len(des) != 0 {
		t.Fatalf("queue/ after draining everything: %v %v", des, err)
	}
}

// TestStoreSharedMaxBytes: MaxBytes bounds the total of all partitions.
func TestStoreSharedMaxBytes(t *testing.T) {
	dir := t.TempDir()
	entry := int64(len(encodeEntry(seqBatch("t", 0, 0, 1, 100))))
	s := mustOpenStore(t, dir, Options{MaxBytes: 3*entry + entry/2, SegmentBytes: entry})
	defer closeStore(t, s)
	for p := range int32(3) {
		mustAppend(t, s, "t", p, int(p))
	}
	err := s.Append(seqBatch("t", 3, 3, 1, 100))
	if !errors.Is(err, ErrFull) || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "t/3") {
		t.Fatalf("Append past the bound: %v, want ErrFull naming %s and t/3", err, dir)
	}
	var full interface{ StorageFull() bool }
	if !errors.As(err, &full) || !full.StorageFull() {
		t.Fatalf("Append past the bound: %v has no StorageFull method that says so", err)
	}
	if want := entriesBytes("t", 0, 1, 100, 0, 1, 2); s.Bytes() != want || s.Len() != 3 {
		t.Fatalf("Bytes %d Len %d, want %d 3", s.Bytes(), s.Len(), want)
	}
	if err := s.Ack(tp("t", 1)); err != nil { // deletes t/1's only segment
		t.Fatal(err)
	}
	mustAppend(t, s, "t", 3, 3)
	if err := s.Append(seqBatch("t", 4, 4, 1, 1000)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("huge Append: %v, want ErrTooLarge", err)
	}
	if got := s.Partitions(); !slices.Equal(got, []message.TopicPartition{tp("t", 0), tp("t", 2), tp("t", 3)}) {
		t.Fatalf("Partitions %v", got)
	}
}

// TestStoreConcurrentAppendWithinBound: concurrent appends to several
// partitions never take the store past MaxBytes, with and without a replay
// loop freeing space; each partition keeps its order.
func TestStoreConcurrentAppendWithinBound(t *testing.T) {
	entry := int64(len(encodeEntry(seqBatch("t", 0, 0, 1, 64))))
	const partitions, perPartition, room = 8, 40, 20
	for _, replay := range []bool{false, true} {
		name := map[bool]string{false: "no replay", true: "replay"}[replay]
		t.Run(name, func(t *testing.T) {
			s := mustOpenStore(t, t.TempDir(), Options{MaxBytes: room*entry + entry/2, SegmentBytes: 2 * entry, Fsync: FsyncNever})
			defer closeStore(t, s)
			checkBound := func() {
				if used, disk := s.budget.used.Load(), s.Bytes(); used > s.opts.MaxBytes || disk > s.opts.MaxBytes {
					t.Errorf("reserved %d, on disk %d, bound %d", used, disk, s.opts.MaxBytes)
				}
			}
			var wg sync.WaitGroup
			stored := make([]int, partitions)
			for p := range partitions {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < perPartition; {
						b := seqBatch("t", int32(p), i, 1, 64)
						b.Seq = nil // entries of one size: room for exactly room of them
						err := s.Append(b)
						checkBound()
						switch {
						case err == nil:
							stored[p]++
							i++
						case !errors.Is(err, ErrFull):
							t.Error(err)
							return
						case replay:
							runtime.Gosched() // the replay loop makes room
						default:
							return
						}
					}
				}()
			}
			if !replay {
				wg.Wait()
				total := 0
				for _, n := range stored {
					total += n
				}
				if total != room || s.Len() != room || s.Bytes() > s.opts.MaxBytes {
					t.Fatalf("stored %d, Len %d, Bytes %d; want %d entries within %d bytes", total, s.Len(), s.Bytes(), room, s.opts.MaxBytes)
				}
				return
			}
			next := make([]int, partitions)
			for got := 0; got < partitions*perPartition; {
				for _, p := range s.Partitions() {
					b, ok, err := s.Peek(p)
					if err != nil || !ok {
						t.Fatalf("Peek %v: %v %v", p, ok, err)
					}
					if seq := seqOf(t, b); seq != next[p.Partition] {
						t.Fatalf("%v: got %d, want %d", p, seq, next[p.Partition])
					}
					if err := s.Ack(p); err != nil {
						t.Fatal(err)
					}
					next[p.Partition]++
					got++
					checkBound()
				}
				runtime.Gosched()
			}
			wg.Wait()
			if s.Len() != 0 || s.Bytes() != 0 || s.budget.used.Load() != 0 {
				t.Fatalf("Len %d Bytes %d reserved %d after draining", s.Len(), s.Bytes(), s.budget.used.Load())
			}
		})
	}
}

// TestStoreOddTopics: any topic name survives the directory layout.
func TestStoreOddTopics(t *testing.T) {
	dir := t.TempDir()
	topics := []string{"a/b", "..", ".", "", "%41", "ü/../x"}
	s := mustOpenStore(t, dir, Options{})
	for i, topic := range topics {
		mustAppend(t, s, topic, int32(i)-1, i)
	}
	closeStore(t, s)
	s = mustOpenStore(t, dir, Options{})
	defer closeStore(t, s)
	if len(s.Partitions()) != len(topics) {
		t.Fatalf("Partitions after reopen %v", s.Partitions())
	}
	for i, topic := range topics {
		requirePartitionDrained(t, s, topic, int32(i)-1, []int{i})
	}
}

func TestStoreLocked(t *testing.T) {
	dir := t.TempDir()
	s := mustOpenStore(t, dir, Options{})
	if _, err := OpenStore(dir, Options{}); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("second OpenStore: %v, want ErrLocked naming %s", err, dir)
	}
	if _, err := LockDir(dir); !errors.Is(err, ErrLocked) {
		t.Fatalf("LockDir on a store directory: %v, want ErrLocked", err)
	}
	mustAppend(t, s, "t", 0, 0) // partition queues take no lock of their own
	closeStore(t, s)
	s = mustOpenStore(t, dir, Options{})
	closeStore(t, s)
}

// TestStoreCorruptEntry: a damaged entry costs only that entry of its
// partition.
func TestStoreCorruptEntry(t *testing.T) {
	dir := t.TempDir()
	s := mustOpenStore(t, dir, Options{})
	for i := range 5 {
		mustAppend(t, s, "t", 0, i)
		mustAppend(t, s, "t", 1, i)
	}
	closeStore(t, s)
	var offs []int // where each entry starts, and the end
	off := 0
	for i := range 5 {
		offs = append(offs, off)
		off += len(encodeEntry(seqBatch("t", 0, i, 1, 100)))
	}
	seg := filepath.Join(dir, storeQueueDir, "t", "0", segmentName(1))
	data, err := os.ReadFile(seg)
	if err != nil || len(data) != off {
		t.Fatalf("segment of t/0: %d bytes, %v", len(data), err)
	}
	data[(offs[2]+offs[3])/2] ^= 0x10
	if err := os.WriteFile(seg, data, 0o600); err != nil {
		t.Fatal(err)
	}
	log, logs := observed()
	s = mustOpenStore(t, dir, Options{Logger: log})
	defer closeStore(t, s)
	if s.Corrupt() != 1 {
		t.Fatalf("Corrupt %d", s.Corrupt())
	}
	if l := logs.FilterMessage("temp storage: corrupt entry skipped").All(); len(l) != 1 || l[0].ContextMap()["topic"] != "t" {
		t.Fatalf("corrupt entry log %v", l)
	}
	requirePartitionDrained(t, s, "t", 0, []int{0, 1, 3, 4})
	requirePartitionDrained(t, s, "t", 1, seqRange(0, 5))
}

// TestStoreLeavesStrayDirectoriesAlone: what OpenStore cannot place under
// queue/ is left where it is with one warning naming it; start goes on.
func TestStoreLeavesStrayDirectoriesAlone(t *testing.T) {
	for _, tc := range []struct {
		name, path string // path under queue/
		file       bool
	}{
		{"unescaped topic", "a b/0", false},
		{"non-canonical topic", "%61/0", false},
		{"partition not a number", "t/x", false},
		{"partition with leading zero", "t/07", false},
		{"partition out of range", "t/2147483648", false},
		{"file for a topic", "t", true},
		{"file for a partition", "t/0", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, storeQueueDir, filepath.FromSlash(tc.path))
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				t.Fatal(err)
			}
			var err error
			if tc.file {
				err = os.WriteFile(path, nil, 0o600)
			} else {
				err = os.Mkdir(path, 0o700)
			}
			if err != nil {
				t.Fatal(err)
			}
			log, logs := observed()
			st, err := OpenStore(dir, Options{Logger: log})
			if err != nil {
				t.Fatalf("OpenStore: %v", err)
			}
			bad := path
			if !tc.file && !strings.Contains(tc.name, "partition") {
				bad = filepath.Dir(path) // the topic directory is the bad one
			}
			warned := logs.FilterField(zap.String("file", bad)).All()
			if len(warned) != 1 || warned[0].Level != zap.WarnLevel {
				t.Fatalf("want one warning naming %s; logs: %v", bad, logs.All())
			}
			if st.Len() != 0 || len(st.Partitions()) != 0 {
				t.Fatalf("a stray became a queue: %v", st.Partitions())
			}
			closeStore(t, st)
			if _, err := os.Stat(path); err != nil {
				t.Fatalf("the stray was not left alone: %v", err)
			}
		})
	}
}

// TestStoreRejectsForeignEntries: a partition queue holding another
// partition's entries (files moved by hand) is refused, not replayed to
// the wrong partition.
func TestStoreRejectsForeignEntries(t *testing.T) {
	dir := t.TempDir()
	q := mustOpen(t, filepath.Join(dir, storeQueueDir, "t", "0"), Options{})
	if err := q.Append(seqBatch("t", 1, 0, 1, 10)); err != nil {
		t.Fatal(err)
	}
	closeQueue(t, q)
	if _, err := OpenStore(dir, Options{}); err == nil || !strings.Contains(err.Error(), "t/1") {
		t.Fatalf("OpenStore: %v, want an error naming t/1", err)
	}
}

// TestStoreMigratesSingleQueue: segments of the single-queue layout in the
// store directory move into partition queues, in order.
func TestStoreMigratesSingleQueue(t *testing.T) {
	dir := t.TempDir()
	q := mustOpen(t, dir, Options{SegmentBytes: 600})
	for i := range 8 {
		if err := q.Append(seqBatch("t", int32(i%2), i, 1, 100)); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Ack(); err != nil { // 0 was replayed
		t.Fatal(err)
	}
	closeQueue(t, q)
	s := mustOpenStore(t, dir, Options{})
	if ids := segmentFiles(t, dir); len(ids) != 0 {
		t.Fatalf("segments left in the store directory: %v", ids)
	}
	if _, err := os.Stat(filepath.Join(dir, checkpointName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("checkpoint of the single queue kept: %v", err)
	}
	closeStore(t, s) // survives a reopen
	s = mustOpenStore(t, dir, Options{})
	defer closeStore(t, s)
	requirePartitionDrained(t, s, "t", 0, []int{2, 4, 6})
	requirePartitionDrained(t, s, "t", 1, []int{1, 3, 5, 7})
}

// TestStoreFsyncInterval: one loop syncs every queue with unsynced data on
// its (injected) ticker and stops with Close, which syncs the rest.
func TestStoreFsyncInterval(t *testing.T) {
	disk := &faultDisk{budget: -1}
	tick := make(chan time.Time)
	tickers, tickerStopped := 0, false
	opts := Options{Fsync: FsyncInterval}
	opts.FS = disk
	opts.newTicker = func(time.Duration) (<-chan time.Time, func()) {
		tickers++
		return tick, func() { tickerStopped = true }
	}
	s := mustOpenStore(t, t.TempDir(), opts)
	syncs := func() int { disk.mu.Lock(); defer disk.mu.Unlock(); return disk.syncs }
	mustAppend(t, s, "t", 0, 0, 1, 2)
	mustAppend(t, s, "t", 1, 0, 1)
	mustAppend(t, s, "u", 0, 0)
	if syncs() != 0 {
		t.Fatalf("%d syncs before the first tick", syncs())
	}
	tick <- time.Now()
	tick <- time.Now() // accepted only after the first tick's syncs finished
	if syncs() != 3 {
		t.Fatalf("%d syncs after a tick, want one per queue (3)", syncs())
	}
	tick <- time.Now() // nothing new written: no sync
	tick <- time.Now()
	if syncs() != 3 {
		t.Fatalf("%d syncs with nothing written", syncs())
	}
	mustAppend(t, s, "t", 1, 2)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if tickers != 1 || !tickerStopped {
		t.Fatalf("%d tickers, stopped %v; want one, stopped by Close", tickers, tickerStopped)
	}
	if syncs() != 4 {
		t.Fatalf("Close did not sync the last interval: %d syncs", syncs())
	}
}

func ExampleStore() {
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		panic(err)
	}
	defer func() { _ = os.RemoveAll(dir) }() // best effort: a leftover temp dir is harmless
	s, err := OpenStore(dir, Options{})
	if err != nil {
		panic(err)
	}
	defer func() { _ = s.Close() }() // nothing to report to in an example
	_ = s.Append(seqBatch("logs", 0, 1, 2, 10))
	fmt.Println(s.Len(), s.Backlog(tp("logs", 0)))
	// The replay loop: send a partition's oldest, acknowledge it once Kafka took it.
	for _, p := range s.Partitions() {
		for {
			b, ok, err := s.Peek(p)
			if err != nil || !ok {
				break
			}
			fmt.Println(b.Topic, b.Partition, len(b.Messages))
			_ = s.Ack(p)
		}
	}
	fmt.Println(s.Len(), s.Bytes())
	// Output:
	// 1 1
	// logs 0 2
	// 0 0
}
