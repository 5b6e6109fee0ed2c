package tempstorage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// PartitionReport is what Inspect found in one partition's queue: the
// figures the exporter would replay after OpenStore.
type PartitionReport struct {
	Topic     string
	Partition int32
	// Dir is the queue directory, relative to the store directory.
	Dir string
	// Batches and Records count the entries OpenStore would queue for replay
	// and the records it would send (the oldest batch less the records its
	// head progress marks done).
	Batches, Records int
	// Done counts the records of the oldest batch that earlier replays got
	// through before they failed (its head progress, Store.SetHead): they
	// are not sent again.
	Done int
	// Bytes is what Store.Bytes would count after OpenStore: the bytes of the
	// segments not yet fully replayed.
	Bytes int64
	// Oldest is the timestamp of the first record of the oldest batch
	// (the one replayed next); zero when Batches is 0.
	Oldest time.Time
}

// KeptAside is a damaged range already copied to a queue's corrupt/
// directory (by OpenStore or Repair): kept for inspection, no longer damage.
type KeptAside struct {
	// File is the copy, relative to the store directory.
	File  string
	Bytes int64
	// Torn is set for an interrupted write cut from the end of the queue
	// (*.torn), which is not counted as a corrupt entry.
	Torn bool
}

// Problem is damage Inspect found that OpenStore (and Repair) would act on, or
// data already lost.
type Problem struct {
	// File is the damaged file, relative to the store directory.
	File string
	// Offset and Bytes locate a damaged range in a segment (Bytes 0 for a
	// whole file).
	Offset int64
	Bytes  int64
	// Kind is one of corrupt, torn, checkpoint, missing_segment,
	// newer_format, head_progress.
	Kind string
	// Detail says what is wrong, Repair what Repair (and the collector's
	// next start) does about it.
	Detail, Repair string
}

// Problem kinds.
const (
	ProblemCorrupt        = "corrupt"
	ProblemTorn           = "torn"
	ProblemCheckpoint     = "checkpoint"
	ProblemMissingSegment = "missing_segment"
	// ProblemNewerFormat is a segment holding, from Offset on, entries of
	// a format this build does not read (a newer build wrote them): OpenStore
	// refuses the store rather than skip them, and Inspect does not read
	// past them.
	ProblemNewerFormat = "newer_format"
	// ProblemHeadProgress is a head progress file (Store.SetHead) that does
	// not decode: OpenStore logs and deletes it, and the oldest batch is
	// replayed whole.
	ProblemHeadProgress = "head_progress"
)

// HeadProgress is how far replays of a partition's oldest batch got before
// they failed (Store.SetHead): Done[i] is set for each record of the
// stored batch that Kafka took or refused for good, which the replay does
// not send again; Seq is the sequence numbers the other records go with
// (nil: none; it takes the place of the batch's own).
type HeadProgress struct {
	Done []bool
	Seq  *message.Sequence
}

// Visit is called by Inspect with each batch OpenStore would replay, as stored;
// progress is set for the oldest batch of a partition that has a head
// progress.
type Visit func(p message.TopicPartition, b message.Batch, progress *HeadProgress) error

// Report is what Inspect found under a store directory.
type Report struct {
	Dir        string
	Partitions []PartitionReport // with stored batches, by topic then partition
	KeptAside  []KeptAside
	Problems   []Problem
	// Ignored lists files and directories the store does not read (left
	// alone by OpenStore with a warning), relative to the store directory.
	Ignored []string
	// Segments and Entries count what was checked: every segment file and
	// every valid entry in it, replayed ones included.
	Segments, Entries int
}

// Damaged reports whether Inspect found damage (Problems).
func (r *Report) Damaged() bool { return len(r.Problems) > 0 }

