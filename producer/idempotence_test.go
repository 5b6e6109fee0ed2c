package producer

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// readAll returns the values of every record in topic/partition, in offset
// order, once no more arrive for idle.
func readAll(t testing.TB, c *kfake.Cluster, topic string, partition int32, idle time.Duration) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().AtStart()}}))
	require.NoError(t, err)
	defer cl.Close()
	var vals []string
	for {
		ctx, cancel := context.WithTimeout(context.Background(), idle)
		fs := cl.PollFetches(ctx)
		cancel()
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			vals = append(vals, string(r.Value))
			n++
		})
		if n == 0 {
			return vals
		}
	}
}

// valuesOf returns the values of the batches' records, in order.
func valuesOf(batches ...*message.Batch) []string {
	var vals []string
	for _, b := range batches {
		for _, m := range b.Messages {
			vals = append(vals, string(m.Value))
		}
	}
	return vals
}

// seqBatches returns n batches of 4 records each for t/0.
func seqBatches(prefix string, n int) []*message.Batch {
	bs := make([]*message.Batch, n)
	for i := range bs {
		bs[i] = batchOf("t", 0, fmt.Sprintf("%s%d", prefix, i), 4, 10)
	}
	return bs
}

func boolp(v bool) *bool { return &v }

func TestIdempotentBatchesCarryProducerIDEpochAndSequence(t *testing.T) {
	c := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	type seen struct {
		id    int64
		epoch int16
		seq   int32
		n     int32
	}
	var got []seen
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		pr := req.(*kmsg.ProduceRequest)
		for _, tp := range pr.Topics {
			for _, p := range tp.Partitions {
				var rb kmsg.RecordBatch
				require.NoError(t, rb.ReadFrom(p.Records))
				got = append(got, seen{rb.ProducerID, rb.ProducerEpoch, rb.FirstSequence, rb.NumRecords})
			}
		}
		return nil, nil, false
	})
	p := newProducer(t, Config{Brokers: c.ListenAddrs()})
	require.True(t, p.st.idempotent, "default with acks all")
	require.Equal(t, MaxInFlightLimit, p.st.maxInFlight)
	bs := seqBatches("a", 3)
	produceOK(t, p, bs...)
	produceOK(t, p, seqBatches("b", 1)...)
	require.Len(t, got, 4)
	for i, s := range got {
		assert.GreaterOrEqual(t, s.id, int64(0), "batch %d producer id", i)
		assert.Equal(t, got[0].id, s.id, "one producer id")
		assert.Equal(t, got[0].epoch, s.epoch)
		assert.Equal(t, int32(4*i), s.seq, "batch %d first sequence", i)
		assert.Equal(t, int32(4), s.n)
	}
	assert.GreaterOrEqual(t, p.st.produceVersion, int16(3), "produce v3+ carries record batch v2 with producer fields")
	assert.EqualValues(t, 1, p.ProducerIDChanges())
	assert.Equal(t, valuesOf(append(bs, seqBatches("b", 1)...)...), readAll(t, c, "t", 0, 300*time.Millisecond))
}

func TestWithoutIdempotenceBatchesCarryNoProducerID(t *testing.T) {
	c := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	var ids []int64
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		for _, tp := range req.(*kmsg.ProduceRequest).Topics {
			for _, p := range tp.Partitions {
				var rb kmsg.RecordBatch
				require.NoError(t, rb.ReadFrom(p.Records))
				ids = append(ids, rb.ProducerID)
			}
		}
		return nil, nil, false
	})
	p := newProducer(t, Config{Brokers: c.ListenAddrs(), RequiredAcks: AcksLeader})
	require.False(t, p.st.idempotent, "default with acks 1")
	produceOK(t, p, seqBatches("a", 2)...)
	assert.Equal(t, []int64{-1, -1}, ids)
	assert.Zero(t, p.ProducerIDChanges())
}

// delayFirstProduce holds the first produce request carrying records for
// d before kfake handles it (writes the batch): the producer's read
// timeout ends the attempt first, and the batch is resent.
func delayFirstProduce(c *kfake.Cluster, d time.Duration) *atomic.Int32 {
	var delayed atomic.Int32
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		if delayed.Add(1) == 1 {
			c.SleepControl(func() { time.Sleep(d) })
		}
		return nil, nil, false
	})
	return &delayed
}

