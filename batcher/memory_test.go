package batcher

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// memRec is record i of partition part, every one the same size.
func memRec(part int32, i int) message.Message {
	return recAt(part, fmt.Sprintf("p%dr%d", part, i), 20)
}

// With 1,000 partitions each holding a few records, the bound is reached
// with nothing in flight: a waiting Add releases the oldest batches (reason
// memory) until the accumulators hold a quarter of the pending bytes, and is
// admitted once a release frees room. Order per partition is kept.
func TestPoolMemoryReleasesOldestBatchesWhenAccumulatorsHoldMost(t *testing.T) {
	const parts, per = 1000, 3
	cfg := testConfig()
	cfg.Size = 100
	cfg.MaxWait = 10 * time.Second
	one := int64(recordBytes(new(memRec(0, 0))))
	cfg.MaxPendingBytes = parts * per * one
	p, clk, sink := newTestPool(t, cfg)
	// Partitions open in reverse order, 1 ms apart: the oldest is 999.
	for part := int32(parts - 1); part >= 0; part-- {
		var msgs []message.Message
		for i := 0; i < per; i++ {
			msgs = append(msgs, memRec(part, i))
		}
		mustAdd(t, p, msgs...)
		clk.Advance(time.Millisecond)
	}
	if got := p.held.Load(); got != cfg.MaxPendingBytes {
		t.Fatalf("accumulators hold %d bytes, want %d", got, cfg.MaxPendingBytes)
	}
	expect(t, sink)

	done := make(chan error, 1)
	late := memRec(999, per)
	go func() { done <- p.Add(context.Background(), []message.Message{late}) }()
	// A quarter of 3,000 records is 750: 750 partitions are released.
	const released = parts - parts/4
	waitFor(t, func() bool { return len(sink.ready()) == released })
	select {
	case err := <-done:
		t.Fatalf("Add returned (%v) before any room was freed", err)
	default:
	}
	batches := sink.ready()
	for i, b := range batches {
		want := int32(parts - 1 - i) // oldest first
		if b.Reason != message.ReasonMemory || b.Partition != want || len(b.Messages) != per {
			t.Fatalf("batch %d: %d/%s, want partition %d, reason memory, %d records", i, b.Partition, describe(b), want, per)
		}
		checkBatch(t, cfg, b)
	}
	if got, want := p.held.Load(), int64(parts/4*per)*one; got != want {
		t.Fatalf("accumulators hold %d bytes after the release, want %d", got, want)
	}
	if clk.Pending() != parts/4 {
		t.Fatalf("%d timers armed, want %d (released accumulators have none)", clk.Pending(), parts/4)
	}

	p.Release(batches[0]) // partition 999: room for the waiting record
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	clk.Advance(cfg.MaxWait)
	after := sink.ready()[released:]
	if len(after) != parts/4+1 {
		t.Fatalf("%d batches after max_wait, want %d", len(after), parts/4+1)
	}
	// Partition 999 goes on after its memory batch: the late record alone.
	var last message.Batch
	for _, b := range after {
		if b.Reason != message.ReasonMaxWait {
			t.Fatalf("batch %d/%s after the release, want max_wait", b.Partition, describe(b))
		}
		if b.Partition == 999 {
			last = b
		}
	}
	if got, want := describe(last), "max_wait:"+name(late); got != want {
		t.Fatalf("partition 999 after its memory batch: %s, want %s", got, want)
	}
	if got := describe(batches[0]); got != "memory:p999r0,p999r1,p999r2" {
		t.Fatalf("partition 999's memory batch: %s", got)
	}
}

// With few partitions at saturation most pending bytes are in flight: a
// waiting Add waits for a release and cuts no partial batch.
func TestPoolMemoryKeepsPartialBatchesWhenBytesAreInFlight(t *testing.T) {
	cfg := testConfig()
	cfg.Size = 3
	one := int64(recordBytes(new(memRec(0, 0))))
	cfg.MaxPendingBytes = 9 * one
	p, _, sink := newTestPool(t, cfg)
	mustAdd(t, p, memRec(0, 0), memRec(0, 1), memRec(0, 2), memRec(1, 0), memRec(1, 1), memRec(1, 2))
	// 3 of 9 in accumulators (above a quarter, not above half), 6 in flight.
	mustAdd(t, p, memRec(0, 3), memRec(1, 3), memRec(0, 4))
	done := make(chan error, 1)
	go func() { done <- p.Add(context.Background(), []message.Message{memRec(1, 4)}) }()
	waitFor(t, func() bool { p.memMu.Lock(); defer p.memMu.Unlock(); return len(p.waiters) == 1 })
	p.Release(sink.ready()[0])
	if err := <-done; err != nil { // the Add has run its memory check by now
		t.Fatal(err)
	}
	expect(t, sink, "0/size:p0r0,p0r1,p0r2", "1/size:p1r0,p1r1,p1r2")
	if got := p.held.Load(); got != 4*one {
		t.Fatalf("accumulators hold %d bytes, want %d", got, 4*one)
	}
}

// A memory batch of a topic-wide accumulator is split by partition like any
// other, each partition's records in order, and the records added later
// follow them.
func TestPoolMemoryTopicWideKeepsOrderPerPartition(t *testing.T) {
	cfg := testConfig()
	cfg.CollectByPartition = false
	one := int64(recordBytes(new(memRec(0, 0))))
	cfg.MaxPendingBytes = 4 * one
	p, clk, sink := newTestPool(t, cfg)
	mustAdd(t, p, memRec(0, 0), memRec(1, 0), memRec(0, 1), memRec(1, 1))
	done := make(chan error, 1)
	go func() { done <- p.Add(context.Background(), []message.Message{memRec(1, 2), memRec(0, 2)}) }()
	waitFor(t, func() bool { return len(sink.ready()) == 2 })
	expect(t, sink, "0/memory:p0r0,p0r1", "1/memory:p1r0,p1r1")
	p.Release(sink.ready()[0])
	p.Release(sink.ready()[1])
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	clk.Advance(cfg.MaxWait)
	expect(t, sink, "0/memory:p0r0,p0r1", "1/memory:p1r0,p1r1", "1/max_wait:p1r2", "0/max_wait:p0r2")
}