// Inspect reads the store in dir without changing anything: it checks
// every entry's CRC and every checkpoint as OpenStore would, and reports
// per partition what OpenStore would queue for replay, the damage it would
// move aside, and the ranges already kept aside. visit, when not nil, is
// called with every batch OpenStore would replay, oldest first per
// partition, partitions in topic then partition order (with the head
// progress of the oldest); an error from it stops Inspect. The segments of
// the single-queue layout of earlier versions (directly in dir) are
// reported under the partitions their entries belong to.
//
// Inspect takes no lock: callers that must not read a directory a collector
// is writing take LockShared first.
func Inspect(dir string, visit Visit) (*Report, error) {
	r := &Report{Dir: dir}
	byPart := map[message.TopicPartition]*PartitionReport{}
	part := func(p message.TopicPartition, qdir string) *PartitionReport {
		pr, ok := byPart[p]
		if !ok {
			pr = &PartitionReport{Topic: p.Topic, Partition: p.Partition, Dir: qdir}
			byPart[p] = pr
		}
		return pr
	}
	// The single-queue layout is moved into partition queues first at
	// OpenStore, so its entries are the oldest of their partitions.
	if ids, _, err := listSegments(dir); err != nil {
		return nil, fmt.Errorf("temp storage: %w", err)
	} else if len(ids) > 0 {
		if err := r.inspectQueue(dir, ".", nil, part, visit); err != nil {
			return nil, err
		}
	}
	root := filepath.Join(dir, storeQueueDir)
	topics, err := os.ReadDir(root)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("temp storage: %w", err)
	}
	slices.SortFunc(topics, func(a, b os.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	type queueDir struct {
		p   message.TopicPartition
		rel string
	}
	var queues []queueDir
	for _, td := range topics {
		topic, err := unescapeName(td.Name())
		if err != nil || !td.IsDir() {
			r.Ignored = append(r.Ignored, filepath.Join(storeQueueDir, td.Name()))
			continue
		}
		parts, err := os.ReadDir(filepath.Join(root, td.Name()))
		if err != nil {
			return nil, fmt.Errorf("temp storage: %w", err)
		}
		for _, pd := range parts {
			rel := filepath.Join(storeQueueDir, td.Name(), pd.Name())
			partition, err := parsePartition(pd.Name())
			if err != nil || !pd.IsDir() {
				r.Ignored = append(r.Ignored, rel)
				continue
			}
			queues = append(queues, queueDir{message.TopicPartition{Topic: topic, Partition: partition}, rel})
		}
	}
	slices.SortFunc(queues, func(a, b queueDir) int { return a.p.Compare(b.p) })
	for _, qd := range queues {
		p := qd.p
		if err := r.inspectQueue(filepath.Join(dir, qd.rel), qd.rel, &p, part, visit); err != nil {
			return nil, err
		}
	}
	for _, pr := range byPart {
		if pr.Batches > 0 {
			r.Partitions = append(r.Partitions, *pr)
		}
	}
	slices.SortFunc(r.Partitions, func(a, b PartitionReport) int {
		return message.TopicPartition{Topic: a.Topic, Partition: a.Partition}.Compare(message.TopicPartition{Topic: b.Topic, Partition: b.Partition})
	})
	return r, nil
}

// inspectQueue checks the queue in qdir (rel relative to the store) the
// way recover does, without writing. p is the queue's partition, nil for
// the single-queue layout.
func (r *Report) inspectQueue(qdir, rel string, p *message.TopicPartition, part func(message.TopicPartition, string) *PartitionReport,
	visit Visit) error {
	ids, foreign, err := listSegments(qdir)
	if err != nil {
		return fmt.Errorf("temp storage: %w", err)
	}
	for _, name := range foreign {
		if p == nil && !strings.HasPrefix(name, segmentPrefix) {
			continue // the store's own files and directories
		}
		r.Ignored = append(r.Ignored, filepath.Join(rel, name))
	}
	if err := r.keptAside(qdir, rel); err != nil {
		return err
	}
	var hp *headProgress // the single-queue layout has none
	if p != nil {
		var err error
		if hp, err = readHeadProgress(qdir); err != nil {
			r.problem(Problem{File: filepath.Join(rel, headProgressName), Kind: ProblemHeadProgress,
				Detail: "head progress unreadable: " + err.Error(),
				Repair: "delete it: the oldest batch is replayed whole, records Kafka took of it included"})
		}
	}
	cpRel := filepath.Join(rel, checkpointName)
	cp, haveCP := position{}, false
	switch b, err := os.ReadFile(filepath.Join(qdir, checkpointName)); {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("temp storage: %w", err)
	default:
		if cp, _, err = decodeCheckpoint(b); err == nil {
			haveCP = true
		} else if len(ids) > 0 {
			r.problem(Problem{File: cpRel, Kind: ProblemCheckpoint, Detail: "checkpoint unreadable",
				Repair: "rewrite the checkpoint at the oldest entry: the whole queue is replayed again"})
		}
	}
	if n := len(ids); n > 0 && haveCP && cp.seg > ids[n-1]+1 {
		r.problem(Problem{File: cpRel, Kind: ProblemCheckpoint,
			Detail: fmt.Sprintf("checkpoint points at segment %d, past the last segment %d", cp.seg, ids[n-1]),
			Repair: "rewrite the checkpoint at the oldest entry: the whole queue is replayed again"})
		haveCP = false
	}
	if haveCP {
		want := cp.seg
		for _, id := range ids {
			if id < want {
				continue
			}
			if id > want {
				r.problem(Problem{File: filepath.Join(rel, segmentName(want)), Kind: ProblemMissingSegment,
					Detail: fmt.Sprintf("segments %d to %d are missing (deleted by hand): their entries are lost", want, id-1),
					Repair: "nothing can bring them back; the rest of the queue is replayed"})
			}
			want = id + 1
		}
	}

	var bytesFrom []int64 // size of every segment kept, in order
	started := false      // a segment with entries to replay was seen: later ones count even if empty
	for i, id := range ids {
		if haveCP && id < cp.seg {
			continue // replayed; OpenStore deletes it
		}
		segRel := filepath.Join(rel, segmentName(id))
		buf, err := os.ReadFile(filepath.Join(qdir, segmentName(id)))
		if err != nil {
			return fmt.Errorf("temp storage: %w", err)
		}
		r.Segments++
		res := scanSegment(buf)
		r.Entries += len(res.entries)
		for _, bad := range res.bad {
			r.damagedRange(qdir, rel, id, bad, "bad")
		}
		size := int64(len(buf))
		if t := res.tail; t != nil {
			kind := "bad"
			if i == len(ids)-1 {
				kind = "torn"
			}
			r.damagedRange(qdir, rel, id, *t, kind)
			size = int64(t.off)
		}
		if nr := res.newer; nr != nil {
			r.problem(Problem{File: segRel, Offset: int64(nr.off), Bytes: int64(nr.end - nr.off), Kind: ProblemNewerFormat,
				Detail: "entries of a newer format: " + nr.err.Error(),
				Repair: "none here: the collector refuses to start on them and repair leaves them; run the build that " +
					"wrote them until the queue drains, or move the queue directory away"})
		}
		entries := res.entries
		if haveCP && id == cp.seg {
			k := sort.Search(len(entries), func(j int) bool { return entries[j].off >= cp.off })
			switch {
			case cp.off > size:
				r.problem(Problem{File: cpRel, Kind: ProblemCheckpoint,
					Detail: fmt.Sprintf("checkpoint offset %d is past the end of %s (%d bytes)", cp.off, segmentName(id), size),
					Repair: "rewrite the checkpoint at the oldest entry: the segment is replayed again"})
			case k > 0 && entries[k-1].off+int64(entries[k-1].size) > cp.off:
				r.problem(Problem{File: cpRel, Kind: ProblemCheckpoint,
					Detail: fmt.Sprintf("checkpoint offset %d is inside an entry of %s", cp.off, segmentName(id)),
					Repair: "rewrite the checkpoint at the oldest entry: the segment is replayed again"})
			default:
				entries = entries[k:]
			}
		}
		if len(entries) > 0 {
			started = true
		}
		if started {
			bytesFrom = append(bytesFrom, size)
		}
		for _, e := range entries {
			b, _, err := decodeEntry(buf[e.off : e.off+int64(e.size)])
			if err != nil {
				return fmt.Errorf("temp storage: %s offset %d: %w", segRel, e.off, err) // scanSegment checked it
			}
			bp := message.TopicPartition{Topic: b.Topic, Partition: b.Partition}
			pr := part(bp, rel)
			var progress *HeadProgress
			if pr.Batches == 0 {
				if len(b.Messages) > 0 {
					pr.Oldest = b.Messages[0].Timestamp
				}
				eid := entryID{pos: position{id, e.off}, size: e.size, crc: frameCRC(buf[e.off:]), records: len(b.Messages)}
				if hp != nil && hp.entry == eid {
					progress = &HeadProgress{Done: hp.done, Seq: hp.seq}
					pr.Done = len(b.Messages) - hp.left()
				}
			}
			pr.Batches++
			pr.Records += len(b.Messages)
			if progress != nil {
				pr.Records -= pr.Done
			}
			if p == nil {
				pr.Bytes += int64(e.size) // the layout's segments are shared; count the entries
			}
			if visit != nil {
				if err := visit(bp, b, progress); err != nil {
					return err
				}
			}
		}
	}
	if p != nil {
		for _, n := range bytesFrom {
			part(*p, rel).Bytes += n
		}
	}
	return nil
}

// damagedRange reports a range that does not parse: damage unless an
// earlier OpenStore already copied it aside.
func (r *Report) damagedRange(qdir, rel string, id uint64, reg region, kind string) {
	copyName := filepath.Join(corruptDir, fmt.Sprintf("%s.%d.%s", segmentName(id), reg.off, kind))
	if _, err := os.Stat(filepath.Join(qdir, copyName)); err == nil && kind == "bad" {
		return // kept aside, listed by keptAside; OpenStore skips it again without counting
	}
	pr := Problem{
		File: filepath.Join(rel, segmentName(id)), Offset: int64(reg.off), Bytes: int64(reg.end - reg.off),
		Detail: reg.err.Error(),
	}
	if kind == "torn" {
		pr.Kind = ProblemTorn
		pr.Detail = "interrupted write at the end of the queue: " + pr.Detail
		pr.Repair = fmt.Sprintf("copy the range to %s and cut the segment to %d bytes", filepath.Join(rel, copyName), reg.off)
	} else {
		pr.Kind = ProblemCorrupt
		pr.Detail = "corrupt entry: " + pr.Detail
		pr.Repair = fmt.Sprintf("copy the range to %s and skip it (counted in storage_corrupt_entries)", filepath.Join(rel, copyName))
	}
	r.problem(pr)
}

func (r *Report) problem(p Problem) { r.Problems = append(r.Problems, p) }

// keptAside lists the copies in the queue's corrupt/ directory.
func (r *Report) keptAside(qdir, rel string) error {
	des, err := os.ReadDir(filepath.Join(qdir, corruptDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("temp storage: %w", err)
	}
	for _, de := range des {
		info, err := de.Info()
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		r.KeptAside = append(r.KeptAside, KeptAside{
			File:  filepath.Join(rel, corruptDir, de.Name()),
			Bytes: info.Size(),
			Torn:  strings.HasSuffix(de.Name(), ".torn"),
		})
	}
	return nil
}
