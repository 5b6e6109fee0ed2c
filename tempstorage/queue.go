package tempstorage

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// File names inside the queue directory.
const (
	lockName       = "LOCK"
	checkpointName = "checkpoint"
	checkpointTmp  = "checkpoint.tmp"
	corruptDir     = "corrupt"
	segmentPrefix  = "segment-"
	segmentSuffix  = ".log"
	segmentDigits  = 20 // segmentName's width
)

// queue is the Store's durable FIFO of one partition's batches, in the
// segment files of one directory (migrate reads the single-queue layout of
// earlier versions, which holds every partition's, as a queue too). The
// Store holds the directory lock, runs the FsyncInterval loop (syncNow) and
// shares its byte bound and write buffers. All methods are safe for
// concurrent use: sender goroutines Append while one replay loop calls Peek
// and Ack.
type queue struct {
	dir    string
	opts   Options     // the Store's, with defaults
	budget *byteBudget // MaxBytes, shared by the Store's queues
	bufs   *sync.Pool  // of *[]byte: write buffers, lent for one Append
	log    *zap.Logger

	// rmu serialises Peek, SetHead and Ack; it guards rf, checkpoint writes
	// and the head progress.
	rmu       sync.Mutex
	rf        *os.File // read handle of segment rfID
	rfID      uint64
	cpSeq     uint64        // write number of the newest checkpoint slot
	cpInPlace atomic.Bool   // the checkpoint file has the version 2 layout: written in place
	hp        *headProgress // progress of the oldest entry (SetHead); nil: none
	hpOnDisk  bool          // a head progress file may exist

	// wmu serialises Append, segment rotation and syncing the active segment.
	wmu      sync.Mutex
	active   File // last segment, open for writing; nil when there is none
	writeOff int64
	dirty    bool    // active has writes not yet synced (FsyncInterval)
	buf      *[]byte // lent by bufs during an Append; nil otherwise

	// mu guards the in-memory index below. Lock order: rmu, wmu, mu.
	mu     sync.Mutex
	segs   []*segment // oldest first; the last one is the active segment
	nextID uint64
	count  int
	bytes  int64
	closed bool

	corrupt   atomic.Int64
	metaDirty atomic.Bool // directory changes not yet synced (FsyncInterval, FsyncNever)

	closeOnce sync.Once
}

// segment is one segment file and its unacknowledged entries.
type segment struct {
	id      uint64
	size    int64
	entries []entryRef
}

type entryRef struct {
	off  int64
	size uint32
}

// openQueue opens the queue in dir, creating the directory (mode 0700) if
// missing, and returns it with the partitions of its entries (newQueue).
// Files in it the queue did not write are left alone, with a warning.
func openQueue(dir string, opts Options, budget *byteBudget, bufs *sync.Pool) (*queue, []message.TopicPartition, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("temp storage: create %s: %w", dir, err)
	}
	ids, foreign, err := listSegments(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("temp storage %s: recover: %w", dir, err)
	}
	leaveAlone(opts.Logger, dir, foreign)
	return newQueue(dir, ids, opts, budget, bufs)
}

// newQueue opens the queue in dir, whose segment files are ids
// (listSegments), and recovers what a previous run left: a torn tail is
// truncated, corrupt entries are moved to dir/corrupt/ and counted, and
// everything else is queued for replay; its bytes count in budget. It
// returns the partitions the queued entries belong to, in the order they
// first appear. opts has its defaults; the caller holds the directory's
// lock.
func newQueue(dir string, ids []uint64, opts Options, budget *byteBudget, bufs *sync.Pool) (*queue, []message.TopicPartition, error) {
	q := &queue{
		dir:    dir,
		opts:   opts,
		budget: budget,
		bufs:   bufs,
		log:    opts.Logger.With(zap.String("directory", dir)),
	}
	routes, err := q.recover(ids)
	if err != nil {
		return nil, nil, fmt.Errorf("temp storage %s: recover: %w", dir, err)
	}
	q.loadHead()
	if n := len(q.segs); n > 0 {
		last := q.segs[n-1]
		f, err := opts.FS.OpenFile(q.segPath(last.id), os.O_WRONLY, 0o600)
		if err != nil {
			return nil, nil, fmt.Errorf("temp storage %s: open segment: %w", dir, err)
		}
		q.active, q.writeOff = f, last.size
	}
	// The checkpoint is written in place from now on, so a full disk never
	// stops replay; Append makes another attempt if this one fails.
	if !q.cpInPlace.Load() {
		if err := q.writeCheckpoint(q.headPos()); err != nil && len(q.segs) > 0 {
			q.log.Warn("temp storage: cannot create the checkpoint file; replay needs space for it", zap.Error(err))
		}
	}
	// What recovery kept counts against the bound even if it exceeds it
	// (MaxBytes lowered since): appends get ErrFull until the backlog drains.
	budget.add(q.bytes)
	if q.count > 0 {
		q.log.Info("temp storage holds data to replay",
			zap.Int("entries", q.count), zap.Int64("bytes", q.bytes), zap.Int("segments", len(q.segs)))
	}
	return q, routes, nil
}

