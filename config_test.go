package kafkabatcherexporter

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configtls"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/kafkabatcher/kafkabatcherexporter/internal/metadata"
	"github.com/kafkabatcher/kafkabatcherexporter/logmsg"
	"github.com/kafkabatcher/kafkabatcherexporter/metricmsg"
	"github.com/kafkabatcher/kafkabatcherexporter/partitioner"
	"github.com/kafkabatcher/kafkabatcherexporter/producer"
	"github.com/kafkabatcher/kafkabatcherexporter/spanmsg"
	"github.com/kafkabatcher/kafkabatcherexporter/tempstorage"
)

// loadConfig unmarshals the exporter id of file over the defaults, as the
// collector does.
func loadConfig(t *testing.T, file string, id component.ID) (*Config, error) {
	t.Helper()
	cm, err := confmaptest.LoadConf(file)
	require.NoError(t, err)
	sub, err := cm.Sub(id.String())
	require.NoError(t, err)
	cfg := createDefaultConfig().(*Config)
	return cfg, sub.Unmarshal(cfg)
}

func TestLoadConfig(t *testing.T) {
	full := createDefaultConfig().(*Config)
	full.Brokers = []string{"kafka-1.internal:9093", "10.0.0.7:9093", "[2001:db8::1]:9093"}
	full.ClientID = "edge-agent"
	full.ProtocolVersion = "3.6.0"
	full.Topic = "app_logs"
	full.TopicFrom = "attributes.kafka.topic"
	full.TopicAliases = map[string]string{"app_logs": "app", "audit_logs": "audit"}
	full.Encoding = logmsg.EncodingOTLPJSON
	full.MessagePer = logmsg.MessagePerKey
	full.KeyFrom = []string{"attributes.user_id", "resource.host.name", "trace_id"}
	full.HeadersFrom = []string{"resource.service.name", "severity_text", "scope.name"}
	full.Headers = map[string]string{"env": "prod", "team": "checkout", "empty": ""}
	full.Partitioning = PartitioningConfig{Strategy: partitioner.RoundRobin, CollectByPartition: false}
	full.Batch = BatchConfig{
		Size:     2000,
		MaxBytes: 500_000,
		MaxWait:  250 * time.Millisecond,
		MinDelay: 50 * time.Millisecond,
		FlushWhen: []string{
			"severity_number >= SEVERITY_NUMBER_ERROR",
			`attributes["flush"] == true`,
		},
	}
	full.Producer = ProducerConfig{
		RequiredAcks:     producer.AcksLeader,
		Compression:      producer.CompressionZstd,
		CompressionLevel: 6,
		MaxMessageBytes:  2_000_000,
		Timeout:          3 * time.Second,
		MaxAttempts:      5,
		Idempotent:       ptr(false),
		MaxInFlight:      ptr(1),
	}
	full.Auth.SASL = SASLConfig{Mechanism: producer.SASLSCRAMSHA512, Username: "agent", Password: "s3cret"}
	tlsCfg := configtls.NewDefaultClientConfig()
	tlsCfg.CAFile = "/etc/kafka/ca.pem"
	tlsCfg.InsecureSkipVerify = true
	tlsCfg.ServerName = "kafka.internal"
	tlsCfg.MinVersion = "1.2"
	full.TLS = configoptional.Some(tlsCfg)
	full.Metadata.RefreshInterval = time.Minute
	full.TempStorage = TempStorageConfig{
		Enabled:       false,
		Directory:     "/var/lib/otelcol/kafkabatcher",
		MaxBytes:      512 << 20,
		SegmentBytes:  8 << 20,
		Fsync:         tempstorage.FsyncInterval,
		RetryInterval: 2 * time.Second,
	}
	full.Delivery = DeliverySync
	full.MaxPendingBytes = 32 << 20
	full.Traces = TracesConfig{
		SignalConfig: SignalConfig{
			Topic:       "app_spans",
			TopicFrom:   "metadata.x-tenant",
			Encoding:    spanmsg.EncodingOTLPJSON,
			KeyFrom:     []string{"attributes.session.id", "trace_id"},
			HeadersFrom: []string{"resource.service.name", "name"},
			Headers:     map[string]string{"env": "prod", "source": "traces"},
		},
		FlushWhen: []string{"status.code == STATUS_CODE_ERROR"},
	}
	full.Metrics = SignalConfig{
		Topic:       "app_metrics",
		TopicFrom:   "resource.k8s.namespace.name",
		Encoding:    metricmsg.EncodingOTLPJSON,
		KeyFrom:     []string{"name"},
		HeadersFrom: []string{"metadata.x-tenant"},
		Headers:     map[string]string{"source": "metrics"},
	}
	keyless := createDefaultConfig().(*Config)
	keyless.Traces.KeyFrom = []string{}

	tests := []struct {
		id   component.ID
		want *Config
	}{
		{id: component.NewID(metadata.Type), want: createDefaultConfig().(*Config)},
		{id: component.NewIDWithName(metadata.Type, "full"), want: full},
		{id: component.NewIDWithName(metadata.Type, "keyless"), want: keyless},
	}
	for _, tt := range tests {
		t.Run(tt.id.String(), func(t *testing.T) {
			cfg, err := loadConfig(t, filepath.Join("testdata", "config.yaml"), tt.id)
			require.NoError(t, err)
			assert.Equal(t, tt.want, cfg)
			assert.NoError(t, cfg.Validate())
			assert.NoError(t, confmap.Validate(cfg))
		})
	}
}

