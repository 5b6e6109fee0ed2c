package batcher

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// wantOpened asserts that the batches, described as "partition/reason:names",
// are want, each opened at the matching offset from t0.
func wantOpened(t *testing.T, got []message.Batch, want []string, at []time.Duration) {
	t.Helper()
	if len(got) != len(want) {
		var desc []string
		for _, b := range got {
			desc = append(desc, fmt.Sprintf("%d/%s", b.Partition, describe(b)))
		}
		t.Fatalf("batches %v, want %v", desc, want)
	}
	for i, b := range got {
		if d := fmt.Sprintf("%d/%s", b.Partition, describe(b)); d != want[i] {
			t.Fatalf("batch %d is %s, want %s", i, d, want[i])
		}
		if !b.Opened.Equal(t0.Add(at[i])) {
			t.Fatalf("batch %s opened at t0%+v, want t0+%v", want[i], b.Opened.Sub(t0), at[i])
		}
	}
}

// Opened is the clock time of the Add that put a batch's first record in,
// whatever releases the batch.
func TestPoolOpenedIsFirstAddTime(t *testing.T) {
	t.Run("size", func(t *testing.T) {
		cfg := testConfig()
		cfg.Size = 3
		p, clk, sink := newTestPool(t, cfg)
		clk.Advance(ms(5))
		mustAdd(t, p, recAt(0, "a", 0))
		clk.Advance(ms(10))
		mustAdd(t, p, recAt(0, "b", 0))
		clk.Advance(ms(10))
		mustAdd(t, p, recAt(0, "c", 0))
		wantOpened(t, sink.ready(), []string{"0/size:a,b,c"}, []time.Duration{ms(5)})
	})
	t.Run("bytes, the cut record opens the next batch", func(t *testing.T) {
		cfg := testConfig()
		cfg.MaxBytes = 300
		p, clk, sink := newTestPool(t, cfg)
		clk.Advance(ms(5))
		mustAdd(t, p, recAt(0, "a", 100))
		clk.Advance(ms(10))
		mustAdd(t, p, recAt(0, "b", 100))
		clk.Advance(ms(10))
		mustAdd(t, p, recAt(0, "c", 100)) // does not fit: a,b go, c carried over
		wantOpened(t, sink.ready(), []string{"0/bytes:a,b"}, []time.Duration{ms(5)})
		clk.Advance(ms(10))
		mustAdd(t, p, recAt(0, "d", 0))
		clk.Advance(cfg.MaxWait) // c's age, not a's, times the next batch
		wantOpened(t, sink.ready(), []string{"0/bytes:a,b", "0/max_wait:c,d"}, []time.Duration{ms(5), ms(25)})
	})
	t.Run("max_wait", func(t *testing.T) {
		cfg := testConfig()
		cfg.MaxWait = ms(50)
		p, clk, sink := newTestPool(t, cfg)
		clk.Advance(ms(5))
		mustAdd(t, p, recAt(0, "a", 0))
		clk.Advance(ms(30))
		mustAdd(t, p, recAt(0, "b", 0))
		clk.Advance(ms(20))
		wantOpened(t, sink.ready(), []string{"0/max_wait:a,b"}, []time.Duration{ms(5)})
	})
	t.Run("min_delay", func(t *testing.T) {
		cfg := testConfig()
		cfg.Size = 2
		cfg.MinDelay = ms(200)
		p, clk, sink := newTestPool(t, cfg)
		sink.ackEach(p)
		mustAdd(t, p, recAt(0, "a", 0), recAt(0, "b", 0))
		for _, n := range []string{"c", "d", "e"} {
			clk.Advance(ms(10))
			mustAdd(t, p, recAt(0, n, 0))
		}
		clk.Advance(ms(170))
		wantOpened(t, sink.ready(), []string{"0/size:a,b", "0/min_delay:c,d,e"}, []time.Duration{0, ms(10)})
	})
	t.Run("trigger", func(t *testing.T) {
		p, clk, sink := newTestPool(t, testConfig())
		clk.Advance(ms(5))
		mustAdd(t, p, recAt(0, "a", 0))
		clk.Advance(ms(5))
		b := recAt(0, "b", 0)
		b.Trigger = true
		mustAdd(t, p, b)
		wantOpened(t, sink.ready(), []string{"0/trigger:a,b"}, []time.Duration{ms(5)})
	})
	t.Run("shutdown", func(t *testing.T) {
		p, clk, sink := newTestPool(t, testConfig())
		clk.Advance(ms(7))
		mustAdd(t, p, recAt(0, "a", 0))
		clk.Advance(ms(3))
		mustAdd(t, p, recAt(1, "b", 0))
		clk.Advance(ms(3))
		mustAdd(t, p, recAt(0, "c", 0))
		got := p.Shutdown(context.Background())
		if len(got) == 2 && got[0].Partition == 1 {
			got[0], got[1] = got[1], got[0]
		}
		wantOpened(t, got, []string{"0/shutdown:a,c", "1/shutdown:b"}, []time.Duration{ms(7), ms(10)})
		expect(t, sink)
	})
}

