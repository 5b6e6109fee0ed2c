package kafkabatcherexporter

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configtls"

	"github.com/kafkabatcher/kafkabatcherexporter/logmsg"
	"github.com/kafkabatcher/kafkabatcherexporter/message"
	"github.com/kafkabatcher/kafkabatcherexporter/producer"
	"github.com/kafkabatcher/kafkabatcherexporter/tempstorage"
)

// Config is the kafkabatcher exporter configuration. Key names and defaults
// are a contract (DESIGN.md, "Configuration contract").
//
// Validate checks the whole tree itself and names every problem with its
// full dotted key path; the nested structs have no Validate of their own so
// that the collector's confmap.Validate reports each problem exactly once.
type Config struct {
	// Brokers are the bootstrap brokers, host:port each ([::1]:9092 for IPv6).
	Brokers         []string `mapstructure:"brokers"`
	ClientID        string   `mapstructure:"client_id"`
	ProtocolVersion string   `mapstructure:"protocol_version"`

	// Topic is the default topic; TopicFrom, a field path, overrides it per
	// record when set and non-empty on the record.
	Topic     string `mapstructure:"topic"`
	TopicFrom string `mapstructure:"topic_from"`
	// TopicAliases maps a topic to the short name used as the topic_alias
	// metric label.
	TopicAliases map[string]string `mapstructure:"topic_aliases"`

	Encoding Encoding `mapstructure:"encoding"`
	// KeyFrom are field paths; the first non-empty one is the message key.
	KeyFrom []string `mapstructure:"key_from"`
	// HeadersFrom are field paths copied into record headers, named by the path.
	HeadersFrom []string `mapstructure:"headers_from"`

	Partitioning PartitioningConfig `mapstructure:"partitioning"`
	Batch        BatchConfig        `mapstructure:"batch"`
	Producer     ProducerConfig     `mapstructure:"producer"`
	Auth         AuthConfig         `mapstructure:"auth"`

	// TLS is off unless the tls key is present: absent (or enabled: false)
	// means plaintext; present, even empty (`tls:` or `tls: {}`), means TLS
	// with the given settings; `insecure: true` without a CA is plaintext too,
	// as ClientConfig.LoadTLSConfig defines it. See Config.tlsConfig.
	TLS configoptional.Optional[configtls.ClientConfig] `mapstructure:"tls"`

	Metadata    MetadataConfig    `mapstructure:"metadata"`
	TempStorage TempStorageConfig `mapstructure:"temp_storage"`
	Delivery    Delivery          `mapstructure:"delivery"`
	// MaxPendingBytes bounds the record bytes held in memory; above it
	// ConsumeLogs waits, then errors.
	MaxPendingBytes int `mapstructure:"max_pending_bytes"`
}

// PartitioningConfig chooses how records are spread over partitions.
type PartitioningConfig struct {
	Strategy Strategy `mapstructure:"strategy"`
	// CollectByPartition false keeps one accumulator per topic, split by
	// partition at send time.
	CollectByPartition bool `mapstructure:"collect_by_partition"`
}

// BatchConfig says when an accumulator's pending records become a batch.
type BatchConfig struct {
	Size int `mapstructure:"size"`
	// MaxBytes bounds a whole v2 record batch as sent, 61-byte header
	// included, before compression.
	MaxBytes  int           `mapstructure:"max_bytes"`
	MaxWait   time.Duration `mapstructure:"max_wait"`
	MinDelay  time.Duration `mapstructure:"min_delay"`
	FlushWhen []string      `mapstructure:"flush_when"`
}

// ProducerConfig configures produce requests.
type ProducerConfig struct {
	RequiredAcks    RequiredAcks  `mapstructure:"required_acks"`
	Compression     Compression   `mapstructure:"compression"`
	MaxMessageBytes int           `mapstructure:"max_message_bytes"`
	Timeout         time.Duration `mapstructure:"timeout"`
	MaxAttempts     int           `mapstructure:"max_attempts"`
}

// AuthConfig holds broker authentication.
type AuthConfig struct {
	SASL SASLConfig `mapstructure:"sasl"`
}

// SASLConfig is SASL authentication; an empty Mechanism means none.
type SASLConfig struct {
	Mechanism SASLMechanism       `mapstructure:"mechanism"`
	Username  string              `mapstructure:"username"`
	Password  configopaque.String `mapstructure:"password"`
}

