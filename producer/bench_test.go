package producer

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/kafkabatcher/kafkabatcherexporter/internal/testbroker"
	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// TestKfakeServerProcess is not a test: the benchmarks run it in a child
// process so that kfake's allocations and CPU are not counted as the
// producer's.
func TestKfakeServerProcess(t *testing.T) { testbroker.ServeIfChild(t) }

// benchBroker starts kfake in a child process and returns its address.
func benchBroker(b *testing.B) string {
	return testbroker.Start(b, "TestKfakeServerProcess", "bench:8")
}

// BenchmarkProduce sends 100-record batches of 200-byte values; one op is
// one batch. records/s and allocs/record count the producer side only.
func BenchmarkProduce(b *testing.B) {
	addr := benchBroker(b)
	for _, tc := range []struct {
		name        string
		partitions  int
		compression string
	}{
		{"1partition", 1, "none"},
		{"8partitions", 8, "none"},
		{"8partitions-lz4", 8, "lz4"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			p := newProducer(b, Config{Brokers: []string{addr}, Compression: tc.compression, RequiredAcks: 1})
			if err := p.Refresh(context.Background(), "bench"); err != nil {
				b.Fatal(err)
			}
			batches := make([]*message.Batch, tc.partitions)
			for i := range batches {
				batches[i] = batchOf("bench", int32(i), "bench", 100, 200)
			}
			produceOK(b, p, batches...) // connect before timing

			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			// One goroutine per partition, as the exporter's dispatcher
			// keeps one batch in flight per partition.
			per := b.N / tc.partitions
			for part := range tc.partitions {
				n := per
				if part == 0 {
					n += b.N % tc.partitions
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					one := []*message.Batch{batches[part]}
					for range n {
						if r := p.Produce(context.Background(), one); r[0].Err != nil {
							b.Error(r[0].Err)
							return
						}
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			runtime.ReadMemStats(&after)
			records := float64(b.N * 100)
			b.ReportMetric(records/elapsed.Seconds(), "records/s")
			b.ReportMetric(float64(after.Mallocs-before.Mallocs)/records, "allocs/record")
		})
	}
}

// BenchmarkRecordBatch measures building the sarama record batch alone.
func BenchmarkRecordBatch(b *testing.B) {
	msgs := batchOf("bench", 0, "bench", 100, 200).Messages
	b.ReportAllocs()
	for b.Loop() {
		_ = recordBatch(msgs, 0)
	}
}