// TestDefaultConfigContract pins every default of the configuration, key by
// key, as the collector sees them after marshaling: key names and defaults
// are a contract that deployments and tests outside the project rely on.
func TestDefaultConfigContract(t *testing.T) {
	conf := confmap.New()
	require.NoError(t, conf.Marshal(createDefaultConfig()))
	want := map[string]any{
		"brokers":                            []any{"localhost:9092"},
		"client_id":                          "otelcol-kafkabatcher",
		"protocol_version":                   "2.8.0",
		"topic":                              "otlp_logs",
		"topic_from":                         "",
		"encoding":                           "otlp_proto",
		"message_per":                        "record",
		"partitioning::strategy":             "murmur2",
		"partitioning::collect_by_partition": true,
		"batch::size":                        500,
		"batch::max_bytes":                   1000000,
		"batch::max_wait":                    "1s",
		"batch::min_delay":                   "0s",
		"producer::required_acks":            "all",
		"producer::compression":              "none",
		"producer::compression_level":        0,
		"producer::max_message_bytes":        1000000,
		"producer::timeout":                  "10s",
		"producer::max_attempts":             3,
		"auth::sasl::mechanism":              "",
		"auth::sasl::username":               "",
		"metadata::refresh_interval":         "30s",
		"temp_storage::enabled":              true,
		"temp_storage::directory":            "",
		"temp_storage::max_bytes":            1073741824,
		"temp_storage::segment_bytes":        16777216,
		"temp_storage::fsync":                "batch",
		"temp_storage::retry_interval":       "5s",
		"delivery":                           "async",
		"max_pending_bytes":                  67108864,
		"traces::topic":                      "otlp_spans",
		"traces::topic_from":                 "",
		"traces::encoding":                   "otlp_proto",
		"traces::key_from":                   []any{"trace_id"},
		"metrics::topic":                     "otlp_metrics",
		"metrics::topic_from":                "",
		"metrics::encoding":                  "otlp_proto",
	}
	// Compared as text: Marshal keeps Go types (time.Duration, Encoding),
	// and their text is what YAML holds.
	for key, v := range want {
		assert.Equal(t, fmt.Sprint(v), fmt.Sprint(conf.Get(key)), key)
	}
	for _, key := range []string{"key_from", "headers_from", "batch::flush_when",
		"traces::headers_from", "traces::flush_when", "metrics::key_from", "metrics::headers_from",
		"headers", "traces::headers", "metrics::headers"} {
		assert.Empty(t, conf.Get(key), key)
	}
	assert.Empty(t, conf.Get("topic_aliases"))
	assert.Nil(t, conf.Get("tls"), "tls absent by default: plaintext")
}

