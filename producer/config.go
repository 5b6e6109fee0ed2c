package producer

import (
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/IBM/sarama"
	"github.com/xdg-go/scram"
)

// SASL mechanisms accepted in SASLConfig.Mechanism.
const (
	SASLPlain       = "PLAIN"
	SASLSCRAMSHA256 = "SCRAM-SHA-256"
	SASLSCRAMSHA512 = "SCRAM-SHA-512"
)

// Defaults applied by New to zero fields.
const (
	DefaultClientID        = "otelcol-kafkabatcher"
	DefaultVersion         = "2.8.0"
	DefaultMaxMessageBytes = 1000000
	DefaultTimeout         = 10 * time.Second
	DefaultMaxAttempts     = 3
	DefaultRetryBackoff    = 100 * time.Millisecond
	DefaultRefreshInterval = 30 * time.Second
)

// MinTimeout is the least Config.Timeout New accepts: Kafka's produce
// timeout is in milliseconds. The exporter's Validate checks it too.
const MinTimeout = time.Millisecond

// MaxMessageBytesLimit bounds Config.MaxMessageBytes from above (sarama's
// request size limit, exclusive). The exporter's Validate checks it too.
func MaxMessageBytesLimit() int { return int(sarama.MaxRequestSize) }

// maxBackoff caps the exponential retry backoff.
const maxBackoff = time.Second

// Config configures a Producer. Zero values take the defaults above, except
// RequiredAcks whose zero value means "no acknowledgement" (acks 0): callers
// map the YAML default "all" to -1.
type Config struct {
	Brokers  []string // host:port, at least one
	ClientID string
	// Version is the Kafka protocol version, e.g. "2.8.0"; at least 0.11.0
	// (v2 record batches).
	Version string
	// RequiredAcks is -1 (all in-sync replicas), 1 (leader) or 0 (none).
	RequiredAcks int16
	// Compression is none, gzip, snappy, lz4 or zstd ("" is none).
	Compression string
	// MaxMessageBytes: a single record whose batch would exceed it is
	// rejected without being sent.
	MaxMessageBytes int
	// Timeout bounds one produce attempt (sent to the broker as the produce
	// timeout), a dial and a metadata request.
	Timeout time.Duration
	// MaxAttempts is how many times a batch is sent while it meets
	// retriable errors before it is returned as failed.
	MaxAttempts int
	// RetryBackoff is the first wait between attempts; it doubles per
	// attempt up to one second (or RetryBackoff, if larger).
	RetryBackoff time.Duration
	// RefreshInterval is how often Start's loop refreshes the metadata of
	// every known topic.
	RefreshInterval time.Duration
	SASL            SASLConfig
	// TLS enables TLS with this configuration when non-nil.
	TLS *tls.Config
}

// SASLConfig enables SASL authentication when Mechanism is set.
type SASLConfig struct {
	Mechanism string // PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512
	Username  string
	Password  string
}

