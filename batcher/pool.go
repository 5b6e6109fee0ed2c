package batcher

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// Sink receives what the pool hands off. Its methods are called without any
// pool lock held, so they may call back into the pool (Release, Sent,
// Recycle), but not Add, which could wait for room only their return frees.
// For one accumulator, batches are handed off one at a time in order;
// batches of different accumulators may be handed off concurrently.
type Sink interface {
	// Ready receives a ready batch of one topic/partition. It may be called
	// from Add's goroutine or from a timer's.
	Ready(b message.Batch)
	// Reject receives a record refused by the size rule (reason
	// RejectOversize). It was never counted against MaxPendingBytes.
	Reject(m message.Message, reason string)
}

// Pool holds one Accumulator per topic/partition (per topic when
// CollectByPartition is false), created as keys appear, safe for concurrent
// use. Memory: the record bytes of every accepted message count against
// MaxPendingBytes from Add until the batch holding it is passed to Release,
// so the bound covers batches in flight too.
type Pool struct {
	cfg  Config
	clk  Clock
	sink Sink

	mu     sync.RWMutex // guards topics
	topics map[string]*topicEntries

	freeMu sync.Mutex
	free   [][]message.Message // recycled batch slices, length 0, cleared

	memMu   sync.Mutex // guards the fields below
	used    int64      // record bytes accepted and not released
	records int64      // records accepted and not released
	waiters []*waiter  // Adds waiting for room, first come first served
	closed  bool
	active  int           // Adds and timer callbacks running
	idle    chan struct{} // closed when active reaches 0 after closing
}

type topicEntries struct {
	all   *entry                   // the topic-wide accumulator (CollectByPartition false)
	parts atomic.Pointer[[]*entry] // by partition below maxIndexed; replaced, never changed in place
	big   map[int32]*entry         // partitions from maxIndexed on; guarded by Pool.mu
}

// maxIndexed bounds the partition slice, so an absurd partition number
// costs a map entry rather than a huge slice.
const maxIndexed = 1 << 12

// entry is one accumulator with its timer and its queue of ready batches.
type entry struct {
	mu       sync.Mutex
	acc      Accumulator
	timer    Timer
	timerAt  time.Time // when timer fires
	timerGen uint64    // tells a stale timer callback from the current one
	out      []message.Batch
	head     int  // out[head:] are still to hand off
	draining bool // a goroutine is handing off out; others only enqueue
	closed   bool // flushed: no more timers
}

type waiter struct {
	need    int64
	records int64
	ready   chan struct{}
	granted bool
	err     error
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
	return &Pool{cfg: cfg, clk: clk, sink: sink, topics: map[string]*topicEntries{}}, nil
}

// recordBytes is what one record counts against MaxPendingBytes: its
// encoded size as the first record of a batch. Add and Release both use it.
func recordBytes(m *message.Message) int {
	return message.RecordSize(m, 0, m.Timestamp)
}

// Add accepts msgs (one ConsumeLogs call; Topic and Partition set) into
// their accumulators, in order. It is all or nothing: it waits while the
// records do not fit under MaxPendingBytes, and if ctx ends first it returns
// an error wrapping ErrMemoryLimit and ctx.Err() with nothing accepted.
// Oversize records go to Sink.Reject and do not fail the call. Batches made
// ready are handed to the sink by this call, unless a concurrent call or
// timer is already handing off that accumulator's batches (then by that one,
// in order).
func (p *Pool) Add(ctx context.Context, msgs []message.Message) error {
	var need, n int64
	// recordBytes of every record, computed once.
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
		s := recordBytes(m)
		sizes[i] = int32(s)
		if !p.cfg.oversize(s) {
			need += int64(s)
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
	// Messages are added per accumulator, each locked once per window of
	// the call: chains link the messages of one accumulator in order.
	const window = len(sizeBuf)
	var chain [window]int16 // next message of the same accumulator, -1 at the end
	type group struct {
		e           *entry
		first, last int16
	}
	var groupBuf [16]group
	var lastTopic string
	var te *topicEntries
	for base := 0; base < len(msgs); base += window {
		ms := msgs[base:min(len(msgs), base+window)]
		groups := groupBuf[:0]
		g := 0
		for i := range ms {
			m := &ms[i]
			if te == nil || m.Topic != lastTopic {
				lastTopic, te = m.Topic, p.topicEntries(m.Topic)
			}
			e := p.entry(te, m.Topic, m.Partition)
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
				// Flush gave up waiting for this Add: hand its records over now.
				e.out = e.acc.Flush(e.out)
			}
			p.armAndDrain(e, now)
		}
	}
	for _, i := range rejected {
		p.sink.Reject(msgs[i], RejectOversize)
	}
	return nil
}

