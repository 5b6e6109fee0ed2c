package tempstorage_test

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kafkabatcher/kafkabatcherexporter/internal/diskfault"
	"github.com/kafkabatcher/kafkabatcherexporter/message"
	"github.com/kafkabatcher/kafkabatcherexporter/tempstorage"
)

func numbered(p int32, seq int) message.Batch {
	msgs := []message.Message{{
		Topic: "t", Partition: p, Key: []byte("k"),
		Value:     fmt.Appendf(make([]byte, 0, 2000), "%d:%02000d", seq, 0),
		Timestamp: time.Unix(1_700_000_000, 0),
	}}
	return message.Batch{Topic: "t", Partition: p, Messages: msgs, Bytes: message.BatchSize(msgs)}
}

func seqOfBatch(t *testing.T, b message.Batch) int {
	t.Helper()
	v := string(b.Messages[0].Value)
	for i := range len(v) {
		if v[i] == ':' {
			n, err := strconv.Atoi(v[:i])
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no sequence number in %q", v)
	return 0
}

// fillDisk appends batches to partitions 0..2 in turn until the disk
// refuses one, and returns how many each partition holds.
func fillDisk(t *testing.T, s *tempstorage.Store) map[int32]int {
	t.Helper()
	stored := map[int32]int{}
	for i := 0; ; i++ {
		p := int32(i % 3)
		err := s.Append(numbered(p, stored[p]))
		if err != nil {
			if !tempstorage.IsFull(err) {
				t.Fatalf("Append on a full disk: %v, want a disk-full error", err)
			}
			var full interface{ StorageFull() bool } // what the dispatcher asks
			if !errors.As(err, &full) || !full.StorageFull() {
				t.Fatalf("Append on a full disk: %v has no StorageFull method that says so", err)
			}
			if n := strings.Count(err.Error(), "temp storage"); n != 1 {
				t.Fatalf("Append on a full disk: %q says \"temp storage\" %d times, want once", err, n)
			}
			return stored
		}
		stored[p]++
	}
}

// TestReplayDrainsAFullDisk: with the disk full (ENOSPC) every stored
// entry can still be acknowledged: the checkpoint is written in place and
// needs no new space. Space comes back as segments are replayed, and a
// restart half way resends nothing acknowledged.
func TestReplayDrainsAFullDisk(t *testing.T) {
	dir := t.TempDir()
	disk := diskfault.New(dir, 64<<10)
	opts := tempstorage.Options{SegmentBytes: 8 << 10, FS: disk}
	s, err := tempstorage.OpenStore(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	stored := fillDisk(t, s)
	if disk.Refused() == 0 {
		t.Fatal("the disk never refused a write")
	}
	disk.SetCapacity(disk.Used()) // not a byte left
	need := tempstorage.MaxEntryBytes(numbered(0, 0).Bytes, 1)
	if s.HasRoom(need) {
		t.Fatal("HasRoom on a full disk")
	}

	// Half of each partition replayed, then a restart.
	for p, n := range stored {
		for i := range n / 2 {
			b, ok, err := s.Peek(message.TopicPartition{Topic: "t", Partition: p})
			if err != nil || !ok || seqOfBatch(t, b) != i {
				t.Fatalf("t/%d Peek %d: ok %v, %v", p, i, ok, err)
			}
			if err := s.Ack(message.TopicPartition{Topic: "t", Partition: p}); err != nil {
				t.Fatalf("t/%d Ack %d on a full disk: %v", p, i, err)
			}
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = tempstorage.OpenStore(dir, opts); err != nil {
		t.Fatalf("OpenStore on a full disk: %v", err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	}()
	for p, n := range stored {
		for i := n / 2; i < n; i++ {
			b, ok, err := s.Peek(message.TopicPartition{Topic: "t", Partition: p})
			if err != nil || !ok {
				t.Fatalf("t/%d Peek %d after restart: ok %v, %v", p, i, ok, err)
			}
			if got := seqOfBatch(t, b); got != i {
				t.Fatalf("t/%d after restart: entry %d, want %d (acknowledged entries resent)", p, got, i)
			}
			if err := s.Ack(message.TopicPartition{Topic: "t", Partition: p}); err != nil {
				t.Fatalf("t/%d Ack %d: %v", p, i, err)
			}
		}
	}
	if s.Len() != 0 || s.Bytes() != 0 {
		t.Fatalf("after the drain: Len %d Bytes %d", s.Len(), s.Bytes())
	}
	if !s.HasRoom(need) {
		t.Fatalf("no room after the drain (%d bytes used)", disk.Used())
	}
	if err := s.Append(numbered(0, 1000)); err != nil {
		t.Fatalf("Append after the drain: %v", err)
	}
}

// TestMaxBytesIsAFullDisk: the MaxBytes bound is reported like ENOSPC.
func TestMaxBytesIsAFullDisk(t *testing.T) {
	dir := t.TempDir()
	need := tempstorage.MaxEntryBytes(numbered(0, 0).Bytes, 1)
	s, err := tempstorage.OpenStore(dir, tempstorage.Options{MaxBytes: 5 * need, SegmentBytes: 1}) // a segment per entry
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	}()
	stored := fillDisk(t, s)
	if stored[0]+stored[1]+stored[2] < 5 || s.HasRoom(need) {
		t.Fatalf("stored %v, HasRoom %v", stored, s.HasRoom(need))
	}
	if err := s.Ack(message.TopicPartition{Topic: "t", Partition: 0}); err != nil {
		t.Fatal(err)
	}
	if !s.HasRoom(need) {
		t.Fatal("no room after an acknowledged segment was deleted")
	}
}

// multi returns a batch of t/p of n records numbered seq.
func multi(p int32, seq, n int) message.Batch {
	b := numbered(p, seq)
	for i := 1; i < n; i++ {
		b.Messages = append(b.Messages, b.Messages[0])
	}
	b.Bytes = message.BatchSize(b.Messages)
	return b
}

// TestSetHeadOnAFullDisk: on a full disk SetHead fails with a disk-full
// error and the earlier progress stays in force, then and after a
// restart; Peek and Ack go on, and Ack deletes the progress.
func TestSetHeadOnAFullDisk(t *testing.T) {
	dir := t.TempDir()
	disk := diskfault.New(dir, 1<<20)
	opts := tempstorage.Options{FS: disk}
	tp0 := message.TopicPartition{Topic: "t", Partition: 0}
	s, err := tempstorage.OpenStore(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	for seq := range 2 {
		if err := s.Append(multi(0, seq, 4)); err != nil {
			t.Fatal(err)
		}
	}
	earlier := &message.Sequence{ProducerID: 5, BaseSequence: 10, Counts: []int32{3}, Unsure: true}
	if err := s.SetHead(tp0, []bool{true}, earlier); err != nil {
		t.Fatal(err)
	}
	disk.SetCapacity(disk.Used()) // not a byte left
	err = s.SetHead(tp0, []bool{true, true}, &message.Sequence{ProducerID: 5, BaseSequence: 12, Counts: []int32{1}})
	if !tempstorage.IsFull(err) {
		t.Fatalf("SetHead on a full disk: %v, want a disk-full error", err)
	}
	requireRecords := func(s *tempstorage.Store, n int, seq *message.Sequence) {
		t.Helper()
		b, ok, err := s.Peek(tp0)
		if err != nil || !ok {
			t.Fatalf("Peek: %v, %v", ok, err)
		}
		if len(b.Messages) != n || (b.Seq == nil) != (seq == nil) || (seq != nil && b.Seq.BaseSequence != seq.BaseSequence) {
			t.Fatalf("Peek: %d records, sequence %+v; want %d, %+v", len(b.Messages), b.Seq, n, seq)
		}
	}
	requireRecords(s, 3, earlier)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = tempstorage.OpenStore(dir, opts); err != nil {
		t.Fatalf("OpenStore on a full disk: %v", err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	}()
	requireRecords(s, 3, earlier)
	if err := s.Ack(tp0); err != nil {
		t.Fatalf("Ack on a full disk: %v", err)
	}
	requireRecords(s, 4, nil)
}
