package producer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/kafkabatcher/kafkabatcherexporter/internal/kfaketest"
	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

func TestProduceCompression(t *testing.T) {
	codecs := map[string]int16{"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
	for name, attr := range codecs {
		t.Run(name, func(t *testing.T) {
			c := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(2, "logs"))
			log := kfaketest.ObserveProduce(t, c)
			p := newProducer(t, Config{Brokers: c.ListenAddrs(), Compression: name})

			b0 := batchOf("logs", 0, "p0", 100, 200)
			b1 := batchOf("logs", 1, "p1", 37, 50)
			res := produceOK(t, p, b0, b1)
			for i, r := range res {
				if r.Attempts != 1 {
					t.Errorf("batch %d took %d attempts, want 1", i, r.Attempts)
				}
			}

			reqs := log.Requests()
			if len(reqs) != 1 {
				t.Fatalf("got %d produce requests, want 1 (both partitions on one broker)", len(reqs))
			}
			want := map[int32]*message.Batch{0: b0, 1: b1}
			if len(reqs[0]) != 2 {
				t.Fatalf("request has %d record batches, want 2", len(reqs[0]))
			}
			for _, sb := range reqs[0] {
				b := want[sb.Partition]
				if sb.Records != len(b.Messages) {
					t.Errorf("partition %d: batch has %d records, want %d", sb.Partition, sb.Records, len(b.Messages))
				}
				if sb.Codec != attr {
					t.Errorf("partition %d: codec attribute %d, want %d", sb.Partition, sb.Codec, attr)
				}
				if name == "none" && sb.Bytes != b.Bytes {
					t.Errorf("partition %d: %d bytes sent, message.BatchSize says %d", sb.Partition, sb.Bytes, b.Bytes)
				}
				if name != "none" && sb.Bytes >= b.Bytes {
					t.Errorf("partition %d: compressed batch %d bytes, uncompressed %d", sb.Partition, sb.Bytes, b.Bytes)
				}
			}

			got := consume(t, 137, "logs", kgo.SeedBrokers(c.ListenAddrs()...))
			assertRecords(t, got[0], b0.Messages)
			assertRecords(t, got[1], b1.Messages)
		})
	}
}

func TestProduceBatchSizeMatchesWire(t *testing.T) {
	c := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	log := kfaketest.ObserveProduce(t, c)
	p := newProducer(t, Config{Brokers: c.ListenAddrs()})

	// Keyless, empty values, nil header values, timestamps before the first.
	msgs := []message.Message{
		{Value: []byte("a"), Timestamp: testBase},
		{Value: []byte{}, Timestamp: testBase.Add(-time.Hour)},
		{Key: []byte("k"), Value: []byte(strings.Repeat("v", 300)), Timestamp: testBase.Add(90 * time.Second),
			Headers: []message.Header{{Key: "a", Value: nil}, {Key: "bb", Value: []byte("x")}}},
		{Value: nil, Timestamp: testBase.Add(1500 * time.Microsecond)},
	}
	b := &message.Batch{Topic: "t", Messages: msgs, Bytes: message.BatchSize(msgs)}
	produceOK(t, p, b)
	reqs := log.Requests()
	if len(reqs) != 1 || len(reqs[0]) != 1 {
		t.Fatalf("requests = %v, want one with one batch", reqs)
	}
	if reqs[0][0].Bytes != b.Bytes {
		t.Fatalf("sent %d bytes, message.BatchSize = %d", reqs[0][0].Bytes, b.Bytes)
	}
	got := consume(t, len(msgs), "t", kgo.SeedBrokers(c.ListenAddrs()...))
	assertRecords(t, got[0], msgs)
}

