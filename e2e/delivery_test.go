//go:build e2e

package e2e

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafkabatcher/kafkabatcherexporter/cmd/devbroker/topicdump"
)

// TestDelivers50000 sends 50,000 records in requests of 500 and reads every
// one back, once, in order per partition.
func TestDelivers50000(t *testing.T) {
	const n, per = 50_000, 500
	e := newEnv(t)
	b := e.startBroker(freePort(t), 6)
	c := e.startCollector(e.newConfig(b.addr))
	s := dial(t, c.otlp, 64, 40)

	start := time.Now()
	s.sendAll(0, n, per)
	sent := time.Since(start)
	recs := newConsumer(t, b.addr).read(seqRange(0, n), 60*time.Second, time.Second)
	t.Logf("sent %d records in %s; all read back after %s", n, sent.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	checkExactlyOnce(t, recs, seqRange(0, n))
	checkOrder(t, recs)
}

// batchSeen is a record batch as the broker stored it, and when the test
// first saw it.
type batchSeen struct {
	topicdump.Batch
	partition int32
	seen      time.Time
}

// batchWatcher reads the topic's record batches with raw fetches, noting
// when each first appeared.
type batchWatcher struct {
	t       *testing.T
	r       *topicdump.Reader
	batches map[[2]int64]*batchSeen // partition, base offset
}

func newBatchWatcher(t *testing.T, brokerAddr string) *batchWatcher {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokerAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &batchWatcher{t: t, r: topicdump.NewReader(cl, topic), batches: map[[2]int64]*batchSeen{}}
}

// poll reads new batches and returns the number of records stored.
func (w *batchWatcher) poll() int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tp, err := w.r.Poll(ctx)
	if err != nil {
		w.t.Fatalf("read batches: %v", err)
	}
	now := time.Now()
	for _, p := range tp.Partitions {
		for _, b := range p.Batches {
			k := [2]int64{int64(p.ID), b.BaseOffset}
			if _, ok := w.batches[k]; !ok {
				w.batches[k] = &batchSeen{Batch: b, partition: p.ID, seen: now}
			}
		}
	}
	return tp.Records()
}

// waitRecords polls every 20ms until the topic holds n records or limit
// passes.
func (w *batchWatcher) waitRecords(n int, limit time.Duration) {
	w.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		got := w.poll()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("topic holds %d records after %s, want %d", got, limit, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// byPartition returns the batches seen, per partition in offset order.
func (w *batchWatcher) byPartition() map[int32][]*batchSeen {
	out := map[int32][]*batchSeen{}
	for _, b := range w.batches {
		out[b.partition] = append(out[b.partition], b)
	}
	for _, bs := range out {
		slices.SortFunc(bs, func(a, b *batchSeen) int { return cmp.Compare(a.BaseOffset, b.BaseOffset) })
	}
	return out
}

// TestBatchBoundaries checks the record batches the broker stored: every
// batch holds exactly batch.size records except the last of a partition,
// which max_wait cut, and which appeared max_wait after its first record,
// not before.
func TestBatchBoundaries(t *testing.T) {
	const (
		size    = 100
		maxWait = 2 * time.Second
		n, per  = 1050, 350 // n % size != 0: some partition ends in a partial batch
	)
	e := newEnv(t)
	b := e.startBroker(freePort(t), 3)
	cfg := e.newConfig(b.addr).set("batch.size", size).set("batch.max_wait", maxWait.String())
	c := e.startCollector(cfg)
	s := dial(t, c.otlp, 12, 40)
	w := newBatchWatcher(t, b.addr)

	start := time.Now()
	s.sendAll(0, n, per)
	sendEnd := time.Now()
	if d := sendEnd.Sub(start); d > maxWait/2 {
		t.Fatalf("sending took %s, too close to max_wait %s for the timing checks", d, maxWait)
	}
	w.waitRecords(n, maxWait+10*time.Second)

	partial := 0
	parts := w.byPartition()
	for _, p := range slices.Sorted(maps.Keys(parts)) {
		bs := parts[p]
		total := 0
		for i, bt := range bs {
			total += bt.Records
			last := i == len(bs)-1
			switch {
			case bt.Records == size:
				// Full: sent when it filled, long before max_wait.
				if bt.seen.After(sendEnd.Add(maxWait / 2)) {
					t.Errorf("partition %d batch at offset %d: full batch appeared %s after the last send; size should have sent it",
						p, bt.BaseOffset, bt.seen.Sub(sendEnd))
				}
			case last && bt.Records < size:
				partial++
				// Cut by max_wait: its first record arrived between start
				// and sendEnd.
				if bt.seen.Before(start.Add(maxWait - 100*time.Millisecond)) {
					t.Errorf("partition %d: partial batch of %d appeared %s after the first send, before max_wait %s",
						p, bt.Records, bt.seen.Sub(start), maxWait)
				}
				if late := sendEnd.Add(maxWait + 1500*time.Millisecond); bt.seen.After(late) {
					t.Errorf("partition %d: partial batch of %d appeared %s after the last send, long after max_wait %s",
						p, bt.Records, bt.seen.Sub(sendEnd), maxWait)
				}
			default:
				t.Errorf("partition %d batch %d of %d at offset %d holds %d records, want %d", p, i+1, len(bs), bt.BaseOffset, bt.Records, size)
			}
		}
		t.Logf("partition %d: %d records in %d batches", p, total, len(bs))
	}
	if partial == 0 {
		t.Errorf("no partial batch: %d records over the partitions should leave a remainder for max_wait", n)
	}

	// max_wait alone: a few records of one key, nothing else arriving.
	before := len(w.batches)
	t0 := time.Now()
	if err := dial(t, c.otlp, 1, 40).export(n, n+7, nil); err != nil {
		t.Fatal(err)
	}
	w.waitRecords(n+7, maxWait+10*time.Second)
	if got := len(w.batches) - before; got != 1 {
		t.Fatalf("7 records of one key arrived in %d batches, want 1", got)
	}
	for _, bt := range w.batches {
		if bt.seen.After(t0) {
			took := bt.seen.Sub(t0)
			if bt.Records != 7 || took < maxWait-100*time.Millisecond || took > maxWait+1500*time.Millisecond {
				t.Errorf("7 records: batch of %d appeared after %s, want 7 after max_wait %s", bt.Records, took, maxWait)
			}
			t.Logf("max_wait batch of %d appeared %s after the send", bt.Records, took.Round(10*time.Millisecond))
		}
	}
}
