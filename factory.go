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
	"github.com/kafkabatcher/kafkabatcherexporter/internal/sharedcomponent"
	"github.com/kafkabatcher/kafkabatcherexporter/logmsg"
	"github.com/kafkabatcher/kafkabatcherexporter/message"
	"github.com/kafkabatcher/kafkabatcherexporter/metricmsg"
	"github.com/kafkabatcher/kafkabatcherexporter/partitioner"
	"github.com/kafkabatcher/kafkabatcherexporter/producer"
	"github.com/kafkabatcher/kafkabatcherexporter/spanmsg"
	"github.com/kafkabatcher/kafkabatcherexporter/tempstorage"
)

// NewFactory returns the factory of the kafkabatcher exporter, for logs,
// traces and metrics.
func NewFactory() exporter.Factory {
	return exporter.NewFactory(
		metadata.Type,
		createDefaultConfig,
		exporter.WithLogs(createLogs, metadata.LogsStability),
		exporter.WithTraces(createTraces, metadata.TracesStability),
		exporter.WithMetrics(createMetrics, metadata.MetricsStability),
	)
}

// exporters holds one exporter per component config: every pipeline of one
// component id gets the same *Config from the collector, so they share one
// instance (producer, accumulators, temp storage, memory bound).
var exporters = sharedcomponent.NewMap[*Config, *kafkaBatcherExporter]()

// createDefaultConfig returns the default of every key. Key names and
// defaults are a contract: deployments and tests outside the project rely on
// them (TestDefaultConfigContract pins them).
func createDefaultConfig() component.Config {
	return &Config{
		Brokers:         []string{"localhost:9092"},
		ClientID:        producer.DefaultClientID,
		ProtocolVersion: producer.DefaultVersion,
		Topic:           "otlp_logs",
		TopicAliases:    map[string]string{},
		Encoding:        logmsg.EncodingOTLPProto,
		MessagePer:      logmsg.MessagePerRecord,
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
			MaxMessageBytes: producer.DefaultMaxMessageBytes,
			Timeout:         producer.DefaultTimeout,
			MaxAttempts:     producer.DefaultMaxAttempts,
		},
		TLS: configoptional.Default(configtls.NewDefaultClientConfig()),
		Metadata: MetadataConfig{
			RefreshInterval: producer.DefaultRefreshInterval,
		},
		TempStorage: TempStorageConfig{
			Enabled:       true,
			MaxBytes:      int(tempstorage.DefaultMaxBytes),
			SegmentBytes:  int(tempstorage.DefaultSegmentBytes),
			Fsync:         tempstorage.FsyncBatch,
			RetryInterval: 5 * time.Second,
		},
		Delivery:        DeliveryAsync,
		MaxPendingBytes: 64 << 20,
		Traces: TracesConfig{SignalConfig: SignalConfig{
			Topic:    "otlp_spans",
			Encoding: spanmsg.EncodingOTLPProto,
			KeyFrom:  spanmsg.DefaultKeyFrom(),
		}},
		Metrics: SignalConfig{
			Topic:    "otlp_metrics",
			Encoding: metricmsg.EncodingOTLPProto,
		},
	}
}

// sharedExporter returns the instance of cfg, creating it for the first
// pipeline, marked as used by signal, and the pipeline's handle on it.
func sharedExporter(cfg component.Config, set exporter.Settings, signal message.Signal) (*kafkaBatcherExporter, *sharedcomponent.Pipeline[*kafkaBatcherExporter], error) {
	c, ok := cfg.(*Config)
	if !ok {
		return nil, nil, fmt.Errorf("kafkabatcher: unexpected config type %T", cfg)
	}
	comp, err := exporters.LoadOrStore(c, func() (*kafkaBatcherExporter, sharedcomponent.Lifecycle, error) {
		exp, err := newExporter(c, set)
		if err != nil {
			return nil, sharedcomponent.Lifecycle{}, err
		}
		return exp, sharedcomponent.Lifecycle{Start: exp.start, Shutdown: exp.shutdown}, nil
	})
	if err != nil {
		return nil, nil, err
	}
	comp.Value.used[signal] = true
	return comp.Value, comp.Pipeline(), nil
}

// helperOptions configure exporterhelper for one pipeline: lifecycle and
// the standard exporter metrics from it; its queue, retry and timeout are
// off because the exporter batches, retries and spills to disk itself.
func helperOptions(p *sharedcomponent.Pipeline[*kafkaBatcherExporter]) []exporterhelper.Option {
	return []exporterhelper.Option{
		exporterhelper.WithQueue(configoptional.None[exporterhelper.QueueBatchConfig]()),
		exporterhelper.WithRetry(configretry.BackOffConfig{Enabled: false}),
		exporterhelper.WithTimeout(exporterhelper.TimeoutConfig{Timeout: 0}),
		exporterhelper.WithStart(p.Start),
		exporterhelper.WithShutdown(p.Shutdown),
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}),
	}
}

func createLogs(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Logs, error) {
	exp, p, err := sharedExporter(cfg, set, message.SignalLogs)
	if err != nil {
		return nil, err
	}
	return exporterhelper.NewLogs(ctx, set, cfg, exp.consumeLogs, helperOptions(p)...)
}

func createTraces(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Traces, error) {
	exp, p, err := sharedExporter(cfg, set, message.SignalTraces)
	if err != nil {
		return nil, err
	}
	return exporterhelper.NewTraces(ctx, set, cfg, exp.consumeTraces, helperOptions(p)...)
}

func createMetrics(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Metrics, error) {
	exp, p, err := sharedExporter(cfg, set, message.SignalMetrics)
	if err != nil {
		return nil, err
	}
	return exporterhelper.NewMetrics(ctx, set, cfg, exp.consumeMetrics, helperOptions(p)...)
}