func TestProduceRequiredAcks(t *testing.T) {
	for _, acks := range []RequiredAcks{AcksAll, AcksLeader, AcksNone} {
		t.Run(fmt.Sprint(acks), func(t *testing.T) {
			c := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
			var seen atomic.Int32
			c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
				seen.Store(int32(req.(*kmsg.ProduceRequest).Acks) + 100)
				return nil, nil, false
			})
			cfg := Config{Brokers: c.ListenAddrs(), RequiredAcks: acks}
			p, err := New(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := p.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			}()
			b := batchOf("t", 0, "a", 10, 10)
			produceAndRead(t, p, c, b)
			if seen.Load() != int32(acks)+100 {
				t.Fatalf("broker saw acks %d, want %d", seen.Load()-100, acks)
			}
		})
	}
}

func TestProduceSamePartitionBatchesInOrder(t *testing.T) {
	c := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	log := kfaketest.ObserveProduce(t, c)
	p := newProducer(t, Config{Brokers: c.ListenAddrs()})
	b1 := batchOf("t", 0, "first", 5, 10)
	b2 := batchOf("t", 0, "second", 7, 10)
	produceOK(t, p, b1, b2)
	if n := len(log.Requests()); n != 2 {
		t.Fatalf("got %d requests, want 2 (one partition's batches are sent one after the other)", n)
	}
	got := consume(t, 12, "t", kgo.SeedBrokers(c.ListenAddrs()...))
	assertRecords(t, got[0], append(append([]message.Message{}, b1.Messages...), b2.Messages...))
}

func TestProduceManyBrokersConcurrently(t *testing.T) {
	c := newCluster(t, kfake.NumBrokers(3), kfake.SeedTopics(6, "t"))
	log := kfaketest.ObserveProduce(t, c)
	p := newProducer(t, Config{Brokers: c.ListenAddrs()[:1]})
	var batches []*message.Batch
	leaders := map[int32]bool{}
	for part := int32(0); part < 6; part++ {
		batches = append(batches, batchOf("t", part, "x", 20, 30))
		leaders[c.LeaderFor("t", part)] = true
	}
	if len(leaders) < 2 {
		t.Fatalf("kfake put every partition on one broker: %v", leaders)
	}
	produceOK(t, p, batches...)
	if n := len(log.Requests()); n != len(leaders) {
		t.Fatalf("got %d produce requests, want one per leader broker (%d)", n, len(leaders))
	}
	got := consume(t, 120, "t", kgo.SeedBrokers(c.ListenAddrs()...))
	for part, b := range batches {
		assertRecords(t, got[int32(part)], b.Messages)
	}
}

func TestProduceSplitsLargeRequests(t *testing.T) {
	c := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(6, "t"))
	log := kfaketest.ObserveProduce(t, c)
	p := newProducer(t, Config{Brokers: c.ListenAddrs()})
	var batches []*message.Batch
	for part := int32(0); part < 6; part++ {
		batches = append(batches, batchOf("t", part, "x", 20, 30))
	}
	// Room for two batches per request: 6 batches on one broker take 3.
	p.st.maxRequestBytes = batches[0].Bytes*2 + 1
	produceOK(t, p, batches...)
	if n := len(log.Requests()); n != 3 {
		t.Fatalf("got %d produce requests, want 3 of at most 2 batches: %+v", n, log.Requests())
	}
	got := consume(t, 120, "t", kgo.SeedBrokers(c.ListenAddrs()...))
	for part, b := range batches {
		assertRecords(t, got[int32(part)], b.Messages)
	}
}

func TestLeaderFromLastRefresh(t *testing.T) {
	c := newCluster(t, kfake.NumBrokers(3), kfake.SeedTopics(6, "t"))
	p := newProducer(t, Config{Brokers: c.ListenAddrs()[:1]})
	if id := p.Leader(message.TopicPartition{Topic: "t", Partition: 0}); id != -1 {
		t.Fatalf("leader %d before any refresh, want -1", id)
	}
	if err := p.Refresh(context.Background(), "t"); err != nil {
		t.Fatal(err)
	}
	for part := int32(0); part < 6; part++ {
		if got, want := p.Leader(message.TopicPartition{Topic: "t", Partition: part}), c.LeaderFor("t", part); got != want {
			t.Fatalf("partition %d: leader %d, want %d", part, got, want)
		}
	}
	if id := p.Leader(message.TopicPartition{Topic: "t", Partition: 6}); id != -1 {
		t.Fatalf("leader %d of a partition that does not exist, want -1", id)
	}
	if id := p.Leader(message.TopicPartition{Topic: "other", Partition: 0}); id != -1 {
		t.Fatalf("leader %d of an unknown topic, want -1", id)
	}
}

