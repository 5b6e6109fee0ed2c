package kafkabatcherexporter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.uber.org/zap"

	"github.com/kafkabatcher/kafkabatcherexporter/batcher"
	"github.com/kafkabatcher/kafkabatcherexporter/internal/delivery"
	"github.com/kafkabatcher/kafkabatcherexporter/logmsg"
	"github.com/kafkabatcher/kafkabatcherexporter/message"
	"github.com/kafkabatcher/kafkabatcherexporter/metricmsg"
	"github.com/kafkabatcher/kafkabatcherexporter/partitioner"
	"github.com/kafkabatcher/kafkabatcherexporter/producer"
	"github.com/kafkabatcher/kafkabatcherexporter/spanmsg"
	"github.com/kafkabatcher/kafkabatcherexporter/tempstorage"
)

// metadataWait bounds how long ConsumeLogs waits for the partition count of
// a topic it has never seen.
const metadataWait = 2 * time.Second

// kafkaBatcherExporter connects the parts: ConsumeLogs builds messages
// (logmsg), places them (partitioner) and adds them to the accumulators
// (batcher); ready batches go to the dispatcher (delivery), which sends them
// (producer) or spills them (tempstorage).
type kafkaBatcherExporter struct {
	cfg    *Config
	set    exporter.Settings
	logger *zap.Logger
	clock  batcher.Clock

	logs    *logmsg.Builder
	spans   *spanmsg.Builder
	metrics *metricmsg.Builder
	// used marks the signals whose pipelines use this instance; set while
	// the pipelines are created, before start.
	used        [message.NumSignals]bool
	partitioner partitioner.Partitioner
	msgBufs     sync.Pool // *[]message.Message reused across ConsumeLogs calls

	health      health      // the component status
	deadLetters deadLetters // the file of records Kafka will never take

	// Set by start, released by shutdown.
	tel            *telemetry
	store          *tempstorage.Store // nil when temp storage is disabled
	partitionCache *producer.PartitionCache
	prod           *producer.Producer
	pool           *batcher.Pool
	disp           *delivery.Dispatcher

	storageFS tempstorage.FS // nil: the OS; tests substitute a disk that fills up

	// The metadata lookup start runs in the background; shutdown stops it
	// and waits, so it reports no status after shutdown.
	stopLookup context.CancelFunc
	lookup     sync.WaitGroup
}

