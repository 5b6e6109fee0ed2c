package tempstorage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"

	"go.uber.org/zap"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// Head progress file (SetHead), little endian:
//
//	0  magic    4 bytes  "KBHP"
//	4  version  1 byte   1
//	5  flags    1 byte   bit 0 = a sequence ends the body, the others 0
//	6  zero     2 bytes
//	8  length   uint32   body bytes
//	12 crc      uint32   CRC-32C of bytes 0..11 and the body
//	16 body
//
// Body: the entry it is about, named exactly: segment id (uvarint), offset
// in the segment (uvarint), size on disk (uvarint), the CRC field of its
// frame (uint32) and its record count (uvarint); then the records Kafka
// took as ranges: count (uvarint), then per range the records skipped
// since the end of the previous one (uvarint) and the records in it
// (uvarint, at least 1); then, when flag bit 0 is set, the sequence of the
// other records, written as a v2 entry's sequence section (appendSequence),
// its counts adding up to those records.
//
// The file is replaced whole (write to head-progress.tmp, rename); it
// holds the progress of one entry, the oldest, and is deleted once that
// entry is acknowledged. A file that names another entry is stale (the
// checkpoint moved on before it was deleted) and is deleted at the next open.
const (
	headProgressName    = "head-progress"
	headProgressTmp     = "head-progress.tmp"
	headProgressHdrLen  = 16
	headProgressV1      = 1
	headProgressHasSeq  = 1
	headProgressMaxBody = 1 << 30 // a corrupt length cannot ask for more
)

var (
	headProgressMagic = []byte("KBHP")
	errHeadProgress   = errors.New("malformed head progress")
)

// entryID names one stored entry exactly: its position, its size on disk,
// the CRC field of its frame and its record count.
type entryID struct {
	pos     position
	size    uint32
	crc     uint32
	records int
}

// headProgress is what replays that failed part-way left of the oldest
// entry: which of its records Kafka took (or refused for good), and the
// sequence numbers of the others.
type headProgress struct {
	entry entryID
	done  []bool            // per record of the stored entry
	seq   *message.Sequence // of the records not done; nil: none
}

// left returns the number of records not done.
func (hp *headProgress) left() int {
	n := 0
	for _, d := range hp.done {
		if !d {
			n++
		}
	}
	return n
}

// encodeHeadProgress returns the file holding hp.
func encodeHeadProgress(hp *headProgress) []byte {
	b := make([]byte, headProgressHdrLen, 64)
	copy(b, headProgressMagic)
	b[4] = headProgressV1
	if hp.seq != nil {
		b[5] = headProgressHasSeq
	}
	b = binary.AppendUvarint(b, hp.entry.pos.seg)
	b = binary.AppendUvarint(b, uint64(hp.entry.pos.off))
	b = binary.AppendUvarint(b, uint64(hp.entry.size))
	b = binary.LittleEndian.AppendUint32(b, hp.entry.crc)
	b = binary.AppendUvarint(b, uint64(hp.entry.records))
	b = appendRanges(b, hp.done)
	if hp.seq != nil {
		b = appendSequence(b, hp.seq)
	}
	binary.LittleEndian.PutUint32(b[8:12], uint32(len(b)-headProgressHdrLen))
	crc := crc32.Update(0, castagnoli(), b[:8])
	crc = crc32.Update(crc, castagnoli(), b[headProgressHdrLen:])
	binary.LittleEndian.PutUint32(b[12:16], crc)
	return b
}

// appendRanges writes the runs of true in done: their count, then per run
// the records skipped before it and its length.
func appendRanges(dst []byte, done []bool) []byte {
	type run struct{ skip, n int }
	var runs []run
	end := 0 // end of the previous run
	for i := 0; i < len(done); {
		if !done[i] {
			i++
			continue
		}
		j := i
		for j < len(done) && done[j] {
			j++
		}
		runs = append(runs, run{i - end, j - i})
		end, i = j, j
	}
	dst = binary.AppendUvarint(dst, uint64(len(runs)))
	for _, r := range runs {
		dst = binary.AppendUvarint(dst, uint64(r.skip))
		dst = binary.AppendUvarint(dst, uint64(r.n))
	}
	return dst
}

