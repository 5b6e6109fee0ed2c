package delivery

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/kafkabatcher/kafkabatcherexporter/internal/workloop"
	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// queued is a batch in memory; orig is what was submitted, kept for
// Observer.Left, while b loses the records Kafka refused for good.
type queued struct {
	b    message.Batch
	orig message.Batch
}

// partQueue is one partition's in-memory FIFO. Its lock is never held across
// I/O: a partition spilling to a slow disk holds up no one.
type partQueue struct {
	mu       sync.Mutex
	key      message.TopicPartition
	fifo     []*queued
	inflight bool // its head batches (up to Config.MaxInFlight) are being sent
	// spilling is set while a goroutine moves the FIFO to disk (store).
	spilling bool
	// stalled is set when the head failed and could not be stored: it is
	// retried on the next retry tick, not at once.
	stalled bool
}

// Dispatcher owns the partition FIFOs, the send loop and the replay loop.
type Dispatcher struct {
	cfg     Config
	kafka   Kafka
	storage Storage // nil: no temp storage
	obs     Observer
	clock   Clock
	logger  *zap.Logger

	mu      sync.Mutex // guards parts, closed and timer; never held across I/O
	parts   map[message.TopicPartition]*partQueue
	closed  bool
	sending sync.WaitGroup // Produce calls in flight
	submits sync.WaitGroup // Submit calls in flight
	sends   workloop.Loop  // the send loop: sendReady until no one asks again
	replays workloop.Loop  // the replay loop: replay until no one asks again
	// sendLoop and replayLoop run the loops; made once, in New, so that
	// starting one allocates nothing.
	sendLoop, replayLoop func()
	stop                 chan struct{}  // closed by Close: the loops end
	loops                sync.WaitGroup // send and replay loops running
	timer                Timer
	ctx                  context.Context // canceled by Close: in-flight sends end
	cancel               context.CancelFunc

	// fullMu serialises changes of full and their Observer.DiskFull calls.
	fullMu sync.Mutex
	full   atomic.Bool // the storage refused a batch for lack of space, and has had no room since

	// headDone marks, per partition, the records of its stored head batch
	// (as Peek returns it) that Kafka took or refused for good in an
	// earlier replay that then failed: only the others are sent again, so
	// none is sent or dead-lettered twice. nil: none yet. It is dropped
	// once the storage records it (saveHead), from when Peek leaves those
	// records out. Only the replay loop uses it.
	headDone map[message.TopicPartition][]bool
	// headSeq holds, per partition, the sequence numbers of what is left of
	// the stored head after an earlier replay that failed (nil: numbered
	// anew); it takes the place of the stored ones until the storage
	// records them (saveHead). Only the replay loop uses it.
	headSeq map[message.TopicPartition]*message.Sequence
}

// New starts a Dispatcher's loops. storage may be nil.
func New(cfg Config, kafka Kafka, storage Storage, obs Observer, clock Clock, logger *zap.Logger) *Dispatcher {
	ctx, cancel := context.WithCancel(context.Background())
	d := &Dispatcher{
		cfg: cfg, kafka: kafka, storage: storage, obs: obs, clock: clock, logger: logger,
		parts:    make(map[message.TopicPartition]*partQueue),
		headDone: make(map[message.TopicPartition][]bool),
		headSeq:  make(map[message.TopicPartition]*message.Sequence),
		stop:     make(chan struct{}),
		ctx:      ctx, cancel: cancel,
	}
	d.sendLoop = func() { d.runLoop(&d.sends, d.sendReady) }
	d.replayLoop = func() { d.runLoop(&d.replays, d.replay) }
	d.scheduleRetry()
	d.wakeReplay() // data found at start is replayed at once
	return d
}

// wakeSend asks the send loop to send what is ready.
func (d *Dispatcher) wakeSend() {
	if d.sends.Begin() {
		d.start(d.sendLoop)
	}
}

