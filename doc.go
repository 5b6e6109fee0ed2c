// Package kafkabatcherexporter is an OpenTelemetry Collector logs exporter,
// component type kafkabatcher: it turns log records into Kafka messages,
// batches them per partition, produces them with sarama and keeps them in a
// durable file queue while Kafka cannot take them.
package kafkabatcherexporter

//go:generate bash internal/tools/generate.sh
