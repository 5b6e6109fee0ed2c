package delivery

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
	"github.com/kafkabatcher/kafkabatcherexporter/tempstorage"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var errDown = errors.New("kafka down")

// fakeKafka records what it acknowledged, per partition, in order.
type fakeKafka struct {
	mu       sync.Mutex
	up       bool
	got      map[partKey][]string
	inflight map[partKey]bool
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
}

func (k *fakeKafka) Partitions(topic string) (int32, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	n, ok := k.partitions[topic]
	return n, ok
}

func (k *fakeKafka) Leader(_ string, partition int32) int32 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.leaders[partition]
}

func newFakeKafka() *fakeKafka {
	return &fakeKafka{up: true, got: map[partKey][]string{}, inflight: map[partKey]bool{}, reject: map[string]bool{}, down: map[int32]bool{}}
}

func (k *fakeKafka) setUp(up bool) { k.mu.Lock(); k.up = up; k.mu.Unlock() }

func (k *fakeKafka) Produce(ctx context.Context, batches []*message.Batch) []Outcome {
	k.mu.Lock()
	callBytes := 0
	for _, b := range batches {
		callBytes += b.Bytes
	}
	k.maxCall = max(k.maxCall, callBytes)
	for _, b := range batches {
		pk := partKey{b.Topic, b.Partition}
		if k.inflight[pk] {
			k.overlap = true
		}
		k.inflight[pk] = true
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
	outs := make([]Outcome, len(batches))
	for i, b := range batches {
		pk := partKey{b.Topic, b.Partition}
		k.inflight[pk] = false
		if !k.up || k.down[b.Partition] || ctx.Err() != nil {
			outs[i].Err = fmt.Errorf("produce %s/%d: %w", b.Topic, b.Partition, errDown)
			continue
		}
		if k.failAfterReject > 0 && slices.ContainsFunc(b.Messages, func(m message.Message) bool { return k.reject[string(m.Value)] }) {
			k.failAfterReject--
			outs[i].Err = errDown
			for _, m := range b.Messages {
				if k.reject[string(m.Value)] {
					outs[i].Rejected = append(outs[i].Rejected, Rejected{Message: m, Reason: "invalid_record"})
				} else {
					outs[i].Remaining = append(outs[i].Remaining, m)
				}
			}
			continue
		}
		for j, m := range b.Messages {
			if k.cutAt != "" && string(m.Value) == k.cutAt {
				k.cutAt = ""
				outs[i].Err = errDown
				outs[i].Remaining = b.Messages[j:]
				break
			}
			if k.reject[string(m.Value)] {
				outs[i].Rejected = append(outs[i].Rejected, Rejected{Message: m, Reason: "message_too_large"})
				continue
			}
			k.got[pk] = append(k.got[pk], string(m.Value))
			k.order = append(k.order, string(m.Value))
		}
	}
	return outs
}

func (k *fakeKafka) values(topic string, p int32) []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.got[partKey{topic, p}]...)
}

// memQueue is an in-memory Queue.
type memQueue struct {
	mu      sync.Mutex
	entries []message.Batch
	limit   int           // entries; 0 = unbounded
	gate    chan struct{} // when set, Append waits on it (a slow disk)
	waiting chan struct{} // when set, told each time an Append waits on gate
}

func (q *memQueue) Append(b message.Batch) error {
	if q.gate != nil {
		if q.waiting != nil {
			q.waiting <- struct{}{}
		}
		<-q.gate
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.limit > 0 && len(q.entries) >= q.limit {
		return tempstorage.ErrFull
	}
	q.entries = append(q.entries, b)
	return nil
}

// head is the index of the partition's oldest entry, or -1.
func (q *memQueue) head(topic string, partition int32) int {
	for i, b := range q.entries {
		if b.Topic == topic && b.Partition == partition {
			return i
		}
	}
	return -1
}

func (q *memQueue) Peek(topic string, partition int32) (message.Batch, bool, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	i := q.head(topic, partition)
	if i < 0 {
		return message.Batch{}, false, nil
	}
	return q.entries[i], true, nil
}

func (q *memQueue) Ack(topic string, partition int32) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if i := q.head(topic, partition); i >= 0 {
		q.entries = append(q.entries[:i], q.entries[i+1:]...)
	}
	return nil
}

