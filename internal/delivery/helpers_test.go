package delivery

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var errDown = errors.New("kafka down")

// fakeKafka records what it acknowledged, per partition, in order.
type fakeKafka struct {
	mu       sync.Mutex
	up       bool
	got      map[message.TopicPartition][]string
	inflight map[message.TopicPartition]bool
	reject   map[string]bool // values refused for good
	down     map[int32]bool  // partitions whose sends fail
	cutAt    string          // a batch holding this value is acknowledged up to it, then fails
	// failAfterReject is how many more batches with a rejected record fail
	// as a whole after the rejection: Rejected, then Err with the others
	// as Remaining (not a suffix of the batch).
	failAfterReject int
	overlap         bool                    // two sends of one partition at once
	gate            chan struct{}           // when set, Produce waits on it
	maxCall         int                     // most batch bytes in one Produce call
	order           []string                // every acknowledged value, in order
	leaders         map[int32]int32         // partition -> leader broker; absent: 0
	slow            map[int32]chan struct{} // leader -> calls to it wait on the channel
	partitions      map[string]int32        // topic -> partition count in metadata; absent: unknown
	perCall         []int                   // batches per Produce call, in call order
	failSeq         *message.Sequence       // Outcome.Seq of a failed batch
}

func (k *fakeKafka) Partitions(topic string) (int32, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	n, ok := k.partitions[topic]
	return n, ok
}

func (k *fakeKafka) Leader(tp message.TopicPartition) int32 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.leaders[tp.Partition]
}

func newFakeKafka() *fakeKafka {
	return &fakeKafka{up: true, got: map[message.TopicPartition][]string{}, inflight: map[message.TopicPartition]bool{}, reject: map[string]bool{}, down: map[int32]bool{}}
}

func (k *fakeKafka) setUp(up bool) { k.mu.Lock(); k.up = up; k.mu.Unlock() }

// openGate lets the Produce calls waiting on the gate, and every later one,
// through; f, if set, changes k first, under its lock.
func (k *fakeKafka) openGate(f func()) {
	k.mu.Lock()
	if f != nil {
		f()
	}
	gate := k.gate
	k.gate = nil
	k.mu.Unlock()
	close(gate)
}

func (k *fakeKafka) Produce(ctx context.Context, batches []*message.Batch) []message.Outcome {
	k.mu.Lock()
	callBytes := 0
	for _, b := range batches {
		callBytes += b.Bytes
	}
	k.maxCall = max(k.maxCall, callBytes)
	k.perCall = append(k.perCall, len(batches))
	mine := map[message.TopicPartition]bool{}
	for _, b := range batches {
		pk := b.TopicPartition()
		if k.inflight[pk] && !mine[pk] {
			k.overlap = true // another call has the partition in flight
		}
		k.inflight[pk], mine[pk] = true, true
	}
	gate := k.gate
	if slow := k.slow[k.leaders[batches[0].Partition]]; slow != nil {
		gate = slow
	}
	k.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	outs := make([]message.Outcome, len(batches))
	failed := map[message.TopicPartition]bool{} // as the producer: after a failed batch, its partition's later ones fail
	for i, b := range batches {
		pk := b.TopicPartition()
		k.inflight[pk] = false
		if failed[pk] {
			outs[i].Err = fmt.Errorf("produce %s/%d: an earlier batch failed: %w", b.Topic, b.Partition, errDown)
			continue
		}
		k.produceOne(ctx, b, &outs[i])
		failed[pk] = outs[i].Err != nil
	}
	return outs
}

// produceOne answers one batch; called with k.mu held.
func (k *fakeKafka) produceOne(ctx context.Context, b *message.Batch, out *message.Outcome) {
	pk := b.TopicPartition()
	if !k.up || k.down[b.Partition] || ctx.Err() != nil {
		out.Err = fmt.Errorf("produce %s/%d: %w", b.Topic, b.Partition, errDown)
		out.Seq = k.failSeq
		return
	}
	if k.failAfterReject > 0 && slices.ContainsFunc(b.Messages, func(m message.Message) bool { return k.reject[string(m.Value)] }) {
		k.failAfterReject--
		out.Err = errDown
		for _, m := range b.Messages {
			if k.reject[string(m.Value)] {
				out.Rejected = append(out.Rejected, message.Rejected{Message: m, Reason: "invalid_record"})
			} else {
				out.Remaining = append(out.Remaining, m)
			}
		}
		return
	}
	for j, m := range b.Messages {
		if k.cutAt != "" && string(m.Value) == k.cutAt {
			k.cutAt = ""
			out.Err = errDown
			out.Remaining = b.Messages[j:]
			out.Seq = k.failSeq
			break
		}
		if k.reject[string(m.Value)] {
			out.Rejected = append(out.Rejected, message.Rejected{Message: m, Reason: "message_too_large"})
			continue
		}
		k.got[pk] = append(k.got[pk], string(m.Value))
		k.order = append(k.order, string(m.Value))
	}

}

