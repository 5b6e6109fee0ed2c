package kafkabatcherexporter

import (
	"time"

	"go.uber.org/zap"

	"github.com/kafkabatcher/kafkabatcherexporter/batcher"
	"github.com/kafkabatcher/kafkabatcherexporter/internal/delivery"
	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// This file holds the exporter's side of the interfaces its parts call
// back through: batcher.Sink, delivery.Observer and delivery.Clock. Each
// forwards to the exporter's telemetry, health, dead letters and parts;
// the interfaces say from which goroutines they are called.

// poolSink is the accumulators' batcher.Sink: ready batches go to the
// dispatcher, records too large for a batch to the dead-letter file.
type poolSink struct{ *kafkaBatcherExporter }

func (s poolSink) Ready(b message.Batch) {
	s.partitioner.BatchReady(b.TopicPartition())
	s.tel.flushed(b.Reason)
	s.disp.Submit(b)
}

func (s poolSink) Reject(m message.Message, reason message.RejectReason) {
	s.deadLetter(m, reason, nil)
	m.Tracker.Done(1, nil)
}

// deliveryObserver is the dispatcher's delivery.Observer: it is told where
// each batch went.
type deliveryObserver struct{ *kafkaBatcherExporter }

func (o deliveryObserver) Sent(b *message.Batch, took time.Duration) {
	// The ack time comes from the clock b.Opened was read from (the
	// batcher's), so the two make a latency under a test's fake clock too.
	o.tel.sent(b, took, o.clock.Now())
	o.health.setKafka(nil)
}

func (o deliveryObserver) Replayed(b *message.Batch, took time.Duration) {
	o.tel.sent(b, took, o.clock.Now())
	o.tel.replayed(len(b.Messages))
	o.tel.corruptTotal(o.store.Corrupt()) // Peek skips entries damaged since Open
	o.health.setKafka(nil)
}

func (o deliveryObserver) Spilled(b *message.Batch) { o.tel.spilled(b.Messages) }

func (o deliveryObserver) Rejected(r message.Rejected) { o.deadLetter(r.Message, r.Reason, r.Err) }

func (o deliveryObserver) Lost(b *message.Batch, err error) {
	o.tel.rejected(b.Messages, message.RejectNotStored)
	o.logger.Error("batch neither sent nor stored",
		zap.String("topic", b.Topic), zap.Int32("partition", b.Partition),
		zap.Int("records", len(b.Messages)), zap.Error(err))
}

func (o deliveryObserver) Failed(_ *message.Batch, err error) { o.health.setKafka(err) }

func (o deliveryObserver) DiskFull(err error) {
	fields := []zap.Field{zap.String("directory", o.store.Dir()), zap.Int64("bytes", o.store.Bytes()),
		zap.Int("max_bytes", o.cfg.TempStorage.MaxBytes)}
	if err != nil {
		o.logger.Warn("temp storage disk full: new records are refused (retryable) until a batch fits again; replay goes on",
			append(fields, zap.Error(err))...)
		// Calls waiting for memory would add records that cannot be saved.
		o.pool.RefuseWaiting(err)
	} else {
		o.logger.Info("temp storage has room again: records are accepted", fields...)
	}
	o.health.setDisk(err)
}

func (o deliveryObserver) Left(b *message.Batch) {
	// The dispatcher is done with b: the producer has encoded it or the
	// queue has written it, so its slice can hold later batches.
	o.pool.Release(*b)
	o.pool.Recycle(b.Messages)
}

// clockAdapter gives the dispatcher the batcher's clock.
type clockAdapter struct{ c batcher.Clock }

func (a clockAdapter) AfterFunc(d time.Duration, f func()) delivery.Timer { return a.c.AfterFunc(d, f) }
