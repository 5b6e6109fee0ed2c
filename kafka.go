package kafkabatcherexporter

import (
	"context"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
	"github.com/kafkabatcher/kafkabatcherexporter/producer"
)

// kafka adapts the producer to the dispatcher.
type kafka struct{ p *producer.Producer }

// Produce sends the batches with the producer.
func (k kafka) Produce(ctx context.Context, batches []*message.Batch) []message.Outcome {
	return k.p.Produce(ctx, batches)
}

// Leader returns the broker leading the partition at the last metadata
// refresh, or -1; the dispatcher sends to each leader separately.
func (k kafka) Leader(topic string, partition int32) int32 {
	return k.p.Leader(message.TopicPartition{Topic: topic, Partition: partition})
}

// Partitions returns the topic's partition count as Kafka last reported it.
func (k kafka) Partitions(topic string) (int32, bool) { return k.p.Partitions(topic) }
