package kafkabatcherexporter

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/kafkabatcher/kafkabatcherexporter/internal/metadata"
)

// registerDiskGauges registers the gauges an operator watches the disk
// with: the bytes of the temp storage and the age of its oldest stored
// batch, overall and per topic (with temp storage), and the bytes of the
// dead-letter files (always: they are written without temp storage too).
func (e *kafkaBatcherExporter) registerDiskGauges(tb *metadata.TelemetryBuilder) error {
	if err := tb.RegisterKafkabatcherDeadLetterBytesCallback(func(_ context.Context, o metric.Int64Observer) error {
		n, err := e.deadLetters.bytes()
		if err != nil {
			e.logger.Debug("dead-letter bytes gauge", zap.Error(err))
		}
		o.Observe(n)
		return nil
	}); err != nil {
		return err
	}
	if e.store == nil {
		return nil
	}
	if err := tb.RegisterKafkabatcherTempStorageBytesCallback(func(_ context.Context, o metric.Int64Observer) error {
		o.Observe(e.store.Bytes())
		return nil
	}); err != nil {
		return err
	}
	// The two age gauges are observed separately; each reads the heads of
	// the stored queues (a few hundred bytes per backlogged partition).
	if err := tb.RegisterKafkabatcherTempStorageOldestBatchAgeCallback(func(_ context.Context, o metric.Float64Observer) error {
		var oldest float64
		for _, a := range e.storedAges() {
			oldest = max(oldest, a)
		}
		o.Observe(oldest)
		return nil
	}); err != nil {
		return err
	}
	return tb.RegisterKafkabatcherTempStorageTopicOldestBatchAgeCallback(func(_ context.Context, o metric.Float64Observer) error {
		for topic, a := range e.storedAges() {
			o.Observe(a, metric.WithAttributeSet(attribute.NewSet(attribute.String("topic", topic))))
		}
		return nil
	})
}

// storedAges returns, per topic with stored batches, the age in seconds
// of its oldest one (never below 0: a record stamped in the future is new).
func (e *kafkaBatcherExporter) storedAges() map[string]float64 {
	now := e.clock.Now()
	ages := map[string]float64{}
	for p, t := range e.store.Oldest() {
		a := max(now.Sub(t), time.Duration(0)).Seconds()
		if cur, ok := ages[p.Topic]; !ok || a > cur {
			ages[p.Topic] = a
		}
	}
	return ages
}
