package batcher

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kafkabatcher/kafkabatcherexporter/internal/fakeclock"
	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// ackSink acknowledges and releases every batch at once, as a fast Kafka
// would, and recycles its slice if asked to.
type ackSink struct {
	p       *Pool
	recycle bool
}

func (s *ackSink) Ready(b message.Batch) {
	s.p.Release(b)
	if s.recycle {
		s.p.Recycle(b.Messages)
	}
}
func (s *ackSink) Reject(message.Message, message.RejectReason) {}

// benchMessages is one ConsumeLogs call: 64 records of 200-byte values
// with a key and a header, interleaved over 6 partitions as keyed hashing
// gives them.
func benchMessages() []message.Message {
	msgs := make([]message.Message, 64)
	ts := time.Now()
	for i := range msgs {
		part := int32(i % 6)
		msgs[i] = message.Message{
			Topic: "otlp_logs", Partition: part,
			Key:       []byte(fmt.Sprintf("key-%012d", i)),
			Value:     make([]byte, 200),
			Headers:   []message.Header{{Key: "attributes.service", Value: []byte("checkout")}},
			Timestamp: ts,
		}
	}
	return msgs
}

// BenchmarkPoolAdd measures the add path per record (one op = one record):
// ns/op, B/op and allocs/op are per added record, batches included (a timer
// per batch, and a new slice per batch unless the sink recycles them),
// sizing included, encoding excluded. The sink acknowledges and releases
// each batch at once.
func BenchmarkPoolAdd(b *testing.B) {
	for _, goroutines := range []int{1, 2} {
		for _, byPartition := range []bool{true, false} {
			for _, recycle := range []bool{false, true} {
				name := fmt.Sprintf("goroutines=%d/partitions=6/collect_by_partition=%v/recycle=%v", goroutines, byPartition, recycle)
				b.Run(name, func(b *testing.B) {
					cfg := Config{Size: 500, MaxBytes: 1_000_000, MaxMessageBytes: 1_000_000,
						MaxWait: time.Second, CollectByPartition: byPartition, MaxPendingBytes: 64 << 20}
					sink := &ackSink{recycle: recycle}
					p, err := NewPool(cfg, SystemClock(), sink)
					if err != nil {
						b.Fatal(err)
					}
					sink.p = p
					msgs := benchMessages()
					ctx := context.Background()
					// Warm up: accumulators exist and slices are sized.
					for i := 0; i < 2000; i++ {
						if err := p.Add(ctx, msgs); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportAllocs()
					b.ResetTimer()
					cpu0 := cpuTime()
					if goroutines == 1 {
						for n := 0; n < b.N; n += len(msgs) {
							if err := p.Add(ctx, msgs[:min(len(msgs), b.N-n)]); err != nil {
								b.Fatal(err)
							}
						}
					} else {
						// RunParallel counts one op per pb.Next; one op adds
						// len(msgs) records, so b.N is scaled down to match.
						defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(goroutines))
						calls := (b.N + len(msgs) - 1) / len(msgs)
						done := make(chan struct{})
						for g := 0; g < goroutines; g++ {
							go func(share int) {
								defer func() { done <- struct{}{} }()
								for i := 0; i < share; i++ {
									if err := p.Add(ctx, msgs); err != nil {
										b.Error(err)
										return
									}
								}
							}(calls/goroutines + boolInt(g < calls%goroutines))
						}
						for g := 0; g < goroutines; g++ {
							<-done
						}
					}
					b.StopTimer()
					b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
					for _, bt := range p.Shutdown(ctx) {
						p.Release(bt)
					}
				})
			}
		}
	}
}

