package tempstorage

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// region is a byte range of a segment that holds no valid entry.
type region struct {
	off, end int
	err      error
}

// scanResult is what scanSegment found in one segment.
type scanResult struct {
	entries []entryRef
	routes  []message.TopicPartition // the partition of each entry
	bad     []region                 // corrupt ranges followed by a valid entry
	tail    *region                  // invalid range running to the end of the segment
	// newer, when set, starts at an entry of a format this build does not
	// read (errVersion) and runs to the end of the segment: written by a
	// newer build, not damage. The scan stops there.
	newer *region
}

// scanSegment finds the valid entries of a segment and their partitions.
// After an invalid entry it resumes at the next offset where a valid entry
// starts.
func scanSegment(buf []byte) scanResult {
	var res scanResult
	off := 0
	for off < len(buf) {
		n, route, err := validEntry(buf[off:])
		if err == nil {
			res.entries = append(res.entries, entryRef{off: int64(off), size: uint32(n)})
			res.routes = append(res.routes, route)
			off += n
			continue
		}
		if errors.Is(err, errVersion) {
			res.newer = &region{off: off, end: len(buf), err: err}
			break
		}
		next := resync(buf, off+1)
		if next < 0 {
			res.tail = &region{off: off, end: len(buf), err: err}
			break
		}
		res.bad = append(res.bad, region{off: off, end: next, err: err})
		off = next
	}
	return res
}

// validEntry checks the frame at the start of buf and reads its route.
func validEntry(buf []byte) (int, message.TopicPartition, error) {
	f, n, err := checkFrame(buf)
	if err != nil {
		return 0, message.TopicPartition{}, err
	}
	topic, part, err := decodeRoute(f)
	if err != nil {
		return 0, message.TopicPartition{}, err
	}
	return n, message.TopicPartition{Topic: topic, Partition: part}, nil
}

// resync returns the first offset at or after from where a valid entry
// (or one of a newer format) starts, or -1.
func resync(buf []byte, from int) int {
	for from < len(buf) {
		j := bytes.Index(buf[from:], frameMagic)
		if j < 0 {
			return -1
		}
		p := from + j
		if _, _, err := validEntry(buf[p:]); err == nil || errors.Is(err, errVersion) {
			return p
		}
		from = p + 1
	}
	return -1
}

// recover rebuilds the in-memory index from the directory, whose segments
// are ids, and returns the partitions of the entries it queued, in the order
// they first appear. Only newQueue calls it, before the queue is shared.
func (q *queue) recover(ids []uint64) ([]message.TopicPartition, error) {
	// A tmp checkpoint is a write interrupted before its rename: never valid.
	// Left in place it does no harm (the next write truncates it), so a
	// failure to delete it is only worth a warning.
	if err := os.Remove(filepath.Join(q.dir, checkpointTmp)); err != nil && !errors.Is(err, os.ErrNotExist) {
		q.log.Warn("temp storage: delete interrupted checkpoint", zap.Error(err))
	}
	// Likewise an interrupted head progress write (SetHead).
	if err := os.Remove(filepath.Join(q.dir, headProgressTmp)); err != nil && !errors.Is(err, os.ErrNotExist) {
		q.log.Warn("temp storage: delete interrupted head progress", zap.Error(err))
	}
	cp, haveCP := q.readCheckpoint()
	q.nextID = 1
	if n := len(ids); n > 0 {
		q.nextID = ids[n-1] + 1
		// The checkpoint can be one past the last segment (all replayed, delete
		// interrupted) but never further.
		if haveCP && cp.seg > q.nextID {
			q.log.Warn("temp storage: checkpoint points past the last segment; replaying everything",
				zap.Uint64("checkpoint_segment", cp.seg), zap.Uint64("last_segment", ids[n-1]))
			haveCP = false
		}
	}
	if haveCP && cp.seg > q.nextID {
		q.nextID = cp.seg
	}
	if haveCP {
		q.reportGaps(cp.seg, ids)
	}

	var routes []message.TopicPartition
	for i, id := range ids {
		if haveCP && id < cp.seg {
			// Fully replayed; the delete after the checkpoint did not happen.
			if err := os.Remove(q.segPath(id)); err != nil {
				return nil, err
			}
			continue
		}
		cpOff := int64(-1)
		if haveCP && id == cp.seg {
			cpOff = cp.off
		}
		seg, err := q.recoverSegment(id, i == len(ids)-1, cpOff, &routes)
		if err != nil {
			return nil, err
		}
		q.segs = append(q.segs, seg)
		q.bytes += seg.size
		q.count += len(seg.entries)
	}

	// Leading segments with nothing to replay (acknowledged or all corrupt) go now.
	k := 0
	for k < len(q.segs) && len(q.segs[k].entries) == 0 {
		k++
	}
	if k == 0 {
		return routes, nil
	}
	pos := position{seg: q.nextID}
	if k < len(q.segs) {
		pos.seg = q.segs[k].id
	}
	if err := q.writeCheckpoint(pos); err != nil {
		return nil, err
	}
	for _, s := range q.segs[:k] {
		if err := os.Remove(q.segPath(s.id)); err != nil {
			return nil, err
		}
		q.bytes -= s.size
	}
	q.segs = slices.Delete(q.segs, 0, k)
	return routes, nil
}

