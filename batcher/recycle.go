package batcher

import "github.com/kafkabatcher/kafkabatcherexporter/message"

// maxFree bounds the recycled slices kept; more are left to the GC.
const maxFree = 64

// Recycle gives msgs (the Messages of a batch this pool handed off) back for
// reuse by later batches. Optional, and only once per batch: call it when
// nothing refers to the slice any more (after Release, once the batch is
// encoded, written or dropped); the pool will overwrite its records.
func (p *Pool) Recycle(msgs []message.Message) {
	if cap(msgs) == 0 {
		return
	}
	msgs = msgs[:cap(msgs)]
	clear(msgs) // drop references to keys and values
	msgs = msgs[:0]
	p.freeMu.Lock()
	defer p.freeMu.Unlock()
	if len(p.free) < maxFree {
		p.free = append(p.free, msgs)
		return
	}
	// Full: keep the larger slices, which serve whole batches.
	small := 0
	for i := range p.free {
		if cap(p.free[i]) < cap(p.free[small]) {
			small = i
		}
	}
	if cap(p.free[small]) < cap(msgs) {
		p.free[small] = msgs
	}
}

// getSlice returns the smallest recycled slice of capacity >= n, or a new one.
func (p *Pool) getSlice(n int) []message.Message {
	p.freeMu.Lock()
	best := -1
	for i := range p.free {
		if c := cap(p.free[i]); c >= n && (best < 0 || c < cap(p.free[best])) {
			best = i
			if c == n {
				break
			}
		}
	}
	if best < 0 {
		p.freeMu.Unlock()
		return make([]message.Message, 0, n)
	}
	s := p.free[best]
	last := len(p.free) - 1
	p.free[best] = p.free[last]
	p.free[last] = nil
	p.free = p.free[:last]
	p.freeMu.Unlock()
	return s
}
