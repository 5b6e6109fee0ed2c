package tempstorage

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

func TestMain(m *testing.M) {
	// The crash test's child runs TestHelperProcess only; goleak still applies.
	goleak.VerifyTestMain(m)
}

var baseTime = time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)

// seqBatch builds a batch whose records' values start with "<seq>:". An
// odd seq with records gets a sequence (seqFor) and is written as a v2
// entry, an even one as v1, so the tests that use it mix both formats.
func seqBatch(topic string, partition int32, seq, records, valueBytes int) message.Batch {
	msgs := make([]message.Message, records)
	for i := range msgs {
		prefix := strconv.Itoa(seq) + ":"
		v := make([]byte, max(valueBytes, len(prefix)))
		copy(v, prefix)
		for j := len(prefix); j < len(v); j++ {
			v[j] = byte('a' + (seq+i+j)%26)
		}
		msgs[i] = message.Message{
			Topic: topic, Partition: partition,
			Key:       []byte(fmt.Sprintf("k%d-%d", seq, i)),
			Value:     v,
			Timestamp: baseTime.Add(time.Duration(seq*1000+i) * time.Millisecond),
		}
		if i%3 == 1 {
			msgs[i].Headers = []message.Header{{Key: "h", Value: []byte("x")}, {Key: "n", Value: nil}}
		}
	}
	b := message.Batch{Topic: topic, Partition: partition, Messages: msgs, Bytes: message.BatchSize(msgs), Reason: message.ReasonBytes}
	if seq%2 != 0 && records > 0 {
		b.Seq = seqFor(seq, records)
	}
	return b
}

// seqFor returns a sequence for batch seq of records records: one record
// batch, or two when seq is 3 mod 4 and there are records for two; Unsure
// when seq is 1 mod 4.
func seqFor(seq, records int) *message.Sequence {
	s := &message.Sequence{ProducerID: int64(seq) * 1000, ProducerEpoch: int16(seq % 7), BaseSequence: int32(seq * 10),
		Counts: []int32{int32(records)}, Unsure: seq%4 == 1}
	if seq%4 == 3 && records > 1 {
		s.Counts = []int32{1, int32(records - 1)}
	}
	return s
}

// seqOf returns the sequence number seqBatch stored in b.
func seqOf(t testing.TB, b message.Batch) int {
	t.Helper()
	v, _, _ := bytes.Cut(b.Messages[0].Value, []byte(":"))
	n, err := strconv.Atoi(string(v))
	if err != nil {
		t.Fatalf("batch without sequence number: %q", b.Messages[0].Value)
	}
	return n
}

// sameBatch reports how a and b differ ("" when equal), nil and empty kept apart.
func sameBatch(a, b message.Batch) string {
	if a.Topic != b.Topic || a.Partition != b.Partition || a.Bytes != b.Bytes || a.Reason != b.Reason || len(a.Messages) != len(b.Messages) {
		return fmt.Sprintf("batch header: %s/%d %d bytes %v %d msgs vs %s/%d %d bytes %v %d msgs",
			a.Topic, a.Partition, a.Bytes, a.Reason, len(a.Messages), b.Topic, b.Partition, b.Bytes, b.Reason, len(b.Messages))
	}
	if d := sameSeq(a.Seq, b.Seq); d != "" {
		return d
	}
	for i := range a.Messages {
		x, y := a.Messages[i], b.Messages[i]
		switch {
		case x.Topic != y.Topic || x.Partition != y.Partition || x.Trigger != y.Trigger || x.Signal != y.Signal:
			return fmt.Sprintf("msg %d: route/flush", i)
		case !x.Timestamp.Equal(y.Timestamp):
			return fmt.Sprintf("msg %d: timestamp %v vs %v", i, x.Timestamp, y.Timestamp)
		case !sameBytes(x.Key, y.Key) || !sameBytes(x.Value, y.Value):
			return fmt.Sprintf("msg %d: key/value %q=%q vs %q=%q", i, x.Key, x.Value, y.Key, y.Value)
		case len(x.Headers) != len(y.Headers):
			return fmt.Sprintf("msg %d: %d headers vs %d", i, len(x.Headers), len(y.Headers))
		}
		for j := range x.Headers {
			if x.Headers[j].Key != y.Headers[j].Key || !sameBytes(x.Headers[j].Value, y.Headers[j].Value) {
				return fmt.Sprintf("msg %d header %d differs", i, j)
			}
		}
	}
	return ""
}

// sameSeq reports how two sequences differ ("" when equal).
func sameSeq(a, b *message.Sequence) string {
	switch {
	case a == nil && b == nil:
		return ""
	case a == nil || b == nil:
		return fmt.Sprintf("sequence %v vs %v", a, b)
	case a.ProducerID != b.ProducerID || a.ProducerEpoch != b.ProducerEpoch || a.BaseSequence != b.BaseSequence ||
		a.Unsure != b.Unsure || !slices.Equal(a.Counts, b.Counts):
		return fmt.Sprintf("sequence %+v vs %+v", *a, *b)
	}
	return ""
}

func sameBytes(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }

// openAlone opens the queue in dir as a Store opens a partition's
// (openQueue), but alone: with a byte bound (opts.MaxBytes) and write
// buffers of its own, and neither the lock nor the FsyncInterval loop a
// Store keeps for its queues.
func openAlone(dir string, opts Options) (*queue, error) {
	opts = opts.withDefaults()
	q, _, err := openQueue(dir, opts, &byteBudget{max: opts.MaxBytes, dir: dir}, new(sync.Pool))
	return q, err
}