// notLeader answers the next n produce requests with NOT_LEADER_OR_FOLLOWER
// for every partition, without writing anything.
func notLeader(c *kfake.Cluster, n int32, calls *atomic.Int32) {
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		if calls.Add(1) > n {
			return nil, nil, false
		}
		c.KeepControl()
		return errorResponse(req.(*kmsg.ProduceRequest), kerr.NotLeaderForPartition.Code, nil), nil, true
	})
}

// errorResponse answers every partition of req with code; recordErrs, when
// set, adds per-record errors (produce v8+).
func errorResponse(req *kmsg.ProduceRequest, code int16, recordErrs []int32) *kmsg.ProduceResponse {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	for _, tp := range req.Topics {
		rt := kmsg.NewProduceResponseTopic()
		rt.Topic = tp.Topic
		for _, pp := range tp.Partitions {
			rp := kmsg.NewProduceResponseTopicPartition()
			rp.Partition = pp.Partition
			rp.ErrorCode = code
			for _, idx := range recordErrs {
				msg := "bad record"
				rp.ErrorRecords = append(rp.ErrorRecords, kmsg.ProduceResponseTopicPartitionErrorRecord{RelativeOffset: idx, ErrorMessage: &msg})
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

func TestProduceRetriesNotLeader(t *testing.T) {
	c := newCluster(t, kfake.NumBrokers(2), kfake.SeedTopics(4, "t"))
	var metadataReqs atomic.Int32
	c.ControlKey(int16(kmsg.Metadata), func(kmsg.Request) (kmsg.Response, error, bool) {
		metadataReqs.Add(1)
		return nil, nil, false
	})
	var calls atomic.Int32
	notLeader(c, 2, &calls)
	p := newProducer(t, Config{Brokers: c.ListenAddrs(), MaxAttempts: 3})

	var batches []*message.Batch
	for part := int32(0); part < 4; part++ {
		batches = append(batches, batchOf("t", part, "first", 25, 20), batchOf("t", part, "second", 25, 20))
	}
	if err := p.Refresh(context.Background(), "t"); err != nil {
		t.Fatal(err)
	}
	before := metadataReqs.Load()
	res := produceOK(t, p, batches...)
	if metadataReqs.Load() == before {
		t.Fatal("no metadata refresh after NOT_LEADER_OR_FOLLOWER")
	}
	failed := 0
	for _, r := range res {
		failed += r.Attempts - 1
	}
	if failed == 0 {
		t.Fatal("no batch was retried")
	}
	got := consume(t, 200, "t", kgo.SeedBrokers(c.ListenAddrs()...))
	for part := int32(0); part < 4; part++ {
		want := append(append([]message.Message{}, batches[2*part].Messages...), batches[2*part+1].Messages...)
		assertRecords(t, got[part], want)
	}
}

func TestProduceRetriesExhausted(t *testing.T) {
	c := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	var calls atomic.Int32
	notLeader(c, 1000, &calls)
	p := newProducer(t, Config{Brokers: c.ListenAddrs(), MaxAttempts: 4})
	b := batchOf("t", 0, "a", 10, 10)
	res := p.Produce(context.Background(), []*message.Batch{b})[0]
	if !errors.Is(res.Err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", res.Err)
	}
	if !strings.Contains(res.Err.Error(), "produce t/0") || !errors.Is(res.Err, sarama.ErrNotLeaderForPartition) {
		t.Fatalf("err %q does not name the partition and the Kafka error", res.Err)
	}
	if res.Attempts != 4 || calls.Load() != 4 {
		t.Fatalf("attempts = %d, broker saw %d requests, want 4", res.Attempts, calls.Load())
	}
	if len(res.Remaining) != 10 || string(res.Remaining[0].Value) != string(b.Messages[0].Value) {
		t.Fatalf("remaining = %d records, want the whole batch", len(res.Remaining))
	}
}

func TestProduceOversizeRecordRejectedByBroker(t *testing.T) {
	c := newCluster(t, kfake.NumBrokers(1))
	if err := c.CreateTopic("t", 1, map[string]string{"max.message.bytes": "2000"}); err != nil {
		t.Fatal(err)
	}
	p := newProducer(t, Config{Brokers: c.ListenAddrs()})
	b := batchOf("t", 0, "r", 9, 100)
	b.Messages[6].Value = []byte(strings.Repeat("B", 3000))
	res := p.Produce(context.Background(), []*message.Batch{b})[0]
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if len(res.Rejected) != 1 || res.Rejected[0].Reason != message.RejectMessageTooLarge || len(res.Rejected[0].Message.Value) != 3000 {
		t.Fatalf("rejected = %+v, want the 3000-byte record as message_too_large", res.Rejected)
	}
	assertDeliveredWithout(t, c, b, 6)
}

func TestProduceOversizeRecordRejectedBeforeSending(t *testing.T) {
	c := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	log := kfaketest.ObserveProduce(t, c)
	p := newProducer(t, Config{Brokers: c.ListenAddrs(), MaxMessageBytes: 1000})
	b := batchOf("t", 0, "r", 5, 10)
	b.Messages[0].Value = []byte(strings.Repeat("B", 1000))
	b.Bytes = message.BatchSize(b.Messages) // as every Batch carries it
	res := p.Produce(context.Background(), []*message.Batch{b})[0]
	if res.Err != nil || len(res.Rejected) != 1 || res.Rejected[0].Reason != message.RejectMessageTooLarge {
		t.Fatalf("result = %+v", res)
	}
	reqs := log.Requests()
	if len(reqs) != 1 || reqs[0][0].Records != 4 {
		t.Fatalf("requests = %v, want one batch of the 4 other records", reqs)
	}
	got := consume(t, 4, "t", kgo.SeedBrokers(c.ListenAddrs()...))
	assertRecords(t, got[0], b.Messages[1:])
}

func TestProduceInvalidRecordsRejected(t *testing.T) {
	c := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	var once atomic.Bool
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		if once.Swap(true) {
			return nil, nil, false
		}
		return errorResponse(req.(*kmsg.ProduceRequest), kerr.InvalidRecord.Code, []int32{2, 5}), nil, true
	})
	p := newProducer(t, Config{Brokers: c.ListenAddrs()})
	b := batchOf("t", 0, "r", 8, 10)
	res := p.Produce(context.Background(), []*message.Batch{b})[0]
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if len(res.Rejected) != 2 || string(res.Rejected[0].Message.Key) != "k2" || string(res.Rejected[1].Message.Key) != "k5" ||
		res.Rejected[0].Reason != message.RejectInvalidRecord || !strings.Contains(res.Rejected[0].Err.Error(), "bad record") {
		t.Fatalf("rejected = %+v, want records 2 and 5 as invalid_record", res.Rejected)
	}
	want := []message.Message{b.Messages[0], b.Messages[1], b.Messages[3], b.Messages[4], b.Messages[6], b.Messages[7]}
	got := consume(t, len(want), "t", kgo.SeedBrokers(c.ListenAddrs()...))
	assertRecords(t, got[0], want)
}

func TestProduceCorruptWithoutRecordErrorsSplits(t *testing.T) {
	c := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	// The broker refuses any batch holding the record "poison".
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		pr := req.(*kmsg.ProduceRequest)
		var rb kmsg.RecordBatch
		_ = rb.ReadFrom(pr.Topics[0].Partitions[0].Records)
		recs, _ := kfake.BatchRecords(rb)
		for _, r := range recs {
			if string(r.Value) == "poison" {
				return errorResponse(pr, kerr.CorruptMessage.Code, nil), nil, true
			}
		}
		return nil, nil, false
	})
	p := newProducer(t, Config{Brokers: c.ListenAddrs()})
	b := batchOf("t", 0, "r", 7, 10)
	b.Messages[3].Value = []byte("poison")
	res := p.Produce(context.Background(), []*message.Batch{b})[0]
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if len(res.Rejected) != 1 || string(res.Rejected[0].Message.Value) != "poison" || res.Rejected[0].Reason != message.RejectInvalidRecord {
		t.Fatalf("rejected = %+v", res.Rejected)
	}
	assertDeliveredWithout(t, c, b, 3)
}

