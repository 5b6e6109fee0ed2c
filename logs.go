package kafkabatcherexporter

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// consumeLogs makes one message per log record (logmsg) and accepts them.
func (e *kafkaBatcherExporter) consumeLogs(ctx context.Context, ld plog.Logs) error {
	if ld.LogRecordCount() == 0 {
		return nil
	}
	return e.consume(ctx, "logs", func(dst []message.Message) ([]message.Message, error) {
		return e.logs.Append(ctx, dst, ld, time.Now())
	})
}
