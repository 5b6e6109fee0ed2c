package batcher

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/kafkabatcher/kafkabatcherexporter/internal/workloop"
	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

type topicSlots struct {
	all   *slot                   // the topic-wide accumulator (CollectByPartition false)
	parts atomic.Pointer[[]*slot] // by partition below maxIndexed; replaced, never changed in place
	big   map[int32]*slot         // partitions from maxIndexed on; guarded by Pool.mu
}

// maxIndexed bounds the partition slice, so an absurd partition number
// costs a map entry rather than a huge slice.
const maxIndexed = 1 << 12

// slot is one accumulator with its timer and its queue of ready batches.
type slot struct {
	mu       sync.Mutex
	acc      Accumulator
	timer    Timer
	timerAt  time.Time // when timer fires
	timerGen uint64    // tells a stale timer callback from the current one
	out      []message.Batch
	head     int           // out[head:] are still to hand off
	handoff  workloop.Loop // one goroutine at a time hands off out; others only enqueue
	closed   bool          // shut down: no more timers
	// heldSeen is acc.RecordBytes() as last added to Pool.held (syncHeld).
	heldSeen int
	// call is the last Add (Pool.calls) that listed this slot to cut
	// (Config.CutEachAdd).
	call uint64
}

// syncHeld brings Pool.held up to date with e's accumulator after a change
// to it. Called with e.mu held.
func (p *Pool) syncHeld(e *slot) {
	held := e.acc.RecordBytes()
	p.held.Add(int64(held - e.heldSeen))
	e.heldSeen = held
}

// slots lists every accumulator slot.
func (p *Pool) slots() []*slot {
	p.mu.RLock()
	defer p.mu.RUnlock()
	var es []*slot
	for _, te := range p.topics {
		if te.all != nil {
			es = append(es, te.all)
		}
		if parts := te.parts.Load(); parts != nil {
			for _, e := range *parts {
				if e != nil {
					es = append(es, e)
				}
			}
		}
		for _, e := range te.big {
			es = append(es, e)
		}
	}
	return es
}

func (p *Pool) topicSlots(topic string) *topicSlots {
	p.mu.RLock()
	te := p.topics[topic]
	p.mu.RUnlock()
	if te != nil {
		return te
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if te = p.topics[topic]; te == nil {
		te = &topicSlots{}
		if !p.cfg.CollectByPartition {
			te.all = p.newSlot(topic, -1)
		}
		p.topics[topic] = te
	}
	return te
}

// slot returns the accumulator slot for topic/partition, creating it.
func (p *Pool) slot(te *topicSlots, topic string, partition int32) *slot {
	if te.all != nil {
		return te.all
	}
	if parts := te.parts.Load(); parts != nil && int(partition) < len(*parts) {
		if e := (*parts)[partition]; e != nil {
			return e
		}
	}
	if partition >= maxIndexed {
		p.mu.RLock()
		e := te.big[partition]
		p.mu.RUnlock()
		if e != nil {
			return e
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if partition >= maxIndexed {
		e := te.big[partition]
		if e == nil {
			if te.big == nil {
				te.big = map[int32]*slot{}
			}
			e = p.newSlot(topic, partition)
			te.big[partition] = e
		}
		return e
	}
	var cur []*slot
	if parts := te.parts.Load(); parts != nil {
		cur = *parts
	}
	if int(partition) < len(cur) && cur[partition] != nil {
		return cur[partition]
	}
	next := make([]*slot, max(len(cur), int(partition)+1))
	copy(next, cur)
	e := p.newSlot(topic, partition)
	next[partition] = e
	te.parts.Store(&next)
	return e
}

func (p *Pool) newSlot(topic string, partition int32) *slot {
	e := &slot{}
	e.acc.init(p.cfg, topic, partition)
	e.acc.store = p
	p.memMu.Lock()
	e.closed = p.closed
	p.memMu.Unlock()
	return e
}
