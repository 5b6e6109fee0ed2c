package batcher

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// TestBatchBytesEqualSaramaEncoding produces the accumulator's batches with
// sarama to an in-process kfake broker and compares each batch's Bytes with
// the length of the record batch sarama put on the wire.
func TestBatchBytesEqualSaramaEncoding(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker")
	}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "t"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()

	var mu sync.Mutex
	wire := map[int32][]int{} // partition -> record batch lengths, in order
	cluster.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		mu.Lock()
		defer mu.Unlock()
		for _, tp := range req.(*kmsg.ProduceRequest).Topics {
			for _, pp := range tp.Partitions {
				wire[pp.Partition] = append(wire[pp.Partition], len(pp.Records))
			}
		}
		return nil, nil, false // let the broker handle it
	})

	// Batches from the accumulator, cut by size and by bytes, with keys or
	// none, headers, null and empty values, timestamps before and after the
	// first one, and values across varint length boundaries.
	cfg := Config{Size: 20, MaxBytes: 3000, MaxMessageBytes: 100_000, MaxWait: time.Second}
	var batches []message.Batch
	for part := int32(0); part < 3; part++ {
		a := NewAccumulator(cfg, "t", part)
		for i := 0; i < 150; i++ {
			m := message.Message{
				Topic: "t", Partition: part,
				Value:     make([]byte, (i*53+int(part)*7)%150),
				Timestamp: t0.Add(time.Duration((i*7919)%4000-2000) * time.Millisecond),
			}
			if i%11 == 10 {
				m.Value = make([]byte, 900+i)
			}
			switch i % 5 {
			case 0:
				m.Key = []byte(fmt.Sprintf("key-%d", i))
			case 1:
				m.Value = nil
			case 2:
				m.Headers = []message.Header{{Key: "attributes.service", Value: []byte("checkout")}, {Key: "n", Value: nil}}
			case 3:
				m.Key = []byte{}
			}
			batches, _ = a.Add(&m, t0, batches)
		}
		batches = a.Drain(batches)
	}

	// produce sends msgs as one record batch: the producer flushes when it
	// holds exactly len(msgs) records.
	produce := func(msgs []*sarama.ProducerMessage) {
		sc := sarama.NewConfig()
		sc.Version = sarama.V2_8_0_0
		sc.Producer.Return.Successes = true
		sc.Producer.RequiredAcks = sarama.WaitForAll
		sc.Producer.Partitioner = sarama.NewManualPartitioner
		sc.Producer.Compression = sarama.CompressionNone
		sc.Producer.MaxMessageBytes = 1 << 20
		sc.Producer.Flush.Frequency = time.Hour
		sc.Producer.Flush.Messages = len(msgs)
		sc.Producer.Flush.MaxMessages = len(msgs)
		prod, err := sarama.NewSyncProducer(cluster.ListenAddrs(), sc)
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := prod.Close(); err != nil {
				t.Errorf("close producer: %v", err)
			}
		}()
		if err := prod.SendMessages(msgs); err != nil {
			t.Fatal(err)
		}
	}

	want := map[int32][]int{}
	reasons := map[message.FlushReason]int{}
	for _, b := range batches {
		checkBatch(t, cfg, b)
		reasons[b.Reason]++
		pms := make([]*sarama.ProducerMessage, len(b.Messages))
		for i, m := range b.Messages {
			pm := &sarama.ProducerMessage{Topic: m.Topic, Partition: m.Partition, Timestamp: m.Timestamp}
			if m.Key != nil {
				pm.Key = sarama.ByteEncoder(m.Key)
			}
			if m.Value != nil {
				pm.Value = sarama.ByteEncoder(m.Value)
			}
			for _, h := range m.Headers {
				pm.Headers = append(pm.Headers, sarama.RecordHeader{Key: []byte(h.Key), Value: h.Value})
			}
			pms[i] = pm
		}
		produce(pms)
		want[b.Partition] = append(want[b.Partition], b.Bytes)
	}
	if reasons[message.ReasonSize] == 0 || reasons[message.ReasonBytes] == 0 {
		t.Fatalf("batches cover too few rules: %v", reasons)
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("reasons %v wire %v", reasons, wire)
	for part, w := range want {
		if fmt.Sprint(wire[part]) != fmt.Sprint(w) {
			t.Errorf("partition %d: sarama wrote record batches of %v bytes, Bytes say %v", part, wire[part], w)
		}
	}
}
