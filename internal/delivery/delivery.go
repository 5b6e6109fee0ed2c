// Package delivery moves ready batches to Kafka in order: at most one batch
// per partition in flight, failed batches spilled to the temp storage, and
// each partition's stored backlog replayed oldest first while its new
// batches queue behind it. Partitions replay independently: one that Kafka
// does not take does not hold up the others.
package delivery

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
	"github.com/kafkabatcher/kafkabatcherexporter/tempstorage"
)

// Outcome is what Kafka did with one batch.
type Outcome struct {
	// Err is nil when Kafka acknowledged the batch (less Rejected).
	Err error
	// Rejected lists records Kafka refused for good; the rest were acknowledged.
	Rejected []Rejected
	// Remaining, when Err is set, are the records not acknowledged, in
	// order; nil means all but Rejected.
	Remaining []message.Message
}

// Rejected is a record refused for good, with the reason.
type Rejected struct {
	Message message.Message
	Reason  message.RejectReason
	Err     error // what Kafka said, when it said something
}

// Kafka sends batches, each as one record batch; one Outcome per batch, in order.
type Kafka interface {
	Produce(ctx context.Context, batches []*message.Batch) []Outcome
	// Leader returns the id of the broker leading the partition as last
	// known, or -1, without asking Kafka.
	Leader(topic string, partition int32) int32
	// Partitions returns the topic's partition count from Kafka's
	// metadata as last seen, without asking Kafka; false when unknown.
	Partitions(topic string) (int32, bool)
}

// Queue is the durable backlog (tempstorage.Store): one FIFO per partition.
type Queue interface {
	Append(b message.Batch) error
	Peek(topic string, partition int32) (message.Batch, bool, error)
	Ack(topic string, partition int32) error
	Backlog(topic string, partition int32) int
	// Partitions lists the partitions with a backlog, sorted by topic,
	// then partition.
	Partitions() []tempstorage.Partition
	Len() int
	// HasRoom reports whether an entry of n bytes would be stored now.
	HasRoom(n int64) bool
}

// Observer is told where every batch went. Left is called exactly once for
// each submitted batch when it leaves memory (acknowledged, spilled or
// dropped), so the batcher can free its memory. Methods are called from
// the Dispatcher's goroutines and from Submit's caller, concurrently, with
// no Dispatcher lock held except where a method says otherwise.
type Observer interface {
	// Sent and Replayed get the records Kafka acknowledged.
	Sent(b *message.Batch, d time.Duration)
	Replayed(b *message.Batch, d time.Duration)
	Spilled(b *message.Batch)
	Rejected(r Rejected)
	Lost(b *message.Batch, err error)
	// Failed reports a direct send that Kafka did not take, after the batch
	// was spilled or kept for a retry.
	Failed(b *message.Batch, err error)
	Left(b *message.Batch)
	// DiskFull reports the temp storage refusing a batch for lack of space
	// (err, wrapping ErrDiskFull) and, with err nil, having room for one
	// again. Calls alternate, starting with a refusal, and never overlap.
	DiskFull(err error)
}

// Timer is a stoppable timer.
type Timer interface{ Stop() bool }

// Clock runs functions after a delay; injected so tests control time.
type Clock interface {
	AfterFunc(d time.Duration, f func()) Timer
}

// Config tunes a Dispatcher.
type Config struct {
	// RetryInterval is how often Kafka is retried while batches wait.
	RetryInterval time.Duration
	// Sync makes a batch that can be neither sent nor stored fail its
	// records' trackers instead of waiting in memory for Kafka.
	Sync bool
	// EntryBytes is the most the temp storage may need for one batch
	// (tempstorage.MaxEntryBytes): once the storage refused a batch for
	// lack of space, the disk counts as full until it has that much room.
	EntryBytes int64
}

// ErrNotStored is returned to sync callers whose records could neither be
// sent to Kafka nor stored on disk; the error wrapping it says why (Kafka's
// error, ErrDiskFull).
var ErrNotStored = errors.New("batch neither sent nor stored")