// Append stores b behind everything already queued, as Store.Append says.
func (q *queue) Append(b message.Batch) error {
	if b.Seq != nil {
		if err := checkSequence(b.Seq, uint64(len(b.Messages))); err != nil {
			q.log.Error("temp storage: storing a batch without its sequence, which does not fit its records; "+
				"a replay sends them under new sequence numbers",
				zap.String("topic", b.Topic), zap.Int32("partition", b.Partition), zap.Error(err))
			b.Seq = nil
		}
	}
	if !q.cpInPlace.Load() {
		// Room for the checkpoint is taken before any entry: replaying the
		// entry must not need space.
		q.rmu.Lock()
		var err error
		if !q.cpInPlace.Load() {
			q.mu.Lock()
			pos := q.headPos()
			q.mu.Unlock()
			err = q.writeCheckpoint(pos)
		}
		q.rmu.Unlock()
		if err != nil {
			return err
		}
	}
	q.wmu.Lock()
	defer q.wmu.Unlock()
	q.takeBuf()
	defer q.putBuf()
	buf := appendEntry((*q.buf)[:0], &b)
	*q.buf = buf
	n := int64(len(buf))

	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrClosed
	}
	if n > q.opts.MaxBytes || n-frameHeaderLen > maxPayload {
		q.mu.Unlock()
		return fmt.Errorf("%w: %s/%d entry of %d bytes, max_bytes %d", ErrTooLarge, b.Topic, b.Partition, n, q.opts.MaxBytes)
	}
	// The reservation holds the room until the entry is written or released
	// on failure, so concurrent appends (of other queues of a Store) cannot
	// overshoot the bound between them.
	if used, ok := q.budget.reserve(n); !ok {
		q.mu.Unlock()
		return fmt.Errorf("%w: %s holds %d of %d bytes, %s/%d entry needs %d", ErrFull, q.budget.dir, used, q.budget.max, b.Topic, b.Partition, n)
	}
	q.mu.Unlock()
	written := false
	defer func() {
		if !written {
			q.budget.unreserve(n)
		}
	}()

	if q.active == nil || (q.writeOff > 0 && q.writeOff+n > q.opts.SegmentBytes) {
		if err := q.rotate(); err != nil {
			return err
		}
	}
	off := q.writeOff
	if _, err := q.active.WriteAt(buf, off); err != nil {
		q.rollback(off)
		return fmt.Errorf("temp storage %s: write entry: %w", q.dir, err)
	}
	switch q.opts.Fsync {
	case FsyncBatch:
		if err := q.active.Sync(); err != nil {
			q.rollback(off)
			return fmt.Errorf("temp storage %s: sync entry: %w", q.dir, err)
		}
	case FsyncInterval:
		q.dirty = true
	}
	q.writeOff = off + n

	q.mu.Lock()
	seg := q.segs[len(q.segs)-1]
	seg.entries = append(seg.entries, entryRef{off: off, size: uint32(n)})
	seg.size = q.writeOff
	q.bytes += n
	q.count++
	q.mu.Unlock()
	q.budget.commit(n)
	written = true
	return nil
}

// takeBuf and putBuf lend a write buffer from the Store's pool for one
// Append, so a Store holds one per append in flight rather than one per
// partition. wmu held.
func (q *queue) takeBuf() {
	q.buf, _ = q.bufs.Get().(*[]byte)
	if q.buf == nil {
		q.buf = new([]byte)
	}
}