// MetadataConfig configures Kafka metadata refreshes.
type MetadataConfig struct {
	RefreshInterval time.Duration `mapstructure:"refresh_interval"`
}

// TempStorageConfig configures the durable file queue used while Kafka
// cannot take batches.
type TempStorageConfig struct {
	Enabled bool `mapstructure:"enabled"`
	// Directory "" means <os.UserCacheDir()>/otelcol-kafkabatcher/<exporter id>;
	// see Config.storageDir.
	Directory     string        `mapstructure:"directory"`
	MaxBytes      int           `mapstructure:"max_bytes"`
	SegmentBytes  int           `mapstructure:"segment_bytes"`
	Fsync         FsyncMode     `mapstructure:"fsync"`
	RetryInterval time.Duration `mapstructure:"retry_interval"`
}

// Encoding is how a log record becomes a message value.
type Encoding string

// Encodings.
const (
	EncodingOTLPProto Encoding = "otlp_proto"
	EncodingOTLPJSON  Encoding = "otlp_json"
	EncodingJSON      Encoding = "json"
	EncodingRaw       Encoding = "raw"
)

// Strategy is a partitioning strategy.
type Strategy string

// Partitioning strategies.
const (
	StrategyMurmur2    Strategy = "murmur2"
	StrategyFNV1a      Strategy = "fnv1a"
	StrategyMD5        Strategy = "md5"
	StrategyRandom     Strategy = "random"
	StrategySticky     Strategy = "sticky"
	StrategyRoundRobin Strategy = "round_robin"
)

// Compression is the record batch compression codec.
type Compression string

// Compression codecs.
const (
	CompressionNone   Compression = "none"
	CompressionGzip   Compression = "gzip"
	CompressionSnappy Compression = "snappy"
	CompressionLZ4    Compression = "lz4"
	CompressionZstd   Compression = "zstd"
)

// Codec returns the sarama codec; call it on a validated config.
func (c Compression) Codec() sarama.CompressionCodec {
	switch c {
	case CompressionGzip:
		return sarama.CompressionGZIP
	case CompressionSnappy:
		return sarama.CompressionSnappy
	case CompressionLZ4:
		return sarama.CompressionLZ4
	case CompressionZstd:
		return sarama.CompressionZSTD
	}
	return sarama.CompressionNone
}

// SASLMechanism is a SASL mechanism name.
type SASLMechanism string

// SASL mechanisms; the empty one means no SASL.
const (
	SASLNone        SASLMechanism = ""
	SASLPlain       SASLMechanism = "PLAIN"
	SASLScramSHA256 SASLMechanism = "SCRAM-SHA-256"
	SASLScramSHA512 SASLMechanism = "SCRAM-SHA-512"
)

// FsyncMode says when the file queue syncs to disk.
type FsyncMode string

// Fsync modes.
const (
	FsyncBatch    FsyncMode = "batch"
	FsyncInterval FsyncMode = "interval"
	FsyncNever    FsyncMode = "never"
)

// Delivery says when ConsumeLogs returns.
type Delivery string

// Delivery modes.
const (
	// DeliveryAsync: accepted once in an accumulator.
	DeliveryAsync Delivery = "async"
	// DeliverySync: returns once Kafka acknowledged the records or they are on disk.
	DeliverySync Delivery = "sync"
)

// RequiredAcks is producer.required_acks. YAML accepts `all`, `-1`, `1`
// and `0`, quoted or not: a number decodes directly, a string goes through
// UnmarshalText. Out-of-range numbers are left to Validate so that the
// error names the key.
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

// Sarama returns the sarama value.
func (a RequiredAcks) Sarama() sarama.RequiredAcks { return sarama.RequiredAcks(a) }

// kafkaName holds the characters Kafka allows in topic names, and in
// client ids before 1.0.0.
var kafkaName = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// problems collects validation errors in key order.
type problems []error

func (p *problems) add(format string, args ...any) { *p = append(*p, fmt.Errorf(format, args...)) }

