package delivery

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

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
	h.clk.tick() // still down, still full: no second report
	h.d.Submit(batch("t", 0, "more"))
	h.k.setUp(true)
	h.clk.tick()
	h.obs.waitUntil(t, "replayed and room again", func() bool {
		return h.obs.replayed == 2 && h.obs.sent == 2 && len(h.obs.diskFull) == 2
	})
	if h.d.DiskFull() || h.obs.diskFull[1] != nil {
		t.Fatalf("DiskFull %v after the drain, reported %v", h.d.DiskFull(), h.obs.diskFull)
	}
	if err := h.d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestSyncBatchBehindBacklogOnFullDiskSaysDiskFull: with Kafka up, a batch
// that belongs behind its partition's backlog and finds the disk full
// fails its caller with ErrDiskFull, not as Kafka being unavailable.
func TestSyncBatchBehindBacklogOnFullDiskSaysDiskFull(t *testing.T) {
	h := newHarness(t, Config{Sync: true, EntryBytes: 1}, true)
	h.q.mu.Lock() // the replay loop is running
	h.q.limit = 1
	h.q.entries = []message.Batch{batch("t", 0, "stored")}
	h.q.mu.Unlock()
	tr := message.NewTracker(1)
	b := batch("t", 0, "new")
	b.Messages[0].Tracker = tr
	h.d.Submit(b)
	err := tr.Wait(context.Background())
	if !errors.Is(err, ErrDiskFull) || !errors.Is(err, ErrNotStored) || errors.Is(err, errDown) {
		t.Fatalf("Wait = %v, want ErrNotStored for ErrDiskFull", err)
	}
	// The replay may drain the backlog and end the state again at once, so
	// the report is checked, not the current state.
	h.obs.waitUntil(t, "the refusal reported as a full disk", func() bool {
		return len(h.obs.diskFull) > 0 && h.obs.diskFull[0] != nil
	})
	if err := h.d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestStoredBatchesOfAGonePartitionAreDeadLettered: a stored partition
// that Kafka's metadata no longer has (topic recreated with fewer
// partitions) goes to the dead-letter file, reason partition_gone, record
// by record; the other partitions replay as usual.
func TestStoredBatchesOfAGonePartitionAreDeadLettered(t *testing.T) {
	h := newHarness(t, Config{}, true)
	h.k.mu.Lock()
	h.k.partitions = map[string]int32{"t": 2}
	h.k.mu.Unlock()
	h.q.mu.Lock()
	for p := range int32(4) {
		h.q.entries = append(h.q.entries, batch("t", p, fmt.Sprintf("%d-a", p), fmt.Sprintf("%d-b", p)), batch("t", p, fmt.Sprintf("%d-c", p)))
	}
	h.q.mu.Unlock()
	h.clk.tick()
	h.obs.waitUntil(t, "replayed and dead-lettered", func() bool { return h.obs.replayed == 6 && h.obs.rejected == 6 })
	if h.q.Len() != 0 {
		t.Fatalf("%d entries left", h.q.Len())
	}
	if !slices.Equal(h.obs.reasons, slices.Repeat([]message.RejectReason{message.RejectPartitionGone}, 6)) {
		t.Fatalf("reasons %v", h.obs.reasons)
	}
	for p := range int32(2) {
		if got, want := h.k.values("t", p), []string{fmt.Sprintf("%d-a", p), fmt.Sprintf("%d-b", p), fmt.Sprintf("%d-c", p)}; !equal(got, want) {
			t.Fatalf("partition %d: %v, want %v", p, got, want)
		}
	}
	if err := h.d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}