func TestPartitionsAddedSeenAfterRefresh(t *testing.T) {
	c := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(2, "t"))
	p := newProducer(t, Config{Brokers: c.ListenAddrs(), RefreshInterval: 20 * time.Millisecond})
	changes := make(chan int32, 10)
	p.OnPartitionsChanged(func(topic string, n int32) {
		if topic == "t" {
			changes <- n
		}
	})
	if _, ok := p.Partitions("t"); ok {
		t.Fatal("topic known before any refresh")
	}
	if err := p.Refresh(context.Background(), "t"); err != nil {
		t.Fatal(err)
	}
	if n, ok := p.Partitions("t"); !ok || n != 2 {
		t.Fatalf("Partitions = %d, %v; want 2", n, ok)
	}
	if n := <-changes; n != 2 {
		t.Fatalf("first change = %d, want 2", n)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrCreatePartitionsRequest()
	rt := kmsg.NewCreatePartitionsRequestTopic()
	rt.Topic, rt.Count = "t", 5
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("create partitions: %v %+v", err, resp)
	}

	// The background loop notices without an explicit Refresh.
	select {
	case n := <-changes:
		if n != 5 {
			t.Fatalf("change = %d, want 5", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("partition change not seen by the refresh loop")
	}
	if n, _ := p.Partitions("t"); n != 5 {
		t.Fatalf("Partitions = %d, want 5", n)
	}
	b := batchOf("t", 4, "new", 3, 10)
	produceAndRead(t, p, c, b)
}

func TestRefreshUnknownTopic(t *testing.T) {
	c := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	p := newProducer(t, Config{Brokers: c.ListenAddrs()})
	err := p.Refresh(context.Background(), "nope", "t")
	if err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("err = %v, want an error naming the unknown topic", err)
	}
	if n, ok := p.Partitions("t"); !ok || n != 1 {
		t.Fatalf("known topic not cached alongside the unknown one: %d %v", n, ok)
	}
	// The background refresh keeps the known topic and drops the unknown
	// one, so it does not warn about it forever.
	if got := p.trackedTopics(); len(got) != 1 || got[0] != "t" {
		t.Fatalf("tracked topics = %v, want [t]", got)
	}
}

