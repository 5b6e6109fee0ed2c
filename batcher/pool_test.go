package batcher

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

func TestPoolBatchSize30PerPartition(t *testing.T) {
	cfg := testConfig()
	cfg.Size = 30
	p, _, sink := newTestPool(t, cfg)
	var msgs []message.Message
	var want [2][]string
	for i := 0; i < 59; i++ {
		part := int32(i % 2)
		n := fmt.Sprintf("p%dr%d", part, i/2)
		msgs = append(msgs, recAt(part, n, 0))
		if len(want[part]) < 30 {
			want[part] = append(want[part], n)
		}
	}
	mustAdd(t, p, msgs[:40]...)
	expect(t, sink)
	mustAdd(t, p, msgs[40:]...)
	// Partition 0 reached 30 records; partition 1 has 29.
	expect(t, sink, "0/size:"+joinNames(want[0]))
	mustAdd(t, p, recAt(1, "last", 0))
	expect(t, sink, "0/size:"+joinNames(want[0]), "1/size:"+joinNames(append(want[1][:29], "last")))
	if got := p.PendingRecords(); got != 60 {
		t.Fatalf("PendingRecords = %d before Release, want 60", got)
	}
	for _, b := range sink.batches {
		p.Release(b)
	}
	if p.PendingRecords() != 0 || p.PendingBytes() != 0 {
		t.Fatalf("after Release: %d records, %d bytes pending", p.PendingRecords(), p.PendingBytes())
	}
}

func TestPoolMaxWaitTimer(t *testing.T) {
	cfg := testConfig()
	cfg.MaxWait = ms(50)
	p, clk, sink := newTestPool(t, cfg)
	mustAdd(t, p, recAt(0, "a", 0))
	if clk.Pending() != 1 {
		t.Fatalf("%d timers armed, want 1", clk.Pending())
	}
	clk.Advance(ms(49))
	expect(t, sink)
	mustAdd(t, p, recAt(0, "b", 0)) // does not reset the timer
	clk.Advance(ms(1))
	expect(t, sink, "0/max_wait:a,b")
	if !sink.at[0].Equal(t0.Add(ms(50))) {
		t.Fatalf("released at %v, want t0+50ms", sink.at[0].Sub(t0))
	}
	if clk.Pending() != 0 {
		t.Fatalf("%d timers armed with nothing pending", clk.Pending())
	}
}

func TestPoolMinDelayReleasedByTimer(t *testing.T) {
	cfg := testConfig()
	cfg.Size = 2
	cfg.MinDelay = ms(200)
	p, clk, sink := newTestPool(t, cfg)
	sink.ackEach(p)
	mustAdd(t, p, recAt(0, "a", 0), recAt(0, "b", 0))
	expect(t, sink, "0/size:a,b")
	for _, n := range []string{"c", "d", "e", "f", "g"} {
		clk.Advance(ms(10))
		mustAdd(t, p, recAt(0, n, 0))
	}
	expect(t, sink, "0/size:a,b")
	clk.Advance(ms(149))
	expect(t, sink, "0/size:a,b")
	clk.Advance(ms(1))
	expect(t, sink, "0/size:a,b", "0/min_delay:c,d,e,f,g")
	if got := sink.at[1].Sub(t0); got != ms(200) {
		t.Fatalf("min_delay batch released at %v, want 200ms", got)
	}
}

func TestPoolOversizeRejectedNextRecordGetsTimer(t *testing.T) {
	cfg := testConfig()
	cfg.MaxMessageBytes, cfg.MaxBytes, cfg.MaxWait = 300, 300, ms(50)
	p, clk, sink := newTestPool(t, cfg)
	mustAdd(t, p, recAt(0, "big", 1000))
	if len(sink.rejected) != 1 || name(sink.rejected[0]) != "big" || sink.reasons[0] != message.RejectOversize {
		t.Fatalf("rejected %v %v", sink.rejected, sink.reasons)
	}
	if p.PendingBytes() != 0 || p.PendingRecords() != 0 || clk.Pending() != 0 {
		t.Fatalf("oversize record left %d bytes, %d records, %d timers", p.PendingBytes(), p.PendingRecords(), clk.Pending())
	}
	clk.Advance(ms(5))
	mustAdd(t, p, recAt(0, "a", 0), recAt(0, "big2", 1000), recAt(0, "b", 0))
	clk.Advance(ms(50))
	expect(t, sink, "0/max_wait:a,b")
	if len(sink.rejected) != 2 {
		t.Fatalf("%d rejected, want 2", len(sink.rejected))
	}
}

