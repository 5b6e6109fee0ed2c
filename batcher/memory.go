package batcher

import (
	"slices"
	"time"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// The memory rule: when an Add has to wait for room and the accumulators
// hold more than half of the bytes counted against MaxPendingBytes (the rest
// is in flight: handed to the sink, not yet released), waiting for
// batch.max_wait would be the only way room comes back, since in-flight
// batches are too few to free it. The pool then releases pending batches at
// once, reason memory, oldest first (by the arrival of their first record),
// until the accumulators hold at most a quarter of the bytes counted when
// the release began, or nothing. Bytes are counted in one unit: recordBytes
// per record, as used is (Accumulator.RecordBytes).

// heldMostLocked reports whether the accumulators hold more than half of the
// pending bytes. memMu is held.
func (p *Pool) heldMostLocked() bool {
	return 2*p.held.Load() > p.used
}

// relieve applies the memory rule. It is called by a waiting Add without
// any pool lock held; an Add that comes while another relieves makes that
// one check once more instead of releasing at the same time.
func (p *Pool) relieve() {
	p.relieving.Run(p.relievePass)
}

// relievePass is one pass of the memory rule.
func (p *Pool) relievePass() {
	if !p.enter() { // Shutdown takes what is pending
		return
	}
	defer p.exit()
	p.memMu.Lock()
	used := p.used
	relieve := p.heldMostLocked()
	p.memMu.Unlock()
	if !relieve {
		return
	}
	target := used / 4

	type candidate struct {
		e       *slot
		firstAt time.Time
	}
	var cs []candidate
	for _, e := range p.slots() {
		e.mu.Lock()
		if e.acc.Len() > 0 && !e.closed {
			cs = append(cs, candidate{e, e.acc.firstAt})
		}
		e.mu.Unlock()
	}
	slices.SortStableFunc(cs, func(a, b candidate) int { return a.firstAt.Compare(b.firstAt) })

	now := p.clk.Now()
	for _, c := range cs {
		if p.held.Load() <= target {
			return
		}
		e := c.e
		e.mu.Lock()
		if e.closed {
			e.mu.Unlock()
			continue
		}
		e.out = e.acc.Cut(now, message.ReasonMemory, e.out)
		p.syncHeld(e)
		p.armAndDrain(e, now)
	}
}
