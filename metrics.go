package kafkabatcherexporter

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// consumeMetrics makes one message per (resource, key) of the call
// (metricmsg) and accepts them.
func (e *kafkaBatcherExporter) consumeMetrics(ctx context.Context, md pmetric.Metrics) error {
	if md.MetricCount() == 0 {
		return nil
	}
	return e.consume(ctx, "metrics", func(dst []message.Message) ([]message.Message, error) {
		return e.metrics.Append(ctx, dst, md, time.Now())
	})
}
