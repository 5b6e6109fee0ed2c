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
//  2. Count: Size records pending and MinDelay passed since the last
//     successful send (or no send yet) -> ready (size). A full batch held
//     back by MinDelay keeps growing (up to MaxBytes) and is released at
//     the MinDelay deadline (min_delay).
//  3. Trigger: a record with Flush set makes its batch ready, itself
//     included (trigger).
//  4. Age: the first record of a batch, a carried-over one too, starts the
//     age timer; MaxWait after its arrival the batch is ready whatever
//     MinDelay says (max_wait).
//
// Cut releases the pending batch on demand with the caller's reason (the
// pool's memory rule uses it, reason memory).
//
// A batch whose deadline has passed when a record arrives (its Tick not yet
// called) is released first; the record opens the next batch.
//
// Ready batches are appended to the out slice the methods take and return;
// their Messages slices are handed over and never touched again.
type Accumulator struct {
	cfg       Config
	topic     string
	partition int32

	msgs    []message.Message
	bytes   int       // message.BatchSize(msgs); 0 when empty
	alone   int       // sum of each pending record's size alone (RecordBytes)
	firstAt time.Time // arrival of msgs[0]: start of the age timer
	due     time.Time // Deadline(), kept current by every change
	nextCap int       // capacity of the next batch's slice

	lastSent time.Time
	sent     bool // a send succeeded: MinDelay applies from lastSent

	// newSlice, if set, supplies the slice of the next batch (capacity at
	// least n, length 0); the Pool passes recycled slices this way.
	newSlice func(n int) []message.Message
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
	a.nextCap = min(cfg.Size, 64)
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
	if len(a.msgs) > 0 && !now.Before(a.due) {
		out = a.Tick(now, out)
	}
	if a.cfg.oversize(alone) {
		return out, true
	}
	var size int
	if len(a.msgs) > 0 {
		size = message.RecordSizeAt(alone, m, len(a.msgs), a.msgs[0].Timestamp)
		if a.bytes+size > a.cfg.MaxBytes {
			out = a.cut(out, message.ReasonBytes)
		}
	}
	if len(a.msgs) == 0 {
		if a.msgs == nil {
			if a.newSlice != nil {
				a.msgs = a.newSlice(a.nextCap)
			} else {
				a.msgs = make([]message.Message, 0, a.nextCap)
			}
		}
		size = alone
		a.bytes = message.BatchHeaderBytes
		a.firstAt = now
	}
	a.msgs = append(a.msgs, *m)
	a.bytes += size
	a.alone += alone
	switch {
	case a.bytes > a.cfg.MaxBytes: // only possible for a lone record
		return a.cut(out, message.ReasonBytes), false
	case len(a.msgs) >= a.cfg.Size && a.minDelayPassed(now):
		return a.cut(out, message.ReasonSize), false
	case m.Flush:
		return a.cut(out, message.ReasonTrigger), false
	}
	if len(a.msgs) == 1 || len(a.msgs) == a.cfg.Size {
		a.due = a.deadline()
	}
	return out, false
}

// Tick releases the pending batch if its age deadline (max_wait) or, for a
// full batch held back, its MinDelay deadline (min_delay) is reached.
func (a *Accumulator) Tick(now time.Time, out []message.Batch) []message.Batch {
	if len(a.msgs) == 0 {
		return out
	}
	if !now.Before(a.firstAt.Add(a.cfg.MaxWait)) {
		return a.cut(out, message.ReasonMaxWait)
	}
	if len(a.msgs) >= a.cfg.Size && a.minDelayPassed(now) {
		return a.cut(out, message.ReasonMinDelay)
	}
	return out
}

// Deadline is the time at which Tick releases the pending batch if nothing
// else does first; zero when nothing is pending.
func (a *Accumulator) Deadline() time.Time { return a.due }

func (a *Accumulator) deadline() time.Time {
	if len(a.msgs) == 0 {
		return time.Time{}
	}
	d := a.firstAt.Add(a.cfg.MaxWait)
	if len(a.msgs) >= a.cfg.Size && a.sent {
		if md := a.lastSent.Add(a.cfg.MinDelay); md.Before(d) {
			d = md
		}
	}
	return d
}

// Sent records a successful send of one of this accumulator's batches at
// now: MinDelay is measured from it.
func (a *Accumulator) Sent(now time.Time) {
	a.lastSent, a.sent = now, true
	a.due = a.deadline()
}

// Flush releases whatever is pending with reason shutdown.
func (a *Accumulator) Flush(out []message.Batch) []message.Batch {
	if len(a.msgs) == 0 {
		return out
	}
	return a.cut(out, message.ReasonShutdown)
}

// Cut releases whatever is pending with reason. A batch whose deadline has
// passed at now (its Tick not yet called) is released by Tick instead, with
// Tick's reason.
func (a *Accumulator) Cut(now time.Time, reason message.FlushReason, out []message.Batch) []message.Batch {
	if len(a.msgs) == 0 {
		return out
	}
	if !now.Before(a.due) {
		if out = a.Tick(now, out); len(a.msgs) == 0 {
			return out
		}
	}
	return a.cut(out, reason)
}

// Len is the number of pending records.
func (a *Accumulator) Len() int { return len(a.msgs) }

// Bytes is the pending batch's encoded size (message.BatchSize), 0 when empty.
func (a *Accumulator) Bytes() int { return a.bytes }

// RecordBytes is the sum of the pending records' sizes each as the first
// record of a batch (message.RecordSize at offset 0, no batch header): the
// unit the Pool counts against MaxPendingBytes. 0 when empty.
func (a *Accumulator) RecordBytes() int { return a.alone }

// minDelayPassed: with MinDelay 0 a full batch is never held, even when
// now was read just before a concurrent Sent moved lastSent past it.
func (a *Accumulator) minDelayPassed(now time.Time) bool {
	return a.cfg.MinDelay <= 0 || !a.sent || now.Sub(a.lastSent) >= a.cfg.MinDelay
}

// cut hands the pending records over as a ready batch.
func (a *Accumulator) cut(out []message.Batch, reason message.FlushReason) []message.Batch {
	n := len(a.msgs)
	out = append(out, message.Batch{
		Topic: a.topic, Partition: a.partition,
		Messages: a.msgs, Bytes: a.bytes, Reason: reason, Opened: a.firstAt,
	})
	// Size the next slice like this batch (a little more when it was cut
	// short), so steady traffic appends without growing.
	c := n
	if c < a.cfg.Size {
		c = min(c+c/4+1, a.cfg.Size)
	}
	a.nextCap = c
	a.msgs, a.bytes, a.alone, a.due = nil, 0, 0, time.Time{}
	return out
}
