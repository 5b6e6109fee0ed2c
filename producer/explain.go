package producer

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	"github.com/IBM/sarama"
)

// explain wraps a permanent error from Kafka about topic with what an
// operator needs to fix it: the SASL login, the missing ACL (op is the
// operation the request needed: Write for Produce, Describe for Metadata)
// or the protocol_version. Other errors are returned as they are.
func (p *Producer) explain(topic, op string, err error) error {
	switch {
	case isCredentialError(err):
		return p.authError(err)
	case errors.Is(err, sarama.ErrTopicAuthorizationFailed):
		principal, grant := p.principal()
		return fmt.Errorf("%w: %s has no %s ACL on topic %q (grant it: kafka-acls.sh --add %s --operation %s --topic %s): %w",
			ErrAuthorization, principal, op, topic, grant, op, topic, err)
	case errors.Is(err, sarama.ErrUnsupportedVersion):
		return fmt.Errorf("protocol_version %s: the broker does not accept the requests this version makes; set protocol_version to the brokers' Kafka version (at least 2.1.0 for Kafka 4): %w",
			p.st.cfg.Version, err)
	}
	return err
}

// principal names the exporter's Kafka principal and the kafka-acls.sh
// flag that grants it something.
func (p *Producer) principal() (principal, grant string) {
	s := p.st.cfg.SASL
	switch s.Mechanism {
	case SASLNone:
		return "the exporter's principal (User:ANONYMOUS without SASL or a TLS client certificate)", "--allow-principal User:ANONYMOUS"
	case SASLOAuthBearer:
		return "the token's principal (User:<its sub claim>)", "--allow-principal User:<sub>"
	case SASLGSSAPI:
		// Kafka's default principal.to.local rule keeps the first component.
		u := s.Kerberos.Username
		if i := strings.IndexByte(u, '/'); i >= 0 {
			u = u[:i]
		}
		return "User:" + u, "--allow-principal User:" + u
	}
	return "User:" + s.Username, "--allow-principal User:" + s.Username
}

// tlsHint says what to check when err is a TLS handshake failure, or "".
func tlsHint(err error) string {
	var verify *tls.CertificateVerificationError
	var unknown x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(err, &hostname):
		return " (TLS: the broker's certificate does not name the host dialled: check brokers or tls.server_name_override)"
	case errors.As(err, &verify), errors.As(err, &unknown), errors.As(err, &invalid):
		return " (TLS: the broker's certificate is not trusted: check tls.ca_file)"
	}
	return ""
}
