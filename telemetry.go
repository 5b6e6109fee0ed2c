package kafkabatcherexporter

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/kafkabatcher/kafkabatcherexporter/internal/metadata"
	"github.com/kafkabatcher/kafkabatcherexporter/message"
	"github.com/kafkabatcher/kafkabatcherexporter/producer"
)

// telemetry records the exporter's own metrics (metadata.yaml).
type telemetry struct {
	tb      *metadata.TelemetryBuilder
	aliases map[string]string
	// attrs caches the topic/partition/topic_alias set per partition: one
	// attribute set per partition, not per batch.
	attrs       sync.Map // message.TopicPartition -> metric.MeasurementOption
	corruptSeen atomic.Int64
}

func (t *telemetry) partAttrs(k message.TopicPartition) metric.MeasurementOption {
	if o, ok := t.attrs.Load(k); ok {
		return o.(metric.MeasurementOption)
	}
	alias := t.aliases[k.Topic]
	if alias == "" {
		alias = k.Topic
	}
	o := metric.WithAttributeSet(attribute.NewSet(
		attribute.String("topic", k.Topic),
		attribute.Int("partition", int(k.Partition)),
		attribute.String("topic_alias", alias),
	))
	t.attrs.Store(k, o)
	return o
}

func reasonAttr(reason string) metric.AddOption {
	return metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", reason)))
}

// sent records one batch acknowledged by Kafka at ackAt, after a produce
// that took took, and its delivery latency (ackAt less b.Opened).
func (t *telemetry) sent(b *message.Batch, took time.Duration, ackAt time.Time) {
	ctx := context.Background()
	o := t.partAttrs(b.TopicPartition())
	t.tb.KafkabatcherBatchRecords.Record(ctx, int64(len(b.Messages)), o)
	t.tb.KafkabatcherBatchBytes.Record(ctx, int64(b.Bytes), o)
	t.tb.KafkabatcherProduceDuration.Record(ctx, took.Seconds(), o)
	t.tb.KafkabatcherRecordsSent.Add(ctx, int64(len(b.Messages)), o)
	// Replayed batches have no Opened: the temp storage does not keep it.
	if !b.Opened.IsZero() {
		t.tb.KafkabatcherDeliveryLatency.Record(ctx, max(ackAt.Sub(b.Opened), 0).Seconds(), o)
	}
}

func (t *telemetry) flushed(reason message.FlushReason) {
	t.tb.KafkabatcherFlushes.Add(context.Background(), 1, reasonAttr(reason.String()))
}

func (t *telemetry) rejected(n int, reason message.RejectReason) {
	t.tb.KafkabatcherRecordsRejected.Add(context.Background(), int64(n), reasonAttr(string(reason)))
}

func (t *telemetry) spilled(n int) {
	t.tb.KafkabatcherRecordsSpilled.Add(context.Background(), int64(n))
}

func (t *telemetry) replayed(n int) {
	t.tb.KafkabatcherRecordsReplayed.Add(context.Background(), int64(n))
}

// corruptTotal brings the corrupt-entries counter up to total, the
// queue's count since it was opened (found at Open or while replaying).
func (t *telemetry) corruptTotal(total int64) {
	for {
		seen := t.corruptSeen.Load()
		if total <= seen {
			return
		}
		if t.corruptSeen.CompareAndSwap(seen, total) {
			t.tb.KafkabatcherStorageCorruptEntries.Add(context.Background(), total-seen)
			return
		}
	}
}

// registerProducerTelemetry observes the producer's gauges and counters:
// batches in flight, resends by reason, producer id changes.
func (e *kafkaBatcherExporter) registerProducerTelemetry(tb *metadata.TelemetryBuilder) error {
	reasons := producer.ResendReasons()
	reasonAttrs := make(map[string]metric.ObserveOption, len(reasons))
	for _, r := range reasons {
		reasonAttrs[r] = metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", r)))
	}
	return errors.Join(
		tb.RegisterKafkabatcherBatchesInFlightCallback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(e.prod.InFlight())
			return nil
		}),
		tb.RegisterKafkabatcherResendsCallback(func(_ context.Context, o metric.Int64Observer) error {
			for r, n := range e.prod.Resends() {
				o.Observe(n, reasonAttrs[r])
			}
			return nil
		}),
		tb.RegisterKafkabatcherProducerIDChangesCallback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(e.prod.ProducerIDChanges())
			return nil
		}),
	)
}
