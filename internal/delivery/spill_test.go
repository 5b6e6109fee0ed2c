package delivery

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

func TestOutageSpillsThenReplaysInOrder(t *testing.T) {
	h := newHarness(t, Config{}, true)
	h.k.setUp(false)
	h.d.Submit(batch("t", 0, "1", "2"))
	h.obs.waitUntil(t, "first batch spilled", func() bool { return h.obs.spilled == 2 })
	// With a backlog on disk, new batches go straight behind it.
	h.d.Submit(batch("t", 0, "3"))
	h.d.Submit(batch("t", 0, "4", "5"))
	h.obs.waitUntil(t, "all spilled", func() bool { return h.obs.spilled == 5 && h.obs.left == 3 })
	if h.q.Backlog(message.TopicPartition{Topic: "t", Partition: 0}) != 3 {
		t.Fatalf("backlog = %d entries, want 3", h.q.Backlog(message.TopicPartition{Topic: "t", Partition: 0}))
	}
	h.k.setUp(true)
	h.clk.tick()
	h.obs.waitUntil(t, "replayed", func() bool { return h.obs.replayed == 5 })
	h.d.Submit(batch("t", 0, "6"))
	h.obs.waitUntil(t, "sent after backlog", func() bool { return h.obs.sent == 1 })
	h.close(t)
	h.requireValues(t, "t", 0, "1", "2", "3", "4", "5", "6")
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
	h.close(t)
	h.requireValues(t, "t", 1, "free")
}

// TestDiskFullIsItsOwnState: the first batch the storage refuses for lack
// of space makes the disk full (once, with ErrDiskFull); replay frees the
// space and the retry tick sees room: the state ends (once).
func TestDiskFullIsItsOwnState(t *testing.T) {
	h := newHarness(t, Config{EntryBytes: 1}, true)
	h.q.mu.Lock() // the replay loop is running
	h.q.limit = 2
	h.q.mu.Unlock()
	h.k.setUp(false)
	for i := range 3 {
		h.d.Submit(batch("t", int32(i), fmt.Sprint(i)))
	}
	h.obs.waitUntil(t, "two spilled, one refused", func() bool { return h.obs.spilled == 2 && len(h.obs.diskFull) == 1 })
	if !h.d.DiskFull() || !errors.Is(h.obs.diskFull[0], ErrDiskFull) {
		t.Fatalf("DiskFull %v, reported %v", h.d.DiskFull(), h.obs.diskFull)
	}
	// The refusal is reported before the refused batch stalls, and a retry
	// fails after the tick that started it returns: each tick waits for the
	// stall it is to end, or the batch would wait for a tick after the last.
	poll(t, "the refused batch stalled", func() bool { return h.stalled() == 1 })
	h.clk.tick() // still down, still full: no second report
	poll(t, "its retry failed and stalled", func() bool { return h.stalled() == 1 })
	h.d.Submit(batch("t", 0, "more"))
	h.k.setUp(true)
	h.clk.tick()
	h.obs.waitUntil(t, "replayed and room again", func() bool {
		return h.obs.replayed == 2 && h.obs.sent == 2 && len(h.obs.diskFull) == 2
	})
	if h.d.DiskFull() || h.obs.diskFull[1] != nil {
		t.Fatalf("DiskFull %v after the drain, reported %v", h.d.DiskFull(), h.obs.diskFull)
	}
	h.close(t)
}

// TestSyncBatchBehindBacklogOnFullDiskSaysDiskFull: with Kafka up, a batch
// that belongs behind its partition's backlog and finds the disk full
// fails its caller with ErrDiskFull, not as Kafka being unavailable.
func TestSyncBatchBehindBacklogOnFullDiskSaysDiskFull(t *testing.T) {
	h := newHarness(t, Config{Sync: true, EntryBytes: 1}, true)
	// The replay started by New may not have run yet: were it to take the
	// stored batch now, there would be no backlog to queue behind.
	gate := make(chan struct{})
	h.k.mu.Lock()
	h.k.gate = gate
	h.k.mu.Unlock()
	h.q.mu.Lock() // the replay loop is running
	h.q.limit = 1
	h.q.entries = []message.Batch{batch("t", 0, "stored")}
	h.q.mu.Unlock()
	b, tr := tracked(batch("t", 0, "new"))
	h.d.Submit(b)
	err := tr.Wait(context.Background())
	close(gate)
	if !errors.Is(err, ErrDiskFull) || !errors.Is(err, ErrNotStored) || errors.Is(err, errDown) {
		t.Fatalf("Wait = %v, want ErrNotStored for ErrDiskFull", err)
	}
	// The replay may drain the backlog and end the state again at once, so
	// the report is checked, not the current state.
	h.obs.waitUntil(t, "the refusal reported as a full disk", func() bool {
		return len(h.obs.diskFull) > 0 && h.obs.diskFull[0] != nil
	})
	h.close(t)
}