// ErrDiskFull says the temp storage refused a batch for lack of space
// (temp_storage.max_bytes or the file system). While the disk is full
// (DiskFull), new records should not be accepted: they could not be saved.
var ErrDiskFull = errors.New("temp storage disk full")

type partKey struct {
	topic     string
	partition int32
}

// entry is a batch in memory; orig is what was submitted, kept for
// Observer.Left, while b loses the records Kafka refused for good.
type entry struct {
	b    message.Batch
	orig message.Batch
}

// part is one partition's in-memory FIFO. Its lock is held while a batch
// of the partition is appended to the queue, so partitions spilling to disk
// do not hold up the others.
type part struct {
	mu       sync.Mutex
	key      partKey
	fifo     []*entry
	inflight bool
	// stalled is set when the head failed and could not be stored: it is
	// retried on the next retry tick, not at once.
	stalled bool
}

// Dispatcher owns the partition FIFOs, the send loop and the replay loop.
type Dispatcher struct {
	cfg    Config
	kafka  Kafka
	queue  Queue // nil: no temp storage
	obs    Observer
	clock  Clock
	logger *zap.Logger

	mu      sync.Mutex // guards parts, closed and timer; never held across I/O
	parts   map[partKey]*part
	closed  bool
	sending sync.WaitGroup // Produce calls in flight
	wake    chan struct{}  // the send loop has work
	replay  chan struct{}  // the replay loop should try now
	stop    chan struct{}
	loops   sync.WaitGroup
	timer   Timer
	ctx     context.Context // canceled by Close: in-flight sends end
	cancel  context.CancelFunc

	// fullMu serialises changes of full and their Observer.DiskFull calls.
	fullMu sync.Mutex
	full   atomic.Bool // the storage refused a batch for lack of space, and has had no room since

	// headDone marks, per partition, the records of its stored head batch
	// that Kafka took or refused for good in an earlier replay that then
	// failed: only the others are sent again, so none is sent or
	// dead-lettered twice. nil: none yet. Only the replay loop uses it.
	headDone map[partKey][]bool
}

// New starts a Dispatcher's loops. queue may be nil.
func New(cfg Config, kafka Kafka, queue Queue, obs Observer, clock Clock, logger *zap.Logger) *Dispatcher {
	ctx, cancel := context.WithCancel(context.Background())
	d := &Dispatcher{
		cfg: cfg, kafka: kafka, queue: queue, obs: obs, clock: clock, logger: logger,
		parts:    make(map[partKey]*part),
		headDone: make(map[partKey][]bool),
		wake:     make(chan struct{}, 1),
		replay:   make(chan struct{}, 1),
		stop:     make(chan struct{}),
		ctx:      ctx, cancel: cancel,
	}
	d.loops.Add(2)
	go d.sendLoop()
	go d.replayLoop()
	d.scheduleRetry()
	d.poke(d.replay) // data found at start is replayed at once
	return d
}