// Validate checks the configuration; every error names its full key path,
// the problem and the bad value. All problems are returned, joined.
func (c *Config) Validate() error {
	var p problems
	c.validateConnection(&p)
	c.validateRecords(&p)
	c.validateBatch(&p)
	c.validateProducer(&p)
	c.validateAuth(&p)
	c.validateStorage(&p)
	return errors.Join(p...)
}

// validateConnection checks brokers, protocol_version, client_id and
// metadata.
func (c *Config) validateConnection(p *problems) {
	if len(c.Brokers) == 0 {
		p.add("brokers: must list at least one host:port, got none")
	}
	for i, b := range c.Brokers {
		if err := validateBroker(b); err != nil {
			p.add("brokers[%d]: %v, got %q", i, err, b)
		}
	}

	version, versionErr := sarama.ParseKafkaVersion(c.ProtocolVersion)
	switch {
	case versionErr != nil:
		p.add("protocol_version: not a Kafka version (want e.g. 2.8.0), got %q", c.ProtocolVersion)
	case !version.IsAtLeast(sarama.V0_11_0_0):
		p.add("protocol_version: must be >= 0.11.0 (record batch v2), got %q", c.ProtocolVersion)
	}

	switch {
	case c.ClientID == "":
		p.add("client_id: must not be empty, got %q", c.ClientID)
	case versionErr == nil && !version.IsAtLeast(sarama.V1_0_0_0) && !kafkaName.MatchString(c.ClientID):
		p.add("client_id: must use only [A-Za-z0-9._-] before protocol_version 1.0.0, got %q", c.ClientID)
	}

	if c.Metadata.RefreshInterval <= 0 {
		p.add("metadata.refresh_interval: must be > 0, got %s", c.Metadata.RefreshInterval)
	}
}

// validateRecords checks how log records become messages: topics,
// encoding, field paths and partitioning.
func (c *Config) validateRecords(p *problems) {
	if err := validateTopicName(c.Topic); err != nil {
		p.add("topic: %v, got %q", err, c.Topic)
	}
	if c.TopicFrom != "" {
		// logmsg's error shows the path.
		if _, err := logmsg.ParseFieldPath(c.TopicFrom); err != nil {
			p.add("topic_from: %v", err)
		}
	}
	for _, topic := range slices.Sorted(maps.Keys(c.TopicAliases)) {
		if err := validateTopicName(topic); err != nil {
			p.add("topic_aliases: %v, got topic %q", err, topic)
		}
		if c.TopicAliases[topic] == "" {
			p.add("topic_aliases.%s: alias must not be empty, got %q", topic, "")
		}
	}

	switch c.Encoding {
	case EncodingOTLPProto, EncodingOTLPJSON, EncodingJSON, EncodingRaw:
	default:
		p.add("encoding: unknown encoding %q (want otlp_proto, otlp_json, json, raw)", c.Encoding)
	}
	validatePaths(p, "key_from", c.KeyFrom)
	validatePaths(p, "headers_from", c.HeadersFrom)

	switch c.Partitioning.Strategy {
	case StrategyMurmur2, StrategyFNV1a, StrategyMD5, StrategyRandom, StrategySticky, StrategyRoundRobin:
	default:
		p.add("partitioning.strategy: unknown strategy %q (want murmur2, fnv1a, md5, random, sticky, round_robin)", c.Partitioning.Strategy)
	}
}

// validateBatch checks batch.* and the in-memory bound max_pending_bytes.
func (c *Config) validateBatch(p *problems) {
	b := c.Batch
	if b.Size <= 0 {
		p.add("batch.size: must be > 0, got %d", b.Size)
	}
	switch {
	case b.MaxBytes <= message.BatchHeaderBytes:
		p.add("batch.max_bytes: must be > %d (the record batch header), got %d", message.BatchHeaderBytes, b.MaxBytes)
	case c.Producer.MaxMessageBytes > 0 && b.MaxBytes > c.Producer.MaxMessageBytes:
		p.add("batch.max_bytes: must be <= producer.max_message_bytes (%d), got %d", c.Producer.MaxMessageBytes, b.MaxBytes)
	}
	if b.MaxWait <= 0 {
		p.add("batch.max_wait: must be > 0, got %s", b.MaxWait)
	}
	switch {
	case b.MinDelay < 0:
		p.add("batch.min_delay: must be >= 0, got %s", b.MinDelay)
	case b.MaxWait > 0 && b.MinDelay > b.MaxWait:
		p.add("batch.min_delay: must be <= batch.max_wait (%s), got %s", b.MaxWait, b.MinDelay)
	}
	for i, cond := range b.FlushWhen {
		if err := logmsg.ValidateCondition(cond); err != nil {
			p.add("batch.flush_when[%d]: %s, got %q", i, err, cond)
		}
	}

	switch {
	case c.MaxPendingBytes <= 0:
		p.add("max_pending_bytes: must be > 0, got %d", c.MaxPendingBytes)
	case c.MaxPendingBytes < b.MaxBytes:
		p.add("max_pending_bytes: must be >= batch.max_bytes (%d), got %d", b.MaxBytes, c.MaxPendingBytes)
	}
}