func mustOpen(t testing.TB, dir string, opts Options) *queue {
	t.Helper()
	q, err := openAlone(dir, opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return q
}

// drain peeks and acks everything, returning the sequence numbers.
func drain(t testing.TB, q *queue) []int {
	t.Helper()
	var seqs []int
	for {
		b, ok, err := q.Peek()
		if err != nil {
			t.Fatalf("Peek: %v", err)
		}
		if !ok {
			return seqs
		}
		seqs = append(seqs, seqOf(t, b))
		if err := q.Ack(); err != nil {
			t.Fatalf("Ack: %v", err)
		}
	}
}

// segmentFiles lists the segment files in dir.
func segmentFiles(t testing.TB, dir string) []uint64 {
	t.Helper()
	ids, _, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

func seqRange(from, to int) []int {
	var s []int
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}

// contents returns the sequence numbers of all queued entries, oldest
// first, without acknowledging them.
func contents(t testing.TB, q *queue) []int {
	t.Helper()
	seqs := []int{}
	for _, b := range queued(t, q) {
		seqs = append(seqs, seqOf(t, b))
	}
	return seqs
}

// backlogs counts the queued entries per partition (a Store's queue holds
// one partition; a queue opened alone may hold several).
func backlogs(t testing.TB, q *queue) map[message.TopicPartition]int {
	t.Helper()
	n := map[message.TopicPartition]int{}
	for _, b := range queued(t, q) {
		n[b.TopicPartition()]++
	}
	return n
}

// queued returns all queued entries, oldest first, without acknowledging
// them.
func queued(t testing.TB, q *queue) []message.Batch {
	t.Helper()
	q.rmu.Lock()
	defer q.rmu.Unlock()
	type ref struct {
		seg uint64
		e   entryRef
	}
	var refs []ref
	q.mu.Lock()
	for _, s := range q.segs {
		for _, e := range s.entries {
			refs = append(refs, ref{s.id, e})
		}
	}
	q.mu.Unlock()
	var bs []message.Batch
	for _, r := range refs {
		buf := make([]byte, r.e.size)
		if err := q.readAt(r.seg, buf, r.e.off); err != nil {
			t.Fatalf("read segment %d at %d: %v", r.seg, r.e.off, err)
		}
		b, _, err := decodeEntry(buf)
		if err != nil {
			t.Fatalf("decode segment %d at %d: %v", r.seg, r.e.off, err)
		}
		bs = append(bs, b)
	}
	return bs
}

// closeQueue closes q and fails the test if Close reports an error (Close
// syncs and releases the lock, so its error matters).
func closeQueue(t testing.TB, q *queue) {
	t.Helper()
	if err := q.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// entriesBytes is what the entries of seqBatch(topic, partition, seq,
// records, valueBytes) take for each of seqs.
func entriesBytes(topic string, partition int32, records, valueBytes int, seqs ...int) int64 {
	var n int64
	for _, seq := range seqs {
		n += int64(len(encodeEntry(seqBatch(topic, partition, seq, records, valueBytes))))
	}
	return n
}

// encodeEntry returns b framed as one entry.
func encodeEntry(b message.Batch) []byte { return appendEntry(nil, &b) }

// tp names a partition.
func tp(topic string, partition int32) message.TopicPartition {
	return message.TopicPartition{Topic: topic, Partition: partition}
}

func mustOpenStore(t testing.TB, dir string, opts Options) *Store {
	t.Helper()
	s, err := OpenStore(dir, opts)
	if err != nil {
		t.Fatalf("OpenStore: %v", err)
	}
	return s
}

func closeStore(t testing.TB, s *Store) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func mustAppend(t testing.TB, s *Store, topic string, partition int32, seqs ...int) {
	t.Helper()
	for _, seq := range seqs {
		if err := s.Append(seqBatch(topic, partition, seq, 1, 100)); err != nil {
			t.Fatalf("Append %s/%d #%d: %v", topic, partition, seq, err)
		}
	}
}

// drainPartition peeks and acks every entry of one partition, returning
// the sequence numbers.
func drainPartition(t testing.TB, s *Store, topic string, partition int32) []int {
	t.Helper()
	var seqs []int
	for {
		b, ok, err := s.Peek(tp(topic, partition))
		if err != nil {
			t.Fatalf("Peek %s/%d: %v", topic, partition, err)
		}
		if !ok {
			return seqs
		}
		if b.Topic != topic || b.Partition != partition {
			t.Fatalf("Peek %s/%d returned a batch of %s/%d", topic, partition, b.Topic, b.Partition)
		}
		seqs = append(seqs, seqOf(t, b))
		if err := s.Ack(tp(topic, partition)); err != nil {
			t.Fatalf("Ack %s/%d: %v", topic, partition, err)
		}
	}
}

// requireDrained drains q (drain) and fails the test unless the sequence
// numbers replayed are want, in order.
func requireDrained(t testing.TB, q *queue, want []int) {
	t.Helper()
	if got := drain(t, q); !slices.Equal(got, want) {
		t.Fatalf("replayed %v, want %v", got, want)
	}
}

// requirePartitionDrained drains one partition of s (drainPartition) and
// fails the test unless the sequence numbers replayed are want, in order.
func requirePartitionDrained(t testing.TB, s *Store, topic string, partition int32, want []int) {
	t.Helper()
	if got := drainPartition(t, s, topic, partition); !slices.Equal(got, want) {
		t.Fatalf("%s/%d replayed %v, want %v", topic, partition, got, want)
	}
}
