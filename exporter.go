package kafkabatcherexporter

import (
	"context"
	"errors"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/plog"
)

// TEMPORARY: replaced when batching and producing are wired in. It never
// pretends to send: ConsumeLogs fails.

// errNotImplemented is returned by consumeLogs until sending is wired in.
var errNotImplemented = errors.New("kafkabatcher: sending is not implemented yet")

type kafkaBatcherExporter struct {
	cfg *Config
	set exporter.Settings
}

func newExporter(cfg *Config, set exporter.Settings) (*kafkaBatcherExporter, error) {
	return &kafkaBatcherExporter{cfg: cfg, set: set}, nil
}

func (e *kafkaBatcherExporter) start(context.Context, component.Host) error { return nil }

func (e *kafkaBatcherExporter) shutdown(context.Context) error { return nil }

func (e *kafkaBatcherExporter) consumeLogs(context.Context, plog.Logs) error {
	return errNotImplemented
}
