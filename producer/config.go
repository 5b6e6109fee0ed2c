package producer

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"
)

// Compression codecs accepted in Config.Compression.
const (
	CompressionNone   = "none"
	CompressionGzip   = "gzip"
	CompressionSnappy = "snappy"
	CompressionLZ4    = "lz4"
	CompressionZstd   = "zstd"
)

// codecs maps each compression name to its sarama codec and the levels
// Config.CompressionLevel may take with it, in the order Compressions lists
// them.
var codecs = []struct {
	name  string
	codec sarama.CompressionCodec
	// maxLevel is the highest level; levels run from 1. 0: no level can be
	// set, only the codec's default (0).
	maxLevel int
	// noLevel says why a codec without levels has none.
	noLevel string
}{
	{CompressionNone, sarama.CompressionNone, 0, "nothing is compressed"},
	// klauspost/compress gzip: 1 (fastest) .. 9 (smallest).
	{CompressionGzip, sarama.CompressionGZIP, 9, ""},
	{CompressionSnappy, sarama.CompressionSnappy, 0, "snappy has no levels"},
	// sarama compresses lz4 with one pooled pierrec/lz4 writer at its Fast
	// level and ignores the batch's level.
	{CompressionLZ4, sarama.CompressionLZ4, 0, "the client compresses lz4 at one fixed level"},
	// zstd's levels; klauspost/compress maps them to its four speeds:
	// 1-2 fastest, 3-5 default, 6-9 better, 10-22 best compression.
	{CompressionZstd, sarama.CompressionZSTD, 22, ""},
}

// Compressions lists the accepted compression names.
func Compressions() []string {
	names := make([]string, len(codecs))
	for i, c := range codecs {
		names[i] = c.name
	}
	return names
}

// RequiredAcks is how many replicas acknowledge a produce. In a
// configuration it is `all`, `-1`, `1` or `0`, quoted or not: a number
// decodes directly, a string goes through UnmarshalText. Out-of-range
// numbers are left to Config.Validate so that the error names the setting.
type RequiredAcks int16

// Acknowledgement levels.
const (
	AcksAll    RequiredAcks = -1
	AcksLeader RequiredAcks = 1
	AcksNone   RequiredAcks = 0
)

// UnmarshalText accepts all, -1, 1 and 0.
func (a *RequiredAcks) UnmarshalText(text []byte) error {
	s := strings.TrimSpace(string(text))
	if strings.EqualFold(s, "all") {
		*a = AcksAll
		return nil
	}
	n, err := strconv.ParseInt(s, 10, 16)
	if err != nil {
		return fmt.Errorf("want all, -1, 1 or 0, got %q", string(text))
	}
	*a = RequiredAcks(n)
	return nil
}

// MarshalText writes all for -1, else the number.
func (a RequiredAcks) MarshalText() ([]byte, error) {
	if a == AcksAll {
		return []byte("all"), nil
	}
	return []byte(strconv.Itoa(int(a))), nil
}

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
// timeout is in milliseconds.
const MinTimeout = time.Millisecond

// MaxMessageBytesLimit bounds Config.MaxMessageBytes from above (sarama's
// request size limit, exclusive).
func MaxMessageBytesLimit() int { return int(sarama.MaxRequestSize) }

// MaxInFlightLimit is the most record batches of one partition that may be
// in flight with idempotence: the broker remembers the last five batches of
// each producer per partition and recognizes only those as duplicates.
const MaxInFlightLimit = 5

// maxBackoff caps the exponential retry backoff.
const maxBackoff = time.Second

