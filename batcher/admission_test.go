package batcher

import (
	"context"
	"fmt"
	"testing"
	"unsafe"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// wantHeld is what a pending record must count against MaxPendingBytes:
// its encoded size as the first record of a batch, its Message struct and
// its Header structs.
func wantHeld(m *message.Message) int64 {
	return int64(message.RecordSize(m, 0, m.Timestamp)) +
		int64(unsafe.Sizeof(message.Message{})) +
		int64(len(m.Headers))*int64(unsafe.Sizeof(message.Header{}))
}

func withHeaders(m message.Message, n int) message.Message {
	for i := range n {
		m.Headers = append(m.Headers, message.Header{Key: fmt.Sprintf("h%d", i), Value: []byte("v")})
	}
	return m
}

func TestPendingBytesCountRecordSizeAndStructs(t *testing.T) {
	p, _, _ := newTestPool(t, testConfig())
	a := recAt(0, "a", 0)
	b := withHeaders(recAt(1, "b", 300), 3)
	b.Key = []byte("key")
	mustAdd(t, p, a)
	if got, want := p.PendingBytes(), wantHeld(&a); got != want {
		t.Fatalf("PendingBytes = %d for a record without headers, want %d (record %d + Message %d)",
			got, want, message.RecordSize(&a, 0, a.Timestamp), unsafe.Sizeof(message.Message{}))
	}
	mustAdd(t, p, b)
	if got, want := p.PendingBytes(), wantHeld(&a)+wantHeld(&b); got != want {
		t.Fatalf("PendingBytes = %d with a 3-header record, want %d", got, want)
	}
	if got := int64(recordBytes(&b)); got != wantHeld(&b) {
		t.Fatalf("recordBytes = %d, want %d", got, wantHeld(&b))
	}
}

// The oversize rule is about what Kafka takes: a record whose encoded size
// just fits producer.max_message_bytes is batched, though its count (with
// the structs) is larger.
func TestOversizeRuleIgnoresStructOverhead(t *testing.T) {
	cfg := testConfig()
	cfg.MaxBytes, cfg.MaxMessageBytes = 400, 400
	p, _, sink := newTestPool(t, cfg)
	m := recAt(0, "fits", 0)
	for pad := 1; message.BatchHeaderBytes+message.RecordSize(&m, 0, m.Timestamp) < cfg.MaxMessageBytes; pad++ {
		m = recAt(0, "fits", pad)
	}
	over := recAt(0, "over", len(m.Value)+1)
	mustAdd(t, p, m, over)
	if len(sink.rejected) != 1 || name(sink.rejected[0]) != "over" {
		t.Fatalf("rejected %d records, want only the one over max_message_bytes", len(sink.rejected))
	}
	if got, want := p.PendingBytes(), wantHeld(&m); got != want || want <= int64(cfg.MaxMessageBytes) {
		t.Fatalf("PendingBytes = %d, want %d (above max_message_bytes %d)", got, want, cfg.MaxMessageBytes)
	}
}

// Every ready batch releases exactly what its records counted, split
// batches of a topic-wide accumulator included, and the count is back to
// zero once every batch is released.
func TestReleaseReturnsWhatEachBatchCounted(t *testing.T) {
	for _, byPartition := range []bool{true, false} {
		t.Run(fmt.Sprintf("collect_by_partition=%v", byPartition), func(t *testing.T) {
			cfg := testConfig()
			cfg.Size = 4
			cfg.CollectByPartition = byPartition
			p, _, sink := newTestPool(t, cfg)
			var msgs []message.Message
			var total int64
			for i := range 23 {
				m := withHeaders(recAt(int32(i%3), fmt.Sprintf("r%d", i), i*7), i%4)
				msgs = append(msgs, m)
				total += wantHeld(&m)
			}
			mustAdd(t, p, msgs...)
			if got := p.PendingBytes(); got != total {
				t.Fatalf("PendingBytes = %d after Add, want %d", got, total)
			}
			batches := append(sink.ready(), p.Shutdown(context.Background())...)
			left := total
			for _, b := range batches {
				for i := range b.Messages {
					left -= wantHeld(&b.Messages[i])
				}
				p.Release(b)
				if got := p.PendingBytes(); got != left {
					t.Fatalf("PendingBytes = %d after releasing %s, want %d", got, describe(b), left)
				}
			}
			if left != 0 || p.PendingRecords() != 0 {
				t.Fatalf("%d bytes, %d records pending after releasing every batch", left, p.PendingRecords())
			}
		})
	}
}
