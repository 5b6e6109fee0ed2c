package delivery

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

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
	h.close(t)
	h.requireValues(t, "t", 0, want0...)
	h.requireValues(t, "t", 1, want1...)
	if h.k.overlap {
		t.Fatal("two batches of one partition were in flight at once")
	}
	if h.obs.spilled != 0 || h.q.Len() != 0 {
		t.Fatalf("spilled %d records while Kafka was up", h.obs.spilled)
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
	h.close(t)
	h.requireValues(t, "t", 0, "1", "2")
}

func TestWithoutStorageAsyncKeepsBatchesAndRetries(t *testing.T) {
	h := newHarness(t, Config{}, false)
	h.k.setUp(false)
	h.d.Submit(batch("t", 2, "x"))
	h.d.Submit(batch("t", 2, "y"))
	poll(t, "the failed batch stalled", func() bool { return h.stalled() == 1 })
	h.clk.tick() // retried, still down
	poll(t, "its retry failed and stalled", func() bool { return h.stalled() == 1 })
	h.k.setUp(true)
	h.clk.tick()
	h.obs.waitUntil(t, "sent after retry", func() bool { return h.obs.sent == 2 })
	h.close(t)
	h.requireValues(t, "t", 2, "x", "y")
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
	b1, tr1 := tracked(batch("t", 0, "1"))
	b2, tr2 := tracked(batch("t", 0, "2"))
	h.d.Submit(b1)
	if err := tr1.Wait(context.Background()); err != nil {
		t.Fatalf("first batch fits on disk, Wait = %v", err)
	}
	h.d.Submit(b2)
	if err := tr2.Wait(context.Background()); !errors.Is(err, ErrNotStored) {
		t.Fatalf("Wait = %v, want ErrNotStored", err)
	}
	h.close(t)
	if h.obs.lost != 1 || h.obs.left != 2 {
		t.Fatalf("lost %d records, left %d batches", h.obs.lost, h.obs.left)
	}
}

func TestRejectedRecordsLeaveTheRestFlowing(t *testing.T) {
	h := newHarness(t, Config{}, true)
	h.k.reject["big"] = true
	b, tr := tracked(batch("t", 0, "a", "big", "c"))
	h.d.Submit(b)
	if err := tr.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.close(t)
	h.requireValues(t, "t", 0, "a", "c")
	if h.obs.rejected != 1 {
		t.Fatalf("rejected = %d", h.obs.rejected)
	}
	if h.obs.sent != 2 {
		t.Fatalf("sent = %d records, want 2: a refused record is not sent", h.obs.sent)
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
	h.close(t)
	h.requireValues(t, "t", 1, "b0", "b1", "b2", "b3", "b4")
}

func TestPartlyAcknowledgedBatchSpillsOnlyTheRest(t *testing.T) {
	h := newHarness(t, Config{}, true)
	h.k.cutAt = "c"
	b, tr := tracked(batch("t", 0, "a", "b", "c", "d"))
	h.d.Submit(b)
	if err := tr.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.obs.waitUntil(t, "rest spilled", func() bool { return h.obs.spilled == 2 && h.obs.left == 1 })
	h.clk.tick()
	h.obs.waitUntil(t, "rest replayed", func() bool { return h.obs.replayed == 2 })
	h.close(t)
	h.requireValues(t, "t", 0, "a", "b", "c", "d")
}