func TestStartWhileKafkaDownThenRecover(t *testing.T) {
	port := kfaketest.FreePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	// Ten attempts with backoff would take seconds: failing within one
	// second needs the refused connection to end the retries.
	p := newProducer(t, Config{Brokers: []string{addr}, Timeout: 5 * time.Second, MaxAttempts: 10, RetryBackoff: 200 * time.Millisecond})

	b := batchOf("t", 0, "a", 10, 10)
	start := time.Now()
	res := p.Produce(context.Background(), []*message.Batch{b})[0]
	if !errors.Is(res.Err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", res.Err)
	}
	d := time.Since(start)
	t.Logf("failed in %v: %v", d, res.Err)
	if d > time.Second {
		t.Fatalf("failing took %v, want fast failure on refused connections", d)
	}
	if res.Attempts < 1 || len(res.Remaining) != 10 {
		t.Fatalf("attempts %d, remaining %d", res.Attempts, len(res.Remaining))
	}
	if err := p.Refresh(context.Background(), "t"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Refresh err = %v, want ErrUnavailable", err)
	}

	c := kfaketest.OnPort(t, port, kfake.SeedTopics(1, "t"))
	produceAndRead(t, p, c, b)
}

func TestBrokerRestartOnSamePort(t *testing.T) {
	port := kfaketest.FreePort(t)
	c1 := kfaketest.OnPort(t, port, kfake.SeedTopics(1, "t"))
	p := newProducer(t, Config{Brokers: c1.ListenAddrs(), Timeout: 5 * time.Second, MaxAttempts: 10, RetryBackoff: 200 * time.Millisecond})
	produceOK(t, p, batchOf("t", 0, "before", 5, 10))
	c1.Close()

	start := time.Now()
	res := p.Produce(context.Background(), []*message.Batch{batchOf("t", 0, "down", 5, 10)})[0]
	if !errors.Is(res.Err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", res.Err)
	}
	d := time.Since(start)
	t.Logf("failed in %v: %v", d, res.Err)
	if d > time.Second {
		t.Fatalf("failing took %v with the broker down", d)
	}

	c2 := kfaketest.OnPort(t, port, kfake.SeedTopics(1, "t"))
	b := batchOf("t", 0, "after", 5, 10)
	produceAndRead(t, p, c2, b)
}

