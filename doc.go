// Package kafkabatcherexporter is an OpenTelemetry Collector exporter for
// logs, traces and metrics, component type kafkabatcher: it turns log records,
// spans and metrics into Kafka messages, batches them per partition, produces
// them with sarama and keeps them in a durable file queue while Kafka cannot
// take them. The pipelines of one component id share one instance.
package kafkabatcherexporter

//go:generate bash internal/tools/generate.sh