func TestRequiredAcksForms(t *testing.T) {
	tests := []struct {
		yaml any
		want producer.RequiredAcks
	}{
		{"all", producer.AcksAll},
		{"ALL", producer.AcksAll},
		{"-1", producer.AcksAll},
		{-1, producer.AcksAll},
		{"1", producer.AcksLeader},
		{1, producer.AcksLeader},
		{"0", producer.AcksNone},
		{0, producer.AcksNone},
	}
	for _, tt := range tests {
		cfg := createDefaultConfig().(*Config)
		cfg.Producer.RequiredAcks = 42 // prove the value is overwritten
		conf := confmap.NewFromStringMap(map[string]any{"producer": map[string]any{"required_acks": tt.yaml}})
		require.NoError(t, conf.Unmarshal(cfg), "%v", tt.yaml)
		assert.Equal(t, tt.want, cfg.Producer.RequiredAcks, "%v", tt.yaml)
		assert.NoError(t, cfg.Validate(), "%v", tt.yaml)
	}
	// The sarama values are checked in producer (TestSaramaValues).

	for a, want := range map[producer.RequiredAcks]string{producer.AcksAll: "all", producer.AcksLeader: "1", producer.AcksNone: "0"} {
		got, err := a.MarshalText()
		require.NoError(t, err)
		assert.Equal(t, want, string(got))
	}
}

func TestBrokerAddresses(t *testing.T) {
	for _, ok := range []string{"localhost:9092", "[::1]:9092", "10.1.2.3:1", "kafka-0.kafka.svc:65535"} {
		cfg := createDefaultConfig().(*Config)
		cfg.Brokers = []string{ok}
		assert.NoError(t, cfg.Validate(), ok)
	}
}

func TestTopicNameLimits(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Topic = strings.Repeat("t", 249)
	require.NoError(t, cfg.Validate())
	cfg.Topic = strings.Repeat("t", 250)
	require.EqualError(t, cfg.Validate(), `topic: must be at most 249 characters of [a-zA-Z0-9._-], got "`+cfg.Topic+`"`)
	cfg.Topic = ".."
	require.EqualError(t, cfg.Validate(), `topic: is not a legal Kafka topic name, got ".."`)
}

func TestFieldPathsAccepted(t *testing.T) {
	paths := []string{
		"attributes.x", "resource.host.name", "body", "body.msg",
		"trace_id", "span_id", "severity_text", "scope.name",
	}
	cfg := createDefaultConfig().(*Config)
	cfg.KeyFrom = paths
	cfg.HeadersFrom = paths
	cfg.TopicFrom = "attributes.kafka.topic"
	assert.NoError(t, cfg.Validate())
}

// TestTLSPresence pins the tls decision: absent or disabled is plaintext,
// present (even empty) is TLS.
func TestTLSPresence(t *testing.T) {
	tests := []struct {
		name    string
		conf    map[string]any
		wantTLS bool
	}{
		{name: "absent", conf: map[string]any{}, wantTLS: false},
		{name: "null", conf: map[string]any{"tls": nil}, wantTLS: true},
		{name: "empty", conf: map[string]any{"tls": map[string]any{}}, wantTLS: true},
		{name: "disabled", conf: map[string]any{"tls": map[string]any{"enabled": false, "insecure_skip_verify": true}}, wantTLS: false},
		{name: "insecure", conf: map[string]any{"tls": map[string]any{"insecure": true}}, wantTLS: false},
		{name: "skip verify", conf: map[string]any{"tls": map[string]any{"insecure_skip_verify": true, "server_name_override": "kafka"}}, wantTLS: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := createDefaultConfig().(*Config)
			require.NoError(t, confmap.NewFromStringMap(tt.conf).Unmarshal(cfg))
			require.NoError(t, confmap.Validate(cfg))
			tc, err := cfg.tlsConfig(context.Background())
			require.NoError(t, err)
			assert.Equal(t, tt.wantTLS, tc != nil)
			if tt.name == "skip verify" {
				assert.True(t, tc.InsecureSkipVerify)
				assert.Equal(t, "kafka", tc.ServerName)
			}
		})
	}
}

