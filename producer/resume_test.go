package producer

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// Batches that used up their attempts come back with their sequence
// numbers (Outcome.Seq); resent with them (Batch.Seq), as delivery retries
// and replays them, Kafka holds each record once.

// failedAgain returns the failed batches of res as the caller resends
// them: their remaining records with the numbers the producer gave back.
func failedAgain(t *testing.T, bs []*message.Batch, res []message.Outcome) []*message.Batch {
	t.Helper()
	var again []*message.Batch
	for i, r := range res {
		if r.Err == nil {
			continue
		}
		require.NotNil(t, r.Seq, "batch %d failed without its sequence numbers: %v", i, r.Err)
		require.Equal(t, len(r.Remaining), r.Seq.Records(), "batch %d: the numbers cover the remaining records", i)
		b := *bs[i]
		b.Messages, b.Bytes, b.Seq = r.Remaining, message.BatchSize(r.Remaining), r.Seq
		again = append(again, &b)
	}
	return again
}

// resendOnce resends the failed batches of res with their numbers and
// checks that t/0 holds warm and bs exactly once, in order, under one
// producer id, with no possible duplicate counted.
func resendOnce(t *testing.T, c *kfake.Cluster, p *Producer, warm, bs []*message.Batch, res []message.Outcome) {
	t.Helper()
	produceOK(t, p, failedAgain(t, bs, res)...)
	assert.Equal(t, valuesOf(append(warm, bs...)...), readAll(t, c, "t", 0, 300*time.Millisecond), "exactly once, in order")
	assert.EqualValues(t, 1, p.ProducerIDChanges())
	assert.Zero(t, p.PossibleDuplicates())
}

// TestWrittenButAnsweredLateResumesItsNumbers: the broker writes the batch
// but answers after the producer stopped waiting (its only attempt); the
// batch fails, unsure. Resent with its numbers, the broker answers it as a
// duplicate: one copy, no new producer id, no possible duplicate counted.
func TestWrittenButAnsweredLateResumesItsNumbers(t *testing.T) {
	c := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	p := newProducer(t, Config{Brokers: c.ListenAddrs(), Timeout: 200 * time.Millisecond, MaxAttempts: 1})
	warm := seqBatches("warm", 1)
	produceOK(t, p, warm...)
	delayFirstProduce(c, 1200*time.Millisecond)
	bs := seqBatches("a", 1)
	res := p.Produce(context.Background(), bs)
	require.Error(t, res[0].Err)
	require.NotNil(t, res[0].Seq)
	assert.True(t, res[0].Seq.Unsure, "the answer timed out: it may be written")
	assert.Equal(t, int32(4), res[0].Seq.BaseSequence, "after the warm batch's 4 records")
	time.Sleep(1500 * time.Millisecond) // the late original is written by now
	resendOnce(t, c, p, warm, bs, res)
}

// TestNotWrittenResumesItsNumbers: the broker refuses the batch
// (NOT_LEADER_OR_FOLLOWER) for its only attempt; it fails, sure, and is
// written once when it comes back with its numbers.
func TestNotWrittenResumesItsNumbers(t *testing.T) {
	c := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	p := newProducer(t, Config{Brokers: c.ListenAddrs(), MaxAttempts: 1})
	warm := seqBatches("warm", 1)
	produceOK(t, p, warm...)
	c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: "t", Err: kerr.NotLeaderForPartition})
	bs := seqBatches("a", 1)
	res := p.Produce(context.Background(), bs)
	require.Error(t, res[0].Err)
	require.NotNil(t, res[0].Seq)
	assert.False(t, res[0].Seq.Unsure, "NOT_LEADER: not written")
	resendOnce(t, c, p, warm, bs, res)
}

// TestSeveralInFlightBehindResumeTheirNumbers: five pipelined batches are
// written and answered REQUEST_TIMED_OUT, then, on the resend, again; the
// producer gives up on all five. They come back with their numbers, in
// order, and Kafka holds each record once.
func TestSeveralInFlightBehindResumeTheirNumbers(t *testing.T) {
	c := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	p := newProducer(t, Config{Brokers: c.ListenAddrs(), MaxAttempts: 2})
	warm := seqBatches("warm", 1)
	produceOK(t, p, warm...)
	c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: "t", Err: kerr.RequestTimedOut, Count: 6})
	bs := seqBatches("a", 5)
	res := p.Produce(context.Background(), bs)
	for i, r := range res {
		require.Error(t, r.Err, "batch %d", i)
		require.NotNil(t, r.Seq, "batch %d", i)
		assert.Equal(t, int32(4+4*i), r.Seq.BaseSequence, "batch %d keeps its place", i)
	}
	assert.True(t, res[0].Seq.Unsure)
	resendOnce(t, c, p, warm, bs, res)
}

// TestNewBatchAfterGivenUpOnesTakesANewProducerID: when something else
// comes first (the given-up batch was dropped), the owed numbers are
// abandoned: a new producer id, and the given-up batch, coming back later
// after an ambiguous send, is counted as a possible duplicate.
func TestNewBatchAfterGivenUpOnesTakesANewProducerID(t *testing.T) {
	c := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	p := newProducer(t, Config{Brokers: c.ListenAddrs(), MaxAttempts: 1})
	produceOK(t, p, seqBatches("warm", 1)...)
	c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: "t", Err: kerr.RequestTimedOut})
	bs := seqBatches("a", 1)
	res := p.Produce(context.Background(), bs)
	require.Error(t, res[0].Err)
	require.True(t, res[0].Seq.Unsure)
	produceOK(t, p, seqBatches("b", 1)...)
	assert.EqualValues(t, 2, p.ProducerIDChanges(), "the owed numbers are abandoned")
	produceOK(t, p, failedAgain(t, bs, res)...)
	assert.EqualValues(t, 4, p.PossibleDuplicates(), "written under the old id, sent again under the new one")
	got := readAll(t, c, "t", 0, 300*time.Millisecond)
	assert.Len(t, got, 16, "warm, a, b, and a again")
}

// TestRestartCountsUnsureBatchesAsPossibleDuplicates: a new Producer (a
// restart) cannot use the numbers of another producer id: a stored batch
// whose send may have been written is counted; one known not written is
// not.
func TestRestartCountsUnsureBatchesAsPossibleDuplicates(t *testing.T) {
	c := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	p := newProducer(t, Config{Brokers: c.ListenAddrs(), MaxAttempts: 1})
	a, b := batchOf("t", 0, "a", 4, 10), batchOf("t", 0, "b", 3, 10)
	a.Seq = &message.Sequence{ProducerID: 999, ProducerEpoch: 0, BaseSequence: 40, Counts: []int32{4}, Unsure: true}
	b.Seq = &message.Sequence{ProducerID: 999, ProducerEpoch: 0, BaseSequence: 44, Counts: []int32{3}}
	produceOK(t, p, a, b)
	assert.EqualValues(t, 4, p.PossibleDuplicates())
	assert.Equal(t, valuesOf(a, b), readAll(t, c, "t", 0, 300*time.Millisecond))
}
