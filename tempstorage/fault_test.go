package tempstorage

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// buildSegments writes n entries (seq 0..n-1) with fsync never and returns
// the directory and, per entry, its segment id and offset.
func buildSegments(t *testing.T, n int, segBytes int64) (string, []entryRef, []uint64) {
	t.Helper()
	dir := t.TempDir()
	q := mustOpen(t, dir, Options{SegmentBytes: segBytes, Fsync: FsyncNever})
	for i := range n {
		if err := q.Append(seqBatch("t", int32(i%2), i, 1+i%3, 150)); err != nil {
			t.Fatal(err)
		}
	}
	var refs []entryRef
	var segOf []uint64
	for _, s := range q.segs {
		for _, e := range s.entries {
			refs = append(refs, e)
			segOf = append(segOf, s.id)
		}
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, refs, segOf
}

// copyDir copies the regular files of src into a new temporary directory.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	des, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		if !de.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, de.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func corruptFiles(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(filepath.Join(dir, corruptDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

func without(s []int, drop ...int) []int {
	return slices.DeleteFunc(slices.Clone(s), func(v int) bool { return slices.Contains(drop, v) })
}

// TestTornTailAtEveryOffset cuts the last entry at every byte: Open keeps
// all earlier entries, truncates the rest, and appends continue cleanly.
func TestTornTailAtEveryOffset(t *testing.T) {
	const n = 6
	src, refs, segOf := buildSegments(t, n, 1<<20)
	last := refs[n-1]
	path := segmentName(segOf[n-1])
	for cut := last.off; cut < last.off+int64(last.size); cut++ {
		dir := copyDir(t, src)
		if err := os.Truncate(filepath.Join(dir, path), cut); err != nil {
			t.Fatal(err)
		}
		q := mustOpen(t, dir, Options{Fsync: FsyncNever})
		if q.Corrupt() != 0 {
			t.Fatalf("cut %d: torn tail counted as corrupt", cut)
		}
		if got := fileSize(t, filepath.Join(dir, path)); got != last.off {
			t.Fatalf("cut %d: segment is %d bytes, want %d", cut, got, last.off)
		}
		if err := q.Append(seqBatch("t", 0, 100, 1, 10)); err != nil {
			t.Fatal(err)
		}
		closeQueue(t, q)
		q = mustOpen(t, dir, Options{Fsync: FsyncNever})
		if got, want := contents(t, q), append(seqRange(0, n-1), 100); !slices.Equal(got, want) {
			t.Fatalf("cut at %d: got %v, want %v", cut, got, want)
		}
		closeQueue(t, q)
	}
}

// TestBitFlipSkipsOnlyThatEntry flips each bit position of a middle entry
// (one flip per run): that entry alone is moved aside and counted.
func TestBitFlipSkipsOnlyThatEntry(t *testing.T) {
	const n, victim = 5, 2
	src, refs, segOf := buildSegments(t, n, 1<<20)
	e := refs[victim]
	name := segmentName(segOf[victim])
	orig, err := os.ReadFile(filepath.Join(src, name))
	if err != nil {
		t.Fatal(err)
	}
	for i := int64(0); i < int64(e.size); i++ {
		bit := byte(1) << (i % 8)
		dir := copyDir(t, src)
		data := slices.Clone(orig)
		data[e.off+i] ^= bit
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
		log, logs := observed()
		q := mustOpen(t, dir, Options{Logger: log, Fsync: FsyncNever})
		if got, want := contents(t, q), without(seqRange(0, n), victim); !slices.Equal(got, want) {
			t.Fatalf("flip at entry byte %d: got %v, want %v", i, got, want)
		}
		if q.Corrupt() != 1 {
			t.Fatalf("flip at entry byte %d: Corrupt = %d", i, q.Corrupt())
		}
		if logs.FilterMessage("temp storage: corrupt entry skipped").Len() != 1 {
			t.Fatalf("flip at entry byte %d: corrupt entry not logged", i)
		}
		closeQueue(t, q)
		files := corruptFiles(t, dir)
		if len(files) != 1 {
			t.Fatalf("corrupt/ holds %v", files)
		}
		kept, err := os.ReadFile(filepath.Join(dir, corruptDir, files[0]))
		if err != nil || !bytes.Equal(kept, data[e.off:e.off+int64(e.size)]) {
			t.Fatalf("flip at entry byte %d: copy is %d bytes, want the %d-byte entry", i, len(kept), e.size)
		}
	}
}

// TestRandomBitFlipsAcrossSegments flips random bits in several segments:
// every untouched entry comes back in order, every touched one is skipped.
func TestRandomBitFlipsAcrossSegments(t *testing.T) {
	const n = 60
	src, refs, segOf := buildSegments(t, n, 2048)
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	for round := range 30 {
		dir := copyDir(t, src)
		touched := map[int]bool{}
		files := map[uint64][]byte{}
		for range 1 + rng.IntN(6) {
			k := rng.IntN(n)
			touched[k] = true
			id := segOf[k]
			if files[id] == nil {
				b, err := os.ReadFile(filepath.Join(dir, segmentName(id)))
				if err != nil {
					t.Fatal(err)
				}
				files[id] = b
			}
			e := refs[k]
			files[id][e.off+rng.Int64N(int64(e.size))] ^= 1 << rng.IntN(8)
		}
		for id, b := range files {
			if err := os.WriteFile(filepath.Join(dir, segmentName(id)), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		var want []int
		for k := range n {
			if !touched[k] {
				want = append(want, k)
			}
		}
		q := mustOpen(t, dir, Options{Fsync: FsyncNever})
		// A damaged last entry is an interrupted write: cut, not counted.
		least := int64(1)
		if touched[n-1] {
			least = 0
		}
		if c := q.Corrupt(); c < least || c > int64(len(touched)) {
			t.Fatalf("round %d: Corrupt = %d for %d touched entries", round, c, len(touched))
		}
		if got := contents(t, q); !slices.Equal(got, want) {
			t.Fatalf("round %d: touched %v: got %v", round, touched, got)
		}
		closeQueue(t, q)
	}
}

// TestCorruptEntryCountedOnce: a corrupt range that stays on disk (its
// segment not yet replayed) is not copied or counted again by the next Open.
func TestCorruptEntryCountedOnce(t *testing.T) {
	src, refs, segOf := buildSegments(t, 4, 1<<20)
	path := filepath.Join(src, segmentName(segOf[1]))
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[refs[1].off+20] ^= 0xFF
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	q := mustOpen(t, src, Options{})
	if q.Corrupt() != 1 || q.Len() != 3 {
		t.Fatalf("first Open: Corrupt %d Len %d", q.Corrupt(), q.Len())
	}
	closeQueue(t, q)
	q = mustOpen(t, src, Options{})
	defer closeQueue(t, q)
	if q.Corrupt() != 0 || q.Len() != 3 || len(corruptFiles(t, src)) != 1 {
		t.Fatalf("second Open: Corrupt %d Len %d files %v", q.Corrupt(), q.Len(), corruptFiles(t, src))
	}
}

// TestBadCheckpoints: a checkpoint that cannot be right is ignored with a
// warning, and the data it would have skipped is replayed.
func TestBadCheckpoints(t *testing.T) {
	const n = 12
	src, refs, segOf := buildSegments(t, n, 1024)
	ids := slices.Compact(slices.Clone(segOf))
	if len(ids) < 3 {
		t.Fatalf("want at least 3 segments, got %v", ids)
	}
	second := slices.Index(segOf, ids[1]) // first entry of the second segment
	lastID := ids[len(ids)-1]
	cases := []struct {
		name string
		cp   []byte
		want []int
		warn string
	}{
		{"valid, mid segment", encodeCheckpoint(1, position{ids[1], refs[second+1].off}), seqRange(second+1, n), ""},
		{"offset past end of segment", encodeCheckpoint(1, position{ids[1], 1 << 40}), seqRange(second, n),
			"temp storage: checkpoint past the end of its segment; replaying the segment"},
		{"inside an entry", encodeCheckpoint(1, position{ids[1], refs[second].off + 5}), seqRange(second, n),
			"temp storage: checkpoint inside an entry; replaying the segment"},
		{"segment far past the last", encodeCheckpoint(1, position{lastID + 5, 0}), seqRange(0, n),
			"temp storage: checkpoint points past the last segment; replaying everything"},
		{"bad checksums", func() []byte {
			b := encodeCheckpoint(2, position{ids[1], 0})
			b[10] ^= 1
			b[checkpointSlotStride+10] ^= 1
			return b
		}(), seqRange(0, n),
			"temp storage: checkpoint unreadable; replaying everything"},
		{"empty file", []byte{}, seqRange(0, n), "temp storage: checkpoint unreadable; replaying everything"},
		// All replayed but the segment deletes did not happen: nothing to replay.
		{"one past the last segment", encodeCheckpoint(1, position{lastID + 1, 0}), nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := copyDir(t, src)
			if err := os.WriteFile(filepath.Join(dir, checkpointName), c.cp, 0o600); err != nil {
				t.Fatal(err)
			}
			log, logs := observed()
			q := mustOpen(t, dir, Options{Logger: log})
			defer closeQueue(t, q)
			requireDrained(t, q, c.want)
			if c.warn != "" && logs.FilterMessage(c.warn).Len() != 1 {
				t.Fatalf("no warning %q; logs: %v", c.warn, logs.All())
			}
			if len(segmentFiles(t, dir)) != 0 {
				t.Fatalf("segments left after drain: %v", segmentFiles(t, dir))
			}
		})
	}
}

// faultFile wraps a segment file and fails writes beyond a byte budget
// shared by all files (a disk that fills up), and syncs on demand.
type faultFile struct {
	f    *os.File
	disk *faultDisk
}

type faultDisk struct {
	mu       sync.Mutex
	budget   int64 // bytes that may still be written; <0 = unlimited
	failSync error
	failOpen error
	syncs    int
}

func (d *faultDisk) Free(string) (int64, bool) { return 0, false }

func (d *faultDisk) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.failOpen != nil && flag&os.O_CREATE != 0 {
		return nil, &os.PathError{Op: "open", Path: name, Err: d.failOpen}
	}
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultFile{f: f, disk: d}, nil
}

func (f *faultFile) WriteAt(p []byte, off int64) (int, error) {
	f.disk.mu.Lock()
	defer f.disk.mu.Unlock()
	if !strings.HasPrefix(filepath.Base(f.f.Name()), segmentPrefix) {
		return f.f.WriteAt(p, off) // the budget is the segments'
	}
	if f.disk.budget >= 0 && int64(len(p)) > f.disk.budget {
		n, _ := f.f.WriteAt(p[:f.disk.budget], off) // a short write, as a full disk gives
		f.disk.budget -= int64(n)
		return n, &os.PathError{Op: "write", Path: f.f.Name(), Err: syscall.ENOSPC}
	}
	if f.disk.budget >= 0 {
		f.disk.budget -= int64(len(p))
	}
	return f.f.WriteAt(p, off)
}

func (f *faultFile) Sync() error {
	f.disk.mu.Lock()
	defer f.disk.mu.Unlock()
	if strings.HasPrefix(filepath.Base(f.f.Name()), segmentPrefix) {
		f.disk.syncs++ // the segments' syncs are counted
	}
	if err := f.disk.failSync; err != nil {
		f.disk.failSync = nil
		return &os.PathError{Op: "sync", Path: f.f.Name(), Err: err}
	}
	return f.f.Sync()
}

func (f *faultFile) Truncate(size int64) error { return f.f.Truncate(size) }
func (f *faultFile) Close() error              { return f.f.Close() }

func (d *faultDisk) set(fn func(d *faultDisk)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fn(d)
}

// TestDiskFullKeepsEarlierEntries: ENOSPC mid-entry, a failed fsync and a
// failed segment create each return an error, queue nothing, and leave
// earlier entries intact on disk.
func TestDiskFullKeepsEarlierEntries(t *testing.T) {
	dir := t.TempDir()
	// Entries 0 to 3 fill segment 1 (odd ones are v2, a few bytes longer).
	first3, entry := entriesBytes("t", 0, 1, 300, 0, 1, 2), entriesBytes("t", 0, 1, 300, 3)
	disk := &faultDisk{budget: first3 + entry/2}
	opts := Options{SegmentBytes: 4 * entry}
	opts.FS = disk
	q := mustOpen(t, dir, opts)
	for i := range 3 {
		if err := q.Append(seqBatch("t", 0, i, 1, 300)); err != nil {
			t.Fatal(err)
		}
	}
	err := q.Append(seqBatch("t", 0, 3, 1, 300))
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Append on full disk: %v, want ENOSPC", err)
	}
	if q.Len() != 3 || backlogs(t, q)[tp("t", 0)] != 3 || q.Bytes() != first3 {
		t.Fatalf("after ENOSPC: Len %d Backlog %d Bytes %d", q.Len(), backlogs(t, q)[tp("t", 0)], q.Bytes())
	}
	if got := fileSize(t, filepath.Join(dir, segmentName(1))); got != first3 {
		t.Fatalf("partial entry left on disk: segment is %d bytes, want %d", got, first3)
	}

	disk.set(func(d *faultDisk) { d.budget = -1; d.failSync = syscall.EIO })
	if err := q.Append(seqBatch("t", 0, 3, 1, 300)); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Append with failing fsync: %v, want EIO", err)
	}
	if q.Len() != 3 {
		t.Fatalf("entry with failed fsync queued: Len %d", q.Len())
	}
	if err := q.Append(seqBatch("t", 0, 3, 1, 300)); err != nil { // space is back
		t.Fatal(err)
	}
	disk.set(func(d *faultDisk) { d.failOpen = syscall.ENOSPC })
	if err := q.Append(seqBatch("t", 0, 4, 1, 300)); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Append needing a new segment on full disk: %v", err)
	}
	disk.set(func(d *faultDisk) { d.failOpen = nil })
	if err := q.Append(seqBatch("t", 0, 4, 1, 300)); err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}

	q = mustOpen(t, dir, Options{})
	defer closeQueue(t, q)
	if q.Corrupt() != 0 {
		t.Fatalf("Corrupt = %d after disk errors", q.Corrupt())
	}
	requireDrained(t, q, seqRange(0, 5))
}