func (d *Dispatcher) poke(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// scheduleRetry wakes both loops every RetryInterval.
func (d *Dispatcher) scheduleRetry() {
	d.timer = d.clock.AfterFunc(d.cfg.RetryInterval, func() {
		for _, p := range d.snapshot() {
			p.mu.Lock()
			p.stalled = false
			p.mu.Unlock()
		}
		d.mu.Lock()
		closed := d.closed
		d.mu.Unlock()
		if closed {
			return
		}
		d.checkRoom()
		d.poke(d.wake)
		d.poke(d.replay)
		d.mu.Lock()
		if !d.closed {
			d.scheduleRetry()
		}
		d.mu.Unlock()
	})
}

// Submit takes a ready batch. It never waits on Kafka; while the partition
// has a backlog on disk the batch is appended behind it.
func (d *Dispatcher) Submit(b message.Batch) {
	e := &entry{b: b, orig: b}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		d.lose(e, errors.New("dispatcher closed"))
		return
	}
	k := partKey{b.Topic, b.Partition}
	p := d.parts[k]
	if p == nil {
		p = &part{key: k}
		d.parts[k] = p
	}
	// Taken before d.mu is released, so Close, which sets closed first,
	// finds this batch when it empties the FIFOs.
	p.mu.Lock()
	d.mu.Unlock()
	if len(p.fifo) == 0 && !p.inflight && d.backlogged(k) {
		// Behind the disk backlog: straight to disk keeps the order.
		err := d.appendStored(b)
		if err == nil {
			p.mu.Unlock()
			d.spilled(e)
			return
		}
		if d.cfg.Sync {
			p.mu.Unlock()
			// Kafka was not asked: the batch belongs behind the backlog.
			d.lose(e, fmt.Errorf("%w: behind its partition's backlog on disk: %w", ErrNotStored, err))
			return
		}
		d.logger.Warn("temp storage refused a batch behind its backlog; keeping it in memory",
			zap.String("topic", b.Topic), zap.Int32("partition", b.Partition), zap.Error(err))
	}
	p.fifo = append(p.fifo, e)
	p.mu.Unlock()
	d.poke(d.wake)
}

// snapshot returns the partitions seen so far.
func (d *Dispatcher) snapshot() []*part {
	d.mu.Lock()
	defer d.mu.Unlock()
	ps := make([]*part, 0, len(d.parts))
	for _, p := range d.parts {
		ps = append(ps, p)
	}
	return ps
}

// appendStored appends b to the temp storage and tracks whether the disk
// is full: a refusal for lack of space is returned wrapping ErrDiskFull.
// Called with the partition's lock held.
func (d *Dispatcher) appendStored(b message.Batch) error {
	err := d.queue.Append(b)
	switch {
	case err == nil:
		// A small batch may fit where a large one did not: the state
		// ends only with room for any batch.
		d.checkRoom()
	case tempstorage.IsFull(err):
		err = fmt.Errorf("%w: %w", ErrDiskFull, err)
		if !d.full.Load() {
			d.setFull(err)
		}
	}
	return err
}

// setFull records the disk as full (err) or with room again (nil) and
// tells the Observer when that changes.
func (d *Dispatcher) setFull(err error) {
	d.fullMu.Lock()
	defer d.fullMu.Unlock()
	if d.full.Load() == (err != nil) {
		return
	}
	d.full.Store(err != nil)
	d.obs.DiskFull(err)
}

// checkRoom ends the full state once the storage has room for a batch.
func (d *Dispatcher) checkRoom() {
	if d.queue != nil && d.full.Load() && d.queue.HasRoom(d.cfg.EntryBytes) {
		d.setFull(nil)
	}
}

// DiskFull reports whether the temp storage refused a batch for lack of
// space and has not had room for one since: records accepted now could
// not be saved if Kafka does not take them.
func (d *Dispatcher) DiskFull() bool { return d.full.Load() }

func (d *Dispatcher) backlogged(k partKey) bool {
	return d.queue != nil && d.queue.Backlog(k.topic, k.partition) > 0
}

func (d *Dispatcher) sendLoop() {
	defer d.loops.Done()
	for {
		select {
		case <-d.stop:
			return
		case <-d.wake:
		}
		d.sendReady()
	}
}

