package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/kafkaexporter"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/plog"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	kafkabatcher "github.com/kafkabatcher/kafkabatcherexporter"
)

// System names, as used in flags and tables.
const (
	sysOurs        = "kafkabatcher"
	sysOursSync    = "kafkabatcher-sync"
	sysContrib     = "contrib"
	sysContribSync = "contrib-sync"
	sysSarama      = "sarama"
	sysFranz       = "franz-go"
	sysJava        = "java"
	// sysJavaTuned is the Java client tuned for throughput (javaTuned).
	sysJavaTuned = "java-tuned"
	// sysContribPerRecord is contrib fed one record per ConsumeLogs call,
	// so that its otlp_proto messages hold one record each, as ours do.
	sysContribPerRecord = "contrib-per-record"
	// sysOursDefaults is this exporter with nothing but brokers, topic,
	// encoding and the scratch directory configured: the defaults an
	// operator sizes a memory limit by.
	sysOursDefaults = "kafkabatcher-defaults"
	// sysOursPerKey is this exporter with message_per: key (otlp_proto
	// only): the records of a call that share resource, scope and key (none
	// here) go in one message, as many per message as contrib's. In the
	// throughput scenarios it has kafkabatcher's settings, in the paced ones
	// the defaults.
	sysOursPerKey = "kafkabatcher-per-key"
)

var allSystems = []string{sysOurs, sysOursSync, sysOursDefaults, sysOursPerKey, sysContrib, sysContribSync, sysContribPerRecord, sysSarama, sysFranz, sysJava, sysJavaTuned, sysFloor}

// keyAttribute is the record attribute that holds a keyed run's key.
const keyAttribute = "client.id"

// oursSet holds extra settings of this exporter's systems (the -ours-set
// flag), dotted key paths to values, e.g. producer.max_in_flight: 5 or
// max_pending_bytes: 16777216.
var oursSet = map[string]any{}

// applyOursSet sets every oursSet path in c.
func applyOursSet(c map[string]any) map[string]any {
	for path, v := range oursSet {
		keys := strings.Split(path, ".")
		m := c
		for _, k := range keys[:len(keys)-1] {
			sub, ok := m[k].(map[string]any)
			if !ok {
				sub = map[string]any{}
				m[k] = sub
			}
			m = sub
		}
		m[keys[len(keys)-1]] = v
	}
	return c
}

// settleAfterWarmup lets an asynchronous system finish its warm-up round
// before the window opens.
const settleAfterWarmup = 300 * time.Millisecond

// exporterConfig is the collector configuration of an exporter system, as
// it would be written in YAML; BENCHMARKS.md prints it.
func exporterConfig(kind string, spec runSpec) map[string]any {
	brokers := make([]any, len(spec.Brokers))
	for i, b := range spec.Brokers {
		brokers[i] = b
	}
	switch kind {
	case sysOursPerKey:
		base := sysOurs
		if spec.Rate > 0 {
			base = sysOursDefaults
		}
		c := exporterConfig(base, spec)
		c["message_per"] = "key"
		return c
	case sysOursDefaults:
		c := map[string]any{
			"brokers":      brokers,
			"topic":        spec.Topic,
			"encoding":     spec.Encoding,
			"temp_storage": map[string]any{"directory": spec.Dir},
		}
		if spec.Keys > 0 {
			c["key_from"] = []any{"attributes." + keyAttribute}
		}
		return applyOursSet(c)
	case sysOurs, sysOursSync:
		delivery, maxWait, size := "async", "100ms", 500
		if kind == sysOursSync {
			// A sync call's partitions are cut once it has added its
			// records (flush reason call): neither batch.size nor
			// max_wait is waited for, so the async settings stand.
			delivery, size = "sync", spec.SyncBatchSize
		}
		prod := map[string]any{"required_acks": "all", "compression": "none"}
		c := map[string]any{
			"brokers":  brokers,
			"topic":    spec.Topic,
			"encoding": spec.Encoding,
			"batch":    map[string]any{"size": size, "max_wait": maxWait},
			"producer": prod,
			"temp_storage": map[string]any{
				"directory": spec.Dir,
			},
			"delivery": delivery,
		}
		if spec.Keys > 0 {
			c["key_from"] = []any{"attributes." + keyAttribute}
		}
		return applyOursSet(c)
	case sysContrib, sysContribSync, sysContribPerRecord:
		queue := map[string]any{"enabled": true, "block_on_overflow": true}
		if kind == sysContribSync {
			queue = map[string]any{"enabled": false}
		}
		return map[string]any{
			"brokers":       brokers,
			"logs":          map[string]any{"topic": spec.Topic, "encoding": spec.Encoding},
			"producer":      map[string]any{"required_acks": "all", "compression": "none"},
			"sending_queue": queue,
		}
	}
	return nil
}