func TestPoolTrigger(t *testing.T) {
	p, _, sink := newTestPool(t, testConfig())
	a, b := recAt(0, "a", 0), recAt(0, "b", 0)
	b.Trigger = true
	mustAdd(t, p, a, recAt(1, "other", 0), b)
	expect(t, sink, "0/trigger:a,b")
}

func TestPoolTopicWideSplitsByPartition(t *testing.T) {
	cfg := testConfig()
	cfg.CollectByPartition = false
	cfg.Size = 6
	p, clk, sink := newTestPool(t, cfg)
	var msgs []message.Message
	for i, part := range []int32{2, 0, 2, 1, 0, 2} {
		m := recAt(part, fmt.Sprintf("r%d", i), 0)
		m.Topic = "t"
		m.Timestamp = t0.Add(ms(i * 100))
		msgs = append(msgs, m)
	}
	mustAdd(t, p, msgs...)
	expect(t, sink, "2/size:r0,r2,r5", "0/size:r1,r4", "1/size:r3")
	for _, b := range sink.batches {
		checkBatch(t, cfg, b)
		for _, m := range b.Messages {
			if m.Partition != b.Partition {
				t.Fatalf("record of partition %d in batch of %d", m.Partition, b.Partition)
			}
		}
	}
	// One accumulator per topic: 5 records of any partitions wait together.
	mustAdd(t, p, recAt(0, "s0", 0), recAt(5, "s1", 0))
	if clk.Pending() != 1 {
		t.Fatalf("%d timers, want one for the topic", clk.Pending())
	}
	clk.Advance(time.Second)
	expect(t, sink, "2/size:r0,r2,r5", "0/size:r1,r4", "1/size:r3", "0/max_wait:s0", "5/max_wait:s1")
}

// A split part can encode larger than the whole batch when its first record's
// timestamp is far from the others; it is re-cut to stay within max_bytes.
func TestSplitRecutsToMaxBytes(t *testing.T) {
	cfg := testConfig()
	cfg.CollectByPartition = false
	cfg.MaxBytes = 300
	p, _, _ := newTestPool(t, cfg)
	far := t0.Add(100 * 365 * 24 * time.Hour)
	var msgs []message.Message
	for i := 0; i < 20; i++ {
		m := recAt(min(int32(i), 1), fmt.Sprintf("r%d", i), 10) // r0 alone in partition 0
		if i == 1 {
			m.Timestamp = far // first record of partition 1
		}
		msgs = append(msgs, m)
	}
	// Build the topic-wide batch the accumulator would make, as large as fits.
	var whole []message.Message
	for _, m := range msgs {
		if message.BatchSize(append(whole[:len(whole):len(whole)], m)) > cfg.MaxBytes {
			break
		}
		whole = append(whole, m)
	}
	b := message.Batch{Topic: "t", Partition: -1, Messages: whole, Bytes: message.BatchSize(whole), Reason: message.ReasonBytes}
	parts := p.appendSplit(nil, b)
	n := 0
	for _, part := range parts {
		checkBatch(t, cfg, part)
		n += len(part.Messages)
	}
	if n != len(whole) {
		t.Fatalf("split kept %d of %d records", n, len(whole))
	}
	if len(parts) < 3 {
		t.Fatalf("expected partition 1 to be re-cut, got %d parts", len(parts))
	}
}