// cpuTime is the CPU time this process has used (all threads, GC included).
// On a shared machine it measures the work better than wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// BenchmarkAccumulatorAdd is the pure state machine alone, per record.
func BenchmarkAccumulatorAdd(b *testing.B) {
	cfg := Config{Size: 500, MaxBytes: 1_000_000, MaxMessageBytes: 1_000_000, MaxWait: time.Second}
	a := NewAccumulator(cfg, "t", 0)
	m := benchMessages()[0]
	now := time.Now()
	out := make([]message.Batch, 0, 4)
	b.ReportAllocs()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		out, _ = a.Add(&m, now, out[:0])
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

// heldSink keeps the batches it receives in flight, as batches waiting for
// Kafka: ack acknowledges, releases and recycles those received before the
// previous ack, so a batch is in flight between one and two steps.
type heldSink struct {
	p           *Pool
	older, last []message.Batch
}

func (s *heldSink) Ready(b message.Batch)                        { s.last = append(s.last, b) }
func (s *heldSink) Reject(message.Message, message.RejectReason) {}

func (s *heldSink) ack() {
	for _, b := range s.older {
		s.p.Release(b)
		s.p.Recycle(b.Messages)
	}
	clear(s.older)
	s.older, s.last = s.last, s.older[:0]
}

// BenchmarkPoolManyPartitions is the keyed many-partition case (one op = one
// record): 10,000 keys over 1,000 partitions, 265 records per partition per
// max_wait on average, so batches are cut by max_wait at uneven lengths, as
// at 1,000 partitions under the default max_pending_bytes. Time advances in
// steps of a tenth of max_wait, so cuts are spread as with real traffic; a
// batch stays in flight one to two steps. live-B/rec is the live heap per
// record held (pending plus in flight), after a GC, above the heap before
// the pool existed: the Message structs and the slices that hold them (the
// values are shared by every record).
func BenchmarkPoolManyPartitions(b *testing.B) {
	const partitions, perCall, perPartition, steps = 1000, 100, 265, 10
	const perStep = partitions * perPartition / steps
	cfg := Config{Size: 500, MaxBytes: 1_000_000, MaxMessageBytes: 1_000_000,
		MaxWait: time.Second, CollectByPartition: true}
	calls := make([][]message.Message, 64)
	value := make([]byte, 200)
	hdr := []message.Header{{Key: "attributes.service", Value: []byte("checkout")}}
	ts := time.Now()
	x := uint32(1)
	for c := range calls {
		calls[c] = make([]message.Message, perCall)
		for i := range calls[c] {
			x ^= x << 13
			x ^= x >> 17
			x ^= x << 5
			key := fmt.Sprintf("client-%05d", x%10000)
			calls[c][i] = message.Message{Topic: "otlp_logs", Partition: int32(x % 10000 % partitions),
				Key: []byte(key), Value: value, Headers: hdr, Timestamp: ts}
		}
	}
	runtime.GC()
	var ms0 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	clk := fakeclock.New(ts)
	sink := &heldSink{}
	p, err := NewPool(cfg, clk, sink)
	if err != nil {
		b.Fatal(err)
	}
	sink.p = p
	ctx := context.Background()
	c := 0
	step := func(records int) {
		for n := 0; n < records; n += perCall {
			if err := p.Add(ctx, calls[c%len(calls)][:min(perCall, records-n)]); err != nil {
				b.Fatal(err)
			}
			c++
		}
		sink.ack()
		clk.Advance(cfg.MaxWait / steps)
	}
	// Warm up, opening a tenth of the partitions per step so their batches
	// are cut at different steps, until each has cut batches.
	for s := range steps {
		var phase []message.Message
		for _, m := range slices.Concat(calls...) {
			if int(m.Partition)%steps == s {
				phase = append(phase, m)
			}
		}
		if err := p.Add(ctx, phase); err != nil {
			b.Fatal(err)
		}
		sink.ack()
		clk.Advance(cfg.MaxWait / steps)
	}
	for range 3 * steps {
		step(perStep)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	live := -1.0
	for n := 0; n < b.N; n += perStep {
		if live < 0 && n >= partitions*perPartition {
			b.StopTimer()
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			live = float64(int64(ms.HeapAlloc)-int64(ms0.HeapAlloc)) / float64(p.PendingRecords())
			b.StartTimer()
		}
		step(min(perStep, b.N-n))
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
	if live >= 0 {
		b.ReportMetric(live, "live-B/rec")
	}
	sink.ack()
	sink.ack()
	for _, bt := range p.Shutdown(ctx) {
		p.Release(bt)
	}
}

// laterSink releases each batch delay after it is handed off, as a Kafka
// that acknowledges after a round trip would, and counts batches by reason.
type laterSink struct {
	p     *Pool
	delay time.Duration

	mu      sync.Mutex
	batches map[string]int
	records int
}

func (s *laterSink) Ready(b message.Batch) {
	s.mu.Lock()
	s.batches[b.Reason.String()]++
	s.records += len(b.Messages)
	s.mu.Unlock()
	time.AfterFunc(s.delay, func() {
		s.p.Release(b)
	})
}
func (s *laterSink) Reject(message.Message, message.RejectReason) {}

// BenchmarkPoolMemoryPressure adds keyed records spread over 1,000
// partitions under a max_pending_bytes far below what 1,000 full batches
// hold, with a sink that acknowledges each batch 2 ms after it gets it
// (one op = one record). Without the memory rule no batch fills and every
// batch waits out max_wait, which bounds throughput; the batches/op and
// records/batch metrics show how batches were cut.
func BenchmarkPoolMemoryPressure(b *testing.B) {
	const parts = 1000
	cfg := Config{Size: 500, MaxBytes: 1_000_000, MaxMessageBytes: 1_000_000,
		MaxWait: 100 * time.Millisecond, CollectByPartition: true, MaxPendingBytes: 4 << 20}
	sink := &laterSink{delay: 2 * time.Millisecond, batches: map[string]int{}}
	p, err := NewPool(cfg, SystemClock(), sink)
	if err != nil {
		b.Fatal(err)
	}
	sink.p = p
	rng := rand.New(rand.NewPCG(1, 2))
	calls := make([][]message.Message, 64)
	ts := time.Now()
	for c := range calls {
		msgs := make([]message.Message, 64)
		for i := range msgs {
			msgs[i] = message.Message{
				Topic: "otlp_logs", Partition: int32(rng.IntN(parts)),
				Key: []byte(fmt.Sprintf("key-%012d", i)), Value: make([]byte, 200), Timestamp: ts,
			}
		}
		calls[c] = msgs
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for n, c := 0, 0; n < b.N; n, c = n+64, c+1 {
		msgs := calls[c%len(calls)]
		if err := p.Add(ctx, msgs[:min(len(msgs), b.N-n)]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	for _, bt := range p.Shutdown(ctx) {
		p.Release(bt)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	total := 0
	for reason, n := range sink.batches {
		total += n
		b.ReportMetric(float64(n)/float64(b.N), reason+"-batches/op")
	}
	if total > 0 {
		b.ReportMetric(float64(sink.records)/float64(total), "records/batch")
	}
}
