package message

// Sequence is where a batch's records stand in an idempotent producer's
// stream: the producer id and epoch they were numbered under and the first
// sequence number. A batch keeps it through retries, the temp storage and
// replay, so that a resend under the same producer id and epoch carries the
// same numbers and the broker writes it once (or answers
// DUPLICATE_SEQUENCE_NUMBER: written before).
type Sequence struct {
	ProducerID    int64
	ProducerEpoch int16
	// BaseSequence is the sequence number of the first record.
	BaseSequence int32
	// Counts are the record counts of the record batches the records were
	// numbered as, in order; they add up to the batch's records. One
	// count unless Kafka found the batch too large and it was split.
	Counts []int32
	// Unsure is set once a send of the records ended without telling
	// whether Kafka wrote them (a timeout, a connection lost after the
	// request left, NOT_ENOUGH_REPLICAS_AFTER_APPEND): resent under other
	// numbers they may be written twice.
	Unsure bool
}

// Records returns the number of records the sequence numbers cover.
func (s *Sequence) Records() int {
	n := 0
	for _, c := range s.Counts {
		n += int(c)
	}
	return n
}
