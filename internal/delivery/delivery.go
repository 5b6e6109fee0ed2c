// Package delivery moves ready batches to Kafka in order: one send per
// partition at a time, of up to Config.MaxInFlight of its batches (the
// producer pipelines them), failed batches spilled to the temp storage, and
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
	// Append stores b behind its partition's backlog. An error for lack of
	// space (a bound reached, the file system full) has, in its chain, an
	// error with a method StorageFull() bool that returns true: space comes
	// back as the backlog is acknowledged (HasRoom). The Dispatcher wraps
	// it in ErrDiskFull; other errors are failures of the storage.
	Append(b message.Batch) error
	// Peek returns the partition's oldest batch, false when it has none.
	// Its records carry no Tracker: theirs finished when it was stored.
	Peek(tp message.TopicPartition) (message.Batch, bool, error)
	Ack(tp message.TopicPartition) error
	// SetHead records, durably, how far replays of the partition's oldest
	// batch got: done[i] for record i of the batch Peek returns now that
	// Kafka took or refused for good, seq the sequence numbers of the
	// others. Until Ack, Peek returns the batch less those records, with
	// Seq set to seq, after a restart too. On error nothing changes.
	SetHead(tp message.TopicPartition, done []bool, seq *message.Sequence) error
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
// dropped), so the batcher can free its memory.
//
// Methods are called concurrently: from the goroutine of Submit's caller
// (a batch stored behind its partition's backlog, or lost after Close),
// from the send goroutines (one per Produce call), from the replay loop,
// from the retry timer and from Close's caller. No Dispatcher lock is held
// except in DiskFull, so the others may call Submit (the exporter's Sent
// does, through the batcher, when it releases a batch that min_delay held).
type Observer interface {
	// Sent gets the records Kafka acknowledged of a submitted batch; it is
	// called from the send goroutine that produced it.
	Sent(b *message.Batch, d time.Duration)
	// Replayed gets the records Kafka acknowledged of a stored batch; it
	// is called from the replay loop.
	Replayed(b *message.Batch, d time.Duration)
	// Spilled reports a submitted batch written to the temp storage, from
	// the goroutine that wrote it: a send goroutine, Submit's caller or
	// Close's caller.
	Spilled(b *message.Batch)
	// Rejected reports a record refused for good, from a send goroutine or,
	// for a stored record (reason partition_gone included), the replay loop.
	Rejected(r message.Rejected)
	// Lost reports a batch neither sent nor stored, from Submit's caller, a
	// send goroutine or Close's caller.
	Lost(b *message.Batch, err error)
	// Failed reports a direct send that Kafka did not take, before the
	// batches of that Produce call are spilled, lost or kept for a retry
	// (so that a replay finding Kafka back meanwhile reports after it); it
	// is called from the send goroutine.
	Failed(b *message.Batch, err error)
	// Left is called right after the batch's Sent, Spilled or Lost, on the
	// same goroutine.
	Left(b *message.Batch)
	// DiskFull reports the temp storage refusing a batch for lack of space
	// (err, wrapping ErrDiskFull) and, with err nil, having room for one
	// again. Calls alternate, starting with a refusal, and never overlap:
	// they are made with the Dispatcher's disk-full lock held, from the
	// goroutine whose append or room check changed the state (any of the
	// above), so DiskFull must not call Submit.
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
	// MaxInFlight is how many of a partition's batches one send takes,
	// in order (the producer pipelines them with idempotence); 0 or 1:
	// one.
	MaxInFlight int
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