func (q *queue) putBuf() {
	q.bufs.Put(q.buf)
	q.buf = nil
}

// rollback removes a failed write so the next entry starts at off. wmu held.
func (q *queue) rollback(off int64) {
	if err := q.active.Truncate(off); err != nil {
		// The next write overwrites from off; a leftover tail is cut at the next open.
		q.log.Warn("temp storage: cannot truncate failed write", zap.Int64("offset", off), zap.Error(err))
	}
}

// rotate starts a new segment and makes it the active one. wmu held.
func (q *queue) rotate() error {
	q.mu.Lock()
	id := q.nextID
	q.mu.Unlock()
	f, err := q.opts.FS.OpenFile(q.segPath(id), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("temp storage %s: create segment: %w", q.dir, err)
	}
	if err := q.syncDirPolicy(); err != nil {
		_ = f.Close() // empty and about to be deleted
		if rerr := os.Remove(q.segPath(id)); rerr != nil {
			// Left behind, it makes every later rotate fail: nextID is
			// unchanged and the create is O_EXCL.
			q.log.Warn("temp storage: delete segment after failed directory sync",
				zap.Uint64("segment", id), zap.Error(rerr))
		}
		return err
	}
	if q.active != nil {
		if q.dirty && q.opts.Fsync != FsyncNever {
			if err := q.active.Sync(); err != nil {
				q.log.Warn("temp storage: sync segment", zap.Error(err))
			}
		}
		if err := q.active.Close(); err != nil {
			q.log.Warn("temp storage: close segment", zap.Error(err))
		}
	}
	q.active, q.writeOff, q.dirty = f, 0, false
	q.mu.Lock()
	q.segs = append(q.segs, &segment{id: id})
	q.nextID = id + 1
	q.mu.Unlock()
	return nil
}

// Peek returns the oldest unacknowledged batch, or ok false when the queue
// is empty, as Store.Peek says.
func (q *queue) Peek() (b message.Batch, ok bool, err error) {
	q.rmu.Lock()
	defer q.rmu.Unlock()
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return message.Batch{}, false, ErrClosed
		}
		seg, _, e, found := q.head()
		q.mu.Unlock()
		if !found {
			return message.Batch{}, false, nil
		}
		buf := make([]byte, e.size)
		rerr := q.readAt(seg.id, buf, e.off)
		var derr error
		if rerr == nil {
			if b, _, derr = decodeEntry(buf); derr == nil {
				q.applyHead(&b, entryID{pos: position{seg.id, e.off}, size: e.size, crc: frameCRC(buf), records: len(b.Messages)})
				return b, true, nil
			}
		} else if errors.Is(rerr, io.EOF) {
			derr = errTruncated // the file got shorter behind our back
		} else if errors.Is(rerr, fs.ErrNotExist) {
			if err := q.skipMissing(seg); err != nil {
				return message.Batch{}, false, err
			}
			continue
		} else {
			return message.Batch{}, false, fmt.Errorf("temp storage %s: read segment %d: %w", q.dir, seg.id, rerr)
		}
		q.moveAside(seg.id, e.off, buf, derr, "bad")
		if err := q.advance(); err != nil {
			return message.Batch{}, false, err
		}
	}
}

// skipMissing drops the entries of a segment deleted behind the queue's
// back: they are lost, which is logged and counted like a corrupt entry.
// rmu held.
func (q *queue) skipMissing(seg *segment) error {
	q.mu.Lock()
	n := len(seg.entries)
	q.mu.Unlock()
	q.corrupt.Add(1)
	q.log.Error("temp storage: segment deleted while queued; its entries are lost",
		zap.Uint64("segment", seg.id), zap.Int("entries", n), zap.String("file", q.segPath(seg.id)))
	for range n {
		if err := q.advance(); err != nil {
			return err
		}
	}
	return nil
}

// readAt reads from segment id. rmu held.
func (q *queue) readAt(id uint64, buf []byte, off int64) error {
	if q.rf == nil || q.rfID != id {
		if q.rf != nil {
			_ = q.rf.Close() // read only: nothing to flush, nothing lost
			q.rf = nil
		}
		f, err := os.Open(q.segPath(id))
		if err != nil {
			return err
		}
		q.rf, q.rfID = f, id
	}
	_, err := q.rf.ReadAt(buf, off)
	return err
}

