package batcher

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kafkabatcher/kafkabatcherexporter/internal/workloop"
	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// Sink receives what the pool hands off. Its methods are called without any
// pool lock held, so they may call back into the pool (Release, Recycle),
// but not Add, which could wait for room only their return frees.
// For one accumulator, batches are handed off one at a time in order;
// batches of different accumulators may be handed off concurrently.
type Sink interface {
	// Ready receives a ready batch of one topic/partition. It may be called
	// from Add's goroutine or from a timer's.
	Ready(b message.Batch)
	// Reject receives a record refused by the size rule (reason
	// message.RejectOversize). It was never counted against MaxPendingBytes.
	Reject(m message.Message, reason message.RejectReason)
}

// Pool holds one Accumulator per topic/partition (per topic when
// CollectByPartition is false), created as keys appear, safe for concurrent
// use. Memory: every accepted message counts its encoded size plus its
// Message and Header structs against MaxPendingBytes from Add until the
// batch holding it is passed to Release, so the bound covers batches in
// flight too. When an Add has to wait for room while most of those bytes
// sit in accumulators, pending batches are released at once, oldest first,
// reason memory (see memory.go).
type Pool struct {
	cfg  Config
	clk  Clock
	sink Sink

	mu     sync.RWMutex // guards topics
	topics map[string]*topicSlots

	freeMu sync.Mutex
	free   [][]message.Message // recycled batch slices, length 0, cleared
	chunks []*chunk            // recycled accumulator chunks, cleared

	memMu   sync.Mutex // guards the fields below
	used    int64      // recordBytes of the records accepted and not released
	records int64      // records accepted and not released
	waiters []*waiter  // Adds waiting for room, first come first served
	closed  bool
	active  int           // Adds and timer callbacks running
	idle    chan struct{} // closed when active reaches 0 after closing

	// held is what the records in accumulators, not yet cut into a batch,
	// count (recordBytes, the unit of used); syncHeld keeps it, under each
	// slot's mu.
	held      atomic.Int64
	relieving workloop.Loop // one memory release at a time
	calls     atomic.Uint64 // numbers the Adds, for Config.CutEachAdd
}

// NewPool returns an empty pool. Ready batches and rejected records go to
// sink; timers run on clk.
func NewPool(cfg Config, clk Clock, sink Sink) (*Pool, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("batcher config: %w", err)
	}
	if clk == nil {
		clk = SystemClock()
	}
	return &Pool{cfg: cfg, clk: clk, sink: sink, topics: map[string]*topicSlots{}}, nil
}

