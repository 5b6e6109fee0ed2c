//go:build e2e

package e2e

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestRealKafkaMinDelay is issue 19's scenario on the 3-node cluster: one
// partition, batch.size 10, min_delay 1s, max_wait 5s; 10 records, then 25
// more 100 ms later, while the first batch may still be in flight. min_delay
// counts from the start of the first send, not its acknowledgement, so
// Kafka holds two record batches, [10, 25], and the second was appended at
// least 1s after the first export began. (Counted from the acknowledgement,
// the batches were [10, 10, 10, 5].) The topic stamps LogAppendTime, so a
// batch's MaxTimestamp is when the leader appended it.
func TestRealKafkaMinDelay(t *testing.T) {
	c := three(t)
	e := newEnv(t)
	name := newTopic(t, c, 1, map[string]string{"message.timestamp.type": "LogAppendTime"})
	conf := e.kafkaConfig(c, name)
	conf.set("encoding", "raw")
	conf.set("batch.size", 10)
	conf.set("batch.min_delay", "1s")
	conf.set("batch.max_wait", "5s")
	col := e.startCollector(conf)
	s := dial(t, col.otlp, 10, 20)

	start := time.Now()
	if err := s.export(0, 10, nil); err != nil {
		t.Fatalf("export of records 0..9: %v", err)
	}
	time.Sleep(100 * time.Millisecond)
	if err := s.export(10, 35, nil); err != nil {
		t.Fatalf("export of records 10..34: %v", err)
	}
	recs := newTopicConsumer(t, c.Bootstrap(), name).read(seqRange(0, 35), time.Minute, time.Second)
	checkExactlyOnce(t, recs, seqRange(0, 35))
	checkOrder(t, recs)

	batches := readBatches(t, c.Bootstrap(), name, 0, 35)
	var sizes []int
	for _, b := range batches {
		sizes = append(sizes, int(b.NumRecords))
		t.Logf("batch at offset %d: %d records, appended %s after the first export began",
			b.FirstOffset, b.NumRecords, time.UnixMilli(b.MaxTimestamp).Sub(start).Round(time.Millisecond))
	}
	if fmt.Sprint(sizes) != "[10 25]" {
		t.Fatalf("record batches of %v records, want [10 25]", sizes)
	}
	for _, b := range batches {
		if b.Attributes&0x08 == 0 { // bit 3: the timestamp type
			t.Fatalf("batch at offset %d has CreateTime timestamps; the topic should stamp LogAppendTime", b.FirstOffset)
		}
	}
	// The first batch was cut after start and the second no earlier than
	// min_delay after that cut; LogAppendTime has millisecond precision.
	first, second := time.UnixMilli(batches[0].MaxTimestamp), time.UnixMilli(batches[1].MaxTimestamp)
	if got := second.Sub(start); got < time.Second-time.Millisecond {
		t.Errorf("second batch appended %s after the first export began, want at least min_delay (1s)", got)
	}
	// Released by min_delay, not by max_wait (5s after the 25 arrived).
	if got := second.Sub(start); got > 4*time.Second {
		t.Errorf("second batch appended %s after the first export began: held past min_delay, towards max_wait", got)
	}
	t.Logf("batches %v; appended %s apart", sizes, second.Sub(first).Round(time.Millisecond))
}

// readBatches fetches partition of topic from offset 0 from its leader
// until it holds want records, and returns the record batch headers
// Kafka keeps: the batch boundaries a consumer does not see. A request
// that fails (a busy machine's broker may drop a new connection) is
// retried until a minute has passed.
func readBatches(t *testing.T, seeds []string, topic string, partition int32, want int) []kmsg.RecordBatch {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	retry := func(what string, f func() error) {
		t.Helper()
		for {
			err := f()
			if err == nil {
				return
			}
			if ctx.Err() != nil {
				t.Fatalf("%s %s/%d: %v", what, topic, partition, err)
			}
			t.Logf("%s %s/%d: %v (retrying)", what, topic, partition, err)
			time.Sleep(200 * time.Millisecond)
		}
	}
	var td kadm.TopicDetail
	var leader int32
	retry("metadata of", func() error {
		md, err := kadm.NewClient(cl).Metadata(ctx, topic)
		if err != nil {
			return err
		}
		td = md.Topics[topic]
		pd, ok := td.Partitions[partition]
		switch {
		case td.Err != nil:
			return td.Err
		case !ok || pd.Leader < 0:
			return errors.New("no leader")
		}
		leader = pd.Leader
		return nil
	})
	var out []kmsg.RecordBatch
	var next int64
	for n := 0; n < want; {
		var raw []byte
		retry("fetch", func() error {
			req := kmsg.NewPtrFetchRequest()
			req.ReplicaID = -1
			req.MaxWaitMillis = 500
			req.MinBytes = 1
			req.MaxBytes = 16 << 20
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic, rt.TopicID = topic, td.ID // by name up to v12, by id from v13
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = partition, next, 16<<20
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			resp, err := req.RequestWith(ctx, cl.Broker(int(leader)))
			if err != nil {
				return fmt.Errorf("at offset %d: %w", next, err)
			}
			if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
				return fmt.Errorf("at offset %d: %w", next, err)
			}
			if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
				return fmt.Errorf("at offset %d: an answer for %d topics", next, len(resp.Topics))
			}
			p := resp.Topics[0].Partitions[0]
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return fmt.Errorf("at offset %d: %w", next, err)
			}
			raw = p.RecordBatches
			return nil
		})
		got := 0
		for len(raw) >= 12 {
			size := 12 + int(int32(binary.BigEndian.Uint32(raw[8:12]))) // base offset, length, then length bytes
			if size > len(raw) {
				break // the response ends inside a batch
			}
			var b kmsg.RecordBatch
			if err := b.ReadFrom(raw[:size]); err != nil {
				t.Fatalf("fetch %s/%d: record batch at offset %d: %v", topic, partition, int64(binary.BigEndian.Uint64(raw)), err)
			}
			raw = raw[size:]
			last := b.FirstOffset + int64(b.LastOffsetDelta)
			if last < next {
				continue // a batch the fetch offset is past
			}
			b.Records = nil // the headers are what is kept
			out = append(out, b)
			n += int(b.NumRecords)
			next = last + 1
			got++
		}
		if got == 0 && ctx.Err() != nil {
			t.Fatalf("fetch %s/%d: %d of %d records in %d batches before the deadline", topic, partition, n, want, len(out))
		}
	}
	return out
}