// admit reserves need bytes for n records, waiting in line for room.
func (p *Pool) admit(ctx context.Context, need, n int64) error {
	p.memMu.Lock()
	if p.closed {
		p.memMu.Unlock()
		return ErrClosed
	}
	if len(p.waiters) == 0 && p.fitsLocked(need) {
		p.used += need
		p.records += n
		p.active++
		p.memMu.Unlock()
		return nil
	}
	w := &waiter{need: need, records: n, ready: make(chan struct{})}
	p.waiters = append(p.waiters, w)
	p.memMu.Unlock()

	select {
	case <-w.ready:
		return w.err
	case <-ctx.Done():
	}
	p.memMu.Lock()
	defer p.memMu.Unlock()
	if w.granted { // room (or ErrClosed) came as ctx ended: take it
		return w.err
	}
	for i, x := range p.waiters {
		if x == w {
			p.waiters = append(p.waiters[:i], p.waiters[i+1:]...)
			break
		}
	}
	p.grantLocked() // those behind w may fit now
	return fmt.Errorf("add %d records (%d bytes, %d pending): %w: %w", n, need, p.used, ErrMemoryLimit, ctx.Err())
}

// fitsLocked: need bytes fit under the bound. An empty pool takes any call,
// so a call larger than the bound is not refused forever.
func (p *Pool) fitsLocked(need int64) bool {
	return p.cfg.MaxPendingBytes == 0 || p.used == 0 || p.used+need <= p.cfg.MaxPendingBytes
}

// grantLocked admits waiters from the head of the line while they fit.
func (p *Pool) grantLocked() {
	for len(p.waiters) > 0 {
		w := p.waiters[0]
		if !p.closed && !p.fitsLocked(w.need) {
			return
		}
		p.waiters[0] = nil
		p.waiters = p.waiters[1:]
		w.granted = true
		if p.closed {
			w.err = ErrClosed
		} else {
			p.used += w.need
			p.records += w.records
			p.active++
		}
		close(w.ready)
	}
}

// enter registers a timer callback; false once the pool is closed.
func (p *Pool) enter() bool {
	p.memMu.Lock()
	defer p.memMu.Unlock()
	if p.closed {
		return false
	}
	p.active++
	return true
}

func (p *Pool) exit() {
	p.memMu.Lock()
	defer p.memMu.Unlock()
	p.active--
	if p.active == 0 && p.idle != nil {
		close(p.idle)
		p.idle = nil
	}
}

// Release frees the memory counted for b's records. The exporter calls it
// once per batch received from Ready or Flush, when Kafka acknowledged it,
// it was spilled to disk, or it was rejected.
func (p *Pool) Release(b message.Batch) {
	var n int64
	for i := range b.Messages {
		n += int64(recordBytes(&b.Messages[i]))
	}
	p.memMu.Lock()
	defer p.memMu.Unlock()
	p.used -= n
	p.records -= int64(len(b.Messages))
	p.grantLocked()
}

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

