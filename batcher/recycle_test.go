package batcher

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// Batches of every length and every way of being cut leave at most
// sliceSlack spare slots in their slice, with or without a pool's free lists,
// recycled slices included; records keep their order.
func TestReadyBatchesHoldLittleSpareCapacity(t *testing.T) {
	for _, byPartition := range []bool{true, false} {
		for _, recycle := range []bool{true, false} {
			t.Run(fmt.Sprintf("collect_by_partition=%v/recycle=%v", byPartition, recycle), func(t *testing.T) {
				cfg := testConfig()
				cfg.Size = 100
				cfg.MaxBytes = 6000
				cfg.MaxMessageBytes = 6000
				cfg.MinDelay = ms(500)
				cfg.CollectByPartition = byPartition
				p, clk, sink := newTestPool(t, cfg)
				r := rand.New(rand.NewPCG(1, 2))
				seen := 0
				check := func() {
					for _, b := range sink.ready()[seen:] {
						checkBatch(t, cfg, b)
						p.Release(b)
						if recycle {
							p.Recycle(b.Messages)
						}
						seen++
					}
				}
				next := 0
				for range 400 {
					var msgs []message.Message
					maxPad := 30 + 150*r.IntN(2)
					for range 1 + r.IntN(150) {
						m := recAt(int32(r.IntN(3)), fmt.Sprintf("r%d", next), r.IntN(maxPad))
						m.Trigger = r.IntN(2000) == 0
						msgs = append(msgs, m)
						next++
					}
					mustAdd(t, p, msgs...)
					check()
					clk.Advance(ms(r.IntN(300) + 1000*r.IntN(2)*r.IntN(2)))
					check()
				}
				for _, b := range p.Shutdown(context.Background()) {
					checkBatch(t, cfg, b)
					p.Release(b)
				}
				reasons := map[message.FlushReason]int{}
				for _, b := range sink.ready() {
					reasons[b.Reason]++
				}
				for _, want := range []message.FlushReason{message.ReasonSize, message.ReasonBytes, message.ReasonMaxWait, message.ReasonMinDelay} {
					if reasons[want] == 0 {
						t.Errorf("no batch cut by %s: %v", want, reasons)
					}
				}
			})
		}
	}
}

// A full batch held back by MinDelay grows past Size out of its slice; the
// batch still has at most sliceSlack spare slots, and the next full batch
// gets a slice of Size again.
func TestAccumulatorBatchGrownPastSizeIsCopiedToItsLength(t *testing.T) {
	cfg := testConfig()
	cfg.Size = 40
	cfg.MinDelay = ms(100)
	a := NewAccumulator(cfg, "t", 0)
	var out []message.Batch
	add := func(n int, at time.Duration) {
		for i := range n {
			m := rec(fmt.Sprintf("r%d", i), 0)
			out, _ = a.Add(&m, t0.Add(at), out)
		}
	}
	add(40, 0)                 // full, nothing sent yet: ready at once
	add(40+chunkLen+3, ms(10)) // full, held back by MinDelay from the cut at 0, and more
	out = a.Tick(t0.Add(ms(100)), out)
	add(40, ms(200))
	if len(out) != 3 {
		t.Fatalf("%d batches, want 3", len(out))
	}
	for i, want := range []int{40, 40 + chunkLen + 3, 40} {
		b := out[i]
		checkBatch(t, cfg, b)
		if len(b.Messages) != want {
			t.Fatalf("batch %d: %d records, want %d", i, len(b.Messages), want)
		}
		for j := range b.Messages {
			if got := name(b.Messages[j]); got != fmt.Sprintf("r%d", j) {
				t.Fatalf("batch %d record %d is %s", i, j, got)
			}
		}
	}
}
