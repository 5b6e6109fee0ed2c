package producer

import (
	"context"
	"fmt"
	"github.com/IBM/sarama"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// rcrowley/go-metrics starts one global meter ticker, never stopped.
		goleak.IgnoreTopFunction("github.com/rcrowley/go-metrics.(*meterArbiter).tick"),
		goleak.IgnoreTopFunction("github.com/twmb/franz-go/pkg/kfake.(*group).manage"),
	)
}

var testBase = time.UnixMilli(1_700_000_000_000)

// newCluster starts an in-process kfake cluster closed at test end.
func newCluster(t testing.TB, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// newProducer creates and starts a Producer closed at test end.
func newProducer(t testing.TB, cfg Config) *Producer {
	t.Helper()
	if cfg.RetryBackoff == 0 {
		cfg.RetryBackoff = 10 * time.Millisecond
	}
	if cfg.RequiredAcks == 0 {
		cfg.RequiredAcks = -1
	}
	var p *Producer
	var err error
	if tt, ok := t.(*testing.T); ok {
		p, err = New(cfg, zaptest.NewLogger(tt))
	} else {
		p, err = New(cfg, nil)
	}
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	p.Start()
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// batchOf builds a batch of n records for topic/partition; record i has
// key "k<i>", value "<prefix>-<i>" padded to valueSize and a header.
func batchOf(topic string, partition int32, prefix string, n, valueSize int) *message.Batch {
	msgs := make([]message.Message, n)
	for i := range msgs {
		v := []byte(fmt.Sprintf("%s-%d", prefix, i))
		for len(v) < valueSize {
			v = append(v, 'x')
		}
		msgs[i] = message.Message{
			Topic: topic, Partition: partition,
			Key:       []byte("k" + strconv.Itoa(i)),
			Value:     v,
			Headers:   []message.Header{{Key: "seq", Value: []byte(strconv.Itoa(i))}},
			Timestamp: testBase.Add(time.Duration(i) * time.Millisecond),
		}
	}
	return &message.Batch{Topic: topic, Partition: partition, Messages: msgs, Bytes: message.BatchSize(msgs)}
}

// consume reads want records of topic from the start of every partition
// and returns them per partition, in offset order.
func consume(t testing.TB, want int, topic string, opts ...kgo.Opt) map[int32][]*kgo.Record {
	t.Helper()
	opts = append(opts, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatalf("kgo: %v", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := map[int32][]*kgo.Record{}
	n := 0
	for n < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records before timeout", n, want)
		}
		for _, e := range fs.Errors() {
			t.Fatalf("fetch %s/%d: %v", e.Topic, e.Partition, e.Err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			got[r.Partition] = append(got[r.Partition], r)
			n++
		})
	}
	return got
}

// assertRecords checks that recs are exactly msgs: same keys, values,
// headers and millisecond timestamps, in the same order.
func assertRecords(t testing.TB, recs []*kgo.Record, msgs []message.Message) {
	t.Helper()
	if len(recs) != len(msgs) {
		t.Fatalf("got %d records, want %d", len(recs), len(msgs))
	}
	for i, r := range recs {
		m := msgs[i]
		if string(r.Key) != string(m.Key) || string(r.Value) != string(m.Value) {
			t.Fatalf("record %d = %q/%q, want %q/%q", i, r.Key, r.Value, m.Key, m.Value)
		}
		if !r.Timestamp.Equal(m.Timestamp.Truncate(time.Millisecond)) {
			t.Fatalf("record %d timestamp %v, want %v", i, r.Timestamp, m.Timestamp)
		}
		if len(r.Headers) != len(m.Headers) {
			t.Fatalf("record %d has %d headers, want %d", i, len(r.Headers), len(m.Headers))
		}
		for h := range r.Headers {
			if r.Headers[h].Key != m.Headers[h].Key || string(r.Headers[h].Value) != string(m.Headers[h].Value) {
				t.Fatalf("record %d header %d = %v, want %v", i, h, r.Headers[h], m.Headers[h])
			}
		}
	}
}

// produceAndRead produces b and checks that its partition then holds b's
// records, in order.
func produceAndRead(t testing.TB, p *Producer, c *kfake.Cluster, b *message.Batch) {
	t.Helper()
	produceOK(t, p, b)
	got := consume(t, len(b.Messages), b.Topic, kgo.SeedBrokers(c.ListenAddrs()...))
	assertRecords(t, got[b.Partition], b.Messages)
}

// assertDeliveredWithout checks that b's partition holds b's records but
// the i-th, in order: Kafka took the rest of a batch it refused one record of.
func assertDeliveredWithout(t testing.TB, c *kfake.Cluster, b *message.Batch, i int) {
	t.Helper()
	want := append(append([]message.Message{}, b.Messages[:i]...), b.Messages[i+1:]...)
	got := consume(t, len(want), b.Topic, kgo.SeedBrokers(c.ListenAddrs()...))
	assertRecords(t, got[b.Partition], want)
}

// produceOK produces batches and fails the test on any error or rejection.
func produceOK(t testing.TB, p *Producer, batches ...*message.Batch) []message.Outcome {
	t.Helper()
	res := p.Produce(context.Background(), batches)
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("batch %d: %v", i, r.Err)
		}
		if len(r.Rejected) != 0 {
			t.Fatalf("batch %d: rejected %d records: %v", i, len(r.Rejected), r.Rejected[0].Err)
		}
	}
	return res
}

// recordBatch builds msgs' record batch on fresh arrays.
func recordBatch(msgs []message.Message, codec sarama.CompressionCodec) *sarama.RecordBatch {
	rb, _ := new(recordPool).batch(msgs, codec, sarama.CompressionLevelDefault)
	return rb
}
