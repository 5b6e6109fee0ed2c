package producer

import (
	"slices"
	"strings"

	"github.com/IBM/sarama"
	"github.com/xdg-go/scram"
)

// SASL mechanisms accepted in SASLConfig.Mechanism; the empty one means no
// SASL.
const (
	SASLNone        = ""
	SASLPlain       = "PLAIN"
	SASLSCRAMSHA256 = "SCRAM-SHA-256"
	SASLSCRAMSHA512 = "SCRAM-SHA-512"
)

// SASLMechanisms lists the accepted SASL mechanisms (SASLNone aside).
func SASLMechanisms() []string {
	return []string{SASLPlain, SASLSCRAMSHA256, SASLSCRAMSHA512}
}

// SASLConfig enables SASL authentication when Mechanism is set.
type SASLConfig struct {
	Mechanism string // one of SASLMechanisms, or SASLNone
	Username  string
	Password  string
}

// validate returns the problems of s; cfgVersion is Config.Version, version
// its parsed form (versionErr the parse error).
func (s SASLConfig) validate(cfgVersion string, version sarama.KafkaVersion, versionErr error) []error {
	var errs []error
	add := func(f Field, format string, args ...any) { errs = append(errs, configError(f, -1, format, args...)) }
	mechanisms := strings.Join(SASLMechanisms(), ", ")
	switch {
	case s.Mechanism == SASLNone:
		if s.Username != "" || s.Password != "" {
			add(FieldSASLMechanism, "required when username or password is set (want %s), got %q", mechanisms, s.Mechanism)
		}
	case slices.Contains(SASLMechanisms(), s.Mechanism):
		if s.Username == "" {
			add(FieldSASLUsername, "required with mechanism %s, got %q", s.Mechanism, s.Username)
		}
		if s.Password == "" {
			// The password itself is never printed.
			add(FieldSASLPassword, "required with mechanism %s, got none", s.Mechanism)
		}
		// sarama speaks SaslHandshake v1 / SaslAuthenticate only from 1.0.0
		// and would otherwise fail every connection without saying why.
		if versionErr == nil && !version.IsAtLeast(sarama.V1_0_0_0) {
			add(FieldSASLMechanism, "SASL needs %s >= 1.0.0, got %s %q", FieldVersion, FieldVersion, cfgVersion)
		}
	default:
		add(FieldSASLMechanism, "unknown mechanism %q (want %s)", s.Mechanism, mechanisms)
	}
	return errs
}

// configureSASL sets up sc for s, a validated SASLConfig.
func configureSASL(sc *sarama.Config, s SASLConfig) {
	if s.Mechanism == SASLNone {
		return
	}
	sc.Net.SASL.Enable = true
	sc.Net.SASL.Handshake = true
	sc.Net.SASL.Version = sarama.SASLHandshakeV1
	sc.Net.SASL.User = s.Username
	sc.Net.SASL.Password = s.Password
	switch s.Mechanism {
	case SASLPlain:
		sc.Net.SASL.Mechanism = sarama.SASLTypePlaintext
	case SASLSCRAMSHA256:
		sc.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA256
		sc.Net.SASL.SCRAMClientGeneratorFunc = newSCRAMClient(scram.SHA256)
	case SASLSCRAMSHA512:
		sc.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA512
		sc.Net.SASL.SCRAMClientGeneratorFunc = newSCRAMClient(scram.SHA512)
	}
}