// decodeHeadProgress reads a head progress file. Errors wrap
// errHeadProgress.
func decodeHeadProgress(b []byte) (headProgress, error) {
	if len(b) < headProgressHdrLen || string(b[:4]) != string(headProgressMagic) {
		return headProgress{}, fmt.Errorf("%w: bad magic or truncated header (%d bytes)", errHeadProgress, len(b))
	}
	blen := binary.LittleEndian.Uint32(b[8:12])
	if blen > headProgressMaxBody || int64(blen) != int64(len(b)-headProgressHdrLen) {
		return headProgress{}, fmt.Errorf("%w: body of %d bytes in a file of %d", errHeadProgress, blen, len(b))
	}
	crc := crc32.Update(0, castagnoli(), b[:8])
	crc = crc32.Update(crc, castagnoli(), b[headProgressHdrLen:])
	if crc != binary.LittleEndian.Uint32(b[12:16]) {
		return headProgress{}, fmt.Errorf("%w: checksum mismatch", errHeadProgress)
	}
	if b[4] != headProgressV1 || b[5]&^headProgressHasSeq != 0 || b[6] != 0 || b[7] != 0 {
		return headProgress{}, fmt.Errorf("%w: version %d, flags %#x: this build reads version %d",
			errHeadProgress, b[4], b[5], headProgressV1)
	}
	hp, err := decodeHeadProgressBody(b[headProgressHdrLen:], b[5]&headProgressHasSeq != 0)
	if err != nil {
		return headProgress{}, fmt.Errorf("%w: %w", errHeadProgress, err)
	}
	return hp, nil
}

// decodeHeadProgressBody reads the body of a checked head progress file.
func decodeHeadProgressBody(body []byte, hasSeq bool) (headProgress, error) {
	r := reader{b: body}
	var hp headProgress
	hp.entry.pos.seg = r.uvarint()
	off := r.uvarint()
	size := r.uvarint()
	hp.entry.crc = r.fixed32()
	records := r.uvarint()
	if r.err == nil && (off > math.MaxInt64 || size > frameHeaderLen+maxPayload || records > size/6) {
		// Each record takes at least 6 bytes of its entry, which bounds the allocation.
		r.fail()
	}
	hp.entry.pos.off, hp.entry.size, hp.entry.records = int64(off), uint32(size), int(records)
	if r.err == nil {
		hp.done = make([]bool, hp.entry.records)
	}
	at := uint64(0)
	for n := r.count(2); n > 0 && r.err == nil; n-- {
		at += r.uvarint()
		run := r.uvarint()
		if run == 0 || at+run > records || at+run < at {
			r.fail()
			break
		}
		for i := at; i < at+run; i++ {
			hp.done[i] = true
		}
		at += run
	}
	if hasSeq && r.err == nil {
		hp.seq = r.sequence()
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail()
	}
	if r.err != nil {
		return headProgress{}, r.err
	}
	if hp.seq != nil {
		if err := checkSequence(hp.seq, uint64(hp.left())); err != nil {
			return headProgress{}, err
		}
	}
	return hp, nil
}

// fixed32 reads a little-endian uint32.
func (r *reader) fixed32() uint32 {
	b := r.take(4)
	if len(b) < 4 {
		return 0
	}
	return binary.LittleEndian.Uint32(b)
}

// readHeadProgress reads the head progress file in dir: nil when there is
// none.
func readHeadProgress(dir string) (*headProgress, error) {
	b, err := os.ReadFile(filepath.Join(dir, headProgressName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	hp, err := decodeHeadProgress(b)
	if err != nil {
		return nil, err
	}
	return &hp, nil
}

// SetHead records, durably, how far replays of the oldest entry (the one
// Peek returns) got, as Store.SetHead says. It returns ErrEmpty if the
// queue is empty.
func (q *queue) SetHead(done []bool, seq *message.Sequence) error {
	q.rmu.Lock()
	defer q.rmu.Unlock()
	id, err := q.headEntry()
	if err != nil {
		return err
	}
	hp := headProgress{entry: id, done: make([]bool, id.records)}
	if cur := q.hp; cur != nil && cur.entry == id {
		copy(hp.done, cur.done)
	}
	j := 0 // index among the records Peek returns
	for i := range hp.done {
		if hp.done[i] {
			continue
		}
		hp.done[i] = j < len(done) && done[j]
		j++
	}
	if len(done) > j {
		return fmt.Errorf("temp storage %s: head progress: %d records marked, the oldest entry has %d left", q.dir, len(done), j)
	}
	if seq != nil {
		if err := checkSequence(seq, uint64(hp.left())); err != nil {
			return fmt.Errorf("temp storage %s: head progress: %w", q.dir, err)
		}
		hp.seq = cloneSequence(seq)
	}
	if err := q.writeHead(&hp); err != nil {
		return err
	}
	q.hp = &hp
	return nil
}

// headEntry reads the frame of the oldest entry and names it. rmu held.
func (q *queue) headEntry() (entryID, error) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return entryID{}, ErrClosed
	}
	seg, _, e, ok := q.head()
	q.mu.Unlock()
	if !ok {
		return entryID{}, ErrEmpty
	}
	buf := make([]byte, e.size)
	if err := q.readAt(seg.id, buf, e.off); err != nil {
		return entryID{}, fmt.Errorf("temp storage %s: head progress: read segment %d: %w", q.dir, seg.id, err)
	}
	f, _, err := checkFrame(buf)
	var h head
	if err == nil {
		r := reader{b: f.payload}
		h = r.head(f.version)
		err = r.err
	}
	if err != nil {
		return entryID{}, fmt.Errorf("temp storage %s: head progress: %s offset %d: %w", q.dir, segmentName(seg.id), e.off, err)
	}
	return entryID{pos: position{seg.id, e.off}, size: e.size, crc: frameCRC(buf), records: int(h.records)}, nil
}

