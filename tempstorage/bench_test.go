package tempstorage

import (
	"math"
	"testing"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// batch64K is a 64 KiB batch: 16 records of 4 KiB values, no sequence
// (a v1 entry).
func batch64K() message.Batch {
	b := seqBatch("logs", 0, 1, 16, 4096-20)
	b.Seq = nil
	return b
}

// BenchmarkAppend64KiB measures Append of 64 KiB batches per fsync policy.
// The queue is drained outside the timer every 1000 appends so the disk
// use stays bounded.
func BenchmarkAppend64KiB(b *testing.B) {
	for _, p := range []FsyncPolicy{FsyncBatch, FsyncNever} {
		b.Run("fsync="+p.String(), func(b *testing.B) {
			q := mustOpen(b, b.TempDir(), Options{Fsync: p})
			defer closeQueue(b, q)
			batch := batch64K()
			b.SetBytes(int64(len(encodeEntry(batch))))
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if err := q.Append(batch); err != nil {
					b.Fatal(err)
				}
				if i%1000 == 999 {
					b.StopTimer()
					drainFast(b, q)
					b.StartTimer()
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
		})
	}
}

// BenchmarkReplay64KiB measures Peek+Ack of 64 KiB batches per fsync
// policy (FsyncBatch syncs the checkpoint on every Ack).
func BenchmarkReplay64KiB(b *testing.B) {
	for _, p := range []FsyncPolicy{FsyncBatch, FsyncNever} {
		b.Run("fsync="+p.String(), func(b *testing.B) {
			// Unbounded: b.N entries may well be more than DefaultMaxBytes.
			q := mustOpen(b, b.TempDir(), Options{Fsync: FsyncNever, MaxBytes: math.MaxInt64 / 2})
			batch := batch64K()
			for range b.N {
				if err := q.Append(batch); err != nil {
					b.Fatal(err)
				}
			}
			closeQueue(b, q)
			q = mustOpen(b, q.Dir(), Options{Fsync: p})
			defer closeQueue(b, q)
			b.SetBytes(int64(len(encodeEntry(batch))))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, ok, err := q.Peek(); !ok || err != nil {
					b.Fatalf("Peek: ok=%v err=%v", ok, err)
				}
				if err := q.Ack(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}

// drainFast empties q with the checkpoint left unsynced.
func drainFast(b *testing.B, q *queue) {
	pol := q.opts.Fsync
	q.opts.Fsync = FsyncNever
	defer func() { q.opts.Fsync = pol }()
	for q.Len() > 0 {
		if err := q.Ack(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeEntry measures framing one batch as an entry (appendEntry
// into a reused buffer, as Append does): a 64 KiB batch of 16 records and
// one of 1,000 small records, each without and with a sequence.
func BenchmarkEncodeEntry(b *testing.B) {
	small := seqBatch("logs", 0, 2, 1000, 60)
	cases := []struct {
		name  string
		batch message.Batch
	}{
		{"64KiB", batch64K()},
		{"64KiB,seq", withSeq(batch64K(), 16)},
		{"1000x60B", small},
		{"1000x60B,seq", withSeq(small, 500, 500)},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			buf := appendEntry(nil, &c.batch)
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				buf = appendEntry(buf[:0], &c.batch)
			}
		})
	}
}

// withSeq returns b with a sequence of the given record batch counts,
// which must add up to its records.
func withSeq(b message.Batch, counts ...int32) message.Batch {
	b.Seq = &message.Sequence{ProducerID: 4711, ProducerEpoch: 3, BaseSequence: 1_000_000, Counts: counts}
	return b
}