// reportGaps logs and counts segments missing between the checkpoint's
// segment first and the segments found, ids (ascending): segments are
// numbered without gaps, and the one the checkpoint names exists while
// anything after it does, so a gap is a segment deleted by hand, its
// entries lost. Each missing segment counts as one corrupt entry.
func (q *queue) reportGaps(first uint64, ids []uint64) {
	want := first
	for _, id := range ids {
		if id < want {
			continue // before the checkpoint: replayed
		}
		if id > want {
			q.corrupt.Add(int64(id - want))
			q.log.Error("temp storage: segments missing from the queue; their entries are lost",
				zap.Uint64("first_missing", want), zap.Uint64("last_missing", id-1),
				zap.String("first_missing_file", segmentName(want)))
		}
		want = id + 1
	}
}

// readCheckpoint returns the replay position; false when there is none or
// it is unreadable (then everything is replayed: duplicates, not loss). It
// notes the write number and whether the file can be written in place.
func (q *queue) readCheckpoint() (position, bool) {
	b, err := os.ReadFile(filepath.Join(q.dir, checkpointName))
	if errors.Is(err, os.ErrNotExist) {
		return position{}, false
	}
	if err == nil {
		q.cpInPlace.Store(len(b) == checkpointLen)
		var p position
		if p, q.cpSeq, err = decodeCheckpoint(b); err == nil {
			return p, true
		}
	}
	q.log.Warn("temp storage: checkpoint unreadable; replaying everything", zap.Error(err))
	return position{}, false
}

// recoverSegment scans one segment: corrupt ranges are copied to corrupt/,
// an invalid tail is copied there and cut off, and entries before the
// checkpoint offset cpOff (-1: none) are left out. The partitions of the
// entries kept are added to routes, each once.
func (q *queue) recoverSegment(id uint64, last bool, cpOff int64, routes *[]message.TopicPartition) (*segment, error) {
	path := q.segPath(id)
	buf, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	res := scanSegment(buf)
	if r := res.newer; r != nil {
		return nil, newerFormatErr(q.dir, id, r)
	}
	for _, r := range res.bad {
		q.moveAside(id, int64(r.off), buf[r.off:r.end], r.err, "bad")
	}
	size := int64(len(buf))
	if r := res.tail; r != nil {
		// At the end of the last segment this is an interrupted write.
		kind := "bad"
		if last {
			kind = "torn"
		}
		q.moveAside(id, int64(r.off), buf[r.off:], r.err, kind)
		if err := q.truncate(path, int64(r.off)); err != nil {
			return nil, err
		}
		size = int64(r.off)
	}
	entries, kept := res.entries, res.routes
	if cpOff >= 0 {
		k := sort.Search(len(entries), func(j int) bool { return entries[j].off >= cpOff })
		switch {
		case cpOff > size:
			q.log.Warn("temp storage: checkpoint past the end of its segment; replaying the segment",
				zap.Uint64("segment", id), zap.Int64("checkpoint_offset", cpOff), zap.Int64("segment_bytes", size))
		case k > 0 && entries[k-1].off+int64(entries[k-1].size) > cpOff:
			q.log.Warn("temp storage: checkpoint inside an entry; replaying the segment",
				zap.Uint64("segment", id), zap.Int64("checkpoint_offset", cpOff))
		default:
			entries, kept = entries[k:], kept[k:]
		}
	}
	for _, r := range kept {
		if !slices.Contains(*routes, r) {
			*routes = append(*routes, r)
		}
	}
	return &segment{id: id, size: size, entries: slices.Clip(entries)}, nil
}