// sendReady sends the head batch of every partition that has none in
// flight: one Produce call per leader broker, since Produce returns when
// all its batches are settled and a broker slow to answer (or timing out)
// must not hold up the partitions other brokers lead.
func (d *Dispatcher) sendReady() {
	var groups []*sendGroup
	for _, p := range d.snapshot() {
		if !p.mu.TryLock() {
			// Busy appending to disk; whoever holds it wakes the loop after.
			continue
		}
		// With a stored backlog (a restart, or a batch the storage refused
		// behind it) the FIFO waits for the replay.
		ready := !p.inflight && !p.stalled && len(p.fifo) > 0 && !d.backlogged(p.key)
		var e *entry
		if ready {
			p.inflight = true
			e = p.fifo[0]
		}
		p.mu.Unlock()
		if !ready {
			continue
		}
		leader := d.kafka.Leader(p.key.topic, p.key.partition)
		i := slices.IndexFunc(groups, func(g *sendGroup) bool { return g.leader == leader })
		if i < 0 {
			groups = append(groups, &sendGroup{leader: leader})
			i = len(groups) - 1
		}
		g := groups[i]
		g.batches, g.entries, g.parts = append(g.batches, &e.b), append(g.entries, e), append(g.parts, p)
	}
	for _, g := range groups {
		// Only the send loop and, once it stopped, Close call sendReady,
		// so this Add never races Close's Wait.
		d.sending.Add(1)
		go d.send(g)
	}
}

// sendGroup is the head batches of partitions led by one broker.
type sendGroup struct {
	leader  int32
	batches []*message.Batch
	entries []*entry
	parts   []*part
}

// send produces g's batches and settles them.
func (d *Dispatcher) send(g *sendGroup) {
	defer d.sending.Done()
	start := time.Now()
	outs := d.kafka.Produce(d.ctx, g.batches)
	took := time.Since(start)
	// Acknowledged batches first: a failed one may wait for the disk.
	for i, p := range g.parts {
		if outs[i].Err == nil {
			d.finish(p, g.entries[i], outs[i], took)
		}
	}
	for i, p := range g.parts {
		if outs[i].Err != nil {
			d.finish(p, g.entries[i], outs[i], took)
		}
	}
	d.poke(d.wake)
}

// finish settles a direct send of p's head batch.
func (d *Dispatcher) finish(p *part, e *entry, out Outcome, took time.Duration) {
	b := &e.b
	for _, r := range out.Rejected {
		d.obs.Rejected(r)
		r.Message.Tracker.Done(1, nil)
	}
	if out.Err == nil {
		p.mu.Lock()
		p.fifo = p.fifo[1:]
		p.inflight = false
		p.mu.Unlock()
		sent := acknowledged(b, out.Rejected)
		d.obs.Sent(sent, took)
		message.TrackDone(sent.Messages, nil)
		d.obs.Left(&e.orig)
		return
	}
	d.logger.Warn("kafka did not take a batch",
		zap.String("topic", b.Topic), zap.Int32("partition", b.Partition),
		zap.Int("records", len(b.Messages)), zap.Error(out.Err))
	rest := out.Remaining
	if rest == nil {
		rest = withoutRejected(b.Messages, out.Rejected)
	} else {
		// Records acknowledged before the failure are done.
		message.TrackDone(without(b.Messages, out.Rejected, rest), nil)
	}
	b.Messages = rest
	b.Bytes = message.BatchSize(b.Messages)
	p.mu.Lock()
	p.inflight = false
	d.spillFIFO(p, out.Err)
	p.mu.Unlock()
	d.obs.Failed(b, out.Err)
}

// spillFIFO moves p's whole FIFO to disk, in order, so later batches queue
// behind it. Called with p.mu held.
func (d *Dispatcher) spillFIFO(p *part, cause error) {
	for len(p.fifo) > 0 {
		e := p.fifo[0]
		b := &e.b
		if d.queue == nil {
			break
		}
		if err := d.appendStored(*b); err != nil {
			d.logger.Error("temp storage refused a batch",
				zap.String("topic", b.Topic), zap.Int32("partition", b.Partition),
				zap.Int("records", len(b.Messages)), zap.Error(err))
			cause = fmt.Errorf("%w: %w", cause, err)
			break
		}
		p.fifo = p.fifo[1:]
		p.mu.Unlock()
		d.spilled(e)
		p.mu.Lock()
	}
	if len(p.fifo) == 0 {
		return
	}
	if d.cfg.Sync {
		// The caller is waiting: tell it now rather than hold its records.
		failed := p.fifo
		p.fifo = nil
		p.mu.Unlock()
		for _, e := range failed {
			d.lose(e, fmt.Errorf("%w: %w", ErrNotStored, cause))
		}
		p.mu.Lock()
		return
	}
	p.stalled = true // retried on the next tick; memory bound backs callers off
}