// TestFsyncPolicies counts syncs of segment data per policy; the interval
// policy syncs on the Store's (injected) ticker and stops with Close.
func TestFsyncPolicies(t *testing.T) {
	for _, p := range []FsyncPolicy{FsyncBatch, FsyncInterval, FsyncNever} {
		t.Run(p.String(), func(t *testing.T) {
			disk := &faultDisk{budget: -1}
			tick := make(chan time.Time)
			tickerStopped := false
			opts := Options{Fsync: p}
			opts.FS = disk
			opts.newTicker = func(d time.Duration) (<-chan time.Time, func()) {
				if d != DefaultFsyncInterval {
					t.Errorf("interval %v, want default %v", d, DefaultFsyncInterval)
				}
				return tick, func() { tickerStopped = true }
			}
			s := mustOpenStore(t, t.TempDir(), opts)
			syncs := func() int { disk.mu.Lock(); defer disk.mu.Unlock(); return disk.syncs }
			for i := range 5 {
				if err := s.Append(seqBatch("t", 0, i, 1, 10)); err != nil {
					t.Fatal(err)
				}
			}
			want := map[FsyncPolicy]int{FsyncBatch: 5}[p]
			if syncs() != want {
				t.Fatalf("%d syncs after 5 appends, want %d", syncs(), want)
			}
			if p == FsyncInterval {
				tick <- time.Now()
				tick <- time.Now() // accepted only after the first tick's sync finished
				if syncs() != 1 {
					t.Fatalf("%d syncs after ticks, want 1", syncs())
				}
				tick <- time.Now() // nothing new written: no sync
				tick <- time.Now()
				if syncs() != 1 {
					t.Fatalf("%d syncs with nothing written", syncs())
				}
				if err := s.Append(seqBatch("t", 0, 5, 1, 10)); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if p == FsyncInterval {
				if !tickerStopped {
					t.Fatal("ticker not stopped by Close")
				}
				if syncs() != 2 {
					t.Fatalf("Close did not sync the last interval: %d syncs", syncs())
				}
			}
		})
	}
}

// TestPeekSkipsEntryCorruptedAfterOpen: damage that appears while the queue
// is open is handled like damage found by Open.
func TestPeekSkipsEntryCorruptedAfterOpen(t *testing.T) {
	dir := t.TempDir()
	log, logs := observed()
	q := mustOpen(t, dir, Options{Logger: log})
	defer closeQueue(t, q)
	for i := range 3 {
		if err := q.Append(seqBatch("t", 0, i, 1, 100)); err != nil {
			t.Fatal(err)
		}
	}
	e := q.segs[0].entries[1]
	f, err := os.OpenFile(filepath.Join(dir, segmentName(1)), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0xAA}, e.off+30); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	requireDrained(t, q, []int{0, 2})
	if q.Corrupt() != 1 || backlogs(t, q)[tp("t", 0)] != 0 || q.Len() != 0 {
		t.Fatalf("Corrupt %d Backlog %d Len %d", q.Corrupt(), backlogs(t, q)[tp("t", 0)], q.Len())
	}
	if logs.FilterMessage("temp storage: corrupt entry skipped").Len() != 1 || len(corruptFiles(t, dir)) != 1 {
		t.Fatal("corrupt entry not logged and kept")
	}
}