func TestTLSLoadError(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	conf := confmap.NewFromStringMap(map[string]any{"tls": map[string]any{"ca_file": filepath.Join(t.TempDir(), "missing.pem")}})
	require.NoError(t, conf.Unmarshal(cfg))
	_, err := cfg.tlsConfig(context.Background())
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "tls: "), err.Error())
}

// TestStartTLSErrorPrefixedOnce: start reports tlsConfig's error as it is,
// not as "tls: tls: ...".
func TestStartTLSErrorPrefixedOnce(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	conf := confmap.NewFromStringMap(map[string]any{"tls": map[string]any{"ca_file": filepath.Join(t.TempDir(), "missing.pem")}})
	require.NoError(t, conf.Unmarshal(cfg))
	cfg.Brokers = []string{"127.0.0.1:1"}
	cfg.TempStorage.Directory = t.TempDir()
	exp, err := newExporter(cfg, nopSettings())
	require.NoError(t, err)
	err = exp.start(context.Background(), componenttest.NewNopHost())
	require.Error(t, err)
	assert.Equal(t, 1, strings.Count(err.Error(), "tls: "), err.Error())
}

func TestStorageDir(t *testing.T) {
	cache, err := os.UserCacheDir()
	require.NoError(t, err)

	cfg := createDefaultConfig().(*Config)
	dir, err := cfg.storageDir(component.NewID(metadata.Type))
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(cache, "otelcol-kafkabatcher", "kafkabatcher"), dir)

	dir, err = cfg.storageDir(component.NewIDWithName(metadata.Type, "eu/west 1"))
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(cache, "otelcol-kafkabatcher", "kafkabatcher_eu%2Fwest%201"), dir)

	cfg.TempStorage.Directory = "/data/spill"
	dir, err = cfg.storageDir(component.NewID(metadata.Type))
	require.NoError(t, err)
	assert.Equal(t, "/data/spill", dir)
}

func TestStorageDirNoCacheDir(t *testing.T) {
	// os.UserCacheDir fails on Linux when neither variable is set.
	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv("HOME", "")
	cfg := createDefaultConfig().(*Config)
	_, err := cfg.storageDir(component.NewID(metadata.Type))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "temp_storage.directory is empty")
}

func TestIDDirNamesDistinct(t *testing.T) {
	names := []string{"", "a", "a_b", "a/b", "a%2Fb", "a.b", "a-b", "é"}
	seen := map[string]string{}
	for _, n := range names {
		d := idDirName(component.NewIDWithName(metadata.Type, n))
		assert.NotContains(t, d, "/")
		if prev, dup := seen[d]; dup {
			t.Errorf("names %q and %q both map to %q", prev, n, d)
		}
		seen[d] = n
	}
}

// invalidCases maps each testdata/invalid file to the exact error the
// collector shows. Cases marked unmarshal fail while decoding (the value has
// the wrong type), the others in Validate.
// invalidCase is what loading and validating an invalid file gives.
type invalidCase struct {
	want      string
	unmarshal bool
}