func (d *Dispatcher) spilled(e *entry) {
	d.obs.Spilled(&e.b)
	message.TrackDone(e.b.Messages, nil)
	d.obs.Left(&e.orig)
}

func (d *Dispatcher) lose(e *entry, err error) {
	d.obs.Lost(&e.b, err)
	message.TrackDone(e.b.Messages, err)
	d.obs.Left(&e.orig)
}

// acknowledged is b less the records Kafka refused for good.
func acknowledged(b *message.Batch, rejected []Rejected) *message.Batch {
	if len(rejected) == 0 {
		return b
	}
	a := *b
	a.Messages = withoutRejected(b.Messages, rejected)
	a.Bytes = message.BatchSize(a.Messages)
	return &a
}

// withoutRejected returns msgs less the rejected ones.
func withoutRejected(msgs []message.Message, rejected []Rejected) []message.Message {
	if len(rejected) == 0 {
		return msgs
	}
	return without(msgs, rejected, nil)
}

// without returns msgs less the rejected ones and less those in rest, a
// subsequence of msgs in the same order (the producer keeps record order).
// Records are matched by identity (the producer hands back the same
// Key/Value slices), not by content.
func without(msgs []message.Message, rejected []Rejected, rest []message.Message) []message.Message {
	out := make([]message.Message, 0, len(msgs))
next:
	for _, m := range msgs {
		if len(rest) > 0 && sameMessage(m, rest[0]) {
			rest = rest[1:]
			continue
		}
		for _, r := range rejected {
			if sameMessage(m, r.Message) {
				continue next
			}
		}
		out = append(out, m)
	}
	return out
}

func sameMessage(a, b message.Message) bool {
	return len(a.Value) == len(b.Value) && (len(a.Value) == 0 || &a.Value[0] == &b.Value[0]) &&
		string(a.Key) == string(b.Key) && a.Timestamp.Equal(b.Timestamp)
}

func (d *Dispatcher) replayLoop() {
	defer d.loops.Done()
	for {
		select {
		case <-d.stop:
			return
		case <-d.replay:
		}
		if d.queue == nil {
			continue
		}
		d.drain()
		d.checkRoom() // replayed segments were deleted
	}
}

// maxReplayBytes bounds the stored batches read into memory for one replay
// round (max_pending_bytes does not count them); the rest of the backlogged
// partitions go in the next round.
const maxReplayBytes = 8 << 20

// drain replays the stored backlogs in rounds: each round sends the oldest
// stored batch of every backlogged partition in one Produce call, up to
// maxReplayBytes, the next round starting after the last partition taken so
// that every partition gets its turn. A partition Kafka does not take sits
// out until the next retry tick; the others go on until their backlogs are
// gone.
func (d *Dispatcher) drain() {
	paused := make(map[partKey]bool)
	var keys []partKey
	var stored, send []message.Batch
	var last tempstorage.Partition // the next round starts after it
	for {
		select {
		case <-d.stop:
			return
		default:
		}
		keys, stored, send = keys[:0], stored[:0], send[:0]
		bytes := 0
		ps := d.queue.Partitions()
		start, _ := slices.BinarySearchFunc(ps, last, tempstorage.Partition.Compare)
		if start < len(ps) && ps[start] == last {
			start++
		}
		for n := range ps {
			tp := ps[(start+n)%len(ps)]
			k := partKey{tp.Topic, tp.Partition}
			if paused[k] {
				continue
			}
			if n, ok := d.kafka.Partitions(k.topic); ok && k.partition >= n {
				if !d.dropGone(k, n) {
					paused[k] = true
				}
				continue
			}
			b, ok, err := d.queue.Peek(k.topic, k.partition)
			if err != nil {
				d.logger.Error("temp storage read failed",
					zap.String("topic", k.topic), zap.Int32("partition", k.partition), zap.Error(err))
				paused[k] = true
				continue
			}
			if !ok {
				continue
			}
			if bytes > 0 && bytes+b.Bytes > maxReplayBytes {
				break
			}
			bytes += b.Bytes
			keys, stored, send = append(keys, k), append(stored, b), append(send, d.unsent(k, b))
			last = tp
		}
		if len(keys) == 0 {
			return
		}
		outs, took := d.replayRound(send)
		for i, k := range keys {
			if !d.settleReplay(k, &stored[i], &send[i], outs[i], took) {
				paused[k] = true
			}
		}
		d.poke(d.wake) // a released partition's FIFO may go now
	}
}