// validateProducer checks producer.*; zstd also needs a recent enough
// protocol_version.
func (c *Config) validateProducer(p *problems) {
	pr := c.Producer
	switch pr.RequiredAcks {
	case AcksAll, AcksLeader, AcksNone:
	default:
		p.add("producer.required_acks: want all, -1, 1 or 0, got %d", pr.RequiredAcks)
	}
	switch pr.Compression {
	case CompressionNone, CompressionGzip, CompressionSnappy, CompressionLZ4:
	case CompressionZstd:
		if v, err := sarama.ParseKafkaVersion(c.ProtocolVersion); err == nil && !v.IsAtLeast(sarama.V2_1_0_0) {
			p.add("producer.compression: zstd needs protocol_version >= 2.1.0, got protocol_version %q", c.ProtocolVersion)
		}
	default:
		p.add("producer.compression: unknown compression %q (want none, gzip, snappy, lz4, zstd)", pr.Compression)
	}
	switch {
	case pr.MaxMessageBytes <= 0:
		p.add("producer.max_message_bytes: must be > 0, got %d", pr.MaxMessageBytes)
	case pr.MaxMessageBytes >= producer.MaxMessageBytesLimit():
		p.add("producer.max_message_bytes: must be < %d (the largest Kafka request the client sends), got %d",
			producer.MaxMessageBytesLimit(), pr.MaxMessageBytes)
	}
	switch {
	case pr.Timeout <= 0:
		p.add("producer.timeout: must be > 0, got %s", pr.Timeout)
	case pr.Timeout < producer.MinTimeout:
		p.add("producer.timeout: must be at least %s (Kafka counts it in milliseconds), got %s", producer.MinTimeout, pr.Timeout)
	}
	if pr.MaxAttempts < 1 {
		p.add("producer.max_attempts: must be >= 1, got %d", pr.MaxAttempts)
	}
}

// validateAuth checks auth.sasl; tls validates itself (configtls).
func (c *Config) validateAuth(p *problems) {
	sasl := c.Auth.SASL
	switch sasl.Mechanism {
	case SASLNone:
		if sasl.Username != "" || sasl.Password != "" {
			p.add("auth.sasl.mechanism: required when username or password is set (want PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), got %q", sasl.Mechanism)
		}
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
		if sasl.Username == "" {
			p.add("auth.sasl.username: required with mechanism %s, got %q", sasl.Mechanism, sasl.Username)
		}
		if sasl.Password == "" {
			// The password itself is never printed.
			p.add("auth.sasl.password: required with mechanism %s, got none", sasl.Mechanism)
		}
		// sarama speaks SaslHandshake v1 / SaslAuthenticate only from 1.0.0
		// and would otherwise fail every connection without saying why.
		if v, err := sarama.ParseKafkaVersion(c.ProtocolVersion); err == nil && !v.IsAtLeast(sarama.V1_0_0_0) {
			p.add("auth.sasl.mechanism: SASL needs protocol_version >= 1.0.0, got protocol_version %q", c.ProtocolVersion)
		}
	default:
		p.add("auth.sasl.mechanism: unknown mechanism %q (want PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)", sasl.Mechanism)
	}
}

