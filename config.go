package kafkabatcherexporter

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configtls"

	"github.com/kafkabatcher/kafkabatcherexporter/batcher"
	"github.com/kafkabatcher/kafkabatcherexporter/internal/delivery"
	"github.com/kafkabatcher/kafkabatcherexporter/internal/fieldpath"
	"github.com/kafkabatcher/kafkabatcherexporter/logmsg"
	"github.com/kafkabatcher/kafkabatcherexporter/message"
	"github.com/kafkabatcher/kafkabatcherexporter/metricmsg"
	"github.com/kafkabatcher/kafkabatcherexporter/partitioner"
	"github.com/kafkabatcher/kafkabatcherexporter/producer"
	"github.com/kafkabatcher/kafkabatcherexporter/spanmsg"
	"github.com/kafkabatcher/kafkabatcherexporter/tempstorage"
)

// Config is the kafkabatcher exporter configuration. Key names and defaults
// are a contract: deployments and tests outside the project rely on them.
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

	// Encoding is one of logmsg.Encodings.
	Encoding string `mapstructure:"encoding"`
	// KeyFrom are field paths; the first non-empty one is the message key.
	KeyFrom []string `mapstructure:"key_from"`
	// HeadersFrom are field paths copied into record headers, named by the path.
	HeadersFrom []string `mapstructure:"headers_from"`
	// Headers are static headers, name to value, added to every log record
	// after the headers_from ones.
	Headers map[string]string `mapstructure:"headers"`
	// MessagePer is record (one message per log record) or key (one per
	// resource, scope and key of a call; otlp_proto and otlp_json only).
	MessagePer string `mapstructure:"message_per"`

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
	// MaxPendingBytes bounds the memory held by pending records (each counts
	// its encoded Kafka size plus its in-memory structs); above it
	// ConsumeLogs waits, then errors.
	MaxPendingBytes int `mapstructure:"max_pending_bytes"`

	// Traces and Metrics are how the traces and metrics pipelines make
	// messages; every other key is shared with the logs.
	Traces  TracesConfig `mapstructure:"traces"`
	Metrics SignalConfig `mapstructure:"metrics"`
}

// SignalConfig is how one signal's spans or metrics become messages.
type SignalConfig struct {
	// Topic is the signal's default topic; TopicFrom, a field path,
	// overrides it when set and non-empty.
	Topic     string `mapstructure:"topic"`
	TopicFrom string `mapstructure:"topic_from"`
	// Encoding is otlp_proto or otlp_json.
	Encoding string `mapstructure:"encoding"`
	// KeyFrom are field paths; the first non-empty one is the message key.
	KeyFrom []string `mapstructure:"key_from"`
	// HeadersFrom are field paths copied into record headers.
	HeadersFrom []string `mapstructure:"headers_from"`
	// Headers are static headers, name to value, added to every message
	// after the headers_from ones.
	Headers map[string]string `mapstructure:"headers"`
}

// TracesConfig is the traces section.
type TracesConfig struct {
	SignalConfig `mapstructure:",squash"`
	// FlushWhen are OTTL span conditions: a message holding a matching span
	// is sent at once, with its batch.
	FlushWhen []string `mapstructure:"flush_when"`
}