// dropGone moves the stored backlog of a partition that Kafka's metadata
// no longer has (the topic recreated with n partitions) to the dead-letter
// file, reason partition_gone: no Produce can ever take it. It reports
// whether the backlog is gone.
func (d *Dispatcher) dropGone(k partKey, n int32) bool {
	batches, records := 0, 0
	defer func() {
		if batches > 0 {
			d.logger.Warn("stored batches of a partition that no longer exists moved to the dead-letter file",
				zap.String("topic", k.topic), zap.Int32("partition", k.partition), zap.Int32("partitions", n),
				zap.Int("batches", batches), zap.Int("records", records), zap.String("reason", string(message.RejectPartitionGone)))
		}
	}()
	for {
		select {
		case <-d.stop:
			return false
		default:
		}
		b, ok, err := d.queue.Peek(k.topic, k.partition)
		if err != nil {
			d.logger.Error("temp storage read failed",
				zap.String("topic", k.topic), zap.Int32("partition", k.partition), zap.Error(err))
			return false
		}
		if !ok {
			return true
		}
		rest := d.unsent(k, b) // less records an earlier replay got through
		for _, m := range rest.Messages {
			d.obs.Rejected(Rejected{Message: m, Reason: message.RejectPartitionGone,
				Err: fmt.Errorf("partition %d of %s no longer exists (%d partitions)", k.partition, k.topic, n)})
		}
		if err := d.queue.Ack(k.topic, k.partition); err != nil {
			d.logger.Error("temp storage checkpoint failed",
				zap.String("topic", k.topic), zap.Int32("partition", k.partition), zap.Error(err))
			d.markDone(k, &b, &rest, nil) // not dead-lettered twice
			return false
		}
		delete(d.headDone, k)
		batches++
		records += len(rest.Messages)
	}
}

// unsent is b less the records an earlier replay got through.
func (d *Dispatcher) unsent(k partKey, b message.Batch) message.Batch {
	done := d.headDone[k]
	if done == nil {
		return b
	}
	msgs := make([]message.Message, 0, len(b.Messages))
	for i, m := range b.Messages {
		if i >= len(done) || !done[i] {
			msgs = append(msgs, m)
		}
	}
	b.Messages, b.Bytes = msgs, 0
	if len(msgs) > 0 {
		b.Bytes = message.BatchSize(msgs)
	}
	return b
}

// markDone records in headDone which records of the stored head went
// through: those of send (the head less earlier ones) not in remaining,
// the records Kafka did not take, in order.
func (d *Dispatcher) markDone(k partKey, stored, send *message.Batch, remaining []message.Message) {
	done := d.headDone[k]
	if done == nil {
		done = make([]bool, len(stored.Messages))
		d.headDone[k] = done
	}
	j := 0 // next record of send
	for i := range stored.Messages {
		if done[i] || j >= len(send.Messages) {
			continue
		}
		m := send.Messages[j]
		j++
		if len(remaining) > 0 && sameMessage(m, remaining[0]) {
			remaining = remaining[1:]
			continue
		}
		done[i] = true
	}
}