func (k *fakeKafka) values(topic string, p int32) []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.got[message.TopicPartition{Topic: topic, Partition: p}]...)
}

// memStorage is an in-memory Storage.
type memStorage struct {
	mu      sync.Mutex
	entries []message.Batch
	limit   int           // entries; 0 = unbounded
	gate    chan struct{} // when set, Append waits on it (a slow disk)
	waiting chan struct{} // when set, told each time an Append waits on gate
	// setHeads counts SetHead calls that changed an entry; setHeadErr,
	// when set, fails them instead (a full disk).
	setHeads   int
	setHeadErr error
}

func (q *memStorage) Append(b message.Batch) error {
	if q.gate != nil {
		if q.waiting != nil {
			q.waiting <- struct{}{}
		}
		<-q.gate
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.limit > 0 && len(q.entries) >= q.limit {
		return storageFullError{}
	}
	// As on disk: a copy of the records, without their trackers.
	msgs := slices.Clone(b.Messages)
	for i := range msgs {
		msgs[i].Tracker = nil
	}
	b.Messages = msgs
	q.entries = append(q.entries, b)
	return nil
}

// storageFullError is memStorage's refusal for lack of space, told by
// its StorageFull method as Storage asks.
type storageFullError struct{}

func (storageFullError) Error() string     { return "temp storage full" }
func (storageFullError) StorageFull() bool { return true }

// head is the index of the partition's oldest entry, or -1.
func (q *memStorage) head(tp message.TopicPartition) int {
	for i, b := range q.entries {
		if b.TopicPartition() == tp {
			return i
		}
	}
	return -1
}

func (q *memStorage) Peek(tp message.TopicPartition) (message.Batch, bool, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	i := q.head(tp)
	if i < 0 {
		return message.Batch{}, false, nil
	}
	return q.entries[i], true, nil
}

// SetHead replaces the partition's oldest entry with what Peek returns
// less the records marked done, with Seq seq, as the temp storage does.
func (q *memStorage) SetHead(tp message.TopicPartition, done []bool, seq *message.Sequence) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.setHeadErr != nil {
		return q.setHeadErr
	}
	i := q.head(tp)
	if i < 0 {
		return errors.New("no stored batch")
	}
	b := q.entries[i]
	if len(done) > len(b.Messages) {
		return fmt.Errorf("%d records marked, the head has %d", len(done), len(b.Messages))
	}
	var msgs []message.Message
	for j, m := range b.Messages {
		if j >= len(done) || !done[j] {
			msgs = append(msgs, m)
		}
	}
	b.Messages, b.Bytes, b.Seq = msgs, 0, seq
	if len(msgs) > 0 {
		b.Bytes = message.BatchSize(msgs)
	}
	q.entries[i] = b
	q.setHeads++
	return nil
}

func (q *memStorage) Ack(tp message.TopicPartition) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if i := q.head(tp); i >= 0 {
		q.entries = append(q.entries[:i], q.entries[i+1:]...)
	}
	return nil
}

func (q *memStorage) Partitions() []message.TopicPartition {
	q.mu.Lock()
	defer q.mu.Unlock()
	var ps []message.TopicPartition
	for _, b := range q.entries {
		p := b.TopicPartition()
		if !slices.Contains(ps, p) {
			ps = append(ps, p)
		}
	}
	slices.SortFunc(ps, message.TopicPartition.Compare)
	return ps
}

func (q *memStorage) Backlog(tp message.TopicPartition) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for _, b := range q.entries {
		if b.TopicPartition() == tp {
			n++
		}
	}
	return n
}

func (q *memStorage) Len() int { q.mu.Lock(); defer q.mu.Unlock(); return len(q.entries) }

func (q *memStorage) HasRoom(int64) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.limit == 0 || len(q.entries) < q.limit
}

// recorder is an Observer whose waitUntil blocks until a condition holds.
type recorder struct {
	mu                                      sync.Mutex
	changed                                 chan struct{}
	sent, replayed, spilled, rejected, lost int // records
	left, failed                            int // batches
	reasons                                 []message.RejectReason
	diskFull                                []error // DiskFull calls, in order
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{})} }

func (r *recorder) update(f func()) {
	r.mu.Lock()
	f()
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

func (r *recorder) Sent(b *message.Batch, _ time.Duration) {
	r.update(func() { r.sent += len(b.Messages) })
}
func (r *recorder) Replayed(b *message.Batch, _ time.Duration) {
	r.update(func() { r.replayed += len(b.Messages) })
}
func (r *recorder) Spilled(b *message.Batch) { r.update(func() { r.spilled += len(b.Messages) }) }
func (r *recorder) Rejected(rj message.Rejected) {
	r.update(func() { r.rejected++; r.reasons = append(r.reasons, rj.Reason) })
}
func (r *recorder) DiskFull(err error)             { r.update(func() { r.diskFull = append(r.diskFull, err) }) }
func (r *recorder) Lost(b *message.Batch, _ error) { r.update(func() { r.lost += len(b.Messages) }) }
func (r *recorder) Left(*message.Batch)            { r.update(func() { r.left++ }) }
func (r *recorder) Failed(*message.Batch, error)   { r.update(func() { r.failed++ }) }

func (r *recorder) waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		r.mu.Lock()
		ok, ch := cond(), r.changed
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("timed out waiting until %s", what)
		}
	}
}