// Sent records a successful send of a batch of topic/partition now: that
// accumulator's MinDelay is measured from it.
func (p *Pool) Sent(topic string, partition int32) {
	if partition < 0 && p.cfg.CollectByPartition {
		return
	}
	e := p.entry(p.topicEntries(topic), topic, partition)
	now := p.clk.Now()
	e.mu.Lock()
	e.acc.Sent(now)
	p.armAndDrain(e, now)
}

// PendingRecords is the number of records accepted and not yet released.
func (p *Pool) PendingRecords() int64 {
	p.memMu.Lock()
	defer p.memMu.Unlock()
	return p.records
}

// PendingBytes is the record bytes counted against MaxPendingBytes.
func (p *Pool) PendingBytes() int64 {
	p.memMu.Lock()
	defer p.memMu.Unlock()
	return p.used
}

// Flush closes the pool for shutdown: later Adds fail with ErrClosed, Adds
// waiting for room fail with ErrClosed, timers stop. It waits (until ctx
// ends) for running Adds and timer callbacks, whose batches still go to
// Sink.Ready, then returns everything still pending, reason shutdown, in
// order per partition. The caller Releases the returned batches like the
// others. If ctx ends first, records a straggling Add still brings in are
// handed to Sink.Ready by that Add.
func (p *Pool) Flush(ctx context.Context) []message.Batch {
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
	for _, e := range p.entries() {
		e.mu.Lock()
		e.closed = true
		if e.timer != nil {
			e.timer.Stop()
			e.timer = nil
		}
		out = e.acc.Flush(out[:0])
		e.mu.Unlock()
		for _, b := range out {
			split = p.appendSplit(split, b)
		}
	}
	return split
}

// entries lists every accumulator entry.
func (p *Pool) entries() []*entry {
	p.mu.RLock()
	defer p.mu.RUnlock()
	var es []*entry
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

func (p *Pool) topicEntries(topic string) *topicEntries {
	p.mu.RLock()
	te := p.topics[topic]
	p.mu.RUnlock()
	if te != nil {
		return te
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if te = p.topics[topic]; te == nil {
		te = &topicEntries{}
		if !p.cfg.CollectByPartition {
			te.all = p.newEntry(topic, -1)
		}
		p.topics[topic] = te
	}
	return te
}

// entry returns the accumulator entry for topic/partition, creating it.
func (p *Pool) entry(te *topicEntries, topic string, partition int32) *entry {
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
				te.big = map[int32]*entry{}
			}
			e = p.newEntry(topic, partition)
			te.big[partition] = e
		}
		return e
	}
	var cur []*entry
	if parts := te.parts.Load(); parts != nil {
		cur = *parts
	}
	if int(partition) < len(cur) && cur[partition] != nil {
		return cur[partition]
	}
	next := make([]*entry, max(len(cur), int(partition)+1))
	copy(next, cur)
	e := p.newEntry(topic, partition)
	next[partition] = e
	te.parts.Store(&next)
	return e
}

func (p *Pool) newEntry(topic string, partition int32) *entry {
	e := &entry{}
	e.acc.init(p.cfg, topic, partition)
	e.acc.newSlice = p.getSlice
	p.memMu.Lock()
	e.closed = p.closed
	p.memMu.Unlock()
	return e
}

// armAndDrain is called with e.mu held and returns with it released. It
// points e's timer at the accumulator's deadline, then hands queued ready
// batches to the sink unless another goroutine is already doing so (that one
// will hand these over too, in order).
func (p *Pool) armAndDrain(e *entry, now time.Time) {
	p.armLocked(e, now)
	if e.draining || e.head == len(e.out) {
		e.mu.Unlock()
		return
	}
	e.draining = true
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
	e.draining = false
	e.mu.Unlock()
}