func newExporter(cfg *Config, set exporter.Settings) (*kafkaBatcherExporter, error) {
	logs, err := logmsg.NewBuilder(logmsg.Options{
		Encoding:        cfg.Encoding,
		Topic:           cfg.Topic,
		TopicFrom:       cfg.TopicFrom,
		KeyFrom:         cfg.KeyFrom,
		HeadersFrom:     cfg.HeadersFrom,
		Headers:         cfg.Headers,
		FlushWhen:       cfg.Batch.FlushWhen,
		MessagePer:      cfg.MessagePer,
		MaxMessageBytes: cfg.Producer.MaxMessageBytes,
	}, set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	spans, err := spanmsg.NewBuilder(spanmsg.Options{
		Encoding:        cfg.Traces.Encoding,
		Topic:           cfg.Traces.Topic,
		TopicFrom:       cfg.Traces.TopicFrom,
		KeyFrom:         cfg.Traces.KeyFrom,
		HeadersFrom:     cfg.Traces.HeadersFrom,
		Headers:         cfg.Traces.Headers,
		FlushWhen:       cfg.Traces.FlushWhen,
		MaxMessageBytes: cfg.Producer.MaxMessageBytes,
	}, set.TelemetrySettings)
	if err != nil {
		return nil, fmt.Errorf("traces: %w", err)
	}
	metrics, err := metricmsg.NewBuilder(metricmsg.Options{
		Encoding:        cfg.Metrics.Encoding,
		Topic:           cfg.Metrics.Topic,
		TopicFrom:       cfg.Metrics.TopicFrom,
		KeyFrom:         cfg.Metrics.KeyFrom,
		HeadersFrom:     cfg.Metrics.HeadersFrom,
		Headers:         cfg.Metrics.Headers,
		MaxMessageBytes: cfg.Producer.MaxMessageBytes,
	})
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	e := &kafkaBatcherExporter{
		cfg:     cfg,
		set:     set,
		logger:  set.Logger,
		clock:   batcher.SystemClock(),
		logs:    logs,
		spans:   spans,
		metrics: metrics,
		health:  health{logger: set.Logger},
	}
	e.partitioner, err = partitioner.New(cfg.Partitioning.Strategy, time.Now().UnixNano(), e.queuedBatches)
	if err != nil {
		return nil, fmt.Errorf("partitioning.strategy: %w", err)
	}
	return e, nil
}

// queuedBatches is the partitioner's Load: a keyless sticky choice moves
// to the partitions with the fewest batches waiting or in flight.
func (e *kafkaBatcherExporter) queuedBatches(topic string, partition int32) int {
	if e.disp == nil { // not started
		return 0
	}
	return e.disp.Queued(message.TopicPartition{Topic: topic, Partition: partition})
}

// start opens, in order, what the exporter runs on: telemetry, the temp
// storage and partition cache, the producer, the accumulators and the
// dispatcher; it then registers the gauges observed from them and looks
// the default topics up in the background. On an error it shuts down what
// it opened.
func (e *kafkaBatcherExporter) start(ctx context.Context, host component.Host) (err error) {
	defer func() {
		if err != nil {
			_ = e.shutdown(ctx)
		}
	}()
	e.health.start(host)
	if e.tel, err = newTelemetry(e.set.TelemetrySettings, e.cfg.TopicAliases); err != nil {
		return err
	}
	dir, err := e.cfg.storageDir(e.set.ID)
	if err != nil {
		return err
	}
	e.deadLetters.dir = dir
	if err := e.openStorage(dir); err != nil {
		return err
	}
	if err := e.startProducer(ctx, host); err != nil {
		return err
	}
	if e.pool, err = batcher.NewPool(e.cfg.batcherConfig(), e.clock, poolSink{e}); err != nil {
		return err
	}
	e.disp = delivery.New(e.cfg.deliveryConfig(), e.prod, e.storage(), deliveryObserver{e}, clockAdapter{e.clock}, e.logger)
	if err := e.registerGauges(); err != nil {
		return err
	}
	e.lookUpDefaultTopics()
	return nil
}

// openStorage opens the temp storage in dir when it is enabled, and the
// cache of partition counts: kept beside the storage, else in memory only.
func (e *kafkaBatcherExporter) openStorage(dir string) (err error) {
	cachePath := ""
	if e.cfg.TempStorage.Enabled {
		e.store, err = tempstorage.OpenStore(dir, tempstorage.Options{
			MaxBytes:     int64(e.cfg.TempStorage.MaxBytes),
			SegmentBytes: int64(e.cfg.TempStorage.SegmentBytes),
			Fsync:        e.cfg.TempStorage.Fsync,
			Logger:       e.logger,
			FS:           e.storageFS,
		})
		if err != nil {
			return err // tempstorage's errors say "temp storage"
		}
		e.tel.corruptTotal(e.store.Corrupt())
		if n := e.store.Len(); n > 0 {
			e.logger.Info("temp storage holds batches from an earlier run; replaying them",
				zap.String("directory", dir), zap.Int("batches", n), zap.Int64("bytes", e.store.Bytes()))
		}
		cachePath = producer.PartitionCachePath(dir)
	}
	if e.partitionCache, err = producer.LoadPartitionCache(cachePath); err != nil {
		e.logger.Warn("partition cache unreadable; starting without it", zap.Error(err))
	}
	return nil
}

// storage is the dispatcher's Storage: the temp storage, or nil when it
// is disabled (a nil *tempstorage.Store would not be a nil Storage).
func (e *kafkaBatcherExporter) storage() delivery.Storage {
	if e.store == nil {
		return nil
	}
	return e.store
}

// startProducer connects the producer to the brokers; the partition counts
// it learns go to the partition cache. host has the extension that may
// give OAUTHBEARER tokens.
func (e *kafkaBatcherExporter) startProducer(ctx context.Context, host component.Host) error {
	tlsCfg, err := e.cfg.tlsConfig(ctx)
	if err != nil {
		return err
	}
	pc := e.cfg.producerConfig(tlsCfg)
	if pc.SASL.TokenSource, err = e.cfg.Auth.tokenSource(ctx, host, e.cfg.Producer.Timeout); err != nil {
		return err
	}
	if e.prod, err = producer.New(pc, e.logger); err != nil {
		return err
	}
	e.prod.OnPartitionsChanged(func(topic string, n int32) {
		if err := e.partitionCache.Set(topic, n); err != nil {
			e.logger.Warn("partition cache not written", zap.Error(err))
		}
	})
	e.prod.Start()
	return nil
}

// lookUpDefaultTopics learns the default topics' partitions in the
// background, without holding start up; shutdown stops it and waits.
func (e *kafkaBatcherExporter) lookUpDefaultTopics() {
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.Producer.Timeout)
	e.stopLookup = cancel
	e.lookup.Add(1)
	go func() {
		defer e.lookup.Done()
		defer cancel()
		if err := e.prod.Refresh(ctx, e.defaultTopics()...); err != nil {
			if errors.Is(err, context.Canceled) {
				return // shutdown
			}
			e.logger.Warn("kafka unreachable at start; batches go to the temp storage until it is back",
				zap.Strings("brokers", e.cfg.Brokers), zap.Error(err))
			e.health.setKafka(err)
		}
	}()
}

// defaultTopics are the default topics of the signals whose pipelines use
// the exporter (the logs' topic when none is marked, as in unit tests).
func (e *kafkaBatcherExporter) defaultTopics() []string {
	var topics []string
	if e.used[message.SignalTraces] {
		topics = append(topics, e.cfg.Traces.Topic)
	}
	if e.used[message.SignalMetrics] {
		topics = append(topics, e.cfg.Metrics.Topic)
	}
	if e.used[message.SignalLogs] || len(topics) == 0 {
		topics = append([]string{e.cfg.Topic}, topics...)
	}
	return topics
}