func (q *memQueue) Partitions() []tempstorage.Partition {
	q.mu.Lock()
	defer q.mu.Unlock()
	var ps []tempstorage.Partition
	for _, b := range q.entries {
		p := tempstorage.Partition{Topic: b.Topic, Partition: b.Partition}
		if !slices.Contains(ps, p) {
			ps = append(ps, p)
		}
	}
	slices.SortFunc(ps, tempstorage.Partition.Compare)
	return ps
}

func (q *memQueue) Backlog(topic string, partition int32) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for _, b := range q.entries {
		if b.Topic == topic && b.Partition == partition {
			n++
		}
	}
	return n
}

func (q *memQueue) Len() int { q.mu.Lock(); defer q.mu.Unlock(); return len(q.entries) }

func (q *memQueue) HasRoom(int64) bool {
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
func (r *recorder) Rejected(rj Rejected) {
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

type harness struct {
	k   *fakeKafka
	q   *memQueue
	obs *recorder
	clk *manualClock
	d   *Dispatcher
}

func newHarness(t *testing.T, cfg Config, withQueue bool) *harness {
	h := &harness{k: newFakeKafka(), obs: newRecorder(), clk: &manualClock{}}
	var q Queue
	if withQueue {
		h.q = &memQueue{}
		q = h.q
	}
	cfg.RetryInterval = time.Second
	h.d = New(cfg, h.k, q, h.obs, h.clk, zap.NewNop())
	return h
}

func equal(a, b []string) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

func TestHealthyDeliveryKeepsOrderPerPartition(t *testing.T) {
	h := newHarness(t, Config{}, true)
	var want0, want1 []string
	for i := 0; i < 50; i++ {
		v0, v1 := fmt.Sprintf("a%d", i), fmt.Sprintf("b%d", i)
		want0, want1 = append(want0, v0), append(want1, v1)
		h.d.Submit(batch("t", 0, v0))
		h.d.Submit(batch("t", 1, v1))
	}
	h.obs.waitUntil(t, "100 sent", func() bool { return h.obs.sent == 100 && h.obs.left == 100 })
	if err := h.d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := h.k.values("t", 0); !equal(got, want0) {
		t.Fatalf("partition 0 = %v, want %v", got, want0)
	}
	if got := h.k.values("t", 1); !equal(got, want1) {
		t.Fatalf("partition 1 = %v, want %v", got, want1)
	}
	if h.k.overlap {
		t.Fatal("two batches of one partition were in flight at once")
	}
	if h.obs.spilled != 0 || h.q.Len() != 0 {
		t.Fatalf("spilled %d records while Kafka was up", h.obs.spilled)
	}
}

func TestOutageSpillsThenReplaysInOrder(t *testing.T) {
	h := newHarness(t, Config{}, true)
	h.k.setUp(false)
	h.d.Submit(batch("t", 0, "1", "2"))
	h.obs.waitUntil(t, "first batch spilled", func() bool { return h.obs.spilled == 2 })
	// With a backlog on disk, new batches go straight behind it.
	h.d.Submit(batch("t", 0, "3"))
	h.d.Submit(batch("t", 0, "4", "5"))
	h.obs.waitUntil(t, "all spilled", func() bool { return h.obs.spilled == 5 && h.obs.left == 3 })
	if h.q.Backlog("t", 0) != 3 {
		t.Fatalf("backlog = %d entries, want 3", h.q.Backlog("t", 0))
	}
	h.k.setUp(true)
	h.clk.tick()
	h.obs.waitUntil(t, "replayed", func() bool { return h.obs.replayed == 5 })
	h.d.Submit(batch("t", 0, "6"))
	h.obs.waitUntil(t, "sent after backlog", func() bool { return h.obs.sent == 1 })
	if err := h.d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := h.k.values("t", 0); !equal(got, []string{"1", "2", "3", "4", "5", "6"}) {
		t.Fatalf("kafka got %v", got)
	}
}

func TestBatchesSubmittedDuringFailedSendQueueBehindIt(t *testing.T) {
	h := newHarness(t, Config{}, true)
	h.k.setUp(false)
	h.k.gate = make(chan struct{})
	h.d.Submit(batch("t", 0, "1"))
	h.d.Submit(batch("t", 0, "2")) // waits in memory behind the in-flight "1"
	close(h.k.gate)
	h.obs.waitUntil(t, "both spilled", func() bool { return h.obs.spilled == 2 })
	h.k.mu.Lock()
	h.k.gate = nil
	h.k.up = true
	h.k.mu.Unlock()
	h.clk.tick()
	h.obs.waitUntil(t, "replayed", func() bool { return h.obs.replayed == 2 })
	if err := h.d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := h.k.values("t", 0); !equal(got, []string{"1", "2"}) {
		t.Fatalf("kafka got %v", got)
	}
}

func TestWithoutStorageAsyncKeepsBatchesAndRetries(t *testing.T) {
	h := newHarness(t, Config{}, false)
	h.k.setUp(false)
	h.d.Submit(batch("t", 2, "x"))
	h.d.Submit(batch("t", 2, "y"))
	h.clk.tick() // retried, still down
	h.k.setUp(true)
	h.clk.tick()
	h.obs.waitUntil(t, "sent after retry", func() bool { return h.obs.sent == 2 })
	if err := h.d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := h.k.values("t", 2); !equal(got, []string{"x", "y"}) {
		t.Fatalf("kafka got %v", got)
	}
	if h.obs.lost != 0 {
		t.Fatalf("lost %d", h.obs.lost)
	}
}

func TestSyncFailsCallerWhenNeitherKafkaNorDisk(t *testing.T) {
	h := newHarness(t, Config{Sync: true}, true)
	h.q.mu.Lock() // the replay loop is running
	h.q.limit = 1
	h.q.mu.Unlock()
	h.k.setUp(false)
	tr1, tr2 := message.NewTracker(1), message.NewTracker(1)
	b1, b2 := batch("t", 0, "1"), batch("t", 0, "2")
	b1.Messages[0].Tracker, b2.Messages[0].Tracker = tr1, tr2
	h.d.Submit(b1)
	if err := tr1.Wait(context.Background()); err != nil {
		t.Fatalf("first batch fits on disk, Wait = %v", err)
	}
	h.d.Submit(b2)
	if err := tr2.Wait(context.Background()); !errors.Is(err, ErrNotStored) {
		t.Fatalf("Wait = %v, want ErrNotStored", err)
	}
	if err := h.d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if h.obs.lost != 1 || h.obs.left != 2 {
		t.Fatalf("lost %d records, left %d batches", h.obs.lost, h.obs.left)
	}
}

func TestRejectedRecordsLeaveTheRestFlowing(t *testing.T) {
	h := newHarness(t, Config{}, true)
	h.k.reject["big"] = true
	tr := message.NewTracker(3)
	b := batch("t", 0, "a", "big", "c")
	for i := range b.Messages {
		b.Messages[i].Tracker = tr
	}
	h.d.Submit(b)
	if err := tr.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := h.d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := h.k.values("t", 0); !equal(got, []string{"a", "c"}) {
		t.Fatalf("kafka got %v", got)
	}
	if h.obs.rejected != 1 {
		t.Fatalf("rejected = %d", h.obs.rejected)
	}
	if h.obs.sent != 2 {
		t.Fatalf("sent = %d records, want 2: a refused record is not sent", h.obs.sent)
	}
}

func TestCloseSpillsWhatKafkaDoesNotTake(t *testing.T) {
	h := newHarness(t, Config{}, true)
	h.k.setUp(false)
	h.k.gate = make(chan struct{}) // the send hangs until Close gives up
	h.d.Submit(batch("t", 0, "1"))
	h.d.Submit(batch("t", 0, "2"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := h.d.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if h.q.Len() != 2 || h.obs.spilled != 2 || h.obs.left != 2 {
		t.Fatalf("queue %d entries, spilled %d, left %d", h.q.Len(), h.obs.spilled, h.obs.left)
	}
}

func TestCloseWithoutStorageReportsLoss(t *testing.T) {
	h := newHarness(t, Config{}, false)
	h.k.setUp(false)
	h.d.Submit(batch("t", 0, "1", "2"))
	h.obs.waitUntil(t, "send failed", func() bool { return h.obs.failed == 1 })
	err := h.d.Close(context.Background())
	if err == nil || h.obs.lost != 2 || h.obs.left != 1 {
		t.Fatalf("Close = %v, lost %d, left %d", err, h.obs.lost, h.obs.left)
	}
}

func TestStoredBacklogAtStartIsReplayedBeforeNewBatches(t *testing.T) {
	k, obs, clk := newFakeKafka(), newRecorder(), &manualClock{}
	q := &memQueue{}
	_ = q.Append(batch("t", 0, "old1"))
	_ = q.Append(batch("t", 0, "old2"))
	k.setUp(false)
	d := New(Config{RetryInterval: time.Second}, k, q, obs, clk, zap.NewNop())
	d.Submit(batch("t", 0, "new"))
	obs.waitUntil(t, "new batch behind backlog", func() bool { return obs.spilled == 1 })
	k.setUp(true)
	clk.tick()
	obs.waitUntil(t, "replayed", func() bool { return obs.replayed == 3 })
	if err := d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := k.values("t", 0); !equal(got, []string{"old1", "old2", "new"}) {
		t.Fatalf("kafka got %v", got)
	}
}

func TestPartitionKafkaRefusesDoesNotHoldUpReplayOfOthers(t *testing.T) {
	h := newHarness(t, Config{}, true)
	h.k.setUp(false)
	h.d.Submit(batch("t", 0, "a1"))
	h.d.Submit(batch("t", 1, "b1"))
	h.obs.waitUntil(t, "both spilled", func() bool { return h.obs.spilled == 2 })
	h.d.Submit(batch("t", 0, "a2"))
	h.d.Submit(batch("t", 1, "b2"))
	h.obs.waitUntil(t, "behind their backlogs", func() bool { return h.obs.spilled == 4 })

	// Kafka is back, but partition 0 still fails: partition 1 drains.
	h.k.mu.Lock()
	h.k.up, h.k.down[0] = true, true
	h.k.mu.Unlock()
	h.clk.tick()
	h.obs.waitUntil(t, "partition 1 replayed", func() bool { return h.obs.replayed == 2 })
	h.d.Submit(batch("t", 1, "b3"))
	h.obs.waitUntil(t, "partition 1 sent directly", func() bool { return h.obs.sent == 1 })
	if n := h.q.Backlog("t", 0); n != 2 {
		t.Fatalf("partition 0 backlog = %d, want 2", n)
	}

	h.k.mu.Lock()
	h.k.down[0] = false
	h.k.mu.Unlock()
	h.clk.tick()
	h.obs.waitUntil(t, "partition 0 replayed", func() bool { return h.obs.replayed == 4 })
	if err := h.d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := h.k.values("t", 0); !equal(got, []string{"a1", "a2"}) {
		t.Fatalf("partition 0 = %v", got)
	}
	if got := h.k.values("t", 1); !equal(got, []string{"b1", "b2", "b3"}) {
		t.Fatalf("partition 1 = %v", got)
	}
}

func TestReplayRoundsStayWithinTheirMemoryBound(t *testing.T) {
	h := newHarness(t, Config{}, true)
	h.k.setUp(false)
	big := strings.Repeat("x", 1<<20)
	const parts = 12 // 12 MiB stored, more than one round
	for p := int32(0); p < parts; p++ {
		if err := h.q.Append(batch("t", p, big)); err != nil {
			t.Fatal(err)
		}
	}
	h.k.setUp(true)
	h.clk.tick()
	h.obs.waitUntil(t, "all replayed", func() bool { return h.obs.replayed == parts })
	if err := h.d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.k.mu.Lock()
	defer h.k.mu.Unlock()
	if h.k.maxCall > maxReplayBytes || h.k.maxCall < maxReplayBytes/2 {
		t.Fatalf("largest replay call %d bytes, want at most %d (and rounds filled)", h.k.maxCall, maxReplayBytes)
	}
}

func TestReplayRoundsTakeTurnsAcrossPartitions(t *testing.T) {
	h := newHarness(t, Config{}, true)
	h.k.setUp(false)
	// 12 partitions with 3 batches of 1 MiB: a round holds 7 of them.
	pad := strings.Repeat("x", 1<<20)
	const parts, each = 12, 3
	for j := 0; j < each; j++ {
		for p := int32(0); p < parts; p++ {
			if err := h.q.Append(batch("t", p, fmt.Sprintf("p%d-%d-%s", p, j, pad))); err != nil {
				t.Fatal(err)
			}
		}
	}
	h.k.setUp(true)
	h.clk.tick()
	h.obs.waitUntil(t, "all replayed", func() bool { return h.obs.replayed == parts*each })
	if err := h.d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.k.mu.Lock()
	defer h.k.mu.Unlock()
	lastFirst, firstThird := -1, len(h.k.order)
	for i, v := range h.k.order {
		var p, j int
		if _, err := fmt.Sscanf(v, "p%d-%d-", &p, &j); err != nil {
			t.Fatal(err)
		}
		if j == 0 {
			lastFirst = i
		}
		if j == 2 && i < firstThird {
			firstThird = i
		}
	}
	if lastFirst > firstThird {
		var seq []string
		for _, v := range h.k.order {
			seq = append(seq, v[:6])
		}
		t.Fatalf("a partition's third batch went before another partition's first: %v", seq)
	}
}

func TestSlowBrokerDoesNotHoldUpPartitionsOfOthers(t *testing.T) {
	h := newHarness(t, Config{}, true)
	release := make(chan struct{})
	h.k.mu.Lock()
	h.k.leaders = map[int32]int32{0: 1, 1: 2}
	h.k.slow = map[int32]chan struct{}{1: release}
	h.k.mu.Unlock()
	h.d.Submit(batch("t", 0, "a1"))
	for i := 0; i < 5; i++ {
		h.d.Submit(batch("t", 1, fmt.Sprintf("b%d", i)))
	}
	h.obs.waitUntil(t, "partition 1 sent while broker 1 hangs", func() bool { return h.obs.sent == 5 })
	if got := h.k.values("t", 0); len(got) != 0 {
		t.Fatalf("partition 0 = %v before its broker answered", got)
	}
	close(release)
	h.obs.waitUntil(t, "partition 0 sent", func() bool { return h.obs.sent == 6 })
	if err := h.d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := h.k.values("t", 1); !equal(got, []string{"b0", "b1", "b2", "b3", "b4"}) {
		t.Fatalf("partition 1 = %v", got)
	}
}

// A replay that Kafka answers with a rejected record and then a failure
// sends only the others again: the rejected record is dead-lettered once.
func TestReplayAfterPartialRejectionSendsOnlyTheRest(t *testing.T) {
	h := newHarness(t, Config{}, true)
	h.k.setUp(false)
	h.d.Submit(batch("t", 0, "a", "X", "b"))
	h.obs.waitUntil(t, "spilled", func() bool { return h.obs.spilled == 3 })
	h.k.mu.Lock()
	h.k.up, h.k.reject["X"], h.k.failAfterReject = true, true, 1
	h.k.mu.Unlock()
	h.clk.tick()
	h.obs.waitUntil(t, "X rejected", func() bool { return h.obs.rejected == 1 })
	h.clk.tick()
	h.obs.waitUntil(t, "the rest replayed", func() bool { return h.obs.replayed == 2 })
	if err := h.d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if h.obs.rejected != 1 {
		t.Fatalf("X rejected %d times, want once", h.obs.rejected)
	}
	if got := h.k.values("t", 0); !equal(got, []string{"a", "b"}) {
		t.Fatalf("kafka got %v", got)
	}
}

func TestSlowSpillOfOnePartitionDoesNotHoldUpAnother(t *testing.T) {
	h := newHarness(t, Config{}, true)
	h.k.down[0] = true
	h.q.gate = make(chan struct{})
	h.q.waiting = make(chan struct{}, 1)
	h.d.Submit(batch("t", 0, "stuck"))
	<-h.q.waiting
	// Partition 0's send failed and its spill waits on the disk; partition 1
	// is sent meanwhile.
	h.d.Submit(batch("t", 1, "free"))
	h.obs.waitUntil(t, "partition 1 sent", func() bool { return h.obs.sent == 1 })
	if h.obs.spilled != 0 {
		t.Fatalf("spilled %d before the disk answered", h.obs.spilled)
	}
	close(h.q.gate)
	h.obs.waitUntil(t, "partition 0 spilled", func() bool { return h.obs.spilled == 1 })
	if err := h.d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := h.k.values("t", 1); !equal(got, []string{"free"}) {
		t.Fatalf("partition 1 = %v", got)
	}
}

func TestPartlyAcknowledgedBatchSpillsOnlyTheRest(t *testing.T) {
	h := newHarness(t, Config{}, true)
	h.k.cutAt = "c"
	tr := message.NewTracker(4)
	b := batch("t", 0, "a", "b", "c", "d")
	for i := range b.Messages {
		b.Messages[i].Tracker = tr
	}
	h.d.Submit(b)
	if err := tr.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.obs.waitUntil(t, "rest spilled", func() bool { return h.obs.spilled == 2 && h.obs.left == 1 })
	h.clk.tick()
	h.obs.waitUntil(t, "rest replayed", func() bool { return h.obs.replayed == 2 })
	if err := h.d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := h.k.values("t", 0); !equal(got, []string{"a", "b", "c", "d"}) {
		t.Fatalf("kafka got %v, want each record once in order", got)
	}
}