// newerFormatErr is the error that refuses a queue holding, in segment id,
// entries of a newer format (r): skipping them as corrupt would lose
// them to this build, so nothing is changed and a person decides.
func newerFormatErr(dir string, id uint64, r *region) error {
	return fmt.Errorf("temp storage %s: %s offset %d: %w; a newer build wrote it: run that build until the queue "+
		"drains, or move the directory away to start without it (the queue is left as it is)",
		dir, segmentName(id), r.off, r.err)
}

func (q *queue) truncate(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if err == nil && q.opts.Fsync != FsyncNever {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// moveAside copies a corrupt ("bad", counted in Corrupt) or torn range of
// segment id to corrupt/ for inspection. A range already copied by an
// earlier open is not copied or counted again.
func (q *queue) moveAside(id uint64, off int64, data []byte, reason error, kind string) {
	dir := filepath.Join(q.dir, corruptDir)
	name := filepath.Join(dir, fmt.Sprintf("%s.%d.%s", segmentName(id), off, kind))
	fields := []zap.Field{zap.Uint64("segment", id), zap.Int64("offset", off), zap.Int("bytes", len(data)),
		zap.String("reason", reason.Error()), zap.String("copy", name)}
	if _, err := os.Stat(name); err == nil {
		q.log.Info("temp storage: skipping range already moved aside", fields...)
		return
	}
	if kind == "torn" {
		q.log.Warn("temp storage: truncating interrupted write at the end of the queue", fields...)
	} else {
		q.corrupt.Add(1)
		q.log.Error("temp storage: corrupt entry skipped", fields...)
	}
	err := os.MkdirAll(dir, 0o700)
	if err == nil {
		err = os.WriteFile(name, data, 0o600)
	}
	if err != nil {
		q.log.Warn("temp storage: cannot keep a copy of the skipped range", append(fields, zap.Error(err))...)
	}
}

// leaveAlone warns, once each, of the files named in dir that a queue did
// not write (listSegments): they stay where they are.
func leaveAlone(log *zap.Logger, dir string, names []string) {
	for _, name := range names {
		log.With(zap.String("directory", dir)).Warn("temp storage: leaving alone a file the queue did not write",
			zap.String("file", filepath.Join(dir, name)))
	}
}

// listSegments returns the ids of the segments in dir, ascending, and the
// names of the other entries that are not the queue's own (its checkpoint,
// head progress, corrupt/ and LOCK). Only exact segment names count (parseSegmentName):
// segment-2.log is not segment 2.
func listSegments(dir string) (ids []uint64, foreign []string, err error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	for _, de := range des {
		name := de.Name()
		if id, ok := parseSegmentName(name); ok && de.Type().IsRegular() {
			ids = append(ids, id)
			continue
		}
		switch name {
		case lockName, checkpointName, checkpointTmp, headProgressName, headProgressTmp, corruptDir:
			continue
		}
		foreign = append(foreign, name)
	}
	slices.Sort(ids)
	return ids, foreign, nil
}

// parseSegmentName returns the id of a segment file name exactly as
// segmentName writes it: the prefix, 20 decimal digits, the suffix, and
// an id above 0.
func parseSegmentName(name string) (uint64, bool) {
	digits, ok := strings.CutPrefix(name, segmentPrefix)
	if !ok {
		return 0, false
	}
	if digits, ok = strings.CutSuffix(digits, segmentSuffix); !ok || len(digits) != segmentDigits {
		return 0, false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, false
		}
	}
	id, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || id == 0 {
		return 0, false
	}
	return id, true
}
