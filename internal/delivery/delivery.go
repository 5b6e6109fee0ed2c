// Package delivery moves ready batches to Kafka in order: at most one batch
// per partition in flight, failed batches spilled to the temp storage, and
// each partition's stored backlog replayed oldest first while its new
// batches queue behind it. Partitions replay independently: one that Kafka
// does not take does not hold up the others.
package delivery

import (
	"context"
	"errors"
	"time"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// Kafka sends batches, each as one record batch; one message.Outcome per
// batch, in order.
type Kafka interface {
	Produce(ctx context.Context, batches []*message.Batch) []message.Outcome
	// Leader returns the id of the broker leading the partition as last
	// known, or -1, without asking Kafka.
	Leader(tp message.TopicPartition) int32
	// Partitions returns the topic's partition count from Kafka's
	// metadata as last seen, without asking Kafka; false when unknown.
	Partitions(topic string) (int32, bool)
}

// Storage is where batches Kafka did not take wait, durably, for the
// replay (tempstorage.Store): one FIFO per partition.
type Storage interface {
	Append(b message.Batch) error
	Peek(tp message.TopicPartition) (message.Batch, bool, error)
	Ack(tp message.TopicPartition) error
	Backlog(tp message.TopicPartition) int
	// Partitions lists the partitions with a backlog, sorted by topic,
	// then partition.
	Partitions() []message.TopicPartition
	Len() int
	// HasRoom reports whether an entry of n bytes would be stored now.
	HasRoom(n int64) bool
}

// Observer is told where every batch went. Left is called exactly once for
// each submitted batch when it leaves memory (acknowledged, spilled or
// dropped), so the batcher can free its memory. Methods are called from
// the Dispatcher's goroutines and from Submit's caller, concurrently, with
// no Dispatcher lock held except where a method says otherwise.
type Observer interface {
	// Sent and Replayed get the records Kafka acknowledged.
	Sent(b *message.Batch, d time.Duration)
	Replayed(b *message.Batch, d time.Duration)
	Spilled(b *message.Batch)
	Rejected(r message.Rejected)
	Lost(b *message.Batch, err error)
	// Failed reports a direct send that Kafka did not take, after the batch
	// was spilled or kept for a retry.
	Failed(b *message.Batch, err error)
	Left(b *message.Batch)
	// DiskFull reports the temp storage refusing a batch for lack of space
	// (err, wrapping ErrDiskFull) and, with err nil, having room for one
	// again. Calls alternate, starting with a refusal, and never overlap.
	DiskFull(err error)
}

// Timer is a stoppable timer.
type Timer interface{ Stop() bool }

// Clock runs functions after a delay; injected so tests control time.
type Clock interface {
	AfterFunc(d time.Duration, f func()) Timer
}

// Config tunes a Dispatcher.
type Config struct {
	// RetryInterval is how often Kafka is retried while batches wait.
	RetryInterval time.Duration
	// Sync makes a batch that can be neither sent nor stored fail its
	// records' trackers instead of waiting in memory for Kafka.
	Sync bool
	// EntryBytes is the most the temp storage may need for one batch
	// (tempstorage.MaxEntryBytes): once the storage refused a batch for
	// lack of space, the disk counts as full until it has that much room.
	EntryBytes int64
}

// ErrNotStored is returned to sync callers whose records could neither be
// sent to Kafka nor stored on disk; the error wrapping it says why (Kafka's
// error, ErrDiskFull).
var ErrNotStored = errors.New("batch neither sent nor stored")

// ErrDiskFull says the temp storage refused a batch for lack of space
// (temp_storage.max_bytes or the file system). While the disk is full
// (DiskFull), new records should not be accepted: they could not be saved.
var ErrDiskFull = errors.New("temp storage disk full")
