package producer

import (
	"errors"
	"fmt"
	"io"
	"syscall"

	"github.com/IBM/sarama"
)

// Sentinel errors callers branch on with errors.Is.
var (
	// ErrUnavailable means Kafka could not take the batch now (no broker
	// reachable, or retriable errors used every attempt). Retry later.
	ErrUnavailable = errors.New("kafka unavailable")
	// ErrAuthentication means the brokers refused the SASL credentials.
	ErrAuthentication = errors.New("kafka authentication failed")
	// ErrClosed is returned once the Producer is closed.
	ErrClosed = errors.New("producer closed")
	// ErrAuthorization means the broker refused an operation on a topic to
	// the exporter's principal (an ACL is missing). Retry later: an
	// operator may grant it.
	ErrAuthorization = errors.New("kafka authorization failed")
	// ErrUnknownTopic means Kafka says the topic does not exist
	// (UNKNOWN_TOPIC_OR_PARTITION). Refresh returns it, wrapped, for such a
	// topic and stops refreshing it in the background.
	ErrUnknownTopic error = sarama.ErrUnknownTopicOrPartition
)

// unavailable wraps err, a connection or retriable error, with
// ErrUnavailable. Some brokers close the connection on bad SASL credentials
// instead of answering SASL_AUTHENTICATION_FAILED; with SASL on, a closed
// connection says so, naming the login to check.
func (p *Producer) unavailable(err error) error {
	s := p.st.cfg.SASL
	if s.Mechanism != "" && !isDialError(err) &&
		(errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)) {
		return fmt.Errorf("%w: %w (the broker closed the connection: check the SASL %s credentials of %s)",
			ErrUnavailable, err, s.Mechanism, s.login())
	}
	return fmt.Errorf("%w: %w%s", ErrUnavailable, err, tlsHint(err))
}

// authError wraps err, a refused or impossible login (isCredentialError),
// with ErrAuthentication and the credentials to check.
func (p *Producer) authError(err error) error {
	s := p.st.cfg.SASL
	var ce *CredentialError
	if errors.As(err, &ce) {
		// It names the credentials already.
		return fmt.Errorf("%w (mechanism %s): %w", ErrAuthentication, s.Mechanism, err)
	}
	return fmt.Errorf("%w (mechanism %s, %s): %w", ErrAuthentication, s.Mechanism, s.login(), err)
}