// Add accepts msgs (one ConsumeLogs call; Topic and Partition set) into
// their accumulators, in order. It is all or nothing: it waits while the
// records do not fit under MaxPendingBytes, and if ctx ends first it returns
// an error wrapping ErrMemoryLimit and ctx.Err() with nothing accepted.
// When it has to wait and the accumulators hold more than half of the
// pending bytes (little is in flight, so little room would come back before
// batch.max_wait), it first releases pending batches to the sink, oldest
// first, reason memory, until the accumulators hold at most a quarter.
// With CutEachAdd, what is pending in the accumulators it touched is then
// released (reason call; Accumulator.CutSoon).
// Oversize records go to Sink.Reject and do not fail the call. Batches made
// ready are handed to the sink by this call, unless a concurrent call or
// timer is already handing off that accumulator's batches (then by that one,
// in order).
func (p *Pool) Add(ctx context.Context, msgs []message.Message) error {
	var need, n int64
	// Encoded size of every record as the first of a batch, computed once.
	var sizeBuf [256]int32
	sizes := sizeBuf[:]
	if len(msgs) > len(sizeBuf) {
		sizes = make([]int32, len(msgs))
	}
	for i := range msgs {
		m := &msgs[i]
		if m.Partition < 0 {
			return fmt.Errorf("add %s record %d: %w (partition %d)", m.Topic, i, ErrInvalidPartition, m.Partition)
		}
		s := message.RecordSize(m, 0, m.Timestamp)
		sizes[i] = int32(s)
		if !p.cfg.oversize(s) {
			need += int64(heldBytes(m, s))
			n++
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	if err := p.admit(ctx, need, n); err != nil {
		return err
	}
	defer p.exit()

	now := p.clk.Now()
	var rejBuf [8]int
	rejected := rejBuf[:0]
	var call uint64
	var touchedBuf [8]*slot
	touched := touchedBuf[:0] // the accumulators to cut at the end (CutEachAdd)
	if p.cfg.CutEachAdd {
		call = p.calls.Add(1)
	}
	// Messages are added per accumulator, each locked once per window of
	// the call: chains link the messages of one accumulator in order.
	const window = len(sizeBuf)
	var chain [window]int16 // next message of the same accumulator, -1 at the end
	type group struct {
		e           *slot
		first, last int16
	}
	var groupBuf [16]group
	var lastTopic string
	var te *topicSlots
	for base := 0; base < len(msgs); base += window {
		ms := msgs[base:min(len(msgs), base+window)]
		groups := groupBuf[:0]
		g := 0
		for i := range ms {
			m := &ms[i]
			if te == nil || m.Topic != lastTopic {
				lastTopic, te = m.Topic, p.topicSlots(m.Topic)
			}
			e := p.slot(te, m.Topic, m.Partition)
			if g >= len(groups) || groups[g].e != e {
				g = 0
				for g < len(groups) && groups[g].e != e {
					g++
				}
				if g == len(groups) {
					groups = append(groups, group{e: e, first: int16(i), last: int16(i)})
				}
			}
			chain[groups[g].last] = int16(i)
			groups[g].last = int16(i)
			chain[i] = -1
		}
		for _, gr := range groups {
			e := gr.e
			e.mu.Lock()
			for i := int(gr.first); i >= 0; i = int(chain[i]) {
				m := &ms[i]
				var rej bool
				e.out, rej = e.acc.add(m, int(sizes[base+i]), now, e.out)
				if rej {
					rejected = append(rejected, base+i)
				}
			}
			if e.closed {
				// Shutdown gave up waiting for this Add: hand its records over now.
				e.out = e.acc.Drain(e.out)
			}
			if call != 0 && e.call != call {
				e.call = call
				touched = append(touched, e)
			}
			p.syncHeld(e)
			p.armAndDrain(e, now)
		}
	}
	for _, e := range touched {
		e.mu.Lock()
		e.out = e.acc.CutSoon(now, message.ReasonCall, e.out)
		p.syncHeld(e)
		p.armAndDrain(e, now)
	}
	for _, i := range rejected {
		p.sink.Reject(msgs[i], message.RejectOversize)
	}
	return nil
}

// Shutdown closes the pool for good: later Adds fail with ErrClosed, Adds
// waiting for room fail with ErrClosed, timers stop. It waits (until ctx
// ends) for running Adds and timer callbacks, whose batches still go to
// Sink.Ready, then returns everything still pending, reason shutdown, in
// order per partition. The caller Releases the returned batches like the
// others. If ctx ends first, records a straggling Add still brings in are
// handed to Sink.Ready by that Add.
func (p *Pool) Shutdown(ctx context.Context) []message.Batch {
	p.memMu.Lock()
	if !p.closed {
		p.closed = true
		p.grantLocked() // fails every waiter
	}
	var idle chan struct{}
	if p.active > 0 {
		if p.idle == nil {
			p.idle = make(chan struct{})
		}
		idle = p.idle
	}
	p.memMu.Unlock()
	if idle != nil {
		select {
		case <-idle:
		case <-ctx.Done():
		}
	}

	var out, split []message.Batch
	for _, e := range p.slots() {
		e.mu.Lock()
		e.closed = true
		if e.timer != nil {
			e.timer.Stop()
			e.timer = nil
		}
		out = e.acc.Drain(out[:0])
		p.syncHeld(e)
		e.mu.Unlock()
		for _, b := range out {
			split = p.appendSplit(split, b)
		}
	}
	return split
}

// armAndDrain is called with e.mu held and returns with it released. It
// points e's timer at the accumulator's deadline, then hands queued ready
// batches to the sink unless another goroutine is already doing so (that one
// will hand these over too, in order).
func (p *Pool) armAndDrain(e *slot, now time.Time) {
	p.armLocked(e, now)
	queued := e.head < len(e.out)
	e.mu.Unlock()
	if queued {
		e.handoff.Run(func() { p.handOff(e) })
	}
}

// handOff hands e's queued ready batches to the sink, in order, until none
// is left. Only e.handoff's worker calls it.
func (p *Pool) handOff(e *slot) {
	e.mu.Lock()
	for e.head < len(e.out) {
		b := e.out[e.head]
		e.out[e.head] = message.Batch{}
		e.head++
		if e.head == len(e.out) {
			e.out, e.head = e.out[:0], 0
		}
		e.mu.Unlock()
		p.deliver(b)
		e.mu.Lock()
	}
	e.mu.Unlock()
}