// A batch released because its deadline passed before its timer ran hands
// the arriving record over to the next batch, which opens at that record's
// arrival.
func TestAccumulatorOverdueBatchCarriesOpened(t *testing.T) {
	a := NewAccumulator(testConfig(), "t", 0)
	m := rec("a", 0)
	out, _ := a.Add(&m, t0, nil)
	late := t0.Add(time.Second + ms(10))
	m = rec("b", 0)
	out, _ = a.Add(&m, late, out)
	out = a.Drain(out)
	if len(out) != 2 || describe(out[0]) != "max_wait:a" || describe(out[1]) != "shutdown:b" {
		t.Fatalf("batches %v", out)
	}
	if !out[0].Opened.Equal(t0) || !out[1].Opened.Equal(late) {
		t.Fatalf("opened at %v and %v, want t0 and %v", out[0].Opened, out[1].Opened, late)
	}
}

// A topic-wide batch split by partition at send time: every part keeps the
// batch's Opened, also at shutdown and when a part is re-cut to max_bytes.
func TestPoolSplitBatchesKeepOpened(t *testing.T) {
	cfg := testConfig()
	cfg.CollectByPartition = false
	cfg.Size = 6
	p, clk, sink := newTestPool(t, cfg)
	for i, part := range []int32{2, 0, 2, 1, 0, 2} {
		clk.Advance(ms(5))
		mustAdd(t, p, recAt(part, fmt.Sprintf("r%d", i), 0))
	}
	wantOpened(t, sink.ready(), []string{"2/size:r0,r2,r5", "0/size:r1,r4", "1/size:r3"},
		[]time.Duration{ms(5), ms(5), ms(5)})

	clk.Advance(ms(5))
	mustAdd(t, p, recAt(1, "s0", 0))
	clk.Advance(ms(5))
	mustAdd(t, p, recAt(0, "s1", 0))
	got := p.Shutdown(context.Background())
	wantOpened(t, got, []string{"1/shutdown:s0", "0/shutdown:s1"}, []time.Duration{ms(35), ms(35)})

	// Re-cut: partition 1's records do not fit one batch once split off.
	cfg.MaxBytes = 300
	p, _, _ = newTestPool(t, cfg)
	var msgs []message.Message
	for i := 0; i < 20; i++ {
		m := recAt(min(int32(i), 1), fmt.Sprintf("r%d", i), 10)
		if i == 1 {
			m.Timestamp = t0.Add(100 * 365 * 24 * time.Hour)
		}
		if message.BatchSize(append(msgs[:len(msgs):len(msgs)], m)) > cfg.MaxBytes {
			break
		}
		msgs = append(msgs, m)
	}
	opened := t0.Add(ms(42))
	b := message.Batch{Topic: "t", Partition: -1, Messages: msgs, Bytes: message.BatchSize(msgs), Reason: message.ReasonBytes, Opened: opened}
	parts := p.appendSplit(nil, b)
	if len(parts) < 3 {
		t.Fatalf("expected partition 1 to be re-cut, got %d parts", len(parts))
	}
	for _, part := range parts {
		if !part.Opened.Equal(opened) {
			t.Fatalf("part %s of partition %d opened at %v, want %v", describe(part), part.Partition, part.Opened, opened)
		}
	}
}
