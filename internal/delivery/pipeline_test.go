package delivery

import (
	"context"
	"fmt"
	"testing"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// TestUpToMaxInFlightBatchesOfAPartitionGoInOneSend: while a send is in
// flight, a partition's next batches queue; the next send takes up to
// MaxInFlight of them, in order, and none overlaps another send of the
// partition.
func TestUpToMaxInFlightBatchesOfAPartitionGoInOneSend(t *testing.T) {
	h := newHarness(t, Config{MaxInFlight: 3}, true)
	h.k.gate = make(chan struct{})
	var want []string
	for i := range 7 {
		v := fmt.Sprint(i)
		want = append(want, v)
		h.d.Submit(batch("t", 0, v))
	}
	h.k.openGate(nil)
	h.obs.waitUntil(t, "7 sent", func() bool { return h.obs.sent == 7 && h.obs.left == 7 })
	if err := h.d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := h.k.values("t", 0); !equal(got, want) {
		t.Fatalf("kafka got %v, want %v", got, want)
	}
	h.k.mu.Lock()
	defer h.k.mu.Unlock()
	if h.k.overlap {
		t.Fatal("two sends of one partition at once")
	}
	total, most := 0, 0
	for _, n := range h.k.perCall {
		total, most = total+n, max(most, n)
	}
	if total != 7 || most != 3 {
		t.Fatalf("batches per send = %v, want 7 in sends of at most 3, one of 3", h.k.perCall)
	}
}

// TestFailureAmongBatchesInFlightSpillsItAndThoseBehindInOrder: of three
// batches sent together, the first is acknowledged and the second fails
// half way; the rest of the second, the third and the one queued behind go
// to disk in order and are replayed in order.
func TestFailureAmongBatchesInFlightSpillsItAndThoseBehindInOrder(t *testing.T) {
	h := newHarness(t, Config{MaxInFlight: 3}, true)
	h.k.gate = make(chan struct{})
	h.d.Submit(batch("t", 0, "0"))
	h.d.Submit(batch("t", 0, "1a", "1b"))
	h.d.Submit(batch("t", 0, "2"))
	h.d.Submit(batch("t", 0, "3"))
	h.k.openGate(func() { h.k.cutAt = "1b" }) // acknowledged up to 1a, then the partition fails
	h.obs.waitUntil(t, "first send settled", func() bool { return h.obs.sent >= 1 })
	h.obs.waitUntil(t, "settled", func() bool { return h.obs.left == 4 || h.obs.replayed > 0 })
	h.clk.tick()
	h.obs.waitUntil(t, "all in kafka", func() bool { return len(h.k.values("t", 0)) == 5 })
	if err := h.d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := h.k.values("t", 0); !equal(got, []string{"0", "1a", "1b", "2", "3"}) {
		t.Fatalf("kafka got %v", got)
	}
	if h.obs.spilled == 0 {
		t.Fatal("nothing was spilled")
	}
}

func TestQueuedCountsBatchesWaitingInFlightAndTheDiskBacklog(t *testing.T) {
	h := newHarness(t, Config{MaxInFlight: 2}, true)
	h.k.gate = make(chan struct{})
	tp := message.TopicPartition{Topic: "t", Partition: 0}
	if n := h.d.Queued(tp); n != 0 {
		t.Fatalf("Queued = %d before any batch, want 0", n)
	}
	for i := range 3 {
		h.d.Submit(batch("t", 0, fmt.Sprint(i)))
	}
	if n := h.d.Queued(tp); n != 3 {
		t.Fatalf("Queued = %d with 2 in flight and 1 waiting, want 3", n)
	}
	if n := h.d.Queued(message.TopicPartition{Topic: "t", Partition: 1}); n != 0 {
		t.Fatalf("Queued of an unused partition = %d, want 0", n)
	}
	h.k.openGate(nil)
	h.obs.waitUntil(t, "3 sent", func() bool { return h.obs.sent == 3 && h.obs.left == 3 })
	if n := h.d.Queued(tp); n != 0 {
		t.Fatalf("Queued = %d after every batch was sent, want 0", n)
	}

	// A stored backlog counts as more than a full window.
	if err := h.q.Append(batch("t", 2, "stored")); err != nil {
		t.Fatal(err)
	}
	if n := h.d.Queued(message.TopicPartition{Topic: "t", Partition: 2}); n <= 2 {
		t.Fatalf("Queued = %d with a disk backlog, want more than max_in_flight 2", n)
	}
	h.close(t)
}