// PartitioningConfig chooses how records are spread over partitions.
type PartitioningConfig struct {
	// Strategy is one of partitioner.Strategies.
	Strategy string `mapstructure:"strategy"`
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
	RequiredAcks producer.RequiredAcks `mapstructure:"required_acks"`
	// Compression is one of producer.Compressions.
	Compression string `mapstructure:"compression"`
	// CompressionLevel 0 is the codec's default; gzip takes 1..9, zstd
	// 1..22, none, snappy and lz4 only 0.
	CompressionLevel int           `mapstructure:"compression_level"`
	MaxMessageBytes  int           `mapstructure:"max_message_bytes"`
	Timeout          time.Duration `mapstructure:"timeout"`
	MaxAttempts      int           `mapstructure:"max_attempts"`
	// Idempotent nil is the default: on with required_acks all, off
	// otherwise.
	Idempotent *bool `mapstructure:"idempotent"`
	// MaxInFlight nil is the default: 5 with idempotence, 1 without.
	MaxInFlight *int `mapstructure:"max_in_flight"`
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
	Directory    string `mapstructure:"directory"`
	MaxBytes     int    `mapstructure:"max_bytes"`
	SegmentBytes int    `mapstructure:"segment_bytes"`
	// Fsync is batch, interval or never; Validate names any other value.
	Fsync         tempstorage.FsyncPolicy `mapstructure:"fsync"`
	RetryInterval time.Duration           `mapstructure:"retry_interval"`
}

// Delivery says when ConsumeLogs returns.
type Delivery string

// Delivery modes.
const (
	// DeliveryAsync returns once the records are in an accumulator.
	DeliveryAsync Delivery = "async"
	// DeliverySync returns once Kafka acknowledged the records or they are on disk.
	DeliverySync Delivery = "sync"
)

// problems collects validation errors, section by section.
type problems []error

func (p *problems) add(format string, args ...any) { p.addOnce(fmt.Errorf(format, args...)) }

// addAll adds the problems err joins (errors.Join), each on its own.
func (p *problems) addAll(err error) {
	for _, e := range unjoin(err) {
		p.addOnce(e)
	}
}

// unjoin returns the errors err joins (errors.Join), or err alone, or none.
func unjoin(err error) []error {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		return joined.Unwrap()
	}
	if err != nil {
		return []error{err}
	}
	return nil
}

// addOnce adds err unless the same problem is listed already: the producer
// and the batcher both need producer.max_message_bytes > 0.
func (p *problems) addOnce(err error) {
	for _, e := range *p {
		if e.Error() == err.Error() {
			return
		}
	}
	*p = append(*p, err)
}

// Validate checks the configuration; every error names its full key path,
// the problem and the bad value. All problems are returned, joined.
func (c *Config) Validate() error {
	var p problems
	// brokers, protocol_version, client_id, metadata, producer and auth are
	// the producer's settings: it checks them, and names them by producer
	// field; the keys are said here.
	for _, err := range unjoin(c.producerConfig(nil).Validate()) {
		p.addOnce(producerKeyed(err))
	}
	c.Auth.validateAuth(&p)
	validateSignal(&p, "", c.logsSignal(), logmsg.Encodings(), logmsg.ParseFieldPath, logmsg.ParseFieldPath)
	c.validateMessagePer(&p)
	c.validateShared(&p)
	validateSignal(&p, "traces", c.Traces.SignalConfig, spanmsg.Encodings(), spanmsg.ParseTopicPath, spanmsg.ParseFieldPath)
	for i, cond := range c.Traces.FlushWhen {
		if err := spanmsg.ValidateCondition(cond); err != nil {
			p.add("traces.flush_when[%d]: %s, got %q", i, err, cond)
		}
	}
	validateSignal(&p, "metrics", c.Metrics, metricmsg.Encodings(), metricmsg.ParseTopicPath, metricmsg.ParseFieldPath)
	c.validateBatch(&p)
	c.validateStorage(&p)
	return errors.Join(p...)
}

// validateMessagePer checks message_per: a known value, and key only with
// an OTLP encoding (an unknown encoding is named under encoding alone).
func (c *Config) validateMessagePer(p *problems) {
	switch c.MessagePer {
	case logmsg.MessagePerRecord:
	case logmsg.MessagePerKey:
		if !slices.Contains(logmsg.GroupEncodings(), c.Encoding) && slices.Contains(logmsg.Encodings(), c.Encoding) {
			p.add("message_per: %s needs encoding %s, got %s",
				logmsg.MessagePerKey, strings.Join(logmsg.GroupEncodings(), " or "), c.Encoding)
		}
	default:
		p.add("message_per: unknown value %q (want %s)", c.MessagePer, strings.Join(logmsg.MessagePers(), ", "))
	}
}