// validateStorage checks temp_storage.* and delivery. temp_storage is
// checked even when disabled: nonsense is rejected wherever it is written.
func (c *Config) validateStorage(p *problems) {
	ts := c.TempStorage
	if ts.MaxBytes <= 0 {
		p.add("temp_storage.max_bytes: must be > 0, got %d", ts.MaxBytes)
	}
	switch {
	case ts.SegmentBytes <= 0:
		p.add("temp_storage.segment_bytes: must be > 0, got %d", ts.SegmentBytes)
	case ts.MaxBytes > 0 && ts.SegmentBytes > ts.MaxBytes:
		p.add("temp_storage.segment_bytes: must be <= temp_storage.max_bytes (%d), got %d", ts.MaxBytes, ts.SegmentBytes)
	}
	// Only with batch and producer sizes that are valid themselves.
	if ts.MaxBytes > 0 && c.Batch.Size > 0 && c.Batch.MaxBytes > message.BatchHeaderBytes && c.Producer.MaxMessageBytes > 0 {
		if need := c.maxEntryBytes(); int64(ts.MaxBytes) < need {
			p.add("temp_storage.max_bytes: must be >= %d (the most one stored batch can take: batch.max_bytes %d "+
				"or producer.max_message_bytes %d plus the entry overhead), got %d",
				need, c.Batch.MaxBytes, c.Producer.MaxMessageBytes, ts.MaxBytes)
		}
	}
	switch ts.Fsync {
	case FsyncBatch, FsyncInterval, FsyncNever:
	default:
		p.add("temp_storage.fsync: unknown mode %q (want batch, interval, never)", ts.Fsync)
	}
	if ts.RetryInterval <= 0 {
		p.add("temp_storage.retry_interval: must be > 0, got %s", ts.RetryInterval)
	}

	switch c.Delivery {
	case DeliveryAsync, DeliverySync:
	default:
		p.add("delivery: unknown mode %q (want async, sync)", c.Delivery)
	}
}

// maxEntryBytes is the most temp storage one batch can take: a batch of
// batch.max_bytes holding batch.size records (any number while
// batch.min_delay can hold a full batch back and let it grow), or a single
// record batch of up to producer.max_message_bytes.
func (c *Config) maxEntryBytes() int64 {
	records := c.Batch.Size
	if c.Batch.MinDelay > 0 {
		records = math.MaxInt
	}
	return max(tempstorage.MaxEntryBytes(c.Batch.MaxBytes, records),
		tempstorage.MaxEntryBytes(c.Producer.MaxMessageBytes, 1))
}

// KafkaVersion returns the parsed protocol_version; call it on a validated
// config.
func (c *Config) KafkaVersion() sarama.KafkaVersion {
	v, err := sarama.ParseKafkaVersion(c.ProtocolVersion)
	if err != nil {
		return sarama.DefaultVersion
	}
	return v
}

// storageDir returns temp_storage.directory, or when it is empty
// <os.UserCacheDir()>/otelcol-kafkabatcher/<exporter id>, the id escaped to
// one path element (kafkabatcher/full -> kafkabatcher_full).
func (c *Config) storageDir(id component.ID) (string, error) {
	if c.TempStorage.Directory != "" {
		return c.TempStorage.Directory, nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("temp_storage.directory is empty and the user cache directory is unknown: %w", err)
	}
	return filepath.Join(cache, "otelcol-kafkabatcher", idDirName(id)), nil
}

// idDirName turns a component ID into one file name, distinct per ID: the
// type (letters, digits, _) then, for a named ID, "_" and the name escaped
// by tempstorage.EscapeName.
func idDirName(id component.ID) string {
	if id.Name() == "" {
		return id.Type().String()
	}
	return id.Type().String() + "_" + tempstorage.EscapeName(id.Name())
}

// tlsConfig returns the TLS settings for broker connections, or nil for
// plaintext (tls absent or disabled, or insecure without a CA).
func (c *Config) tlsConfig(ctx context.Context) (*tls.Config, error) {
	if !c.TLS.HasValue() {
		return nil, nil
	}
	tc, err := c.TLS.Get().LoadTLSConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	return tc, nil
}

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

func validateTopicName(topic string) error {
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

func validatePaths(p *problems, key string, paths []string) {
	seen := make(map[string]bool, len(paths))
	for i, path := range paths {
		if _, err := logmsg.ParseFieldPath(path); err != nil {
			p.add("%s[%d]: %v", key, i, err) // err shows the path
			continue
		}
		if seen[path] {
			p.add("%s[%d]: duplicate field path, got %q", key, i, path)
		}
		seen[path] = true
	}
}