// shutdown sends what is pending, waits for in-flight batches within ctx,
// spills what Kafka does not take, then closes everything start opened.
func (e *kafkaBatcherExporter) shutdown(ctx context.Context) error {
	e.health.stop()
	if e.stopLookup != nil {
		e.stopLookup()
		e.lookup.Wait()
	}
	var errs []error
	if e.pool != nil {
		for _, b := range e.pool.Shutdown(ctx) {
			poolSink{e}.Ready(b)
		}
	}
	if e.disp != nil {
		errs = append(errs, e.disp.Close(ctx))
	}
	if e.prod != nil {
		errs = append(errs, e.prod.Close())
	}
	if e.store != nil {
		errs = append(errs, e.store.Close())
	}
	errs = append(errs, e.deadLetters.close())
	if e.tel != nil {
		e.tel.tb.Shutdown()
	}
	return errors.Join(errs...)
}

// consume builds the messages of one call with build, into a pooled slice,
// and accepts them. Every signal's ConsumeX comes through here.
func (e *kafkaBatcherExporter) consume(ctx context.Context, what string, build func(dst []message.Message) ([]message.Message, error)) error {
	if err := e.health.diskFull(); err != nil {
		// Accepted now, the records could not be saved if Kafka does not
		// take them: the pipeline keeps them and retries.
		return fmt.Errorf("kafkabatcher: records not accepted: %w", err)
	}
	bufp, _ := e.msgBufs.Get().(*[]message.Message)
	if bufp == nil {
		bufp = new([]message.Message)
	}
	defer func() {
		clear(*bufp) // drop references to record data
		*bufp = (*bufp)[:0]
		e.msgBufs.Put(bufp)
	}()
	msgs, err := build((*bufp)[:0])
	*bufp = msgs
	if err != nil {
		return consumererror.NewPermanent(fmt.Errorf("encode %s: %w", what, err))
	}
	return e.accept(ctx, msgs)
}

// accept places msgs on partitions and adds them to the accumulators; under
// sync delivery it returns once they are acknowledged or on disk.
func (e *kafkaBatcherExporter) accept(ctx context.Context, msgs []message.Message) error {
	var tracker *message.Tracker
	if e.cfg.Delivery == DeliverySync {
		tracker = message.NewTracker(len(msgs))
	}
	kept := msgs[:0]
	var missing map[string]error // topics Kafka says do not exist, asked once per call
	var topic string             // the previous record's topic, of n partitions (0: ask)
	var n int32
	for i := range msgs {
		m := &msgs[i]
		var err error
		if n == 0 || m.Topic != topic {
			topic = m.Topic
			n, err = e.partitions(ctx, topic, missing)
		}
		if errors.Is(err, producer.ErrUnknownTopic) {
			// One record naming a topic that does not exist must not hold
			// up the rest of the request, nor be retried forever.
			if missing == nil {
				missing = map[string]error{}
			}
			missing[m.Topic] = err
			e.deadLetter(*m, message.RejectUnknownTopic, err)
			tracker.Done(1, nil)
			continue
		}
		if err != nil {
			return err
		}
		m.Partition = e.partitioner.Partition(m.Topic, m.Key, n)
		m.Tracker = tracker
		if len(kept) == i { // nothing dropped so far: m is in place
			kept = kept[:i+1]
		} else {
			kept = append(kept, *m)
		}
	}
	msgs = kept
	// Wait for memory at most producer.timeout: a caller without a deadline
	// gets a retryable error rather than hanging.
	addCtx, cancel := context.WithTimeout(ctx, e.cfg.Producer.Timeout)
	defer cancel()
	if err := e.pool.Add(addCtx, msgs); err != nil {
		return fmt.Errorf("kafkabatcher: records not accepted: %w", err)
	}
	return tracker.Wait(ctx)
}

// partitions returns topic's partition count: from Kafka's metadata, else
// from the cache of an earlier run, else asked of Kafka now.
func (e *kafkaBatcherExporter) partitions(ctx context.Context, topic string, missing map[string]error) (int32, error) {
	if n, ok := e.prod.Partitions(topic); ok {
		return n, nil
	}
	if err := missing[topic]; err != nil {
		return 0, err
	}
	if n, ok := e.partitionCache.Get(topic); ok {
		return n, nil
	}
	ctx, cancel := context.WithTimeout(ctx, metadataWait)
	defer cancel()
	err := e.prod.Refresh(ctx, topic)
	if n, ok := e.prod.Partitions(topic); ok {
		return n, nil
	}
	if err == nil {
		err = errors.New("topic not in metadata")
	}
	if errors.Is(err, producer.ErrAuthorization) || errors.Is(err, producer.ErrAuthentication) {
		// Kafka answered: it refused the login or hides the topic.
		return 0, fmt.Errorf("partition count of topic %q unknown: %w", topic, err)
	}
	return 0, fmt.Errorf("partition count of topic %q unknown (Kafka has not answered since this exporter first started): %w", topic, err)
}