var invalidCases = map[string]invalidCase{
	"brokers_empty":            {want: `brokers: must list at least one host:port, got none`},
	"broker_no_port":           {want: `brokers[1]: want host:port (IPv6 as [::1]:9092), got "localhost"`},
	"broker_ipv6_unbracketed":  {want: `brokers[0]: want host:port (IPv6 as [::1]:9092), got "::1:9092"`},
	"broker_port_zero":         {want: `brokers[0]: port must be 1..65535, got "localhost:0"`},
	"broker_port_too_big":      {want: `brokers[0]: port must be 1..65535, got "localhost:65536"`},
	"broker_empty_host":        {want: `brokers[0]: want host:port with a host name or IP address, got ":9092"`},
	"protocol_version_garbage": {want: `protocol_version: not a Kafka version (want e.g. 2.8.0), got "latest"`},
	"protocol_version_too_old": {want: `protocol_version: must be >= 0.11.0 (record batch v2), got "0.10.2.0"`},
	"client_id_empty":          {want: `client_id: must not be empty, got ""`},
	"client_id_pre_1_0":        {want: `client_id: must use only [A-Za-z0-9._-] before protocol_version 1.0.0, got "agent #1"`},
	"topic_empty":              {want: `topic: must not be empty, got ""`},
	"topic_illegal":            {want: `topic: must be at most 249 characters of [a-zA-Z0-9._-], got "logs/app"`},
	"topic_from_invalid": {want: `topic_from: invalid field path "attribute.x": want one of ` +
		`attributes.NAME, resource.NAME, scope.NAME, metadata.NAME, body, body.NAME, trace_id, span_id, severity_text`},
	"topic_aliases_empty_alias":        {want: `topic_aliases.otlp_logs: alias must not be empty, got ""`},
	"encoding_unknown":                 {want: `encoding: unknown encoding "avro" (want otlp_proto, otlp_json, json, raw)`},
	"message_per_unknown":              {want: `message_per: unknown value "trace" (want record, key)`},
	"message_per_key_raw":              {want: `message_per: key needs encoding otlp_proto or otlp_json, got raw`},
	"message_per_key_json":             {want: `message_per: key needs encoding otlp_proto or otlp_json, got json`},
	"message_per_key_unknown_encoding": {want: `encoding: unknown encoding "avro" (want otlp_proto, otlp_json, json, raw)`},
	"key_from_invalid": {want: `key_from[1]: invalid field path "attributes.": want one of ` +
		`attributes.NAME, resource.NAME, scope.NAME, metadata.NAME, body, body.NAME, trace_id, span_id, severity_text`},
	"key_from_empty_path": {want: `key_from[0]: invalid field path "": want one of ` +
		`attributes.NAME, resource.NAME, scope.NAME, metadata.NAME, body, body.NAME, trace_id, span_id, severity_text`},
	"headers_from_invalid": {want: `headers_from[0]: invalid field path "attribute.x": want one of ` +
		`attributes.NAME, resource.NAME, scope.NAME, metadata.NAME, body, body.NAME, trace_id, span_id, severity_text`},
	"headers_from_duplicate": {want: `headers_from[2]: duplicate field path, got "trace_id"`},
	"headers_empty_name":     {want: `headers: header name must not be empty`},
	"headers_value_not_string": {unmarshal: true, want: "decoding failed due to the following error(s):\n\n" +
		`'headers[retries]' expected type 'string', got unconvertible type 'int'`},
	"strategy_unknown":                       {want: `partitioning.strategy: unknown strategy "foo" (want murmur2, fnv1a, md5, random, sticky, round_robin)`},
	"batch_size_zero":                        {want: `batch.size: must be > 0, got 0`},
	"batch_size_negative":                    {want: `batch.size: must be > 0, got -5`},
	"batch_max_bytes_header":                 {want: `batch.max_bytes: must be > 61 (the record batch header), got 61`},
	"batch_max_bytes_over_max_message_bytes": {want: `batch.max_bytes: must be <= producer.max_message_bytes (1000000), got 2000000`},
	"batch_max_wait_zero":                    {want: `batch.max_wait: must be > 0, got 0s`},
	"batch_min_delay_negative":               {want: `batch.min_delay: must be >= 0, got -1s`},
	"batch_min_delay_over_max_wait":          {want: `batch.min_delay: must be <= batch.max_wait (1s), got 2s`},
	"flush_when_invalid":                     {want: `batch.flush_when[1]: 1:17: condition has invalid syntax: (expected Field ("." Field)*), got "severity_text =="`},
	"required_acks_out_of_range":             {want: `producer.required_acks: want all, -1, 1 or 0, got 2`},
	"required_acks_word": {unmarshal: true, want: "decoding failed due to the following error(s):\n\n" +
		`'producer.required_acks' want all, -1, 1 or 0, got "leader"`},
	"compression_unknown":        {want: `producer.compression: unknown compression "brotli" (want none, gzip, snappy, lz4, zstd)`},
	"compression_zstd_old_kafka": {want: `producer.compression: zstd needs protocol_version >= 2.1.0, got protocol_version "2.0.0"`},
	"compression_level_gzip_over_9": {want: `producer.compression_level: must be 1..9 with producer.compression gzip ` +
		`(0: the codec's default), got 10`},
	"compression_level_gzip_negative": {want: `producer.compression_level: must be 1..9 with producer.compression gzip ` +
		`(0: the codec's default), got -1`},
	"compression_level_zstd_over_22": {want: `producer.compression_level: must be 1..22 with producer.compression zstd ` +
		`(0: the codec's default), got 23`},
	"compression_level_none": {want: `producer.compression_level: must be 0 with producer.compression none ` +
		`(nothing is compressed), got 3`},
	"compression_level_snappy": {want: `producer.compression_level: must be 0 with producer.compression snappy ` +
		`(snappy has no levels), got 1`},
	"compression_level_lz4": {want: `producer.compression_level: must be 0 with producer.compression lz4 ` +
		`(the client compresses lz4 at one fixed level), got 9`},
	"max_message_bytes_zero":     {want: `producer.max_message_bytes: must be > 0, got 0`},
	"producer_timeout_zero":      {want: `producer.timeout: must be > 0, got 0s`},
	"producer_timeout_below_1ms": {want: `producer.timeout: must be at least 1ms (Kafka counts it in milliseconds), got 1ns`},
	"max_message_bytes_over_request_limit": {want: `producer.max_message_bytes: must be < 104857600 ` +
		`(the largest Kafka request the client sends), got 104857600`},
	"max_attempts_zero":           {want: `producer.max_attempts: must be >= 1, got 0`},
	"idempotent_without_acks_all": {want: `producer.idempotent: true needs producer.required_acks all, got producer.required_acks 1`},
	"max_in_flight_over_5":        {want: `producer.max_in_flight: must be 1..5 with producer.idempotent, got 6`},
	"max_in_flight_zero":          {want: `producer.max_in_flight: must be 1..5 with producer.idempotent, got 0`},
	"max_in_flight_without_idempotence": {want: `producer.max_in_flight: must be 1 without producer.idempotent ` +
		`(it keeps the order), got 5`},
	"max_in_flight_acks_0":   {want: `producer.max_in_flight: must be 1 without producer.idempotent (it keeps the order), got 2`},
	"sasl_unknown_mechanism": {want: `auth.sasl.mechanism: unknown mechanism "KERBEROS" (want PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER, GSSAPI, AWS_MSK_IAM_OAUTHBEARER)`},
	"sasl_missing_username":  {want: `auth.sasl.username: required with mechanism PLAIN, got ""`},
	"sasl_missing_password":  {want: `auth.sasl.password: required with mechanism SCRAM-SHA-256, got none`},
	"sasl_old_kafka":         {want: `auth.sasl.mechanism: SASL needs protocol_version >= 1.0.0, got protocol_version "0.11.0.0"`},
	"sasl_credentials_without_mechanism": {want: `auth.sasl.mechanism: required when username or password is set ` +
		`(want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512), got ""`},
	// configtls's own Validate, run by confmap.Validate: it reports the
	// problem twice (ClientConfig and its embedded Config, the second under
	// the Optional's inner path); otelcol shows the same text.
	"tls_ca_file_and_pem": {want: "tls: provide either a CA file or the PEM-encoded string, but not both\n" +
		"config: provide either a CA file or the PEM-encoded string, but not both"},
	"metadata_refresh_interval_zero":            {want: `metadata.refresh_interval: must be > 0, got 0s`},
	"temp_storage_max_bytes_zero":               {want: `temp_storage.max_bytes: must be > 0, got 0`},
	"temp_storage_segment_bytes_zero":           {want: `temp_storage.segment_bytes: must be > 0, got 0`},
	"temp_storage_segment_bytes_over_max_bytes": {want: `temp_storage.segment_bytes: must be <= temp_storage.max_bytes (2000000), got 3000000`},
	// 500 records of 12 bytes more than in Kafka, the frame and the route.
	"temp_storage_max_bytes_below_one_batch": {want: `temp_storage.max_bytes: must be >= 1006742 (the most one stored batch can take: ` +
		`batch.max_bytes 1000000 or producer.max_message_bytes 1000000 plus the entry overhead), got 1000000`},
	"temp_storage_fsync_unknown":              {want: `temp_storage.fsync: unknown mode "always" (want batch, interval, never)`},
	"temp_storage_retry_interval_zero":        {want: `temp_storage.retry_interval: must be > 0, got 0s`},
	"delivery_unknown":                        {want: `delivery: unknown mode "eventually" (want async, sync)`},
	"max_pending_bytes_zero":                  {want: `max_pending_bytes: must be > 0, got 0`},
	"max_pending_bytes_below_batch_max_bytes": {want: `max_pending_bytes: must be >= batch.max_bytes (1000000), got 500000`},
	"unknown_key": {unmarshal: true, want: "decoding failed due to the following error(s):\n\n" +
		`'kafkabatcherexporter.Config' has invalid keys: batches`},
	"traces_key_from_invalid": {want: `traces.key_from[1]: invalid field path "body": want one of ` +
		`trace_id, span_id, name, attributes.NAME, resource.NAME, scope.NAME, metadata.NAME`},
	"traces_topic_from_invalid": {want: `traces.topic_from: invalid field path "attributes.topic": want one of ` +
		`resource.NAME, scope.NAME, metadata.NAME`},
	"traces_encoding_unknown":       {want: `traces.encoding: unknown encoding "json" (want otlp_proto, otlp_json)`},
	"traces_topic_empty":            {want: `traces.topic: must not be empty, got ""`},
	"traces_headers_from_duplicate": {want: `traces.headers_from[1]: duplicate field path, got "name"`},
	"traces_headers_empty_name":     {want: `traces.headers: header name must not be empty`},
	"metrics_headers_empty_name":    {want: `metrics.headers: header name must not be empty`},
	"traces_flush_when_invalid": {want: "traces.flush_when[1]: 1:1: condition failed to parse near `severity_n`: " +
		`segment "severity_number" from path "severity_number" is not a valid path nor a valid OTTL keyword for the span context - review https://github.com/open-telemetry/opentelemetry-collector-contrib/tree/main/pkg/ottl/contexts/ottlspan to see all valid paths, got "severity_number >= 9"`},
	"metrics_key_from_invalid": {want: `metrics.key_from[0]: invalid field path "trace_id": want one of ` +
		`name, resource.NAME, scope.NAME, metadata.NAME`},
	"metrics_headers_from_invalid": {want: `metrics.headers_from[0]: invalid field path "attributes.x": want one of ` +
		`name, resource.NAME, scope.NAME, metadata.NAME`},
	"metrics_topic_from_invalid": {want: `metrics.topic_from: invalid field path "name": want one of ` +
		`resource.NAME, scope.NAME, metadata.NAME`},
	"metrics_encoding_unknown": {want: `metrics.encoding: unknown encoding "raw" (want otlp_proto, otlp_json)`},
	"metrics_topic_illegal":    {want: `metrics.topic: must be at most 249 characters of [a-zA-Z0-9._-], got "metrics/app"`},
	"metrics_flush_when_unknown_key": {unmarshal: true, want: "decoding failed due to the following error(s):\n\n" +
		`'metrics' has invalid keys: flush_when`},
	"several_problems": {want: "brokers: must list at least one host:port, got none\n" +
		"batch.size: must be > 0, got 0\n" +
		"batch.max_wait: must be > 0, got 0s\n" +
		`delivery: unknown mode "eventually" (want async, sync)`},
}

