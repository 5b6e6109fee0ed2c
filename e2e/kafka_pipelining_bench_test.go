//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
	"github.com/kafkabatcher/kafkabatcherexporter/producer"
	"github.com/kafkabatcher/kafkabatcherexporter/testbench/realkafka"
)

// TestRealKafkaPipeliningThroughput measures the producer's records/s
// against a real broker behind toxiproxy adding 2 ms and 10 ms of latency
// to every answer, with producer.max_in_flight 5 against 1 (both
// idempotent, acks all), on 1 and 6 partitions. Each Produce call carries
// five batches of 500 records of 100 bytes per partition, as the exporter
// hands them over when Kafka is slower than the batches fill. It runs only
// with KAFKA_BENCH=1 (it takes about two minutes) and prints the table of
// BENCHMARKS.md.
func TestRealKafkaPipeliningThroughput(t *testing.T) {
	if os.Getenv("KAFKA_BENCH") == "" {
		t.Skip("set KAFKA_BENCH=1 to run the pipelining benchmark")
	}
	c := sharedCluster(t, realkafka.Options{Nodes: 1, Proxy: true})
	const (
		perCall = 5
		records = 500
		value   = 100
		run     = 6 * time.Second
	)
	var rows []string
	for _, latency := range []int{2, 10} {
		if err := c.AddToxic(realkafka.Toxic{Name: "lat", Type: "latency", Attributes: map[string]any{"latency": latency}}); err != nil {
			t.Fatal(err)
		}
		for _, parts := range []int32{1, 6} {
			rate := map[int]float64{}
			for _, inFlight := range []int{1, 5} {
				topic := newTopic(t, c, parts, nil)
				p, err := producer.New(producer.Config{
					Brokers: c.Bootstrap(), RequiredAcks: producer.AcksAll, MaxInFlight: &inFlight,
					Timeout: 10 * time.Second, MaxAttempts: 3, RetryBackoff: 100 * time.Millisecond,
				}, nil)
				if err != nil {
					t.Fatal(err)
				}
				p.Start()
				if err := p.Refresh(context.Background(), topic); err != nil {
					t.Fatal(err)
				}
				batches := make([]*message.Batch, 0, perCall*int(parts))
				for k := range perCall {
					for part := range parts {
						batches = append(batches, benchBatch(topic, part, k, records, value))
					}
				}
				p.Produce(context.Background(), batches[:int(parts)]) // producer id, connections
				sent := 0
				start := time.Now()
				for time.Since(start) < run {
					for i, res := range p.Produce(context.Background(), batches) {
						if res.Err != nil {
							t.Fatalf("batch %d: %v", i, res.Err)
						}
					}
					sent += len(batches) * records
				}
				rate[inFlight] = float64(sent) / time.Since(start).Seconds()
				_ = p.Close()
				t.Logf("latency %d ms, %d partitions, max_in_flight %d: %.0f records/s", latency, parts, inFlight, rate[inFlight])
			}
			rows = append(rows, fmt.Sprintf("| %d ms | %d | %.0f | %.0f | %.1fx |", latency, parts, rate[1], rate[5], rate[5]/rate[1]))
		}
		if err := c.RemoveToxic("lat"); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("\n| added latency | partitions | max_in_flight 1 (records/s) | max_in_flight 5 (records/s) | speed-up |\n|---|---|---|---|---|\n%s",
		strings.Join(rows, "\n"))
}

func benchBatch(topic string, partition int32, k, n, size int) *message.Batch {
	msgs := make([]message.Message, n)
	now := time.Now()
	for i := range msgs {
		v := make([]byte, size)
		copy(v, fmt.Sprintf("b%d-%d", k, i))
		msgs[i] = message.Message{Topic: topic, Partition: partition, Value: v, Timestamp: now}
	}
	return &message.Batch{Topic: topic, Partition: partition, Messages: msgs, Bytes: message.BatchSize(msgs)}
}

// TestRealKafkaCollectorPipelining is the same comparison through the
// collector: four clients send as fast as it accepts into one partition
// behind 10 ms of latency; once max_pending_bytes is full the collector
// accepts what Kafka drains, so records/s accepted is its throughput.
// KAFKA_BENCH=1 only.
func TestRealKafkaCollectorPipelining(t *testing.T) {
	if os.Getenv("KAFKA_BENCH") == "" {
		t.Skip("set KAFKA_BENCH=1 to run the pipelining benchmark")
	}
	c := sharedCluster(t, realkafka.Options{Nodes: 1, Proxy: true})
	if err := c.AddToxic(realkafka.Toxic{Name: "lat", Type: "latency", Attributes: map[string]any{"latency": 10}}); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.RemoveToxic("lat") }()
	rate := map[int]float64{}
	for _, inFlight := range []int{1, 5} {
		e := newEnv(t)
		name := newTopic(t, c, 1, nil)
		col := e.startCollector(e.kafkaConfig(c, name).
			set("batch.size", 500).set("batch.max_wait", "100ms").
			set("max_pending_bytes", 4<<20).
			set("producer.max_in_flight", inFlight))
		const per, run = 500, 8 * time.Second
		var mu sync.Mutex
		accepted, next := 0, 0
		start := time.Now()
		var wg sync.WaitGroup
		for range 4 {
			s := dial(t, col.otlp, 1, 100)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Since(start) < run {
					mu.Lock()
					lo := next
					next += per
					mu.Unlock()
					if s.export(lo, lo+per, nil) == nil {
						mu.Lock()
						accepted += per
						mu.Unlock()
					}
				}
			}()
		}
		wg.Wait()
		rate[inFlight] = float64(accepted) / time.Since(start).Seconds()
		t.Logf("collector, 10 ms, 1 partition, max_in_flight %d: %.0f records/s accepted", inFlight, rate[inFlight])
	}
	t.Logf("collector speed-up at 10 ms, 1 partition: %.1fx", rate[5]/rate[1])
}