func TestPoolMemoryBound(t *testing.T) {
	cfg := testConfig()
	cfg.Size = 2
	one := int64(recordBytes(&message.Message{Value: []byte("a"), Timestamp: t0}))
	cfg.MaxPendingBytes = 4 * one
	p, _, _ := newTestPool(t, cfg)
	mustAdd(t, p, recAt(0, "a", 0), recAt(0, "b", 0), recAt(1, "c", 0))
	if got := p.PendingBytes(); got != 3*one {
		t.Fatalf("PendingBytes = %d, want %d", got, 3*one)
	}

	// Two more records do not fit: the call waits, then fails whole.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err := p.Add(ctx, []message.Message{recAt(1, "d", 0), recAt(1, "e", 0)})
	if !errors.Is(err, ErrMemoryLimit) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Add at the bound = %v, want ErrMemoryLimit and DeadlineExceeded", err)
	}
	if p.PendingRecords() != 3 {
		t.Fatalf("a failed Add left %d records pending, want 3", p.PendingRecords())
	}

	// Waiting Adds are admitted first come first served, as Release frees
	// room: f would fit now but must not pass d,e, which waits for room.
	q, _, qsink := newTestPool(t, cfg)
	a, b, c := recAt(0, "a", 20), recAt(0, "b", 20), recAt(1, "c", 0)
	d, e, f := recAt(3, "d", 30), recAt(3, "e", 30), recAt(4, "f", 40)
	r := func(m message.Message) int64 { return int64(recordBytes(&m)) }
	q.cfg.MaxPendingBytes = r(a) + r(b) + r(c) + r(f)
	if D := r(d) + r(e); D <= r(a)+r(b) || D > r(a)+r(b)+r(f) || D <= r(f) {
		t.Fatalf("sizes do not make the scenario: a,b=%d d,e=%d f=%d", r(a)+r(b), D, r(f))
	}
	mustAdd(t, q, a, b, c)
	deDone, fDone := make(chan error, 1), make(chan error, 1)
	go func() { deDone <- q.Add(context.Background(), []message.Message{d, e}) }()
	waitFor(t, func() bool { q.memMu.Lock(); defer q.memMu.Unlock(); return len(q.waiters) == 1 })
	go func() { fDone <- q.Add(context.Background(), []message.Message{f}) }()
	waitFor(t, func() bool { q.memMu.Lock(); defer q.memMu.Unlock(); return len(q.waiters) == 2 })
	q.Release(qsink.batches[0]) // a,b: room for d,e, not for f after it
	if err := <-deDone; err != nil {
		t.Fatal(err)
	}
	// Release grants synchronously: f is still in line.
	q.memMu.Lock()
	waiting := len(q.waiters)
	q.memMu.Unlock()
	if waiting != 1 {
		t.Fatalf("%d Adds waiting after the release, want f alone", waiting)
	}
	expect(t, qsink, "0/size:a,b", "3/size:d,e")
	q.Release(qsink.batches[1])
	if err := <-fDone; err != nil {
		t.Fatal(err)
	}
	if got, want := q.PendingBytes(), r(c)+r(f); got != want {
		t.Fatalf("PendingBytes = %d, want %d (c and f)", got, want)
	}
	// A call larger than the whole bound is taken when nothing is pending.
	z, _, zs := newTestPool(t, cfg)
	var big []message.Message
	for i := 0; i < 10; i++ {
		big = append(big, recAt(0, fmt.Sprintf("r%d", i), 0))
	}
	mustAdd(t, z, big...)
	if len(zs.batches) != 5 {
		t.Fatalf("%d batches from an oversized call, want 5", len(zs.batches))
	}
}

func TestPoolShutdown(t *testing.T) {
	cfg := testConfig()
	cfg.Size = 3
	// A batch in flight holds most of the pending bytes, so the waiting Add
	// below releases nothing early (the memory rule).
	flight := []message.Message{recAt(5, "f", 20), recAt(5, "g", 20), recAt(5, "h", 20)}
	pending := []message.Message{recAt(0, "a", 0), recAt(1, "b", 0), recAt(0, "c", 0)}
	big := []message.Message{recAt(2, "w", 490)}
	var held int
	for _, m := range append(slices.Clone(flight), pending...) {
		held += recordBytes(&m)
	}
	cfg.MaxPendingBytes = int64(held) + 10 // room for the first two calls, not for big
	p, clk, sink := newTestPool(t, cfg)
	mustAdd(t, p, flight...)
	mustAdd(t, p, pending...)
	waitErr := make(chan error, 1)
	go func() { waitErr <- p.Add(context.Background(), big) }()
	waitFor(t, func() bool { p.memMu.Lock(); defer p.memMu.Unlock(); return len(p.waiters) == 1 })

	got := p.Shutdown(context.Background())
	if err := <-waitErr; !errors.Is(err, ErrClosed) {
		t.Fatalf("waiting Add after Shutdown = %v, want ErrClosed", err)
	}
	var desc []string
	for _, b := range got {
		checkBatch(t, cfg, b)
		desc = append(desc, fmt.Sprintf("%d/%s", b.Partition, describe(b)))
	}
	if len(desc) != 2 || !contains(desc, "0/shutdown:a,c") || !contains(desc, "1/shutdown:b") {
		t.Fatalf("Shutdown returned %v", desc)
	}
	if clk.Pending() != 0 {
		t.Fatalf("%d timers armed after Shutdown", clk.Pending())
	}
	if err := p.Add(context.Background(), []message.Message{recAt(0, "late", 0)}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Add after Shutdown = %v, want ErrClosed", err)
	}
	clk.Advance(time.Hour)
	expect(t, sink, "5/size:f,g,h")
	p.Release(sink.ready()[0])
	for _, b := range got {
		p.Release(b)
	}
	if p.PendingBytes() != 0 {
		t.Fatalf("PendingBytes = %d after releasing everything", p.PendingBytes())
	}
	if again := p.Shutdown(context.Background()); len(again) != 0 {
		t.Fatalf("second Shutdown returned %d batches", len(again))
	}
}