func TestInvalidConfigs(t *testing.T) {
	checkInvalidConfigs(t, filepath.Join("testdata", "invalid"), invalidCases)
}

// checkInvalidConfigs loads each dir/NAME.yaml and checks the error it
// gives against cases[NAME]; every case has a file, every file a case.
// No error may echo a secret (the files' secrets are do-not-echo-me).
func checkInvalidConfigs(t *testing.T, dir string, cases map[string]invalidCase) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	require.NoError(t, err)
	var names []string
	for _, f := range files {
		names = append(names, strings.TrimSuffix(filepath.Base(f), ".yaml"))
	}
	for name := range cases {
		assert.Contains(t, names, name, "case without a file")
	}

	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			tc, ok := cases[name]
			require.True(t, ok, "%s/%s.yaml has no expected error", dir, name)

			cfg, err := loadConfig(t, filepath.Join(dir, name+".yaml"), component.NewID(metadata.Type))
			if tc.unmarshal {
				require.EqualError(t, err, tc.want)
				return
			}
			require.NoError(t, err)
			// confmap.Validate is what the collector runs; it prefixes
			// errors of nested Validate methods (tls) with their key.
			err = confmap.Validate(cfg)
			require.EqualError(t, err, tc.want)
			require.NotContains(t, err.Error(), "do-not-echo-me")
		})
	}
}