// poll waits until cond holds, checking every millisecond.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// setHeadCalls returns the number of SetHead calls that changed an entry.
func (q *memStorage) setHeadCalls() int { q.mu.Lock(); defer q.mu.Unlock(); return q.setHeads }

// stalled counts the partitions whose head failed and could not be
// stored: it waits in memory, neither in flight nor being spilled, for the
// next retry tick. A test that ticks to retry such a batch waits for this
// first: a tick while its send or spill is still going leaves it stalled
// until the tick after.
func (h *harness) stalled() int {
	n := 0
	for _, p := range h.d.snapshot() {
		p.mu.Lock()
		if p.stalled {
			n++
		}
		p.mu.Unlock()
	}
	return n
}

// calls returns the number of Produce calls so far.
func (k *fakeKafka) calls() int { k.mu.Lock(); defer k.mu.Unlock(); return len(k.perCall) }

// manualClock fires its timers only when the test says so.
type manualClock struct {
	mu  sync.Mutex
	fns []func()
}

type manualTimer struct{}

func (manualTimer) Stop() bool { return true }

func (c *manualClock) AfterFunc(_ time.Duration, f func()) Timer {
	c.mu.Lock()
	c.fns = append(c.fns, f)
	c.mu.Unlock()
	return manualTimer{}
}

// tick fires the timers set so far (the retry tick).
func (c *manualClock) tick() {
	c.mu.Lock()
	fns := c.fns
	c.fns = nil
	c.mu.Unlock()
	for _, f := range fns {
		f()
	}
}

func batch(topic string, p int32, vals ...string) message.Batch {
	msgs := make([]message.Message, len(vals))
	for i, v := range vals {
		msgs[i] = message.Message{Topic: topic, Partition: p, Value: []byte(v)}
	}
	return message.Batch{Topic: topic, Partition: p, Messages: msgs, Bytes: message.BatchSize(msgs)}
}

// tracked gives every record of b one tracker, as a sync caller's.
func tracked(b message.Batch) (message.Batch, *message.Tracker) {
	tr := message.NewTracker(len(b.Messages))
	for i := range b.Messages {
		b.Messages[i].Tracker = tr
	}
	return b, tr
}

type harness struct {
	k   *fakeKafka
	q   *memStorage
	obs *recorder
	clk *manualClock
	d   *Dispatcher
}

func newHarness(t *testing.T, cfg Config, withQueue bool) *harness {
	var q *memStorage
	if withQueue {
		q = &memStorage{}
	}
	return startHarness(t, cfg, q, true)
}

// startHarness starts a Dispatcher on q (nil: no storage), which may hold
// batches already, with Kafka up or down.
func startHarness(t *testing.T, cfg Config, q *memStorage, up bool) *harness {
	t.Helper()
	return startHarnessWith(t, cfg, q, func(k *fakeKafka) { k.up = up })
}

// newHarnessOn starts a Dispatcher on q with Kafka up, set up by setup
// before the replay of what q holds starts.
func newHarnessOn(t *testing.T, q *memStorage, setup func(k *fakeKafka)) *harness {
	t.Helper()
	return startHarnessWith(t, Config{}, q, setup)
}

// startHarnessWith starts a Dispatcher on q (nil: no storage) with a Kafka
// that setup changes first.
func startHarnessWith(t *testing.T, cfg Config, q *memStorage, setup func(k *fakeKafka)) *harness {
	t.Helper()
	h := &harness{k: newFakeKafka(), q: q, obs: newRecorder(), clk: &manualClock{}}
	setup(h.k)
	var s Storage
	if q != nil {
		s = q
	}
	cfg.RetryInterval = time.Second
	h.d = New(cfg, h.k, s, h.obs, h.clk, zap.NewNop())
	return h
}

func equal(a, b []string) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

// close closes the Dispatcher; an error fails the test.
func (h *harness) close(t *testing.T) {
	t.Helper()
	if err := h.d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// requireValues fails the test unless Kafka got exactly want on
// topic/partition, in order.
func (h *harness) requireValues(t *testing.T, topic string, partition int32, want ...string) {
	t.Helper()
	if got := h.k.values(topic, partition); !equal(got, want) {
		t.Fatalf("kafka got %v on %s/%d, want %v", got, topic, partition, want)
	}
}
