package kafkabatcherexporter

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/component"
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
	// attribute set per partition, not per batch; sentAttrs adds the signal.
	attrs       sync.Map // message.TopicPartition -> metric.MeasurementOption
	sentSets    sync.Map // signalPartition -> metric.AddOption
	corruptSeen atomic.Int64
}

// newTelemetry makes the exporter's instruments; aliases give the
// topic_alias label of each topic.
func newTelemetry(set component.TelemetrySettings, aliases map[string]string) (*telemetry, error) {
	tb, err := metadata.NewTelemetryBuilder(set)
	if err != nil {
		return nil, err
	}
	return &telemetry{tb: tb, aliases: aliases}, nil
}

func (t *telemetry) partAttrs(k message.TopicPartition) metric.MeasurementOption {
	if o, ok := t.attrs.Load(k); ok {
		return o.(metric.MeasurementOption)
	}
	o := metric.WithAttributeSet(attribute.NewSet(t.partKVs(k)...))
	t.attrs.Store(k, o)
	return o
}

// partKVs are the topic, partition and topic_alias labels of k.
func (t *telemetry) partKVs(k message.TopicPartition) []attribute.KeyValue {
	alias := t.aliases[k.Topic]
	if alias == "" {
		alias = k.Topic
	}
	return []attribute.KeyValue{
		attribute.String("topic", k.Topic),
		attribute.Int("partition", int(k.Partition)),
		attribute.String("topic_alias", alias),
	}
}

// signalPartition keys the attribute sets of records sent.
type signalPartition struct {
	message.TopicPartition
	signal message.Signal
}

func (t *telemetry) sentAttrs(k message.TopicPartition, s message.Signal) metric.AddOption {
	key := signalPartition{k, s}
	if o, ok := t.sentSets.Load(key); ok {
		return o.(metric.AddOption)
	}
	o := metric.WithAttributeSet(attribute.NewSet(append(t.partKVs(k), attribute.String("signal", s.String()))...))
	t.sentSets.Store(key, o)
	return o
}

// signalAttrs are the attribute sets of the signal label alone.
var signalAttrs = func() (sets [message.NumSignals]metric.AddOption) {
	for s := range sets {
		sets[s] = metric.WithAttributeSet(attribute.NewSet(attribute.String("signal", message.Signal(s).String())))
	}
	return sets
}()

// bySignal counts msgs per signal.
func bySignal(msgs []message.Message) (n [message.NumSignals]int64) {
	for i := range msgs {
		n[msgs[i].Signal%message.NumSignals]++
	}
	return n
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
	for s, n := range bySignal(b.Messages) {
		if n > 0 {
			t.tb.KafkabatcherRecordsSent.Add(ctx, n, t.sentAttrs(b.TopicPartition(), message.Signal(s)))
		}
	}
	// Replayed batches have no Opened: the temp storage does not keep it.
	if !b.Opened.IsZero() {
		t.tb.KafkabatcherDeliveryLatency.Record(ctx, max(ackAt.Sub(b.Opened), 0).Seconds(), o)
	}
}

// flushAttrs are the flushes metric's attribute sets, made once: a batch
// then records its flush without building a set.
var flushAttrs = func() (sets [message.ReasonCall + 1]metric.AddOption) {
	for r := range sets {
		sets[r] = reasonAttr(message.FlushReason(r).String())
	}
	return sets
}()

func (t *telemetry) flushed(reason message.FlushReason) {
	if int(reason) >= len(flushAttrs) { // a reason added after ReasonCall
		t.tb.KafkabatcherFlushes.Add(context.Background(), 1, reasonAttr(reason.String()))
		return
	}
	t.tb.KafkabatcherFlushes.Add(context.Background(), 1, flushAttrs[reason])
}

// rejected counts msgs as rejected for reason, by signal.
func (t *telemetry) rejected(msgs []message.Message, reason message.RejectReason) {
	for s, n := range bySignal(msgs) {
		if n > 0 {
			t.tb.KafkabatcherRecordsRejected.Add(context.Background(), n, metric.WithAttributeSet(attribute.NewSet(
				attribute.String("reason", string(reason)), attribute.String("signal", message.Signal(s).String()))))
		}
	}
}

// spilled counts msgs as written to the temp storage, by signal.
func (t *telemetry) spilled(msgs []message.Message) {
	for s, n := range bySignal(msgs) {
		if n > 0 {
			t.tb.KafkabatcherRecordsSpilled.Add(context.Background(), n, signalAttrs[s])
		}
	}
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

// registerGauges registers the instruments observed from the parts start
// opened, once they are all open: the producer's, the accumulators'
// pending records, and the disk's (telemetry_storage.go).
func (e *kafkaBatcherExporter) registerGauges() error {
	tb := e.tel.tb
	if err := e.registerProducerTelemetry(tb); err != nil {
		return err
	}
	if err := tb.RegisterKafkabatcherPendingRecordsCallback(func(_ context.Context, o metric.Int64Observer) error {
		o.Observe(e.pool.PendingRecords())
		return nil
	}); err != nil {
		return err
	}
	return e.registerDiskGauges(tb)
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
		tb.RegisterKafkabatcherPossibleDuplicatesCallback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(e.prod.PossibleDuplicates())
			return nil
		}),
	)
}
