package batcher

import (
	"time"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// Accumulator is the batching state machine of one partition, or of one
// topic when batches are not collected by partition. It is not safe for
// concurrent use and never reads a clock: every method takes the current
// time, and Deadline says when Tick must be called next.
//
// Rules applied to each added record, in this order:
//  1. Size: a record that alone makes a batch larger than MaxMessageBytes is
//     rejected. Else, if the pending batch plus the record would exceed
//     MaxBytes, the pending records become a ready batch (reason bytes) and
//     the record opens the next batch. A record that fits MaxMessageBytes
//     but not MaxBytes on its own is sent alone (reason bytes).
//  2. Count: Size records pending and MinDelay passed since the
//     accumulator's last send began (or no send yet) -> ready (size). A
//     send begins when a batch is cut and handed on, whatever released it,
//     and counts whether or not Kafka has acknowledged it: MinDelay spaces
//     the requests, whatever the broker's latency. A full batch held back
//     by MinDelay keeps growing (up to MaxBytes) and is released at the
//     MinDelay deadline (min_delay).
//  3. Trigger: a record with Trigger set makes its batch ready, itself
//     included (trigger).
//  4. Age: the first record of a batch, a carried-over one too, starts the
//     age timer; MaxWait after its arrival the batch is ready whatever
//     MinDelay says (max_wait).
//
// Cut releases the pending batch on demand with the caller's reason (the
// pool's memory rule uses it, reason memory). CutSoon does the same unless
// MinDelay holds the accumulator's sends back (rule 2); the batch is then
// released at the MinDelay deadline (min_delay) or by the rules above,
// whichever comes first (the pool uses it for a call that waits for its
// records).
//
// A batch whose deadline has passed when a record arrives (its Tick not yet
// called) is released first; the record opens the next batch.
//
// Ready batches are appended to the out slice the methods take and return;
// their Messages slices are handed over and never touched again, and have
// at most sliceSlack spare slots.
//
// Memory: after a full batch (Size records) the next one is collected in a
// slice of Size records, handed over as is. Other batches (the first, and
// those cut short by age, bytes or a trigger, as with many partitions) are
// collected in chunks of chunkLen records and copied into a slice of their
// length when cut, so neither a pending nor a handed-off batch holds much
// more than its records.
type Accumulator struct {
	cfg       Config
	topic     string
	partition int32

	// The pending records are msgs followed by those in chunks.
	msgs    []message.Message // nil, or a slice for a full batch
	chunks  []*chunk          // chunkLen records each, the last one partly filled
	n       int               // pending records
	firstTS time.Time         // the first pending record's timestamp
	bytes   int               // message.BatchSize of the pending records; 0 when empty
	firstAt time.Time         // arrival of the first pending record: start of the age timer
	due     time.Time         // Deadline(), kept current by every change
	full    bool              // the last batch had Size records or more
	soon    bool              // CutSoon was held back by MinDelay: release at its deadline
	held    int               // what the pending records count against MaxPendingBytes (RecordBytes)

	lastCut time.Time // when the last send began: the last cut
	hasCut  bool      // a batch was cut: MinDelay applies from lastCut

	// store supplies slices and chunks and takes them back: the Pool's free
	// lists, or heapStorage for an accumulator of its own.
	store storage
}

// NewAccumulator returns an empty accumulator whose batches carry topic and
// partition (-1 for a topic-wide accumulator). cfg must be valid.
func NewAccumulator(cfg Config, topic string, partition int32) *Accumulator {
	a := &Accumulator{}
	a.init(cfg, topic, partition)
	return a
}

func (a *Accumulator) init(cfg Config, topic string, partition int32) {
	a.cfg, a.topic, a.partition = cfg, topic, partition
	a.store = heapStorage{}
}

// Add applies the rules to m, a record arriving at now, and returns out with
// the batches that became ready appended (up to three: an overdue batch, the
// batch cut by bytes, and the batch m completed). rejected is true when m is
// oversize; m is then not kept.
func (a *Accumulator) Add(m *message.Message, now time.Time, out []message.Batch) (_ []message.Batch, rejected bool) {
	return a.add(m, message.RecordSize(m, 0, m.Timestamp), now, out)
}

// add is Add with m's size as the first record of a batch already known.
func (a *Accumulator) add(m *message.Message, alone int, now time.Time, out []message.Batch) (_ []message.Batch, rejected bool) {
	// A batch past its deadline is ready before m can join it (the timer
	// may simply not have run yet).
	if a.n > 0 && !now.Before(a.due) {
		out = a.Tick(now, out)
	}
	if a.cfg.oversize(alone) {
		return out, true
	}
	var size int
	if a.n > 0 {
		size = message.RecordSizeAt(alone, m, a.n, a.firstTS)
		if a.bytes+size > a.cfg.MaxBytes {
			out = a.release(now, out, message.ReasonBytes)
		}
	}
	if a.n == 0 {
		if a.full {
			a.msgs = a.store.getSlice(a.cfg.Size)
		}
		size = alone
		a.bytes = message.BatchHeaderBytes
		a.firstAt = now
		a.firstTS = m.Timestamp
	}
	a.push(m)
	a.bytes += size
	a.held += heldBytes(m, alone)
	switch {
	case a.bytes > a.cfg.MaxBytes: // only possible for a lone record
		return a.release(now, out, message.ReasonBytes), false
	case a.n >= a.cfg.Size && a.minDelayPassed(now):
		return a.release(now, out, message.ReasonSize), false
	case m.Trigger:
		return a.release(now, out, message.ReasonTrigger), false
	}
	if a.n == 1 || a.n == a.cfg.Size {
		a.due = a.deadline()
	}
	return out, false
}

// push appends m to the pending records: into msgs while it has room, else
// into the chunks.
func (a *Accumulator) push(m *message.Message) {
	if len(a.msgs) < cap(a.msgs) && len(a.chunks) == 0 {
		a.msgs = append(a.msgs, *m)
	} else {
		i := a.n - len(a.msgs)
		if i%chunkLen == 0 {
			a.chunks = append(a.chunks, a.store.getChunk())
		}
		a.chunks[i/chunkLen][i%chunkLen] = *m
	}
	a.n++
}

// Tick releases the pending batch if its age deadline (max_wait) or, for a
// full batch held back, its MinDelay deadline (min_delay) is reached.
func (a *Accumulator) Tick(now time.Time, out []message.Batch) []message.Batch {
	if a.n == 0 {
		return out
	}
	if !now.Before(a.firstAt.Add(a.cfg.MaxWait)) {
		return a.release(now, out, message.ReasonMaxWait)
	}
	if (a.n >= a.cfg.Size || a.soon) && a.minDelayPassed(now) {
		return a.release(now, out, message.ReasonMinDelay)
	}
	return out
}

// Deadline is the time at which Tick releases the pending batch if nothing
// else does first; zero when nothing is pending.
func (a *Accumulator) Deadline() time.Time { return a.due }

func (a *Accumulator) deadline() time.Time {
	if a.n == 0 {
		return time.Time{}
	}
	d := a.firstAt.Add(a.cfg.MaxWait)
	if (a.n >= a.cfg.Size || a.soon) && a.hasCut {
		if md := a.lastCut.Add(a.cfg.MinDelay); md.Before(d) {
			d = md
		}
	}
	return d
}

// Drain releases whatever is pending with reason shutdown. Nothing is sent
// after it, so it does not move the MinDelay clock (it has no now).
func (a *Accumulator) Drain(out []message.Batch) []message.Batch {
	if a.n == 0 {
		return out
	}
	return a.cut(out, message.ReasonShutdown)
}

// Cut releases whatever is pending with reason. A batch whose deadline has
// passed at now (its Tick not yet called) is released by Tick instead, with
// Tick's reason.
func (a *Accumulator) Cut(now time.Time, reason message.FlushReason, out []message.Batch) []message.Batch {
	if a.n == 0 {
		return out
	}
	if !now.Before(a.due) {
		if out = a.Tick(now, out); a.n == 0 {
			return out
		}
	}
	return a.release(now, out, reason)
}

// CutSoon releases whatever is pending with reason, as Cut does, unless
// MinDelay has not passed since the last send began: then the batch
// is released at that deadline with reason min_delay, if no other rule
// releases it first.
func (a *Accumulator) CutSoon(now time.Time, reason message.FlushReason, out []message.Batch) []message.Batch {
	if a.n == 0 {
		return out
	}
	if a.minDelayPassed(now) {
		return a.Cut(now, reason, out)
	}
	if !a.soon {
		a.soon = true
		a.due = a.deadline()
	}
	return out
}

// Len is the number of pending records.
func (a *Accumulator) Len() int { return a.n }

// Bytes is the pending batch's encoded size (message.BatchSize), 0 when empty.
func (a *Accumulator) Bytes() int { return a.bytes }

// RecordBytes is what the pending records count against MaxPendingBytes
// (recordBytes: each one's size as the first record of a batch plus its
// structs), the unit of the Pool's memory rule. 0 when empty.
func (a *Accumulator) RecordBytes() int { return a.held }

// minDelayPassed: with MinDelay 0 a full batch is never held, even when
// now was read before a concurrent timer's cut moved lastCut past it.
func (a *Accumulator) minDelayPassed(now time.Time) bool {
	return a.cfg.MinDelay <= 0 || !a.hasCut || now.Sub(a.lastCut) >= a.cfg.MinDelay
}

// release cuts the pending batch at now: its send begins, and MinDelay
// counts from now. The cut, not the acknowledgement, starts the clock, so a
// batch still in flight holds the next one back as much as an
// acknowledged one does.
func (a *Accumulator) release(now time.Time, out []message.Batch, reason message.FlushReason) []message.Batch {
	if !a.hasCut || now.After(a.lastCut) { // an Add's now may predate a timer's cut
		a.lastCut, a.hasCut = now, true
	}
	return a.cut(out, reason)
}

// cut hands the pending records over as a ready batch: msgs as is when
// it holds them all with at most sliceSlack spare slots, else a copy of
// their exact length (msgs and the chunks go back to the store).
func (a *Accumulator) cut(out []message.Batch, reason message.FlushReason) []message.Batch {
	n := a.n
	msgs := a.msgs
	if len(a.chunks) > 0 || cap(msgs)-n > sliceSlack {
		msgs = a.store.getSlice(n)[:n]
		k := copy(msgs, a.msgs)
		for i, c := range a.chunks {
			used := copy(msgs[k:], c[:])
			k += used
			a.store.putChunk(c, used)
			a.chunks[i] = nil
		}
		a.chunks = a.chunks[:0]
		a.store.putSlice(a.msgs)
	}
	out = append(out, message.Batch{
		Topic: a.topic, Partition: a.partition,
		Messages: msgs, Bytes: a.bytes, Reason: reason, Opened: a.firstAt,
	})
	a.full = n >= a.cfg.Size
	a.msgs, a.n, a.bytes, a.held, a.due, a.soon = nil, 0, 0, 0, time.Time{}, false
	return out
}