// exporterSystem drives an exporter through its factory: spec.Callers
// goroutines call ConsumeLogs with spec.PerCall records each until
// spec.Records are sent, then Shutdown (which, for the asynchronous ones,
// waits until Kafka has acknowledged or the records are on disk).
type exporterSystem struct {
	kind   string
	exp    exporter.Logs
	down   bool
	reader *sdkmetric.ManualReader // this exporter's metrics; nil for contrib
	// maxPending is max_pending_bytes (ours).
	maxPending int64
}

func (s *exporterSystem) prepare(ctx context.Context, spec runSpec) (func(context.Context) (sendStats, error), error) {
	var f exporter.Factory
	ours := s.kind == sysOurs || s.kind == sysOursSync || s.kind == sysOursDefaults || s.kind == sysOursPerKey
	switch {
	case ours:
		f = kafkabatcher.NewFactory()
	case s.kind == sysFloor:
		f = exportertest.NewNopFactory()
	default:
		f = kafkaexporter.NewFactory()
	}
	cfg := f.CreateDefaultConfig()
	if c := exporterConfig(s.kind, spec); c != nil {
		if err := confmap.NewFromStringMap(c).Unmarshal(cfg); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
	}
	if v, ok := cfg.(interface{ Validate() error }); ok {
		if err := v.Validate(); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
	}
	set := exportertest.NewNopSettings(f.Type())
	if ours {
		// The exporter's own metrics say how it batched.
		s.reader = sdkmetric.NewManualReader()
		set.TelemetrySettings.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(s.reader))
	}
	exp, err := f.CreateLogs(ctx, set, cfg)
	if err != nil {
		return nil, err
	}
	if err := exp.Start(ctx, componenttest.NewNopHost()); err != nil {
		return nil, err
	}
	s.exp = exp
	sh, err := shapeByName(spec.Shape)
	if err != nil {
		return nil, err
	}
	reqs := makeRequests(sh, spec.PerCall, spec.Keys)
	perCall := spec.PerCall
	if s.kind == sysContribPerRecord {
		reqs, perCall = splitRequests(reqs), 1
	}
	if ours {
		if c, ok := cfg.(*kafkabatcher.Config); ok {
			s.maxPending = int64(c.MaxPendingBytes)
		}
	}
	var received *stampedRequests
	if spec.Rate > 0 {
		if received, err = newStampedRequests(reqs); err != nil {
			return nil, err
		}
	}
	// Warm-up: connections and metadata, outside the window (not stamped,
	// so the read-back leaves it out).
	if err := exp.ConsumeLogs(ctx, reqs[0]); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	time.Sleep(settleAfterWarmup)
	// The warm-up's batches are in the delivery latency histogram already:
	// the window's figures are the difference from this reading.
	var warm latencyHist
	if s.reader != nil {
		if warm, err = readLatencyHist(ctx, s.reader); err != nil {
			return nil, fmt.Errorf("delivery latency: %w", err)
		}
	}

	sync := s.kind == sysOursSync || s.kind == sysContribSync
	return func(ctx context.Context) (sendStats, error) {
		callSpec := spec
		callSpec.PerCall = perCall
		call := func(i int) error { return exp.ConsumeLogs(ctx, reqs[i%len(reqs)]) }
		if received != nil {
			// The everyday load: every call decodes a fresh copy of its
			// request, as a receiver does, stamped with the call's time.
			call = func(i int) error {
				ld, err := received.receive(i, time.Now())
				if err != nil {
					return err
				}
				return exp.ConsumeLogs(ctx, ld)
			}
		}
		if spec.Saturation {
			// Each call hands over a request of its own, as a receiver
			// hands over what it decoded: an exporter that queues
			// references to requests holds their memory, as it would in a
			// collector, instead of 32 shared ones. Both systems of the
			// scenario pay the same copy.
			call = func(i int) error {
				ld := plog.NewLogs()
				reqs[i%len(reqs)].CopyTo(ld)
				return exp.ConsumeLogs(ctx, ld)
			}
		}
		st := driveCalls(callSpec, call)
		st.maxPendingBytes = s.maxPending
		if spec.HeapProfile != "" {
			if err := writeHeapProfile(spec.HeapProfile); err != nil {
				return st, err
			}
		}
		if sync {
			st.latencyOf = "ConsumeLogs call"
		} else {
			st.latencies = nil // ConsumeLogs returns before the acknowledgement
		}
		s.down = true
		if err := exp.Shutdown(ctx); err != nil {
			return st, fmt.Errorf("shutdown: %w", err)
		}
		if s.reader != nil {
			st.detail = batchingDetail(ctx, s.reader)
			h, err := readLatencyHist(ctx, s.reader)
			if err != nil {
				return st, fmt.Errorf("delivery latency: %w", err)
			}
			if h = h.since(warm); h.total() > 0 {
				st.hist = &h
			}
		}
		return st, nil
	}, nil
}

