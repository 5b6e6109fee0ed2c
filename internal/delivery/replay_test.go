package delivery

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

func TestStoredBacklogAtStartIsReplayedBeforeNewBatches(t *testing.T) {
	q := &memStorage{}
	_ = q.Append(batch("t", 0, "old1"))
	_ = q.Append(batch("t", 0, "old2"))
	h := startHarness(t, Config{}, q, false)
	h.d.Submit(batch("t", 0, "new"))
	h.obs.waitUntil(t, "new batch behind backlog", func() bool { return h.obs.spilled == 1 })
	h.k.setUp(true)
	h.clk.tick()
	h.obs.waitUntil(t, "replayed", func() bool { return h.obs.replayed == 3 })
	h.close(t)
	h.requireValues(t, "t", 0, "old1", "old2", "new")
}

func TestPartitionKafkaRefusesDoesNotHoldUpReplayOfOthers(t *testing.T) {
	h := newHarness(t, Config{}, true)
	h.k.setUp(false)
	h.d.Submit(batch("t", 0, "a1"))
	h.d.Submit(batch("t", 1, "b1"))
	h.obs.waitUntil(t, "both spilled", func() bool { return h.obs.spilled == 2 })
	h.d.Submit(batch("t", 0, "a2"))
	h.d.Submit(batch("t", 1, "b2"))
	h.obs.waitUntil(t, "behind their backlogs", func() bool { return h.obs.spilled == 4 })

	// Kafka is back, but partition 0 still fails: partition 1 drains.
	h.k.mu.Lock()
	h.k.up, h.k.down[0] = true, true
	h.k.mu.Unlock()
	h.clk.tick()
	h.obs.waitUntil(t, "partition 1 replayed", func() bool { return h.obs.replayed == 2 })
	h.d.Submit(batch("t", 1, "b3"))
	h.obs.waitUntil(t, "partition 1 sent directly", func() bool { return h.obs.sent == 1 })
	if n := h.q.Backlog(message.TopicPartition{Topic: "t", Partition: 0}); n != 2 {
		t.Fatalf("partition 0 backlog = %d, want 2", n)
	}

	h.k.mu.Lock()
	h.k.down[0] = false
	h.k.mu.Unlock()
	h.clk.tick()
	h.obs.waitUntil(t, "partition 0 replayed", func() bool { return h.obs.replayed == 4 })
	h.close(t)
	h.requireValues(t, "t", 0, "a1", "a2")
	h.requireValues(t, "t", 1, "b1", "b2", "b3")
}

func TestReplayRoundsStayWithinTheirMemoryBound(t *testing.T) {
	h := newHarness(t, Config{}, true)
	h.k.setUp(false)
	big := strings.Repeat("x", 1<<20)
	const parts = 12 // 12 MiB stored, more than one round
	for p := int32(0); p < parts; p++ {
		if err := h.q.Append(batch("t", p, big)); err != nil {
			t.Fatal(err)
		}
	}
	h.k.setUp(true)
	h.clk.tick()
	h.obs.waitUntil(t, "all replayed", func() bool { return h.obs.replayed == parts })
	h.close(t)
	h.k.mu.Lock()
	defer h.k.mu.Unlock()
	if h.k.maxCall > maxReplayBytes || h.k.maxCall < maxReplayBytes/2 {
		t.Fatalf("largest replay call %d bytes, want at most %d (and rounds filled)", h.k.maxCall, maxReplayBytes)
	}
}

func TestReplayRoundsTakeTurnsAcrossPartitions(t *testing.T) {
	h := newHarness(t, Config{}, true)
	h.k.setUp(false)
	// 12 partitions with 3 batches of 1 MiB: a round holds 7 of them.
	pad := strings.Repeat("x", 1<<20)
	const parts, each = 12, 3
	for j := 0; j < each; j++ {
		for p := int32(0); p < parts; p++ {
			if err := h.q.Append(batch("t", p, fmt.Sprintf("p%d-%d-%s", p, j, pad))); err != nil {
				t.Fatal(err)
			}
		}
	}
	h.k.setUp(true)
	h.clk.tick()
	h.obs.waitUntil(t, "all replayed", func() bool { return h.obs.replayed == parts*each })
	h.close(t)
	h.k.mu.Lock()
	defer h.k.mu.Unlock()
	lastFirst, firstThird := -1, len(h.k.order)
	for i, v := range h.k.order {
		var p, j int
		if _, err := fmt.Sscanf(v, "p%d-%d-", &p, &j); err != nil {
			t.Fatal(err)
		}
		if j == 0 {
			lastFirst = i
		}
		if j == 2 && i < firstThird {
			firstThird = i
		}
	}
	if lastFirst > firstThird {
		var seq []string
		for _, v := range h.k.order {
			seq = append(seq, v[:6])
		}
		t.Fatalf("a partition's third batch went before another partition's first: %v", seq)
	}
}

// A replay that Kafka answers with a rejected record and then a failure
// sends only the others again: the rejected record is dead-lettered once.
func TestReplayAfterPartialRejectionSendsOnlyTheRest(t *testing.T) {
	h := newHarness(t, Config{}, true)
	h.k.setUp(false)
	h.d.Submit(batch("t", 0, "a", "X", "b"))
	h.obs.waitUntil(t, "spilled", func() bool { return h.obs.spilled == 3 })
	h.k.mu.Lock()
	h.k.up, h.k.reject["X"], h.k.failAfterReject = true, true, 1
	h.k.mu.Unlock()
	h.clk.tick()
	h.obs.waitUntil(t, "X rejected", func() bool { return h.obs.rejected == 1 })
	h.clk.tick()
	h.obs.waitUntil(t, "the rest replayed", func() bool { return h.obs.replayed == 2 })
	h.close(t)
	if h.obs.rejected != 1 {
		t.Fatalf("X rejected %d times, want once", h.obs.rejected)
	}
	h.requireValues(t, "t", 0, "a", "b")
}

