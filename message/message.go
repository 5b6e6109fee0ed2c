// Package message holds the types that flow between the exporter's parts: a
// Message is one Kafka record to produce, a Batch is the records of one
// topic/partition that are sent together as one Kafka record batch.
package message

import (
	"cmp"
	"strings"
	"time"
)

// Header is one Kafka record header.
type Header struct {
	Key   string
	Value []byte
}

// Signal says which pipeline a message came from. The zero Signal is
// SignalLogs, so messages built before signals existed are logs.
type Signal uint8

// Signals, in the order of Signals.
const (
	SignalLogs Signal = iota
	SignalTraces
	SignalMetrics
)

// NumSignals is the number of signals; Signal values are below it.
const NumSignals = 3

// String returns the signal as the signal metric label names it.
func (s Signal) String() string {
	switch s {
	case SignalLogs:
		return "logs"
	case SignalTraces:
		return "traces"
	case SignalMetrics:
		return "metrics"
	}
	return "unknown"
}

// Message is one Kafka record: one log record, or the spans or metrics of
// one (resource, key) of a call.
type Message struct {
	Topic     string
	Partition int32 // assigned by the partitioner before the message reaches the batcher
	// Index is the record's position in the batch delivery took it in:
	// delivery numbers the records of each batch it sends or replays, and
	// the records the producer hands back in an Outcome keep it, so they
	// are told apart by it rather than by comparing contents or addresses.
	Index     int32
	Key       []byte
	Value     []byte
	Headers   []Header
	Timestamp time.Time
	// Trigger is true when the record matched a flush_when condition: its batch
	// is sent at once, the record included.
	Trigger bool
	// Signal is the pipeline the message came from, for telemetry labels.
	Signal Signal
	// Tracker, set under sync delivery, is told the record's outcome.
	Tracker *Tracker
}

// TopicPartition names one partition of one topic. A topic-wide batch
// (batch.collect_by_partition false, before it is split) has Partition -1.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// Compare orders partitions by topic, then partition number.
func (tp TopicPartition) Compare(o TopicPartition) int {
	return cmp.Or(strings.Compare(tp.Topic, o.Topic), cmp.Compare(tp.Partition, o.Partition))
}

// FlushReason says why a batch became ready.
type FlushReason uint8

// Flush reasons, counted by the exporter's flushes metric.
const (
	ReasonSize     FlushReason = iota + 1 // batch.size records pending
	ReasonBytes                           // the next record would exceed batch.max_bytes
	ReasonMaxWait                         // the oldest record reached batch.max_wait
	ReasonMinDelay                        // a full batch held back by batch.min_delay was released
	ReasonTrigger                         // a record matched flush_when
	ReasonShutdown                        // the exporter is stopping
	ReasonMemory                          // max_pending_bytes reached with most bytes in accumulators
	ReasonCall                            // a delivery: sync call has added its records
)

// String returns the reason as the flushes metric labels it.
func (r FlushReason) String() string {
	switch r {
	case ReasonSize:
		return "size"
	case ReasonBytes:
		return "bytes"
	case ReasonMaxWait:
		return "max_wait"
	case ReasonMinDelay:
		return "min_delay"
	case ReasonTrigger:
		return "trigger"
	case ReasonShutdown:
		return "shutdown"
	case ReasonMemory:
		return "memory"
	case ReasonCall:
		return "call"
	}
	return "unknown"
}

// RejectReason says why records were not sent to Kafka. It is the reason
// label of the rejected-records metric and, for records written to the
// dead-letter file, the reason of their line. Every reason is listed here.
type RejectReason string

// Reject reasons.
const (
	// RejectOversize means the record alone is larger than
	// producer.max_message_bytes; the batcher refuses it before sending.
	RejectOversize RejectReason = "oversize"
	// RejectMessageTooLarge means the producer found the record too large
	// for producer.max_message_bytes as it sent it, or Kafka refused a batch
	// of that record alone as too large (MESSAGE_TOO_LARGE,
	// RECORD_LIST_TOO_LARGE).
	RejectMessageTooLarge RejectReason = "message_too_large"
	// RejectInvalidRecord means Kafka refused the record itself (INVALID_RECORD,
	// or a per-record error in the produce response).
	RejectInvalidRecord RejectReason = "invalid_record"
	// RejectUnknownTopic means the record's topic does not exist in Kafka.
	RejectUnknownTopic RejectReason = "unknown_topic"
	// RejectNotStored counts a batch neither sent nor stored in the temp storage
	// (an error to a sync caller, or lost at shutdown without temp storage).
	// Its records are not written to the dead-letter file.
	RejectNotStored RejectReason = "not_stored"
	// RejectPartitionGone means the record was stored for a partition that
	// Kafka's metadata no longer has (the topic was recreated with fewer).
	RejectPartitionGone RejectReason = "partition_gone"
)

// Batch is a ready batch: records of one topic/partition in arrival order,
// sent as one Kafka v2 record batch.
type Batch struct {
	Topic     string
	Partition int32
	Messages  []Message
	// Bytes is the encoded v2 record batch size, header included, before
	// compression (see BatchSize).
	Bytes  int
	Reason FlushReason
	// Opened is when the batch's oldest record was accepted: the batcher's
	// clock at the Add that opened the batch (parts of a batch split by
	// partition keep it). Zero for a batch read back from the temp storage,
	// which does not keep it.
	Opened time.Time
	// Seq, when set, is the sequence numbers the records were sent with
	// before (a batch Kafka did not take, kept for a retry or stored);
	// nil for a batch never numbered.
	Seq *Sequence
}

// TopicPartition returns the batch's topic and partition.
func (b *Batch) TopicPartition() TopicPartition {
	return TopicPartition{Topic: b.Topic, Partition: b.Partition}
}