// TestValidateNamesKeyOnce guards the design choice that only Config has a
// Validate method: confmap.Validate must not add a second path prefix to
// our messages.
func TestValidateNamesKeyOnce(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Batch.Size = 0
	cfg.TempStorage.Fsync = "always"
	want := "batch.size: must be > 0, got 0\n" +
		`temp_storage.fsync: unknown mode "always" (want batch, interval, never)`
	require.EqualError(t, cfg.Validate(), want)
	require.EqualError(t, confmap.Validate(cfg), want)
}

// TestValidateAllEnumValues: every name the owning package lists passes
// validation, so the config accepts what the parts accept.
func TestValidateAllEnumValues(t *testing.T) {
	var fsyncs []string
	for _, f := range tempstorage.FsyncPolicies() {
		fsyncs = append(fsyncs, f.String())
	}
	keys := []struct {
		key   string
		names []string
		set   func(*Config, string)
	}{
		{"partitioning.strategy", partitioner.Strategies(), func(c *Config, v string) { c.Partitioning.Strategy = v }},
		{"encoding", logmsg.Encodings(), func(c *Config, v string) { c.Encoding = v }},
		{"message_per", logmsg.MessagePers(), func(c *Config, v string) { c.MessagePer = v }},
		{"traces.encoding", spanmsg.Encodings(), func(c *Config, v string) { c.Traces.Encoding = v }},
		{"metrics.encoding", metricmsg.Encodings(), func(c *Config, v string) { c.Metrics.Encoding = v }},
		{"producer.compression", producer.Compressions(), func(c *Config, v string) { c.Producer.Compression = v }},
		{"auth.sasl.mechanism", saslMechanisms(), func(c *Config, v string) { c.Auth = validAuth(v) }},
		{"temp_storage.fsync", fsyncs, func(c *Config, v string) { c.TempStorage.Fsync = tempstorage.FsyncPolicy(v) }},
		{"delivery", []string{string(DeliveryAsync), string(DeliverySync)}, func(c *Config, v string) { c.Delivery = Delivery(v) }},
	}
	for _, k := range keys {
		for _, v := range k.names {
			cfg := createDefaultConfig().(*Config)
			k.set(cfg, v)
			assert.NoError(t, cfg.Validate(), "%s: %s", k.key, v)
		}
	}
}

// TestCollectorShowsKey validates the way otelcol does (confmap.Validate on
// its whole config, exporters keyed by component ID): the message keeps the
// exporter ID and our key path.
func TestCollectorShowsKey(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Batch.Size = 0
	collectorCfg := struct {
		Exporters map[component.ID]component.Config `mapstructure:"exporters"`
	}{Exporters: map[component.ID]component.Config{component.NewIDWithName(metadata.Type, "eu"): cfg}}
	require.EqualError(t, confmap.Validate(collectorCfg), "exporters::kafkabatcher/eu: batch.size: must be > 0, got 0")
}

func ptr[T any](v T) *T { return &v }