// validateShared checks the keys every signal's records share:
// topic_aliases (the metric label of any topic) and partitioning.
func (c *Config) validateShared(p *problems) {
	for _, topic := range slices.Sorted(maps.Keys(c.TopicAliases)) {
		if err := producer.ValidateTopicName(topic); err != nil {
			p.add("topic_aliases: %v, got topic %q", err, topic)
		}
		if c.TopicAliases[topic] == "" {
			p.add("topic_aliases.%s: alias must not be empty, got %q", topic, "")
		}
	}
	if !slices.Contains(partitioner.Strategies(), c.Partitioning.Strategy) {
		p.add("partitioning.strategy: unknown strategy %q (want %s)", c.Partitioning.Strategy, strings.Join(partitioner.Strategies(), ", "))
	}
}

// logsSignal is how log records become messages, the keys at the top level.
func (c *Config) logsSignal() SignalConfig {
	return SignalConfig{Topic: c.Topic, TopicFrom: c.TopicFrom, Encoding: c.Encoding, KeyFrom: c.KeyFrom,
		HeadersFrom: c.HeadersFrom, Headers: c.Headers}
}

// validateBatch checks batch.* and the in-memory bound max_pending_bytes.
func (c *Config) validateBatch(p *problems) {
	// The batcher checks batch.* and that max_pending_bytes is not negative.
	p.addAll(c.batcherConfig().Validate())
	for i, cond := range c.Batch.FlushWhen {
		if err := logmsg.ValidateCondition(cond); err != nil {
			p.add("batch.flush_when[%d]: %s, got %q", i, err, cond)
		}
	}
	// The batcher takes 0 as no bound; the exporter always bounds memory.
	switch {
	case c.MaxPendingBytes == 0:
		p.add("max_pending_bytes: must be > 0, got %d", c.MaxPendingBytes)
	case c.MaxPendingBytes > 0 && c.MaxPendingBytes < c.Batch.MaxBytes:
		p.add("max_pending_bytes: must be >= batch.max_bytes (%d), got %d", c.Batch.MaxBytes, c.MaxPendingBytes)
	}
}

// batcherConfig is the batcher's part of the configuration.
func (c *Config) batcherConfig() batcher.Config {
	return batcher.Config{
		Size:               c.Batch.Size,
		MaxBytes:           c.Batch.MaxBytes,
		MaxMessageBytes:    c.Producer.MaxMessageBytes,
		MaxWait:            c.Batch.MaxWait,
		MinDelay:           c.Batch.MinDelay,
		CollectByPartition: c.Partitioning.CollectByPartition,
		MaxPendingBytes:    int64(c.MaxPendingBytes),
		CutEachAdd:         c.Delivery == DeliverySync,
	}
}