func TestPoolInvalidPartition(t *testing.T) {
	p, _, _ := newTestPool(t, testConfig())
	err := p.Add(context.Background(), []message.Message{recAt(0, "a", 0), recAt(-1, "b", 0)})
	if !errors.Is(err, ErrInvalidPartition) {
		t.Fatalf("Add with partition -1 = %v", err)
	}
	if p.PendingRecords() != 0 {
		t.Fatal("a refused call accepted records")
	}
	if _, err := NewPool(Config{}, nil, &recSink{}); err == nil {
		t.Fatal("NewPool accepted an empty Config")
	}
}

// Ready may call back into the pool (Release) and Adds from many
// goroutines keep each goroutine's order per partition.
func TestPoolConcurrentAdds(t *testing.T) {
	for _, byPartition := range []bool{true, false} {
		t.Run(fmt.Sprint("collect_by_partition=", byPartition), func(t *testing.T) {
			cfg := testConfig()
			cfg.Size = 7
			cfg.MaxBytes = 400
			cfg.MaxWait = ms(5)
			cfg.MinDelay = ms(1)
			cfg.CollectByPartition = byPartition
			cfg.MaxPendingBytes = 3000
			sink := &recSink{}
			p, err := NewPool(cfg, SystemClock(), sink)
			if err != nil {
				t.Fatal(err)
			}
			sink.ackEach(p)
			const goroutines, perG = 4, 600
			var wg sync.WaitGroup
			for g := 0; g < goroutines; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < perG; i += 3 {
						var msgs []message.Message
						for j := i; j < i+3; j++ {
							m := recAt(int32(j%5), fmt.Sprintf("g%d-%d", g, j), 5+j%60)
							m.Trigger = j%97 == 0
							msgs = append(msgs, m)
						}
						if err := p.Add(context.Background(), msgs); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			rest := p.Shutdown(context.Background())
			for _, b := range rest {
				p.Release(b)
			}
			sink.mu.Lock()
			all := append(append([]message.Batch(nil), sink.batches...), rest...)
			sink.mu.Unlock()
			// Per goroutine and partition, records arrive in order, once.
			next := map[string]int{}
			count := 0
			for _, b := range all {
				checkBatch(t, cfg, b)
				for _, m := range b.Messages {
					var g, j int
					if _, err := fmt.Sscanf(name(m), "g%d-%d", &g, &j); err != nil {
						t.Fatalf("record name %q: %v", name(m), err)
					}
					key := fmt.Sprintf("%d/%d", g, m.Partition)
					if j < next[key] {
						t.Fatalf("record %s after a later one of its partition", name(m))
					}
					next[key] = j + 1
					count++
					if m.Partition != b.Partition {
						t.Fatalf("record of partition %d in batch of %d", m.Partition, b.Partition)
					}
				}
			}
			if count != goroutines*perG {
				t.Fatalf("%d records handed off, want %d", count, goroutines*perG)
			}
			if p.PendingBytes() != 0 || p.PendingRecords() != 0 {
				t.Fatalf("%d bytes, %d records pending at the end", p.PendingBytes(), p.PendingRecords())
			}
		})
	}
}

// One call larger than the grouping window, over more accumulators than the
// group buffer holds, keeps every partition's order.
func TestPoolLargeCallKeepsOrder(t *testing.T) {
	for _, byPartition := range []bool{true, false} {
		cfg := testConfig()
		cfg.Size = 37
		cfg.CollectByPartition = byPartition
		p, _, sink := newTestPool(t, cfg)
		var msgs []message.Message
		for i := 0; i < 1500; i++ {
			m := recAt(int32((i*7)%23), fmt.Sprintf("r%d", i), i%50)
			m.Topic = []string{"a", "b"}[(i/3)%2]
			msgs = append(msgs, m)
		}
		mustAdd(t, p, msgs...)
		all := append(append([]message.Batch(nil), sink.batches...), p.Shutdown(context.Background())...)
		last := map[string]int{}
		n := 0
		for _, b := range all {
			checkBatch(t, cfg, b)
			for _, m := range b.Messages {
				var i int
				if _, err := fmt.Sscanf(name(m), "r%d", &i); err != nil {
					t.Fatalf("record name %q: %v", name(m), err)
				}
				k := fmt.Sprintf("%s/%d", m.Topic, m.Partition)
				if prev, ok := last[k]; ok && i <= prev {
					t.Fatalf("%s: r%d after r%d", k, i, prev)
				}
				if m.Topic != b.Topic || m.Partition != b.Partition {
					t.Fatalf("r%d of %s in batch %s/%d", i, k, b.Topic, b.Partition)
				}
				last[k] = i
				n++
			}
		}
		if n != len(msgs) {
			t.Fatalf("collect_by_partition=%v: %d records handed off, want %d", byPartition, n, len(msgs))
		}
	}
}

func TestPoolLargePartitionNumbers(t *testing.T) {
	p, clk, sink := newTestPool(t, testConfig())
	mustAdd(t, p, recAt(1<<30, "a", 0), recAt(maxIndexed, "b", 0), recAt(maxIndexed-1, "c", 0), recAt(1<<30, "d", 0))
	if clk.Pending() != 3 {
		t.Fatalf("%d timers, want 3 accumulators", clk.Pending())
	}
	clk.Advance(time.Second)
	got := sink.described()
	for _, w := range []string{"1073741824/max_wait:a,d", "4096/max_wait:b", "4095/max_wait:c"} {
		if !contains(got, w) {
			t.Fatalf("handed off %v, missing %s", got, w)
		}
	}
}

// Shutdown waits for an Add whose hand-off is still running, so that Add's
// batches reach the sink before Shutdown returns the rest; with a context that
// ends first, it returns what is pending without waiting.
func TestPoolShutdownWaitsForRunningAdd(t *testing.T) {
	for _, patient := range []bool{true, false} {
		cfg := testConfig()
		cfg.Size = 2
		p, _, sink := newTestPool(t, cfg)
		unblock := make(chan struct{})
		var once sync.Once
		sink.onReady = func(message.Batch) { once.Do(func() { <-unblock }) }
		addDone := make(chan error, 1)
		go func() {
			addDone <- p.Add(context.Background(), []message.Message{recAt(0, "a", 0), recAt(0, "b", 0), recAt(0, "c", 0)})
		}()
		waitFor(t, func() bool { sink.mu.Lock(); defer sink.mu.Unlock(); return len(sink.batches) == 1 })

		ctx, cancel := context.WithCancel(context.Background())
		if !patient {
			cancel()
		}
		flushed := make(chan []message.Batch, 1)
		go func() { flushed <- p.Shutdown(ctx) }()
		if patient {
			waitFor(t, func() bool { p.memMu.Lock(); defer p.memMu.Unlock(); return p.idle != nil })
			select {
			case <-flushed:
				t.Fatal("Shutdown returned while an Add was handing off")
			default:
			}
			close(unblock)
		}
		got := <-flushed
		if !patient {
			close(unblock)
		}
		cancel()
		if err := <-addDone; err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || describe(got[0]) != "shutdown:c" {
			t.Fatalf("patient=%v: Shutdown returned %v", patient, got)
		}
		expect(t, sink, "0/size:a,b")
	}
}

func TestPoolAddOfManyRecordsInOneCall(t *testing.T) {
	cfg := testConfig()
	cfg.Size = 1000
	cfg.MaxMessageBytes = 200
	cfg.MaxBytes = 200
	cfg.MaxPendingBytes = 1 << 20
	p, _, sink := newTestPool(t, cfg)
	// More records than the pool's on-stack size buffer, two of them
	// oversize past it: every size is computed for its own record.
	var msgs []message.Message
	for i := 0; i < 700; i++ {
		pad := 10 + i%40
		if i == 300 || i == 650 {
			pad = 500
		}
		msgs = append(msgs, recAt(int32(i%2), fmt.Sprintf("r%d", i), pad))
	}
	mustAdd(t, p, msgs...)
	if len(sink.rejected) != 2 {
		t.Fatalf("rejected %d records, want 2", len(sink.rejected))
	}
	for _, b := range p.Shutdown(context.Background()) {
		sink.Ready(b)
	}
	var kept int
	for _, b := range sink.batches {
		checkBatch(t, cfg, b)
		kept += len(b.Messages)
		p.Release(b)
	}
	if kept != 698 {
		t.Fatalf("%d records in batches, want 698", kept)
	}
	if p.PendingBytes() != 0 || p.PendingRecords() != 0 {
		t.Fatalf("pending %d bytes, %d records after releasing every batch", p.PendingBytes(), p.PendingRecords())
	}
}

func TestPoolRefuseWaitingFailsTheCallsInLine(t *testing.T) {
	cfg := testConfig()
	cfg.Size = 10
	one := int64(recordBytes(&message.Message{Value: []byte("a"), Timestamp: t0}))
	cfg.MaxPendingBytes = 2 * one
	p, _, _ := newTestPool(t, cfg)
	mustAdd(t, p, recAt(0, "a", 0), recAt(0, "b", 0))
	done := make(chan error, 1)
	go func() { done <- p.Add(context.Background(), []message.Message{recAt(1, "c", 0)}) }()
	waitFor(t, func() bool { p.memMu.Lock(); defer p.memMu.Unlock(); return len(p.waiters) == 1 })

	full := errors.New("disk full")
	p.RefuseWaiting(full)
	if err := <-done; !errors.Is(err, full) {
		t.Fatalf("waiting Add = %v, want the refusal", err)
	}
	if p.PendingRecords() != 2 {
		t.Fatalf("a refused Add left %d records pending, want 2", p.PendingRecords())
	}
}

func TestPoolCutEachAdd(t *testing.T) {
	cfg := testConfig()
	cfg.Size = 1000
	cfg.MaxWait = time.Hour
	cfg.CutEachAdd = true
	p, clk, sink := newTestPool(t, cfg)
	mustAdd(t, p, recAt(0, "a", 0), recAt(1, "b", 0), recAt(0, "c", 0))
	expect(t, sink, "0/call:a,c", "1/call:b")
	if clk.Pending() != 0 {
		t.Fatalf("%d timers armed after the call's batches were cut, want 0", clk.Pending())
	}

	// A call longer than Add's window of 256 records is still one batch per
	// partition, cut once the whole call is in.
	var msgs []message.Message
	var names []string
	for i := range 600 {
		n := fmt.Sprintf("r%d", i)
		msgs = append(msgs, recAt(2, n, 0))
		names = append(names, n)
	}
	mustAdd(t, p, msgs...)
	expect(t, sink, "0/call:a,c", "1/call:b", "2/call:"+joinNames(names))
}

func TestPoolCutEachAddKeepsMinDelay(t *testing.T) {
	cfg := testConfig()
	cfg.MaxWait = time.Hour
	cfg.MinDelay = ms(100)
	cfg.CutEachAdd = true
	p, clk, sink := newTestPool(t, cfg)
	mustAdd(t, p, recAt(0, "a", 0))
	expect(t, sink, "0/call:a") // the first send is not held
	clk.Advance(ms(10))
	mustAdd(t, p, recAt(0, "b", 0))
	expect(t, sink, "0/call:a") // a's send began 10ms ago, acknowledged or not
	clk.Advance(ms(89))
	expect(t, sink, "0/call:a")
	clk.Advance(ms(1))
	expect(t, sink, "0/call:a", "0/min_delay:b")
}