func (s *exporterSystem) close(ctx context.Context) error {
	if s.exp == nil || s.down {
		return nil
	}
	return s.exp.Shutdown(ctx)
}

// driveCalls runs spec.Records/spec.PerCall calls of call on spec.Callers
// goroutines and times each. With spec.Rate set the calls are paced: call i
// is due spec.PerCall/spec.Rate seconds after call i-1, and a goroutine
// waits for its next call's time (one timer per call, not per record); a
// goroutine behind schedule calls at once, so the achieved rate (sendStats
// offered) shows whether the system kept up.
func driveCalls(spec runSpec, call func(i int) error) sendStats {
	calls := spec.Records / spec.PerCall
	lat := make([]time.Duration, calls)
	var next, errs, lastEnd atomic.Int64
	var firstErr atomic.Pointer[error]
	var interval time.Duration
	if spec.Rate > 0 {
		interval = time.Duration(float64(time.Second) * float64(spec.PerCall) / float64(spec.Rate))
	}
	var wg sync.WaitGroup
	start := time.Now()
	for range spec.Callers {
		wg.Go(func() {
			var timer *time.Timer
			for {
				i := int(next.Add(1) - 1)
				if i >= calls {
					return
				}
				if interval > 0 {
					if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
						if timer == nil {
							timer = time.NewTimer(d)
						} else {
							timer.Reset(d)
						}
						<-timer.C
					}
				}
				t0 := time.Now()
				err := call(i)
				lat[i] = time.Since(t0)
				end := int64(time.Since(start))
				for {
					if old := lastEnd.Load(); old >= end || lastEnd.CompareAndSwap(old, end) {
						break
					}
				}
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, &err)
				}
			}
		})
	}
	wg.Wait()
	st := sendStats{errors: int(errs.Load()) * spec.PerCall, latencies: lat, offered: time.Duration(lastEnd.Load())}
	if p := firstErr.Load(); p != nil {
		st.firstError = *p
	}
	return st
}

// saramaSystem feeds pre-encoded values to a sarama AsyncProducer as fast
// as it takes them: spec.Callers goroutines write to Input, one goroutine
// reads Successes and Errors. Latency is per message, Input to Successes.
type saramaSystem struct {
	p sarama.AsyncProducer
}

func saramaConfig() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.ClientID = "bench-sarama"
	cfg.Version = sarama.V2_8_0_0
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Compression = sarama.CompressionNone
	cfg.Producer.MaxMessageBytes = 1_000_000
	cfg.Producer.Return.Successes = true
	cfg.Producer.Return.Errors = true
	return cfg
}

func (s *saramaSystem) prepare(ctx context.Context, spec runSpec) (func(context.Context) (sendStats, error), error) {
	vals, err := preEncoded(spec)
	if err != nil {
		return nil, err
	}
	p, err := sarama.NewAsyncProducer(spec.Brokers, saramaConfig())
	if err != nil {
		return nil, err
	}
	s.p = p
	send := func(n int) sendStats {
		st := sendStats{latencyOf: "message, Input to Successes", latencies: make([]time.Duration, 0, n)}
		done := make(chan struct{})
		go func() {
			defer close(done)
			for range n {
				select {
				case m := <-p.Successes():
					st.latencies = append(st.latencies, time.Since(m.Timestamp))
				case e := <-p.Errors():
					st.errors++
					if st.firstError == nil {
						st.firstError = e.Err
					}
				}
			}
		}()
		feed(spec, n, func(call, j int) {
			v := vals[call%len(vals)]
			p.Input() <- &sarama.ProducerMessage{
				Topic:     spec.Topic,
				Value:     sarama.ByteEncoder(v[j%len(v)]),
				Timestamp: time.Now(),
			}
		})
		<-done
		return st
	}
	if st := send(spec.PerCall); st.errors > 0 {
		return nil, fmt.Errorf("warm-up: %w", st.firstError)
	}
	return func(context.Context) (sendStats, error) { return send(spec.Records), nil }, nil
}

func (s *saramaSystem) close(context.Context) error {
	if s.p == nil {
		return nil
	}
	return s.p.Close()
}