// wakeReplay asks the replay loop to replay the stored backlogs.
func (d *Dispatcher) wakeReplay() {
	if d.storage != nil && d.replays.Begin() {
		d.start(d.replayLoop)
	}
}

// start runs loop, one of the loops whose worker the caller just became
// (Begin), on a goroutine of its own. After Close nothing starts and the
// loop stays taken.
func (d *Dispatcher) start(loop func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	d.loops.Add(1)
	go loop()
}

// runLoop does pass until l is asked no more or Close stops it.
func (d *Dispatcher) runLoop(l *workloop.Loop, pass func()) {
	defer d.loops.Done()
	for {
		select {
		case <-d.stop:
			return
		default:
		}
		pass()
		if !l.Again() {
			return
		}
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
		d.wakeSend()
		d.wakeReplay()
		d.mu.Lock()
		if !d.closed {
			d.scheduleRetry()
		}
		d.mu.Unlock()
	})
}

// Submit takes a ready batch. It never waits on Kafka; while the partition
// has a backlog on disk the batch is appended behind it. It numbers the
// batch's records (message.Message.Index).
func (d *Dispatcher) Submit(b message.Batch) {
	number(b.Messages)
	e := &queued{b: b, orig: b}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		d.settle(e, endLost, &e.b, 0, errors.New("dispatcher closed"))
		return
	}
	k := b.TopicPartition()
	p := d.parts[k]
	if p == nil {
		p = &partQueue{key: k}
		d.parts[k] = p
	}
	// Taken before d.mu is released, so Close, which sets closed first,
	// finds this batch when it empties the FIFOs.
	p.mu.Lock()
	d.submits.Add(1) // before closed can be set: Close waits for it
	d.mu.Unlock()
	defer d.submits.Done()
	behind := len(p.fifo) == 0 && !p.inflight && d.backlogged(k)
	p.fifo = append(p.fifo, e)
	if behind {
		// Behind the disk backlog: straight to disk keeps the order.
		err := d.store(p)
		switch {
		case err == nil:
			p.mu.Unlock()
			return
		case d.cfg.Sync:
			// Kafka was not asked: the batch belongs behind the backlog.
			d.loseFIFO(p, fmt.Errorf("%w: behind its partition's backlog on disk: %w", ErrNotStored, err))
			p.mu.Unlock()
			return
		}
		d.logger.Warn("temp storage refused a batch behind its backlog; keeping it in memory",
			zap.String("topic", k.Topic), zap.Int32("partition", k.Partition), zap.Error(err))
	}
	p.mu.Unlock()
	d.wakeSend()
}

// snapshot returns the partitions seen so far.
func (d *Dispatcher) snapshot() []*partQueue {
	d.mu.Lock()
	defer d.mu.Unlock()
	ps := make([]*partQueue, 0, len(d.parts))
	for _, p := range d.parts {
		ps = append(ps, p)
	}
	return ps
}

func (d *Dispatcher) backlogged(k message.TopicPartition) bool {
	return d.storage != nil && d.storage.Backlog(k) > 0
}

// sendable reports whether p's head may be sent now: none in flight, not
// stalled, not being spilled, and no stored backlog (a restart, or a batch
// the storage refused behind it), which the FIFO waits for the replay to
// drain. Called with p.mu held.
func (d *Dispatcher) sendable(p *partQueue) bool {
	return len(p.fifo) > 0 && !p.inflight && !p.stalled && !p.spilling && !d.backlogged(p.key)
}

// Queued returns how many batches of tp are in memory, waiting or in
// flight; a backlog on disk, which new batches queue behind, adds more than
// a full window (MaxInFlight).
func (d *Dispatcher) Queued(tp message.TopicPartition) int {
	d.mu.Lock()
	p := d.parts[tp]
	d.mu.Unlock()
	n := 0
	if p != nil {
		p.mu.Lock()
		n = len(p.fifo)
		p.mu.Unlock()
	}
	if d.backlogged(tp) {
		n += max(1, d.cfg.MaxInFlight) + 1
	}
	return n
}