func TestProduceContextCanceled(t *testing.T) {
	c := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	first := make(chan struct{})
	var once sync.Once
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		once.Do(func() { close(first) })
		return errorResponse(req.(*kmsg.ProduceRequest), kerr.NotLeaderForPartition.Code, nil), nil, true
	})
	p := newProducer(t, Config{Brokers: c.ListenAddrs(), MaxAttempts: 1000, RetryBackoff: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var res message.Outcome
	wg.Add(1)
	go func() {
		defer wg.Done()
		res = p.Produce(ctx, []*message.Batch{batchOf("t", 0, "a", 3, 10)})[0]
	}()
	<-first // the producer is now backing off for an hour
	cancel()
	wg.Wait()
	if !errors.Is(res.Err, context.Canceled) || len(res.Remaining) != 3 {
		t.Fatalf("result = %+v, want context.Canceled with 3 remaining", res)
	}
}

func TestProduceAfterClose(t *testing.T) {
	c := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	p, err := New(Config{Brokers: c.ListenAddrs(), RequiredAcks: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.Start()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	res := p.Produce(context.Background(), []*message.Batch{batchOf("t", 0, "a", 3, 10)})[0]
	if !errors.Is(res.Err, ErrClosed) || len(res.Remaining) != 3 {
		t.Fatalf("result = %+v, want ErrClosed", res)
	}
	if err := p.Refresh(context.Background(), "t"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Refresh after Close = %v", err)
	}
}

func TestProduceBrokerDoesNotAnswer(t *testing.T) {
	c := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	var calls atomic.Int32
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		if calls.Add(1) == 1 {
			return nil, nil, true // swallow the request: no answer, nothing written
		}
		return nil, nil, false
	})
	p := newProducer(t, Config{Brokers: c.ListenAddrs(), Timeout: 200 * time.Millisecond})
	b := batchOf("t", 0, "a", 10, 10)
	start := time.Now()
	res := produceOK(t, p, b)[0]
	if res.Attempts != 2 {
		t.Fatalf("attempts = %d, want 2 (the unanswered one timed out)", res.Attempts)
	}
	if d := time.Since(start); d < 200*time.Millisecond || d > 3*time.Second {
		t.Fatalf("took %v; the read timeout is 400ms", d)
	}
	got := consume(t, 10, "t", kgo.SeedBrokers(c.ListenAddrs()...))
	assertRecords(t, got[0], b.Messages)
}

// Concurrent callers, one per partition as the exporter's dispatcher runs
// them, with leader errors on every third request: every record arrives
// once, in order.
func TestProduceConcurrentWithLeaderErrors(t *testing.T) {
	const partitions, batches, perBatch = 6, 15, 20
	c := newCluster(t, kfake.NumBrokers(2), kfake.SeedTopics(partitions, "t"))
	var n atomic.Int32
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if n.Add(1)%3 == 0 {
			return errorResponse(req.(*kmsg.ProduceRequest), kerr.NotLeaderForPartition.Code, nil), nil, true
		}
		return nil, nil, false
	})
	p := newProducer(t, Config{Brokers: c.ListenAddrs(), MaxAttempts: 20, RetryBackoff: time.Millisecond})

	sent := make([][]message.Message, partitions)
	var wg sync.WaitGroup
	for part := range partitions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range batches {
				b := batchOf("t", int32(part), fmt.Sprintf("p%d-b%d", part, i), perBatch, 20)
				res := p.Produce(context.Background(), []*message.Batch{b})[0]
				if res.Err != nil {
					t.Errorf("partition %d batch %d: %v", part, i, res.Err)
					return
				}
				sent[part] = append(sent[part], b.Messages...)
			}
		}()
	}
	wg.Wait()
	if n.Load() < partitions*batches {
		t.Fatalf("only %d produce requests", n.Load())
	}
	got := consume(t, partitions*batches*perBatch, "t", kgo.SeedBrokers(c.ListenAddrs()...))
	for part := range partitions {
		assertRecords(t, got[int32(part)], sent[part])
	}
}