// TestResponseDelayedPastTimeout: the broker writes the batch after the
// producer gave up waiting for the answer, and the producer sends it again.
// With idempotence the broker drops the resend (or the late original) as a
// duplicate; without, the records are in the log twice.
func TestResponseDelayedPastTimeout(t *testing.T) {
	for _, tc := range []struct {
		idempotent bool
		batches    int
		wantDups   bool
	}{{idempotent: true, batches: 5}, {idempotent: false, batches: 1, wantDups: true}} {
		t.Run(fmt.Sprintf("idempotent=%v", tc.idempotent), func(t *testing.T) {
			c := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
			// Read timeout: 2 x 200ms; the broker answers after 1.2s.
			p := newProducer(t, Config{Brokers: c.ListenAddrs(), Timeout: 200 * time.Millisecond, MaxAttempts: 10,
				Idempotent: boolp(tc.idempotent)})
			require.NoError(t, p.Refresh(context.Background(), "t"))
			if tc.idempotent {
				produceOK(t, p, seqBatches("warm", 1)...) // pipelined once one batch got through
			}
			delayFirstProduce(c, 1200*time.Millisecond)
			bs := seqBatches("a", tc.batches)
			res := produceOK(t, p, bs...)
			require.Greater(t, res[0].Attempts, 1, "the delayed attempt timed out and was retried")
			time.Sleep(1500 * time.Millisecond) // the late original is handled by now
			got := readAll(t, c, "t", 0, 500*time.Millisecond)
			want := valuesOf(bs...)
			if tc.idempotent {
				want = valuesOf(append(seqBatches("warm", 1), bs...)...)
			}
			dups := len(got) - len(want)
			t.Logf("idempotent=%v: %d records read, %d duplicates", tc.idempotent, len(got), dups)
			if tc.wantDups {
				require.Positive(t, dups, "without idempotence the resend is a duplicate")
				return
			}
			require.Equal(t, want, got, "exactly once, in order")
			assert.Positive(t, p.Resends()[resendError.String()])
		})
	}
}

// TestNotLeaderWithBatchesInFlightBehind: the first of five pipelined
// batches is answered NOT_LEADER_FOR_PARTITION; the broker cannot take the
// four behind it (OUT_OF_ORDER_SEQUENCE_NUMBER), and all five are resent
// in order with the sequence numbers they had.
func TestNotLeaderWithBatchesInFlightBehind(t *testing.T) {
	c := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	p := newProducer(t, Config{Brokers: c.ListenAddrs(), MaxAttempts: 5})
	warm := seqBatches("warm", 1)
	produceOK(t, p, warm...)
	var answered atomic.Int32
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		if answered.Load() > 0 {
			return nil, nil, false
		}
		answered.Add(1)
		pr := req.(*kmsg.ProduceRequest)
		resp := pr.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range pr.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.NotLeaderForPartition.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	bs := seqBatches("a", 5)
	res := produceOK(t, p, bs...)
	for i, r := range res {
		assert.Equal(t, 2, r.Attempts, "batch %d: sent, then resent", i)
	}
	assert.Equal(t, valuesOf(append(warm, bs...)...), readAll(t, c, "t", 0, 300*time.Millisecond), "exactly once, in order")
	rs := p.Resends()
	assert.EqualValues(t, 1, rs[resendError.String()])
	assert.EqualValues(t, 4, rs[resendBehind.String()])
	assert.EqualValues(t, 1, p.ProducerIDChanges(), "a NOT_LEADER keeps the producer id")
}

// TestUnknownProducerIDGetsANewOne: the broker lost the producer's state
// (UNKNOWN_PRODUCER_ID on the first batch, nothing before it in doubt): the
// producer takes a new producer id and resends, renumbered from 0.
func TestUnknownProducerIDGetsANewOne(t *testing.T) {
	c := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	p := newProducer(t, Config{Brokers: c.ListenAddrs(), MaxAttempts: 5})
	warm := seqBatches("warm", 1)
	produceOK(t, p, warm...)
	c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: "t", Err: kerr.UnknownProducerID})
	bs := seqBatches("a", 2)
	produceOK(t, p, bs...)
	assert.EqualValues(t, 2, p.ProducerIDChanges())
	assert.Positive(t, p.Resends()[resendProducerID.String()])
	assert.Equal(t, valuesOf(append(warm, bs...)...), readAll(t, c, "t", 0, 300*time.Millisecond))
}

// TestRequestTimedOutAfterWrite: the broker writes the batch and answers
// REQUEST_TIMED_OUT (replication was too slow): the resend is a duplicate
// the broker drops.
func TestRequestTimedOutAfterWrite(t *testing.T) {
	for _, idempotent := range []bool{true, false} {
		t.Run(fmt.Sprintf("idempotent=%v", idempotent), func(t *testing.T) {
			c := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
			p := newProducer(t, Config{Brokers: c.ListenAddrs(), MaxAttempts: 5, Idempotent: boolp(idempotent)})
			require.NoError(t, p.Refresh(context.Background(), "t"))
			c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: "t", Err: kerr.RequestTimedOut})
			bs := seqBatches("a", 1)
			produceOK(t, p, bs...)
			got := readAll(t, c, "t", 0, 300*time.Millisecond)
			t.Logf("idempotent=%v: %d records, %d duplicates", idempotent, len(got), len(got)-4)
			if idempotent {
				assert.Equal(t, valuesOf(bs...), got)
			} else {
				assert.Len(t, got, 8, "the resend is a duplicate")
			}
		})
	}
}