// Config configures a Producer. New gives zero fields the defaults above,
// except RequiredAcks whose zero value means "no acknowledgement" (acks 0):
// callers whose default is all set AcksAll.
type Config struct {
	Brokers  []string // host:port, at least one
	ClientID string
	// Version is the Kafka protocol version, e.g. "2.8.0"; at least 0.11.0
	// (v2 record batches).
	Version string
	// RequiredAcks is AcksAll (all in-sync replicas), AcksLeader or AcksNone.
	RequiredAcks RequiredAcks
	// Compression is one of Compressions ("" is none).
	Compression string
	// CompressionLevel is the codec's level; 0 is the codec's default.
	// gzip takes 1..9, zstd 1..22; none, snappy and lz4 take only 0.
	CompressionLevel int
	// MaxMessageBytes bounds a batch of one record: a record whose batch
	// would exceed it is rejected without being sent.
	MaxMessageBytes int
	// Timeout bounds one produce attempt (sent to the broker as the produce
	// timeout), a dial and a metadata request.
	Timeout time.Duration
	// MaxAttempts is how many times a batch is sent while it meets
	// retriable errors before it is returned as failed.
	MaxAttempts int
	// Idempotent turns idempotent producing on (producer id, epoch and
	// sequence numbers on every batch) or off; nil is the default: on with
	// AcksAll, off otherwise. On needs AcksAll.
	Idempotent *bool
	// MaxInFlight is how many record batches of one partition may be in
	// flight at once: 1..MaxInFlightLimit with idempotence, 1 without; nil
	// is the default: MaxInFlightLimit with idempotence, 1 without.
	MaxInFlight *int
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

// withDefaults returns cfg with zero fields set to their defaults.
func (cfg Config) withDefaults() Config {
	if cfg.ClientID == "" {
		cfg.ClientID = DefaultClientID
	}
	if cfg.Version == "" {
		cfg.Version = DefaultVersion
	}
	if cfg.Compression == "" {
		cfg.Compression = CompressionNone
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
	cfg.SASL = cfg.SASL.withDefaults()
	return cfg
}

// defaultMaxRequestBytes bounds one produce request's record batches, as
// the Java client's max.request.size (1 MiB) does; a batch larger than it
// goes in a request of its own. With many partitions on one broker a round
// is then many small requests, pipelined on the connection, instead of a
// few of tens of MiB, each of which sarama encodes into fresh buffers of
// its size (at 1,000 partitions: 342-372 MiB peak RSS against 431-442 with
// 32 MiB requests, at the same records/s and CPU).
const defaultMaxRequestBytes = 1 << 20

// settings are the validated, derived values a Producer works with.
type settings struct {
	cfg            Config
	codec          sarama.CompressionCodec
	level          int // sarama's CompressionLevel: CompressionLevelDefault for 0
	produceVersion int16
	sarama         *sarama.Config
	// maxRequestBytes bounds the record batches of one produce request.
	maxRequestBytes int
	idempotent      bool
	maxInFlight     int // record batches per partition in flight
}

// compile validates cfg (defaults applied) and derives the sarama config.
func compile(cfg Config) (*settings, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	version, _ := sarama.ParseKafkaVersion(cfg.Version) // checked by Validate
	codec, _ := parseCodec(cfg.Compression)

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
	level := sarama.CompressionLevelDefault
	if cfg.CompressionLevel != 0 {
		level = cfg.CompressionLevel
	}
	sc.Producer.CompressionLevel = level
	// Several partitions' pipelined requests, from concurrent Produce
	// calls, share one connection per broker.
	sc.Net.MaxOpenRequests = 2 * MaxInFlightLimit
	if cfg.TLS != nil {
		sc.Net.TLS.Enable = true
		sc.Net.TLS.Config = cfg.TLS
	}
	if err := configureSASL(sc, cfg.SASL, cfg.Timeout); err != nil {
		return nil, err
	}
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("producer config: %w", err)
	}
	return &settings{
		cfg:             cfg,
		codec:           codec,
		level:           level,
		produceVersion:  produceRequestVersion(version),
		sarama:          sc,
		maxRequestBytes: defaultMaxRequestBytes,
		idempotent:      cfg.idempotent(),
		maxInFlight:     cfg.maxInFlight(),
	}, nil
}

// parseCodec returns the sarama codec of a compression name.
func parseCodec(name string) (sarama.CompressionCodec, bool) {
	for _, c := range codecs {
		if c.name == name {
			return c.codec, true
		}
	}
	return sarama.CompressionNone, false
}

// validateLevel checks CompressionLevel against Compression; with an
// unknown Compression (its own error) there is nothing to check it against.
func (cfg Config) validateLevel(add func(Field, string, ...any)) {
	level := cfg.CompressionLevel
	if level == 0 {
		return
	}
	for _, c := range codecs {
		switch {
		case c.name != cfg.Compression:
		case c.maxLevel == 0:
			add(FieldCompressionLevel, "must be 0 with %s %s (%s), got %d", FieldCompression, c.name, c.noLevel, level)
		case level < 1 || level > c.maxLevel:
			add(FieldCompressionLevel, "must be 1..%d with %s %s (0: the codec's default), got %d",
				c.maxLevel, FieldCompression, c.name, level)
		}
	}
}

// produceRequestVersion is the highest produce request version the
// configured protocol version allows (the broker's advertised range clamps it
// further). 3 is the first with v2 record batches; 8 adds per-record errors.
func produceRequestVersion(v sarama.KafkaVersion) int16 {
	for _, pv := range produceVersions {
		if v.IsAtLeast(pv.since) {
			return pv.version
		}
	}
	return 3
}

// produceVersions maps protocol versions, newest first, to the produce
// request version they introduced.
var produceVersions = []struct {
	since   sarama.KafkaVersion
	version int16
}{
	{sarama.V3_7_0_0, 10},
	{sarama.V2_8_0_0, 9},
	{sarama.V2_4_0_0, 8},
	{sarama.V2_1_0_0, 7},
	{sarama.V2_0_0_0, 6},
	{sarama.V1_0_0_0, 5},
}

// kafkaName holds the characters Kafka allows in topic names, and in
// client ids before 1.0.0.
var kafkaName = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// Validate checks cfg as given (New applies the defaults first, so a zero
// field is an error here) and returns every problem, joined, each a
// *ConfigError that names its setting. It is the one place these settings
// are checked: a host validating its own configuration calls it too.
func (cfg Config) Validate() error {
	var errs []error
	add := func(f Field, format string, args ...any) { errs = append(errs, configError(f, -1, format, args...)) }

	if len(cfg.Brokers) == 0 {
		add(FieldBrokers, "must list at least one host:port, got none")
	}
	for i, b := range cfg.Brokers {
		if err := validateBroker(b); err != nil {
			errs = append(errs, configError(FieldBrokers, i, "%v, got %q", err, b))
		}
	}

	version, versionErr := sarama.ParseKafkaVersion(cfg.Version)
	switch {
	case versionErr != nil:
		add(FieldVersion, "not a Kafka version (want e.g. 2.8.0), got %q", cfg.Version)
	case !version.IsAtLeast(sarama.V0_11_0_0):
		add(FieldVersion, "must be >= 0.11.0 (record batch v2), got %q", cfg.Version)
	}
	switch {
	case cfg.ClientID == "":
		add(FieldClientID, "must not be empty, got %q", cfg.ClientID)
	case versionErr == nil && !version.IsAtLeast(sarama.V1_0_0_0) && !kafkaName.MatchString(cfg.ClientID):
		add(FieldClientID, "must use only [A-Za-z0-9._-] before %s 1.0.0, got %q", FieldVersion, cfg.ClientID)
	}
	if cfg.RefreshInterval <= 0 {
		add(FieldRefreshInterval, "must be > 0, got %s", cfg.RefreshInterval)
	}

	switch cfg.RequiredAcks {
	case AcksAll, AcksLeader, AcksNone:
	default:
		add(FieldRequiredAcks, "want all, -1, 1 or 0, got %d", cfg.RequiredAcks)
	}
	switch codec, ok := parseCodec(cfg.Compression); {
	case !ok:
		add(FieldCompression, "unknown compression %q (want %s)", cfg.Compression, strings.Join(Compressions(), ", "))
	case codec == sarama.CompressionZSTD && versionErr == nil && !version.IsAtLeast(sarama.V2_1_0_0):
		add(FieldCompression, "zstd needs %s >= 2.1.0, got %s %q", FieldVersion, FieldVersion, cfg.Version)
	}
	cfg.validateLevel(add)
	switch {
	case cfg.MaxMessageBytes <= 0:
		add(FieldMaxMessageBytes, "must be > 0, got %d", cfg.MaxMessageBytes)
	case cfg.MaxMessageBytes >= MaxMessageBytesLimit():
		add(FieldMaxMessageBytes, "must be < %d (the largest Kafka request the client sends), got %d",
			MaxMessageBytesLimit(), cfg.MaxMessageBytes)
	}
	switch {
	case cfg.Timeout <= 0:
		add(FieldTimeout, "must be > 0, got %s", cfg.Timeout)
	case cfg.Timeout < MinTimeout:
		add(FieldTimeout, "must be at least %s (Kafka counts it in milliseconds), got %s", MinTimeout, cfg.Timeout)
	}
	if cfg.MaxAttempts < 1 {
		add(FieldMaxAttempts, "must be >= 1, got %d", cfg.MaxAttempts)
	}
	if cfg.RetryBackoff < 0 {
		add(FieldRetryBackoff, "must not be negative, got %s", cfg.RetryBackoff)
	}
	if cfg.Idempotent != nil && *cfg.Idempotent && cfg.RequiredAcks != AcksAll {
		add(FieldIdempotent, "true needs %s all, got %s %d", FieldRequiredAcks, FieldRequiredAcks, cfg.RequiredAcks)
	}
	if cfg.MaxInFlight != nil {
		switch n := *cfg.MaxInFlight; {
		case cfg.idempotent() && (n < 1 || n > MaxInFlightLimit):
			add(FieldMaxInFlight, "must be 1..%d with %s, got %d", MaxInFlightLimit, FieldIdempotent, n)
		case !cfg.idempotent() && n != 1:
			add(FieldMaxInFlight, "must be 1 without %s (it keeps the order), got %d", FieldIdempotent, n)
		}
	}

	errs = append(errs, cfg.SASL.validate(cfg.Version, version, versionErr)...)
	return errors.Join(errs...)
}

// idempotent reports whether cfg produces idempotently: as set, else with
// AcksAll.
func (cfg Config) idempotent() bool {
	if cfg.Idempotent != nil {
		return *cfg.Idempotent
	}
	return cfg.RequiredAcks == AcksAll
}

// InFlightPerPartition is how many record batches of one partition the
// Producer keeps in flight at once (MaxInFlight or its default): one
// Produce call given that many of a partition pipelines them.
func (cfg Config) InFlightPerPartition() int { return cfg.maxInFlight() }

// maxInFlight is the number of batches per partition cfg allows in flight.
func (cfg Config) maxInFlight() int {
	switch {
	case cfg.MaxInFlight != nil:
		return *cfg.MaxInFlight
	case cfg.idempotent():
		return MaxInFlightLimit
	}
	return 1
}

// ValidateTopicName reports why topic is not a legal Kafka topic name, or nil.
func ValidateTopicName(topic string) error {
	switch {
	case topic == "":
		return errors.New("must not be empty")
	case topic == "." || topic == "..":
		return errors.New("is not a legal Kafka topic name")
	case len(topic) > 249 || !kafkaName.MatchString(topic):
		return errors.New("must be at most 249 characters of [a-zA-Z0-9._-]")
	}
	return nil
}

// validateBroker checks one bootstrap address.
func validateBroker(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("want host:port (IPv6 as [::1]:9092)")
	}
	if host == "" || strings.ContainsAny(host, " \t/") {
		return errors.New("want host:port with a host name or IP address")
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return errors.New("port must be 1..65535")
	}
	return nil
}