func TestRefreshOfAMissingTopicIsErrUnknownTopic(t *testing.T) {
	c := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	p := newProducer(t, Config{Brokers: c.ListenAddrs()})
	err := p.Refresh(context.Background(), "missing")
	if !errors.Is(err, ErrUnknownTopic) {
		t.Fatalf("Refresh(missing) = %v, want ErrUnknownTopic", err)
	}
	if err := p.Refresh(context.Background(), "t"); err != nil {
		t.Fatalf("Refresh(t) = %v", err)
	}
}

func TestRefreshFailuresWarnOncePerOutage(t *testing.T) {
	port := kfaketest.FreePort(t) // nothing listens yet
	core, logs := observer.New(zap.DebugLevel)
	p, err := New(Config{
		Brokers: []string{"127.0.0.1:" + strconv.Itoa(port)}, RequiredAcks: -1,
		RetryBackoff: 10 * time.Millisecond, RefreshInterval: 10 * time.Millisecond,
	}, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	p.Start()
	t.Cleanup(func() { _ = p.Close() })
	if err := p.Refresh(context.Background(), "t"); err == nil {
		t.Fatal("refresh without a broker succeeded")
	}
	count := func(msg string) int { return logs.FilterMessage(msg).Len() }
	waitUntil(t, func() bool { return count("kafka metadata refresh failed again") >= 3 }, "repeated failures logged")
	if n := count("kafka metadata refresh failed"); n != 1 {
		t.Fatalf("%d warnings for one outage, want 1", n)
	}
	if l := logs.FilterMessage("kafka metadata refresh failed again").All()[0]; l.Level != zap.DebugLevel {
		t.Fatalf("repeated failure logged at %s, want debug", l.Level)
	}

	kfaketest.OnPort(t, port, kfake.SeedTopics(2, "t"))
	waitUntil(t, func() bool { return count("kafka metadata refresh works again") == 1 }, "recovery logged")
	if n := count("kafka metadata refresh failed"); n != 1 {
		t.Fatalf("%d warnings, want still 1", n)
	}
}

// waitUntil polls cond every 5ms for up to 10s.
func waitUntil(t *testing.T, cond func() bool, what string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s", what)
		}
	}
}
