package message

// Outcome is what Kafka did with one batch given to the producer.
type Outcome struct {
	// Err is nil when every record not in Rejected was acknowledged (or
	// written, with acks 0). Otherwise it names the topic/partition and
	// says why (the producer's errors tell retriable from permanent ones).
	Err error
	// Rejected are records Kafka refused for good (too large, invalid);
	// the batch's other records are not held back by them.
	Rejected []Rejected
	// Remaining, when Err is set, are the records not acknowledged, in
	// order: the whole batch less Rejected unless part of it was
	// acknowledged before the failure. Records of an attempt that ended
	// ambiguously (timeout, lost connection, canceled context) are
	// included: they may also be in Kafka. nil means all but Rejected.
	Remaining []Message
	// Seq, when Err is set, is the sequence numbers of Remaining: a retry
	// or replay of Remaining carries it (Batch.Seq). nil when they have
	// none.
	Seq *Sequence
	// Attempts counts the produce requests that carried records of the
	// batch, those that failed to connect included.
	Attempts int
}

// Rejected is a record refused for good, with the reason.
type Rejected struct {
	Message Message
	Reason  RejectReason
	Err     error // what Kafka (or the size guard) said, when it said something
}