// Ack marks the oldest entry (the one Peek returns) as replayed, as
// Store.Ack says. It returns ErrEmpty if the queue is empty.
func (q *queue) Ack() error {
	q.rmu.Lock()
	defer q.rmu.Unlock()
	return q.advance()
}

// head returns the oldest unacknowledged entry and the index of its
// segment. mu held.
func (q *queue) head() (*segment, int, entryRef, bool) {
	for i, s := range q.segs {
		if len(s.entries) > 0 {
			return s, i, s.entries[0], true
		}
	}
	return nil, 0, entryRef{}, false
}

// advance drops the oldest entry: new checkpoint first, then the in-memory
// index, then its head progress and fully replayed segment files. rmu held.
func (q *queue) advance() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrClosed
	}
	seg, i, _, ok := q.head()
	// Emptying the active segment retires it, which touches the writer.
	retiring := ok && i == len(q.segs)-1 && len(seg.entries) == 1
	q.mu.Unlock()
	if !ok {
		return ErrEmpty
	}
	if retiring {
		q.wmu.Lock()
		defer q.wmu.Unlock()
	}

	q.mu.Lock()
	seg, i, _, _ = q.head()
	var pos position
	var drop int // leading segments to delete
	retire := false
	switch {
	case len(seg.entries) > 1:
		pos = position{seg.id, seg.entries[1].off}
		drop = i // empty segments before the head
	case i < len(q.segs)-1:
		pos = position{q.segs[i+1].id, 0}
		drop = i + 1
	default: // last entry of the active segment; wmu is held (retiring)
		pos = position{q.nextID, 0}
		drop = len(q.segs)
		retire = true
	}
	q.mu.Unlock()

	if err := q.writeCheckpoint(pos); err != nil {
		return err
	}

	q.mu.Lock()
	seg.entries = seg.entries[1:]
	q.count--
	dropped := append([]*segment(nil), q.segs[:drop]...)
	q.segs = q.segs[drop:]
	var freed int64
	for _, s := range dropped {
		freed += s.size
	}
	q.bytes -= freed
	q.mu.Unlock()
	q.budget.free(freed)
	q.dropHead()

	if retire && q.active != nil {
		if err := q.active.Close(); err != nil {
			q.log.Warn("temp storage: close segment", zap.Error(err))
		}
		q.active, q.writeOff, q.dirty = nil, 0, false
	}
	for _, s := range dropped {
		if q.rf != nil && q.rfID == s.id {
			_ = q.rf.Close() // read only: nothing to flush, nothing lost
			q.rf = nil
		}
		if err := os.Remove(q.segPath(s.id)); err != nil && !errors.Is(err, os.ErrNotExist) {
			// The next open deletes it: it lies before the checkpoint.
			q.log.Warn("temp storage: delete replayed segment", zap.Uint64("segment", s.id), zap.Error(err))
		}
	}
	if len(dropped) > 0 {
		q.metaDirty.Store(true)
	}
	return nil
}

// writeCheckpoint records p as the replay position. It writes one slot of
// the checkpoint file in place, which needs no new space on a full disk
// (and no directory sync); a failed write leaves the slot to be written
// again, the other slot holding the previous position. A queue without a
// version 2 file (new, or from an earlier build) gets one by write and
// rename. rmu held, or the queue not yet shared.
func (q *queue) writeCheckpoint(p position) error {
	seq := q.cpSeq + 1
	if !q.cpInPlace.Load() {
		return q.createCheckpoint(seq, p)
	}
	path := filepath.Join(q.dir, checkpointName)
	f, err := q.opts.FS.OpenFile(path, os.O_WRONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		q.log.Warn("temp storage: checkpoint file deleted; writing a new one")
		return q.createCheckpoint(seq, p)
	}
	if err == nil {
		_, err = f.WriteAt(encodeCheckpointSlot(seq, p), int64(seq%2)*checkpointSlotStride)
		if err == nil && q.opts.Fsync == FsyncBatch {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return fmt.Errorf("temp storage %s: write checkpoint: %w", q.dir, err)
	}
	q.cpSeq = seq
	return nil
}

// createCheckpoint writes a whole version 2 checkpoint file holding p by
// write and rename.
func (q *queue) createCheckpoint(seq uint64, p position) error {
	tmp := filepath.Join(q.dir, checkpointTmp)
	f, err := q.opts.FS.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("temp storage %s: write checkpoint: %w", q.dir, err)
	}
	_, err = f.WriteAt(encodeCheckpoint(seq, p), 0)
	if err == nil && q.opts.Fsync == FsyncBatch {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(q.dir, checkpointName))
	}
	if err != nil {
		// Best effort: a leftover tmp is truncated by the next write and
		// removed by the next open; the write error is the one to report.
		_ = os.Remove(tmp)
		return fmt.Errorf("temp storage %s: write checkpoint: %w", q.dir, err)
	}
	if err := q.syncDirPolicy(); err != nil {
		return err
	}
	q.cpSeq = seq
	q.cpInPlace.Store(true)
	return nil
}

