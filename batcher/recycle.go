package batcher

import "github.com/kafkabatcher/kafkabatcherexporter/message"

// sliceSlack bounds the spare capacity of a ready batch's slice:
// cap(b.Messages) <= len(b.Messages) + sliceSlack for every batch the
// accumulators and the pool hand off, so a batch in flight holds little
// more than its records.
const sliceSlack = sliceStep - 1

// sliceStep is the unit batch slices are made in: a new slice's capacity is
// a multiple of it, so a recycled one serves batches up to sliceStep-1
// records shorter.
const sliceStep = 16

// maxFree bounds the recycled batch slices kept; the oldest goes first.
const maxFree = 128

// chunkLen is the number of records one chunk holds.
const chunkLen = 32

// maxFreeChunks bounds the recycled chunks kept (about 4.5 MB).
const maxFreeChunks = 1024

// chunk holds chunkLen pending records of an accumulator whose batches are
// not full, until the batch is cut and its records are copied into a slice
// of their exact length.
type chunk [chunkLen]message.Message

// storage supplies an accumulator's batch slices and chunks and takes them
// back. The Pool implements it with its free lists; heapStorage allocates
// and keeps nothing.
type storage interface {
	// getSlice returns a slice of length 0 and capacity n to n+sliceSlack.
	getSlice(n int) []message.Message
	// putSlice takes back a slice no batch refers to.
	putSlice(msgs []message.Message)
	// getChunk returns a cleared chunk.
	getChunk() *chunk
	// putChunk takes back a chunk whose first n records were used.
	putChunk(c *chunk, n int)
}

// Recycle gives msgs (the Messages of a batch this pool handed off) back for
// reuse by later batches. Optional, and only once per batch: call it when
// nothing refers to the slice any more (after Release, once the batch is
// encoded, written or dropped); the pool will overwrite its records.
func (p *Pool) Recycle(msgs []message.Message) { p.putSlice(msgs) }

func (p *Pool) putSlice(msgs []message.Message) {
	if cap(msgs) == 0 {
		return
	}
	msgs = msgs[:cap(msgs)]
	clear(msgs) // drop references to keys and values
	msgs = msgs[:0]
	p.freeMu.Lock()
	defer p.freeMu.Unlock()
	if len(p.free) == maxFree {
		// Full: drop the oldest, so the list follows the batch sizes of now.
		copy(p.free, p.free[1:])
		p.free = p.free[:maxFree-1]
	}
	p.free = append(p.free, msgs)
}

// getSlice returns a recycled slice of capacity n to n+sliceSlack, the most
// recently recycled one, or a new one of capacity n rounded up to sliceStep.
func (p *Pool) getSlice(n int) []message.Message {
	p.freeMu.Lock()
	for i := len(p.free) - 1; i >= 0; i-- {
		if c := cap(p.free[i]); c >= n && c <= n+sliceSlack {
			s := p.free[i]
			copy(p.free[i:], p.free[i+1:])
			p.free[len(p.free)-1] = nil
			p.free = p.free[:len(p.free)-1]
			p.freeMu.Unlock()
			return s
		}
	}
	p.freeMu.Unlock()
	return newSlice(n)
}

func (p *Pool) getChunk() *chunk {
	p.freeMu.Lock()
	if last := len(p.chunks) - 1; last >= 0 {
		c := p.chunks[last]
		p.chunks[last] = nil
		p.chunks = p.chunks[:last]
		p.freeMu.Unlock()
		return c
	}
	p.freeMu.Unlock()
	return new(chunk)
}

func (p *Pool) putChunk(c *chunk, n int) {
	clear(c[:n]) // drop references to keys and values
	p.freeMu.Lock()
	defer p.freeMu.Unlock()
	if len(p.chunks) < maxFreeChunks {
		p.chunks = append(p.chunks, c)
	}
}

// heapStorage is the storage of an Accumulator outside a Pool.
type heapStorage struct{}

func (heapStorage) getSlice(n int) []message.Message { return newSlice(n) }
func (heapStorage) putSlice([]message.Message)       {}
func (heapStorage) getChunk() *chunk                 { return new(chunk) }
func (heapStorage) putChunk(*chunk, int)             {}

// newSlice makes a slice for n records, its capacity rounded up to sliceStep.
func newSlice(n int) []message.Message {
	return make([]message.Message, 0, (n+sliceStep-1)/sliceStep*sliceStep)
}
