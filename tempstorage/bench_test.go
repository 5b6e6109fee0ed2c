package tempstorage

import (
	"testing"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// batch64K is a 64 KiB batch: 16 records of 4 KiB values.
func batch64K() message.Batch { return seqBatch("logs", 0, 1, 16, 4096-20) }

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
			q := mustOpen(b, b.TempDir(), Options{Fsync: FsyncNever})
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
func drainFast(b *testing.B, q *Queue) {
	pol := q.opts.Fsync
	q.opts.Fsync = FsyncNever
	defer func() { q.opts.Fsync = pol }()
	for q.Len() > 0 {
		if err := q.Ack(); err != nil {
			b.Fatal(err)
		}
	}
}