// headPos is the replay position of the oldest entry; with none, the end
// of the first segment (entries appended later lie after it) or, with no
// segment, the next segment. mu held, or the queue not yet shared.
func (q *queue) headPos() position {
	if s, _, e, ok := q.head(); ok {
		return position{s.id, e.off}
	}
	if len(q.segs) > 0 {
		return position{q.segs[0].id, q.segs[0].size}
	}
	return position{seg: q.nextID}
}

// syncDirPolicy makes directory changes durable under FsyncBatch and
// remembers them for the interval loop otherwise.
func (q *queue) syncDirPolicy() error {
	if q.opts.Fsync != FsyncBatch {
		q.metaDirty.Store(true)
		return nil
	}
	if err := syncDir(q.dir); err != nil {
		return fmt.Errorf("temp storage %s: sync directory: %w", q.dir, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Len returns the number of queued (unacknowledged) entries.
func (q *queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.count
}

// Bytes returns the bytes on disk of segments not yet fully replayed, the
// figure MaxBytes bounds.
func (q *queue) Bytes() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.bytes
}

// Corrupt returns the number of corrupt entries moved aside since the queue
// was opened.
func (q *queue) Corrupt() int64 { return q.corrupt.Load() }

// Dir returns the queue directory.
func (q *queue) Dir() string { return q.dir }

// Close syncs what the policy asks and closes the files. Queued data stays
// for the next open. Later calls return nil; other methods return
// ErrClosed.
func (q *queue) Close() error {
	var err error
	q.closeOnce.Do(func() {
		q.rmu.Lock()
		defer q.rmu.Unlock()
		q.wmu.Lock()
		defer q.wmu.Unlock()
		q.mu.Lock()
		q.closed = true
		q.mu.Unlock()
		var errs []error
		if q.active != nil {
			if q.dirty && q.opts.Fsync != FsyncNever {
				errs = append(errs, q.active.Sync())
			}
			errs = append(errs, q.active.Close())
			q.active = nil
		}
		if q.opts.Fsync == FsyncInterval && q.metaDirty.Swap(false) {
			errs = append(errs, syncDir(q.dir))
		}
		if q.rf != nil {
			errs = append(errs, q.rf.Close())
			q.rf = nil
		}
		if e := errors.Join(errs...); e != nil {
			err = fmt.Errorf("temp storage %s: close: %w", q.dir, e)
		}
	})
	return err
}

// syncNow forces data and directory changes to disk (the Store's
// FsyncInterval loop).
func (q *queue) syncNow() error {
	q.wmu.Lock()
	var err error
	if q.dirty && q.active != nil {
		if err = q.active.Sync(); err == nil {
			q.dirty = false
		}
	}
	q.wmu.Unlock()
	if q.metaDirty.Swap(false) {
		if derr := syncDir(q.dir); derr != nil {
			q.metaDirty.Store(true)
			err = errors.Join(err, derr)
		}
	}
	return err
}

func (q *queue) segPath(id uint64) string {
	return filepath.Join(q.dir, segmentName(id))
}

func segmentName(id uint64) string {
	return fmt.Sprintf("%s%0*d%s", segmentPrefix, segmentDigits, id, segmentSuffix)
}
