// Package kafkatest writes exact record batches to a broker for tests: each
// call is one record batch, as a producer would send it, so tests know what
// the broker stored.
package kafkatest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// EncodeBatch builds a valid, uncompressed-layout v2 record batch of msgs:
// offsets from base, timestamps as deltas from the first message, attrs as
// the batch attributes (compression bits, control flag), CRC-32C set.
func EncodeBatch(base int64, attrs int16, msgs []message.Message) []byte {
	if len(msgs) == 0 {
		return nil
	}
	first := msgs[0].Timestamp.UnixMilli()
	maxTS := first
	var records []byte
	for i, m := range msgs {
		r := kmsg.Record{
			TimestampDelta64: m.Timestamp.UnixMilli() - first,
			OffsetDelta:      int32(i),
			Key:              m.Key,
			Value:            m.Value,
		}
		for _, h := range m.Headers {
			r.Headers = append(r.Headers, kmsg.Header{Key: h.Key, Value: h.Value})
		}
		body := r.AppendTo(nil) // with Length 0, whose varint is one byte
		r.Length = int32(len(body) - 1)
		records = r.AppendTo(records)
		maxTS = max(maxTS, m.Timestamp.UnixMilli())
	}
	rb := kmsg.RecordBatch{
		FirstOffset:     base,
		Length:          int32(message.BatchHeaderBytes - 12 + len(records)),
		Magic:           2,
		Attributes:      attrs,
		LastOffsetDelta: int32(len(msgs) - 1),
		FirstTimestamp:  first,
		MaxTimestamp:    maxTS,
		ProducerID:      -1,
		ProducerEpoch:   -1,
		FirstSequence:   -1,
		NumRecords:      int32(len(msgs)),
		Records:         records,
	}
	raw := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[17:21], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return raw
}

// Produce sends msgs as one record batch to the partition's leader, acks
// from all replicas, and returns the offset the broker gave its first record.
func Produce(ctx context.Context, cl *kgo.Client, topic string, partition int32, msgs []message.Message) (int64, error) {
	meta := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(topic)
	meta.Topics = append(meta.Topics, mt)
	mresp, err := meta.RequestWith(ctx, cl)
	if err != nil {
		return 0, fmt.Errorf("metadata %s: %w", topic, err)
	}
	leader, topicID := int32(-1), [16]byte{}
	for _, t := range mresp.Topics {
		if t.Topic == nil || *t.Topic != topic {
			continue
		}
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return 0, fmt.Errorf("metadata %s: %w", topic, err)
		}
		topicID = t.TopicID
		for _, p := range t.Partitions {
			if p.Partition == partition {
				leader = p.Leader
			}
		}
	}
	if leader < 0 {
		return 0, fmt.Errorf("metadata %s/%d: no leader", topic, partition)
	}

	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = 10_000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic, rt.TopicID = topic, topicID
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = partition
	rp.Records = EncodeBatch(0, 0, msgs)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	kresp, err := cl.Broker(int(leader)).Request(ctx, req)
	if err != nil {
		return 0, fmt.Errorf("produce %s/%d: %w", topic, partition, err)
	}
	for _, t := range kresp.(*kmsg.ProduceResponse).Topics {
		for _, p := range t.Partitions {
			if p.Partition != partition {
				continue
			}
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return 0, fmt.Errorf("produce %s/%d: %w", topic, partition, err)
			}
			return p.BaseOffset, nil
		}
	}
	return 0, errors.New("produce: partition missing from response")
}
