package kafkabatcherexporter

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/config/configtls"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/kafkabatcher/kafkabatcherexporter/internal/metadata"
	"github.com/kafkabatcher/kafkabatcherexporter/logmsg"
	"github.com/kafkabatcher/kafkabatcherexporter/partitioner"
	"github.com/kafkabatcher/kafkabatcherexporter/producer"
	"github.com/kafkabatcher/kafkabatcherexporter/tempstorage"
)

// NewFactory returns the factory of the kafkabatcher logs exporter.
func NewFactory() exporter.Factory {
	return exporter.NewFactory(
		metadata.Type,
		createDefaultConfig,
		exporter.WithLogs(createLogs, metadata.LogsStability),
	)
}

// createDefaultConfig returns the default of every key. Key names and
// defaults are a contract: deployments and tests outside the project rely on
// them (TestDefaultConfigContract pins them).
func createDefaultConfig() component.Config {
	return &Config{
		Brokers:         []string{"localhost:9092"},
		ClientID:        "otelcol-kafkabatcher",
		ProtocolVersion: "2.8.0",
		Topic:           "otlp_logs",
		TopicAliases:    map[string]string{},
		Encoding:        logmsg.EncodingOTLPProto,
		Partitioning: PartitioningConfig{
			Strategy:           partitioner.Murmur2,
			CollectByPartition: true,
		},
		Batch: BatchConfig{
			Size:     500,
			MaxBytes: 1_000_000,
			MaxWait:  time.Second,
			MinDelay: 0,
		},
		Producer: ProducerConfig{
			RequiredAcks:    producer.AcksAll,
			Compression:     producer.CompressionNone,
			MaxMessageBytes: 1_000_000,
			Timeout:         10 * time.Second,
			MaxAttempts:     3,
		},
		TLS: configoptional.Default(configtls.NewDefaultClientConfig()),
		Metadata: MetadataConfig{
			RefreshInterval: 30 * time.Second,
		},
		TempStorage: TempStorageConfig{
			Enabled:       true,
			MaxBytes:      1 << 30,
			SegmentBytes:  16 << 20,
			Fsync:         tempstorage.FsyncBatch.String(),
			RetryInterval: 5 * time.Second,
		},
		Delivery:        DeliveryAsync,
		MaxPendingBytes: 64 << 20,
	}
}

// createLogs builds the exporter on exporterhelper for its lifecycle and
// standard exporter metrics; its queue, retry and timeout are off because
// the exporter batches, retries and spills to disk itself.
func createLogs(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Logs, error) {
	c, ok := cfg.(*Config)
	if !ok {
		return nil, fmt.Errorf("kafkabatcher: unexpected config type %T", cfg)
	}
	exp, err := newExporter(c, set)
	if err != nil {
		return nil, err
	}
	return exporterhelper.NewLogs(ctx, set, cfg, exp.consumeLogs,
		exporterhelper.WithQueue(configoptional.None[exporterhelper.QueueBatchConfig]()),
		exporterhelper.WithRetry(configretry.BackOffConfig{Enabled: false}),
		exporterhelper.WithTimeout(exporterhelper.TimeoutConfig{Timeout: 0}),
		exporterhelper.WithStart(exp.start),
		exporterhelper.WithShutdown(exp.shutdown),
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}),
	)
}
