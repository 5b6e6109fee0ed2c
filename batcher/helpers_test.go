package batcher

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kafkabatcher/kafkabatcherexporter/internal/fakeclock"
	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

var t0 = time.UnixMilli(1_700_000_000_000).UTC()

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func testConfig() Config {
	return Config{Size: 10, MaxBytes: 1_000_000, MaxMessageBytes: 1_000_000, MaxWait: time.Second, CollectByPartition: true}
}

// rec is a record named name (names never contain 'x'), its value padded
// with 'x' to pad bytes.
func rec(name string, pad int) message.Message {
	v := name
	if pad > len(name) {
		v += strings.Repeat("x", pad-len(name))
	}
	return message.Message{Topic: "t", Value: []byte(v), Timestamp: t0}
}

func name(m message.Message) string { return strings.TrimRight(string(m.Value), "x") }

// describe renders a batch as "reason:a,b,c".
func describe(b message.Batch) string {
	names := make([]string, len(b.Messages))
	for i, m := range b.Messages {
		names[i] = name(m)
	}
	return b.Reason.String() + ":" + strings.Join(names, ",")
}

// checkBatch asserts what every ready batch must satisfy.
func checkBatch(t *testing.T, cfg Config, b message.Batch) {
	t.Helper()
	if len(b.Messages) == 0 {
		t.Fatalf("empty batch %+v", b)
	}
	if got := message.BatchSize(b.Messages); got != b.Bytes {
		t.Fatalf("batch %s: Bytes = %d, BatchSize = %d", describe(b), b.Bytes, got)
	}
	if b.Bytes > cfg.MaxBytes && len(b.Messages) > 1 {
		t.Fatalf("batch %s: %d bytes > max_bytes %d", describe(b), b.Bytes, cfg.MaxBytes)
	}
	if b.Bytes > cfg.MaxMessageBytes {
		t.Fatalf("batch %s: %d bytes > max_message_bytes %d", describe(b), b.Bytes, cfg.MaxMessageBytes)
	}
	if cap(b.Messages) > len(b.Messages)+sliceSlack {
		t.Fatalf("batch %s: capacity %d for %d records, more than %d spare", describe(b), cap(b.Messages), len(b.Messages), sliceSlack)
	}
}

// recSink records what the pool hands off. onReady, if set, runs inside
// Ready (no pool lock is held there).
type recSink struct {
	mu       sync.Mutex
	clk      Clock
	batches  []message.Batch
	at       []time.Time
	rejected []message.Message
	reasons  []message.RejectReason
	onReady  func(b message.Batch)
}

func (s *recSink) Ready(b message.Batch) {
	s.mu.Lock()
	s.batches = append(s.batches, b)
	if s.clk != nil {
		s.at = append(s.at, s.clk.Now())
	}
	f := s.onReady
	s.mu.Unlock()
	if f != nil {
		f(b)
	}
}

func (s *recSink) Reject(m message.Message, reason message.RejectReason) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejected = append(s.rejected, m)
	s.reasons = append(s.reasons, reason)
}

func (s *recSink) described() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, b := range s.batches {
		out = append(out, fmt.Sprintf("%d/%s", b.Partition, describe(b)))
	}
	return out
}

func newTestPool(t *testing.T, cfg Config) (*Pool, *fakeclock.Clock, *recSink) {
	t.Helper()
	clk := fakeclock.New(t0)
	sink := &recSink{clk: clk}
	p, err := NewPool(cfg, clk, sink)
	if err != nil {
		t.Fatal(err)
	}
	return p, clk, sink
}

func recAt(part int32, n string, pad int) message.Message {
	m := rec(n, pad)
	m.Partition = part
	return m
}

func mustAdd(t *testing.T, p *Pool, msgs ...message.Message) {
	t.Helper()
	if err := p.Add(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
}

func expect(t *testing.T, s *recSink, want ...string) {
	t.Helper()
	if got := s.described(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("handed off %v\nwant       %v", got, want)
	}
}

func joinNames(n []string) string {
	s := ""
	for i, x := range n {
		if i > 0 {
			s += ","
		}
		s += x
	}
	return s
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(time.Millisecond)
	}
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

func (s *recSink) ready() []message.Batch {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]message.Batch(nil), s.batches...)
}

// ackEach makes the sink release every batch as soon as it is handed off,
// as Kafka taking it at once would.
func (s *recSink) ackEach(p *Pool) {
	s.onReady = func(b message.Batch) { p.Release(b) }
}
