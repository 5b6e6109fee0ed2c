package producer

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/IBM/sarama"
)

// action is what Produce does about a failed send of part of a batch.
type action uint8

const (
	// actRetry: refresh metadata, back off, send the same records again.
	actRetry action = iota + 1
	// actReconnect: the connection failed; close it and refresh metadata.
	// When no broker answers, the batch fails at once (ErrUnavailable).
	actReconnect
	// actSplit: the records are too large together; send each half on its
	// own, or reject the record when only one is left.
	actSplit
	// actRecordErrors: the broker refused some records; reject those it
	// names and resend the rest, or split when it names none.
	actRecordErrors
	// actSequence: the broker does not follow the producer's sequence
	// numbers (OUT_OF_ORDER_SEQUENCE_NUMBER) or no longer knows its id or
	// epoch; the partition's window decides.
	actSequence
	// actFail: permanent for the whole batch (authentication, authorization,
	// closed producer, canceled context).
	actFail
)

func (a action) String() string {
	switch a {
	case actRetry:
		return "retry"
	case actReconnect:
		return "reconnect"
	case actSplit:
		return "split"
	case actRecordErrors:
		return "record_errors"
	case actSequence:
		return "sequence"
	case actFail:
		return "fail"
	}
	return "unknown"
}

// classify maps an error from a send, a leader lookup or a produce
// response block to the action Produce takes.
func classify(err error) action {
	var kerr sarama.KError
	if errors.As(err, &kerr) {
		return classifyKafka(kerr)
	}
	var encErr sarama.PacketEncodingError
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, sarama.ErrClosedClient), errors.Is(err, ErrClosed):
		return actFail
	case errors.As(err, &encErr):
		// A record that cannot be encoded (e.g. a timestamp before 1970 as
		// the batch's first); splitting isolates it.
		return actRecordErrors
	case errors.Is(err, sarama.ErrIncompleteResponse):
		return actRetry
	}
	// Everything else comes from the connection: dial and I/O errors,
	// ErrNotConnected, ErrOutOfBrokers, undecodable responses.
	return actReconnect
}

func classifyKafka(kerr sarama.KError) action {
	switch kerr {
	case sarama.ErrNotLeaderForPartition,
		sarama.ErrLeaderNotAvailable,
		sarama.ErrNotEnoughReplicas,
		sarama.ErrNotEnoughReplicasAfterAppend,
		sarama.ErrRequestTimedOut,
		sarama.ErrUnknownTopicOrPartition,
		sarama.ErrBrokerNotAvailable,
		sarama.ErrReplicaNotAvailable,
		sarama.ErrKafkaStorageError,
		sarama.ErrFencedLeaderEpoch,
		sarama.ErrUnknownLeaderEpoch,
		sarama.ErrNotController,
		sarama.ErrThrottlingQuotaExceeded,
		sarama.ErrOffsetsLoadInProgress,
		sarama.ErrConsumerCoordinatorNotAvailable:
		return actRetry
	case sarama.ErrNetworkException:
		return actReconnect
	case sarama.ErrOutOfOrderSequenceNumber, sarama.ErrUnknownProducerID,
		sarama.ErrInvalidProducerEpoch, sarama.ErrInvalidProducerIDMapping, sarama.ErrProducerFenced:
		return actSequence
	case sarama.ErrMessageSizeTooLarge, sarama.ErrMessageSetSizeTooLarge:
		return actSplit
	case sarama.ErrInvalidMessage, sarama.ErrInvalidRecord, sarama.ErrInvalidTimestamp:
		return actRecordErrors
	}
	return actFail
}

// isDialError reports whether err says a connection could not be opened,
// as opposed to one that broke.
func isDialError(err error) bool {
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

// isConnBroken reports whether err means the connection is unusable and
// must be closed before the broker is used again.
func isConnBroken(err error) bool {
	var netErr net.Error
	var decErr sarama.PacketDecodingError
	return errors.As(err, &netErr) || errors.As(err, &decErr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, sarama.ErrNotConnected)
}