// armLocked keeps one timer per entry, due no later than the deadline. A
// timer due earlier than needed is kept: it finds nothing due and re-arms.
func (p *Pool) armLocked(e *entry, now time.Time) {
	if e.closed {
		return
	}
	d := e.acc.Deadline()
	if d.IsZero() {
		if e.timer != nil {
			e.timer.Stop()
			e.timer = nil
		}
		return
	}
	if e.timer != nil {
		if !e.timerAt.After(d) {
			return
		}
		e.timer.Stop()
	}
	e.timerGen++
	gen := e.timerGen
	e.timerAt = d
	e.timer = p.clk.AfterFunc(d.Sub(now), func() { p.fire(e, gen) })
}

// fire is a timer callback: release what is due, re-arm, hand off.
func (p *Pool) fire(e *entry, gen uint64) {
	if !p.enter() {
		return
	}
	defer p.exit()
	now := p.clk.Now()
	e.mu.Lock()
	if gen == e.timerGen {
		e.timer = nil
	}
	if e.closed {
		e.mu.Unlock()
		return
	}
	e.out = e.acc.Tick(now, e.out)
	p.armAndDrain(e, now)
}

// deliver hands b to the sink, split by partition for a topic-wide
// accumulator.
func (p *Pool) deliver(b message.Batch) {
	if b.Partition >= 0 {
		p.sink.Ready(b)
		return
	}
	parts := p.appendSplit(nil, b)
	if len(parts) > 1 || &parts[0].Messages[0] != &b.Messages[0] {
		p.Recycle(b.Messages) // the parts are copies
	}
	for _, part := range parts {
		p.sink.Ready(part)
	}
}

// appendSplit appends b to dst as batches of one partition each, keeping
// record order, each within MaxBytes (a subset of a batch can encode larger
// than the whole when its first timestamp differs, so it is re-cut). Each
// partition's records get their own slice, so each part can be recycled.
func (p *Pool) appendSplit(dst []message.Batch, b message.Batch) []message.Batch {
	if b.Partition >= 0 || len(b.Messages) == 0 {
		return append(dst, b)
	}
	type group struct {
		part int32
		n    int
		msgs []message.Message
	}
	var buf [16]group
	groups := buf[:0]
	find := func(part int32, last int) int {
		if last < len(groups) && groups[last].part == part {
			return last
		}
		for k := range groups {
			if groups[k].part == part {
				return k
			}
		}
		groups = append(groups, group{part: part})
		return len(groups) - 1
	}
	k := 0
	for i := range b.Messages {
		k = find(b.Messages[i].Partition, k)
		groups[k].n++
	}
	if len(groups) == 1 && b.Bytes <= p.cfg.MaxBytes {
		b.Partition = groups[0].part
		return append(dst, b)
	}
	for k := range groups {
		groups[k].msgs = p.getSlice(groups[k].n)
	}
	k = 0
	for i := range b.Messages {
		k = find(b.Messages[i].Partition, k)
		groups[k].msgs = append(groups[k].msgs, b.Messages[i])
	}
	for _, g := range groups {
		dst = p.appendChunks(dst, b, g.part, g.msgs)
	}
	return dst
}

// appendChunks appends msgs, all of partition part, as batches within
// MaxBytes, cutting where the next record would not fit.
func (p *Pool) appendChunks(dst []message.Batch, b message.Batch, part int32, msgs []message.Message) []message.Batch {
	start, bytes := 0, 0
	for i := range msgs {
		var size int
		if i > start {
			size = message.RecordSize(&msgs[i], i-start, msgs[start].Timestamp)
			if bytes+size > p.cfg.MaxBytes {
				dst = append(dst, message.Batch{Topic: b.Topic, Partition: part, Messages: msgs[start:i:i], Bytes: bytes, Reason: b.Reason, Opened: b.Opened})
				start = i
			}
		}
		if i == start {
			size = message.BatchHeaderBytes + message.RecordSize(&msgs[i], 0, msgs[i].Timestamp)
			bytes = 0
		}
		bytes += size
	}
	return append(dst, message.Batch{Topic: b.Topic, Partition: part, Messages: msgs[start:], Bytes: bytes, Reason: b.Reason, Opened: b.Opened})
}