// deliveryConfig is the dispatcher's part of the configuration.
func (c *Config) deliveryConfig() delivery.Config {
	return delivery.Config{
		RetryInterval: c.TempStorage.RetryInterval,
		MaxInFlight:   c.producerConfig(nil).InFlightPerPartition(),
		Sync:          c.Delivery == DeliverySync,
		EntryBytes:    c.maxEntryBytes(),
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
	// A name is checked while decoding; a number decodes straight into the
	// policy and is checked here.
	if !slices.Contains(tempstorage.FsyncPolicies(), ts.Fsync) {
		p.add("temp_storage.fsync: unknown mode %q (want %s)", ts.Fsync, tempstorage.FsyncNames())
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

// producerConfig is the producer's part of the configuration; tlsCfg is
// what tlsConfig loaded (nil for plaintext, and for validation).
func (c *Config) producerConfig(tlsCfg *tls.Config) producer.Config {
	return producer.Config{
		Brokers:          c.Brokers,
		ClientID:         c.ClientID,
		Version:          c.ProtocolVersion,
		RequiredAcks:     c.Producer.RequiredAcks,
		Compression:      c.Producer.Compression,
		CompressionLevel: c.Producer.CompressionLevel,
		MaxMessageBytes:  c.Producer.MaxMessageBytes,
		Timeout:          c.Producer.Timeout,
		MaxAttempts:      c.Producer.MaxAttempts,
		Idempotent:       c.Producer.Idempotent,
		MaxInFlight:      c.Producer.MaxInFlight,
		RefreshInterval:  c.Metadata.RefreshInterval,
		SASL:             c.Auth.producerSASL(),
		TLS:              tlsCfg,
	}
}

// producerKeys are the keys of the producer's settings.
var producerKeys = map[producer.Field]string{
	producer.FieldBrokers:          "brokers",
	producer.FieldClientID:         "client_id",
	producer.FieldVersion:          "protocol_version",
	producer.FieldRefreshInterval:  "metadata.refresh_interval",
	producer.FieldRequiredAcks:     "producer.required_acks",
	producer.FieldCompression:      "producer.compression",
	producer.FieldCompressionLevel: "producer.compression_level",
	producer.FieldMaxMessageBytes:  "producer.max_message_bytes",
	producer.FieldTimeout:          "producer.timeout",
	producer.FieldMaxAttempts:      "producer.max_attempts",
	producer.FieldIdempotent:       "producer.idempotent",
	producer.FieldMaxInFlight:      "producer.max_in_flight",
}

// producerKey is the key of the producer's setting f; a setting without
// one (RetryBackoff, never set here) keeps its producer name.
func producerKey(f producer.Field) string {
	if key, ok := producerKeys[f]; ok {
		return key
	}
	if key, ok := authKeys[f]; ok {
		return key
	}
	return string(f)
}

// producerKeyed tells one of the producer's validation errors with the
// keys of the settings it names.
func producerKeyed(err error) error {
	var ce *producer.ConfigError
	if errors.As(err, &ce) {
		return errors.New(ce.Describe(producerKey))
	}
	return err
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

// validateSignal checks how one signal's data become messages: the keys
// of section (traces, metrics; "" for the logs', at the top level).
func validateSignal(p *problems, section string, sc SignalConfig, encodings []string, parseTopic, parseField func(string) (fieldpath.Path, error)) {
	key := func(name string) string {
		if section == "" {
			return name
		}
		return section + "." + name
	}
	if err := producer.ValidateTopicName(sc.Topic); err != nil {
		p.add("%s: %v, got %q", key("topic"), err, sc.Topic)
	}
	if sc.TopicFrom != "" {
		if _, err := parseTopic(sc.TopicFrom); err != nil {
			p.add("%s: %v", key("topic_from"), err) // err shows the path
		}
	}
	if !slices.Contains(encodings, sc.Encoding) {
		p.add("%s: unknown encoding %q (want %s)", key("encoding"), sc.Encoding, strings.Join(encodings, ", "))
	}
	validatePaths(p, key("key_from"), sc.KeyFrom, parseField)
	validatePaths(p, key("headers_from"), sc.HeadersFrom, parseField)
	if _, err := fieldpath.StaticHeaders(sc.Headers); err != nil {
		p.add("%s: %v", key("headers"), err)
	}
}

// validatePaths checks the field paths of key: each parses, none twice.
func validatePaths(p *problems, key string, paths []string, parse func(string) (fieldpath.Path, error)) {
	seen := make(map[string]bool, len(paths))
	for i, path := range paths {
		if _, err := parse(path); err != nil {
			p.add("%s[%d]: %v", key, i, err) // err shows the path
			continue
		}
		if seen[path] {
			p.add("%s[%d]: duplicate field path, got %q", key, i, path)
		}
		seen[path] = true
	}
}