// frameCRC is the CRC field of the entry frame at the start of buf.
func frameCRC(buf []byte) uint32 { return binary.LittleEndian.Uint32(buf[8:12]) }

// writeHead replaces the head progress file with hp: written to a
// temporary file (synced under FsyncBatch) and renamed over it, so a
// failure leaves the previous file whole. rmu held.
func (q *queue) writeHead(hp *headProgress) error {
	tmp := filepath.Join(q.dir, headProgressTmp)
	f, err := q.opts.FS.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("temp storage %s: write head progress: %w", q.dir, err)
	}
	_, err = f.WriteAt(encodeHeadProgress(hp), 0)
	if err == nil && q.opts.Fsync == FsyncBatch {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(q.dir, headProgressName))
	}
	if err != nil {
		// Best effort: a leftover tmp is truncated by the next write and
		// removed by the next open; the write error is the one to report.
		_ = os.Remove(tmp)
		return fmt.Errorf("temp storage %s: write head progress: %w", q.dir, err)
	}
	// Renamed: the file may now hold hp even if the directory sync fails.
	q.hpOnDisk = true
	return q.syncDirPolicy()
}

// loadHead reads the head progress file at open: kept when it names the
// oldest entry, deleted when it names another (stale: that entry was
// acknowledged) and, when unreadable, logged and deleted: the oldest entry
// is then replayed whole. Only newQueue calls it, before the queue is shared.
func (q *queue) loadHead() {
	hp, err := readHeadProgress(q.dir)
	if hp == nil && err == nil {
		return
	}
	q.hpOnDisk = true
	path := filepath.Join(q.dir, headProgressName)
	if err != nil {
		q.log.Warn("temp storage: head progress unreadable; the oldest entry is replayed whole, "+
			"records Kafka took of it included", zap.String("file", path), zap.Error(err))
		q.dropHead()
		return
	}
	seg, _, e, ok := q.head()
	if !ok || hp.entry.pos != (position{seg.id, e.off}) || hp.entry.size != e.size {
		q.log.Info("temp storage: deleting the head progress of an entry already acknowledged", zap.String("file", path))
		q.dropHead()
		return
	}
	q.hp = hp
}

// applyHead gives b, the oldest entry as stored (id names it), the
// progress SetHead recorded for it. Progress that names another entry
// (the file replaced behind the queue's back) is logged and dropped. rmu
// held.
func (q *queue) applyHead(b *message.Batch, id entryID) {
	hp := q.hp
	if hp == nil {
		return
	}
	if hp.entry != id {
		q.log.Warn("temp storage: head progress names another entry; the oldest entry is replayed whole",
			zap.String("file", filepath.Join(q.dir, headProgressName)),
			zap.Uint64("segment", id.pos.seg), zap.Int64("offset", id.pos.off))
		q.dropHead()
		return
	}
	*b = hp.apply(*b)
}

// apply returns b, the entry hp is about, less the records done and with
// hp's sequence.
func (hp *headProgress) apply(b message.Batch) message.Batch {
	msgs := make([]message.Message, 0, hp.left())
	for i, m := range b.Messages {
		if !hp.done[i] {
			msgs = append(msgs, m)
		}
	}
	b.Messages, b.Seq, b.Bytes = msgs, cloneSequence(hp.seq), 0
	if len(msgs) > 0 {
		b.Bytes = message.BatchSize(msgs)
	}
	return b
}

// dropHead forgets the head progress and deletes its file. A file that
// cannot be deleted is stale from now on, which the next open recognises. rmu
// held, or the queue not yet shared.
func (q *queue) dropHead() {
	q.hp = nil
	if !q.hpOnDisk {
		return
	}
	err := os.Remove(filepath.Join(q.dir, headProgressName))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		q.log.Warn("temp storage: delete head progress", zap.String("file", filepath.Join(q.dir, headProgressName)), zap.Error(err))
		return
	}
	q.hpOnDisk = false
	q.metaDirty.Store(true)
}

// cloneSequence returns a copy of s; nil for nil.
func cloneSequence(s *message.Sequence) *message.Sequence {
	if s == nil {
		return nil
	}
	c := *s
	c.Counts = slices.Clone(s.Counts)
	return &c
}
