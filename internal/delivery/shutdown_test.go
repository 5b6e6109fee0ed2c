package delivery

import (
	"context"
	"testing"
)

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
