package kafkabatcherexporter

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// consumeTraces makes one message per (resource, key) of the call (spanmsg)
// and accepts them.
func (e *kafkaBatcherExporter) consumeTraces(ctx context.Context, td ptrace.Traces) error {
	if td.SpanCount() == 0 {
		return nil
	}
	return e.consume(ctx, "spans", func(dst []message.Message) ([]message.Message, error) {
		return e.spans.Append(ctx, dst, td, time.Now())
	})
}