// withDefaults returns cfg with zero fields set to their defaults.
func (cfg Config) withDefaults() Config {
	if cfg.ClientID == "" {
		cfg.ClientID = DefaultClientID
	}
	if cfg.Version == "" {
		cfg.Version = DefaultVersion
	}
	if cfg.Compression == "" {
		cfg.Compression = "none"
	}
	if cfg.MaxMessageBytes == 0 {
		cfg.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.RetryBackoff == 0 {
		cfg.RetryBackoff = DefaultRetryBackoff
	}
	if cfg.RefreshInterval == 0 {
		cfg.RefreshInterval = DefaultRefreshInterval
	}
	return cfg
}

// settings are the validated, derived values a Producer works with.
// defaultMaxRequestBytes bounds one produce request's record batches, well
// under Kafka's default socket.request.max.bytes and sarama's MaxRequestSize
// (both 100 MiB).
const defaultMaxRequestBytes = 32 << 20

type settings struct {
	cfg            Config
	codec          sarama.CompressionCodec
	produceVersion int16
	sarama         *sarama.Config
	// maxRequestBytes bounds the record batches of one produce request.
	maxRequestBytes int
}

// compile validates cfg (defaults applied) and derives the sarama config.
func compile(cfg Config) (*settings, error) {
	cfg = cfg.withDefaults()
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("brokers: at least one broker is required")
	}
	for _, b := range cfg.Brokers {
		if b == "" {
			return nil, errors.New("brokers: empty address")
		}
	}
	version, err := sarama.ParseKafkaVersion(cfg.Version)
	if err != nil {
		return nil, fmt.Errorf("protocol_version: %w", err)
	}
	if !version.IsAtLeast(sarama.V0_11_0_0) {
		return nil, fmt.Errorf("protocol_version: must be at least 0.11.0 (v2 record batches), got %q", cfg.Version)
	}
	switch cfg.RequiredAcks {
	case -1, 0, 1:
	default:
		return nil, fmt.Errorf("producer.required_acks: must be -1, 0 or 1, got %d", cfg.RequiredAcks)
	}
	codec, err := parseCodec(cfg.Compression)
	if err != nil {
		return nil, err
	}
	if codec == sarama.CompressionZSTD && !version.IsAtLeast(sarama.V2_1_0_0) {
		return nil, fmt.Errorf("producer.compression: zstd needs protocol_version 2.1.0 or later, got %q", cfg.Version)
	}
	switch {
	case cfg.MaxMessageBytes < 0 || cfg.MaxMessageBytes >= MaxMessageBytesLimit():
		return nil, fmt.Errorf("producer.max_message_bytes: must be > 0 and < %d, got %d", MaxMessageBytesLimit(), cfg.MaxMessageBytes)
	case cfg.Timeout < MinTimeout:
		return nil, fmt.Errorf("producer.timeout: must be at least %s, got %s", MinTimeout, cfg.Timeout)
	case cfg.MaxAttempts < 1:
		return nil, fmt.Errorf("producer.max_attempts: must be > 0, got %d", cfg.MaxAttempts)
	case cfg.RetryBackoff < 0:
		return nil, fmt.Errorf("producer.retry_backoff: must not be negative, got %s", cfg.RetryBackoff)
	case cfg.RefreshInterval < 0:
		return nil, fmt.Errorf("metadata.refresh_interval: must be > 0, got %s", cfg.RefreshInterval)
	}

	sc := sarama.NewConfig()
	sc.ClientID = cfg.ClientID
	sc.Version = version
	sc.Net.DialTimeout = cfg.Timeout
	sc.Net.WriteTimeout = cfg.Timeout
	// The broker answers a produce within Timeout; the margin covers the
	// round trip so a slow ack is not mistaken for a dead connection.
	sc.Net.ReadTimeout = cfg.Timeout + min(cfg.Timeout, 5*time.Second)
	// Metadata is refreshed by our own loop and on errors, never by sarama
	// in the background; Full=false keeps NewClient from dialing.
	sc.Metadata.Full = false
	sc.Metadata.RefreshFrequency = 0
	// Retries are ours (with backoff and attempts counted); sarama's would
	// only delay noticing that no broker answers.
	sc.Metadata.Retry.Max = 0
	sc.Metadata.Timeout = cfg.Timeout
	sc.MetricRegistry = discardRegistry{}
	sc.Producer.MaxMessageBytes = cfg.MaxMessageBytes
	sc.Producer.RequiredAcks = sarama.RequiredAcks(cfg.RequiredAcks)
	sc.Producer.Timeout = cfg.Timeout.Truncate(time.Millisecond)
	sc.Producer.Compression = codec
	if cfg.TLS != nil {
		sc.Net.TLS.Enable = true
		sc.Net.TLS.Config = cfg.TLS
	}
	if err := configureSASL(sc, cfg.SASL); err != nil {
		return nil, err
	}
	if sc.Net.SASL.Enable && !version.IsAtLeast(sarama.V1_0_0_0) {
		// sarama refuses SaslHandshake v1 below 1.0.0, on every connection.
		return nil, fmt.Errorf("auth.sasl.mechanism: SASL needs protocol_version 1.0.0 or later, got %q", cfg.Version)
	}
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("producer config: %w", err)
	}
	return &settings{
		cfg:             cfg,
		codec:           codec,
		produceVersion:  produceRequestVersion(version),
		sarama:          sc,
		maxRequestBytes: defaultMaxRequestBytes,
	}, nil
}

func parseCodec(s string) (sarama.CompressionCodec, error) {
	switch s {
	case "none":
		return sarama.CompressionNone, nil
	case "gzip":
		return sarama.CompressionGZIP, nil
	case "snappy":
		return sarama.CompressionSnappy, nil
	case "lz4":
		return sarama.CompressionLZ4, nil
	case "zstd":
		return sarama.CompressionZSTD, nil
	}
	return 0, fmt.Errorf("producer.compression: must be one of none, gzip, snappy, lz4, zstd, got %q", s)
}

func configureSASL(sc *sarama.Config, s SASLConfig) error {
	if s.Mechanism == "" {
		if s.Username != "" || s.Password != "" {
			return errors.New("auth.sasl.mechanism: required when a username or password is set")
		}
		return nil
	}
	if s.Username == "" {
		return errors.New("auth.sasl.username: required with a SASL mechanism")
	}
	if s.Password == "" {
		return errors.New("auth.sasl.password: required with a SASL mechanism")
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
	default:
		return fmt.Errorf("auth.sasl.mechanism: must be one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, got %q", s.Mechanism)
	}
	return nil
}

// produceRequestVersion is the highest produce request version the
// configured protocol version allows (the broker's advertised range clamps it
// further). 3 is the first with v2 record batches; 8 adds per-record errors.
func produceRequestVersion(v sarama.KafkaVersion) int16 {
	switch {
	case v.IsAtLeast(sarama.V3_7_0_0):
		return 10
	case v.IsAtLeast(sarama.V2_8_0_0):
		return 9
	case v.IsAtLeast(sarama.V2_4_0_0):
		return 8
	case v.IsAtLeast(sarama.V2_1_0_0):
		return 7
	case v.IsAtLeast(sarama.V2_0_0_0):
		return 6
	case v.IsAtLeast(sarama.V1_0_0_0):
		return 5
	default:
		return 3
	}
}