// TestStoredBatchesOfAGonePartitionAreDeadLettered: a stored partition
// that Kafka's metadata no longer has (topic recreated with fewer
// partitions) goes to the dead-letter file, reason partition_gone, record
// by record; the other partitions replay as usual.
func TestStoredBatchesOfAGonePartitionAreDeadLettered(t *testing.T) {
	h := newHarness(t, Config{}, true)
	h.k.mu.Lock()
	h.k.partitions = map[string]int32{"t": 2}
	h.k.mu.Unlock()
	h.q.mu.Lock()
	for p := range int32(4) {
		h.q.entries = append(h.q.entries, batch("t", p, fmt.Sprintf("%d-a", p), fmt.Sprintf("%d-b", p)), batch("t", p, fmt.Sprintf("%d-c", p)))
	}
	h.q.mu.Unlock()
	h.clk.tick()
	h.obs.waitUntil(t, "replayed and dead-lettered", func() bool { return h.obs.replayed == 6 && h.obs.rejected == 6 })
	if h.q.Len() != 0 {
		t.Fatalf("%d entries left", h.q.Len())
	}
	if !slices.Equal(h.obs.reasons, slices.Repeat([]message.RejectReason{message.RejectPartitionGone}, 6)) {
		t.Fatalf("reasons %v", h.obs.reasons)
	}
	for p := range int32(2) {
		if got, want := h.k.values("t", p), []string{fmt.Sprintf("%d-a", p), fmt.Sprintf("%d-b", p), fmt.Sprintf("%d-c", p)}; !equal(got, want) {
			t.Fatalf("partition %d: %v, want %v", p, got, want)
		}
	}
	h.close(t)
}

// TestPartialReplayIsNotRepeatedAfterARestart: a replay Kafka takes part
// of before it fails is recorded in the storage (SetHead), so that after a
// restart (a new Dispatcher on the same storage) only the rest is sent. A
// replay that fails without changing anything records nothing.
func TestPartialReplayIsNotRepeatedAfterARestart(t *testing.T) {
	q := &memStorage{}
	_ = q.Append(batch("t", 0, "a", "b", "c", "d"))
	_ = q.Append(batch("t", 0, "e"))
	h := startHarness(t, Config{}, q, false)
	poll(t, "a replay refused", func() bool { return h.k.calls() == 1 })
	h.k.mu.Lock()
	h.k.up, h.k.cutAt = true, "c"
	h.k.mu.Unlock()
	h.clk.tick()
	poll(t, "a part replayed", func() bool { return len(h.k.values("t", 0)) == 2 })
	h.close(t) // after the replay loop settled it
	h.requireValues(t, "t", 0, "a", "b")

	h = startHarness(t, Config{}, q, true)
	poll(t, "replayed", func() bool { return q.Len() == 0 })
	h.close(t)
	h.requireValues(t, "t", 0, "c", "d", "e")
	if n := q.setHeadCalls(); n != 1 {
		t.Fatalf("%d SetHead calls, want 1 (the refused replay changed nothing)", n)
	}
}

// TestAmbiguousReplayIsRecordedAsUnsure: a replay that ends not knowing
// whether Kafka wrote the batch leaves its sequence, Unsure, in the
// storage, so that a restart knows the resend may be a duplicate; another
// failure with the same sequence records nothing more.
func TestAmbiguousReplayIsRecordedAsUnsure(t *testing.T) {
	q := &memStorage{}
	_ = q.Append(batch("t", 0, "a", "b"))
	unsure := &message.Sequence{ProducerID: 7, BaseSequence: 3, Counts: []int32{2}, Unsure: true}
	h := newHarnessOn(t, q, func(k *fakeKafka) { k.up, k.failSeq = false, unsure })
	poll(t, "a replay", func() bool { return h.k.calls() == 1 })
	h.clk.tick()
	poll(t, "a second replay", func() bool { return h.k.calls() == 2 })
	h.close(t) // after the replay loop settled it
	b, _, _ := q.Peek(message.TopicPartition{Topic: "t"})
	if len(b.Messages) != 2 || !sameSequence(b.Seq, unsure) {
		t.Fatalf("stored head %d records, sequence %+v; want both, Unsure", len(b.Messages), b.Seq)
	}
	if n := q.setHeadCalls(); n != 1 {
		t.Fatalf("%d SetHead calls, want 1 (the second failure changed nothing)", n)
	}
}

// TestFailedSetHeadKeepsTheProgressInMemory: when the storage cannot
// record the progress (a full disk), the replay goes on from memory: the
// records Kafka took are not sent again.
func TestFailedSetHeadKeepsTheProgressInMemory(t *testing.T) {
	q := &memStorage{setHeadErr: errors.New("no space left on device")}
	_ = q.Append(batch("t", 0, "a", "b", "c", "d"))
	h := newHarnessOn(t, q, func(k *fakeKafka) { k.cutAt = "c" })
	poll(t, "a part replayed", func() bool { return h.k.calls() == 1 })
	h.clk.tick()
	h.obs.waitUntil(t, "replayed", func() bool { return h.obs.replayed == 2 })
	h.close(t)
	h.requireValues(t, "t", 0, "a", "b", "c", "d")
}