// replayRound sends the batches that have records left; the others are
// only acknowledged in the queue.
func (d *Dispatcher) replayRound(send []message.Batch) (outs []Outcome, took time.Duration) {
	outs = make([]Outcome, len(send))
	var batches []*message.Batch
	var idx []int
	for i := range send {
		if len(send[i].Messages) > 0 {
			batches = append(batches, &send[i])
			idx = append(idx, i)
		}
	}
	if len(batches) > 0 {
		start := time.Now()
		got := d.kafka.Produce(d.ctx, batches)
		took = time.Since(start)
		for n, i := range idx {
			outs[i] = got[n]
		}
	}
	return outs, took
}

// settleReplay applies Kafka's answer to one partition's stored head. It
// reports whether the partition may go on replaying.
func (d *Dispatcher) settleReplay(k partKey, stored, send *message.Batch, out Outcome, took time.Duration) bool {
	for _, r := range out.Rejected {
		d.obs.Rejected(r)
	}
	if out.Err != nil {
		rest := out.Remaining
		if rest == nil {
			rest = withoutRejected(send.Messages, out.Rejected)
		}
		d.markDone(k, stored, send, rest)
		d.logger.Info("replay of a partition paused: kafka did not take its oldest stored batch",
			zap.String("topic", k.topic), zap.Int32("partition", k.partition),
			zap.Int("records", len(send.Messages)), zap.Error(out.Err))
		return false
	}
	// A failed Ack is retried without a resend.
	d.markDone(k, stored, send, nil)
	// No partition lock: until Ack returns the backlog counts this entry,
	// so a Submit for its partition appends behind it; after, the entry is
	// in Kafka and a direct send comes after it.
	if err := d.queue.Ack(k.topic, k.partition); err != nil {
		d.logger.Error("temp storage checkpoint failed",
			zap.String("topic", k.topic), zap.Int32("partition", k.partition), zap.Error(err))
		return false
	}
	delete(d.headDone, k)
	d.obs.Replayed(acknowledged(send, out.Rejected), took)
	return true
}

// Close stops the loops. Within ctx it waits for in-flight sends, then sends
// what is queued in memory once more; what Kafka does not take is spilled.
// Batches that can be neither sent nor stored are reported Lost.
func (d *Dispatcher) Close(ctx context.Context) error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.timer.Stop()
	d.mu.Unlock()
	close(d.stop)
	// A replay may be in a produce that Kafka does not answer: ctx bounds
	// the wait, and the replayed batch stays on disk.
	loopsDone := make(chan struct{})
	go func() {
		d.loops.Wait()
		close(loopsDone)
	}()
	select {
	case <-loopsDone:
	case <-ctx.Done():
		d.cancel()
		<-loopsDone
	}

	// Last direct attempts, bounded by ctx: one send per partition FIFO.
	waited := make(chan struct{})
	go func() {
		for {
			d.sending.Wait()
			if !d.hasSendable() || ctx.Err() != nil {
				break
			}
			d.sendReady()
		}
		close(waited)
	}()
	select {
	case <-waited:
	case <-ctx.Done():
		d.cancel() // in-flight sends end and spill
		<-waited
	}
	d.cancel()

	var lost int
	for _, p := range d.snapshot() {
		p.mu.Lock()
		p.stalled = false
		if len(p.fifo) > 0 {
			d.spillFIFO(p, errors.New("shutdown"))
		}
		failed := p.fifo
		p.fifo = nil
		p.mu.Unlock()
		for _, e := range failed {
			lost += len(e.b.Messages)
			d.lose(e, fmt.Errorf("%w: shutdown", ErrNotStored))
		}
	}
	if lost > 0 {
		return fmt.Errorf("shutdown: %d records neither sent nor stored", lost)
	}
	return nil
}

func (d *Dispatcher) hasSendable() bool {
	for _, p := range d.snapshot() {
		p.mu.Lock()
		ok := len(p.fifo) > 0 && !p.stalled && !p.inflight && !d.backlogged(p.key)
		p.mu.Unlock()
		if ok {
			return true
		}
	}
	return false
}