// franzSystem feeds pre-encoded values to a franz-go client's asynchronous
// Produce; latency is per record, Produce to its promise.
type franzSystem struct {
	cl *kgo.Client
}

func (s *franzSystem) prepare(ctx context.Context, spec runSpec) (func(context.Context) (sendStats, error), error) {
	vals, err := preEncoded(spec)
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(spec.Brokers...),
		kgo.ClientID("bench-franz"),
		kgo.DefaultProduceTopic(spec.Topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerBatchMaxBytes(1_000_000),
	)
	if err != nil {
		return nil, err
	}
	s.cl = cl
	send := func(ctx context.Context, n int) sendStats {
		st := sendStats{latencyOf: "record, Produce to promise", latencies: make([]time.Duration, n)}
		var idx, errs atomic.Int64
		var mu sync.Mutex
		var wg sync.WaitGroup
		wg.Add(n)
		promise := func(r *kgo.Record, err error) {
			st.latencies[idx.Add(1)-1] = time.Since(r.Timestamp)
			if err != nil {
				errs.Add(1)
				mu.Lock()
				if st.firstError == nil {
					st.firstError = err
				}
				mu.Unlock()
			}
			wg.Done()
		}
		feed(spec, n, func(call, j int) {
			v := vals[call%len(vals)]
			cl.Produce(ctx, &kgo.Record{Value: v[j%len(v)], Timestamp: time.Now()}, promise)
		})
		wg.Wait()
		st.errors = int(errs.Load())
		return st
	}
	if st := send(ctx, spec.PerCall); st.errors > 0 {
		return nil, fmt.Errorf("warm-up: %w", st.firstError)
	}
	return func(ctx context.Context) (sendStats, error) { return send(ctx, spec.Records), nil }, nil
}

func (s *franzSystem) close(context.Context) error {
	if s.cl != nil {
		s.cl.Close()
	}
	return nil
}

// feed calls put for n records from spec.Callers goroutines, in rounds of
// spec.PerCall records (call is the round, j the record in it).
func feed(spec runSpec, n int, put func(call, j int)) {
	calls := (n + spec.PerCall - 1) / spec.PerCall
	var next atomic.Int64
	var wg sync.WaitGroup
	for range spec.Callers {
		wg.Go(func() {
			for {
				c := int(next.Add(1) - 1)
				if c >= calls {
					return
				}
				for j := range min(spec.PerCall, n-c*spec.PerCall) {
					put(c, j)
				}
			}
		})
	}
	wg.Wait()
}

// preEncoded builds the run's records and encodes them as this exporter
// does, outside the window.
func preEncoded(spec runSpec) ([][][]byte, error) {
	sh, err := shapeByName(spec.Shape)
	if err != nil {
		return nil, err
	}
	return encodeValues(makeRequests(sh, spec.PerCall, spec.Keys), spec.Encoding)
}

// batchingDetail summarises the exporter's own metrics: batches, records
// per batch, produce time, flush reasons, spilled records.
func batchingDetail(ctx context.Context, r *sdkmetric.ManualReader) string {
	var rm metricdata.ResourceMetrics
	if err := r.Collect(ctx, &rm); err != nil {
		return "metrics: " + err.Error()
	}
	var batches uint64
	var records, produceSum float64
	flushes := map[string]int64{}
	var spilled int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Histogram[int64]:
				for _, p := range d.DataPoints {
					if m.Name == "otelcol_kafkabatcher_batch_records" {
						batches += p.Count
						records += float64(p.Sum)
					}
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					if m.Name == "otelcol_kafkabatcher_produce_duration" {
						produceSum += p.Sum
					}
				}
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					switch m.Name {
					case "otelcol_kafkabatcher_flushes":
						reason, _ := p.Attributes.Value("reason")
						flushes[reason.AsString()] += p.Value
					case "otelcol_kafkabatcher_records_spilled":
						spilled += p.Value
					}
				}
			}
		}
	}
	if batches == 0 {
		return "no batches sent"
	}
	reasons := make([]string, 0, len(flushes))
	for k, v := range flushes {
		reasons = append(reasons, fmt.Sprintf("%s %d", k, v))
	}
	slices.Sort(reasons)
	return fmt.Sprintf("%d batches, %.0f records/batch, produce %.1f ms mean; flushes: %s; spilled %d",
		batches, records/float64(batches), 1000*produceSum/float64(batches), strings.Join(reasons, ", "), spilled)
}

// writeHeapProfile writes a pprof heap profile (in-use and allocated
// space) to path.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	runtime.GC() // the profile's in-use figures are as of the last GC
	return pprof.Lookup("heap").WriteTo(f, 0)
}
