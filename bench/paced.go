package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/collector/pdata/plog"
)

// The everyday load: the paced scenarios send at a fixed rate (-rates,
// records/s) instead of as fast as a system takes records, with each
// system's defaults, beside a floor system that receives the same calls
// and drops them. What an exporter adds to a collector is its CPU per
// record less the floor's.
//
// Every call is received as a collector receives it: the request's OTLP
// protobuf bytes are copied (a fresh request body) and decoded
// (plog.ProtoUnmarshaler) before ConsumeLogs, in every system including the
// floor, so the floor is the receiving path and the difference is the
// exporter's. Before the copy is decoded, the first stampLen bytes of every
// record's body are overwritten with a stamp: stampPrefix and the call's
// wall-clock time in 16 hex digits. The driver reads the topic back during
// the run (readBackLatency) and takes, per record, the time from the stamp
// to the moment a consumer fetched it.

// sysFloor receives the paced calls like the exporters and drops them: the
// collector's nop exporter (exportertest.NewNopFactory).
const sysFloor = "floor"

// stampPrefix starts a body stamp; the record bodies' alphabet has no '@'.
const stampPrefix = "@kb"

// stampLen is the length of a stamp: the prefix and 16 hex digits.
const stampLen = len(stampPrefix) + 16

// pacedLatencyOf is the "latency of" text of the read-back figures.
const pacedLatencyOf = "record, call to read back by a consumer (≥ call to ack)"

// stampedRequests are a run's requests as OTLP protobuf bytes, with the
// offsets of every record's body in them.
type stampedRequests struct {
	raw    [][]byte
	bodies [][]int
}

// newStampedRequests marshals reqs and finds each record's body in the
// bytes (every body is distinct and at least stampLen long).
func newStampedRequests(reqs []plog.Logs) (*stampedRequests, error) {
	var m plog.ProtoMarshaler
	s := &stampedRequests{raw: make([][]byte, len(reqs)), bodies: make([][]int, len(reqs))}
	for i, ld := range reqs {
		b, err := m.MarshalLogs(ld)
		if err != nil {
			return nil, err
		}
		s.raw[i] = b
		rls := ld.ResourceLogs()
		for r := range rls.Len() {
			sls := rls.At(r).ScopeLogs()
			for k := range sls.Len() {
				lrs := sls.At(k).LogRecords()
				for j := range lrs.Len() {
					body := lrs.At(j).Body().Str()
					at := bytes.Index(b, []byte(body))
					if len(body) < stampLen || at < 0 {
						return nil, fmt.Errorf("request %d record %d: body not found in its protobuf", i, j)
					}
					s.bodies[i] = append(s.bodies[i], at)
				}
			}
		}
	}
	return s, nil
}

// receive returns request i as a receiver hands it over: decoded from a
// fresh copy of its bytes, every body stamped with at unless at is zero.
func (s *stampedRequests) receive(i int, at time.Time) (plog.Logs, error) {
	i %= len(s.raw)
	b := bytes.Clone(s.raw[i])
	if !at.IsZero() {
		var st [stampLen]byte
		copy(st[:], stampPrefix)
		putHex(st[len(stampPrefix):], uint64(at.UnixNano()))
		for _, off := range s.bodies[i] {
			copy(b[off:], st[:])
		}
	}
	var u plog.ProtoUnmarshaler
	return u.UnmarshalLogs(b)
}

// putHex writes v as 16 lowercase hex digits into dst.
func putHex(dst []byte, v uint64) {
	const digits = "0123456789abcdef"
	for i := 15; i >= 0; i-- {
		dst[i] = digits[v&0xf]
		v >>= 4
	}
}

// stamps calls fn with the time of every stamp in a Kafka value: one per
// record, whatever the encoding (raw values are the body, contrib's
// JSON-quoted; otlp_proto values hold the body bytes verbatim).
func stamps(v []byte, fn func(time.Time)) {
	for {
		i := bytes.Index(v, []byte(stampPrefix))
		if i < 0 || len(v) < i+stampLen {
			return
		}
		var n [8]byte
		if _, err := hex.Decode(n[:], v[i+len(stampPrefix):i+stampLen]); err == nil {
			var ns int64
			for _, c := range n {
				ns = ns<<8 | int64(c)
			}
			fn(time.Unix(0, ns))
			v = v[i+stampLen:]
			continue
		}
		v = v[i+1:]
	}
}

// readBack consumes a paced run's topic from the start while the run goes
// on; stop returns the latency of every stamped record read, from its stamp
// to the fetch that returned it.
type readBack struct {
	cl       *kgo.Client
	cancel   context.CancelFunc
	done     chan struct{}
	mu       sync.Mutex
	lat      []time.Duration
	err      error
	sentinel int // sentinel records read
}

// readBackSentinel is the value of the records startReadBack writes to
// every partition before the run: once it has read them all, the consumer
// fetches from every partition, so the run's first records do not wait for
// its metadata (which, for a topic just created, can take a second).
const readBackSentinel = "bench-readback-sentinel"

// startReadBack starts reading topic and returns once it has read a
// sentinel record from each of its partitions.
func startReadBack(ctx context.Context, brokers []string, topic string, partitions int32) (*readBack, error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.ClientID("bench-readback"),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond),
		kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	rb := &readBack{cl: cl, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(rb.done)
		for {
			fs := cl.PollFetches(ctx)
			now := time.Now()
			if ctx.Err() != nil {
				return
			}
			var lat []time.Duration
			sentinels := 0
			fs.EachRecord(func(r *kgo.Record) {
				if string(r.Value) == readBackSentinel {
					sentinels++
					return
				}
				stamps(r.Value, func(at time.Time) { lat = append(lat, now.Sub(at)) })
			})
			rb.mu.Lock()
			rb.sentinel += sentinels
			rb.lat = append(rb.lat, lat...)
			fs.EachError(func(_ string, _ int32, err error) {
				if rb.err == nil {
					rb.err = err
				}
			})
			rb.mu.Unlock()
		}
	}()
	for p := range partitions {
		r := &kgo.Record{Partition: p, Value: []byte(readBackSentinel)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			rb.stop(0, 0)
			return nil, fmt.Errorf("read back: sentinel: %w", err)
		}
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		rb.mu.Lock()
		n := rb.sentinel
		rb.mu.Unlock()
		if n >= int(partitions) {
			return rb, nil
		}
		if time.Now().After(deadline) {
			rb.stop(0, 0)
			return nil, fmt.Errorf("read back: %d of %d sentinel records read in 30s", n, partitions)
		}
	}
}

func (rb *readBack) count() int {
	rb.mu.Lock()
	defer rb.mu.Unlock()
	return len(rb.lat)
}

// stop waits up to wait for want stamped records, then stops reading.
func (rb *readBack) stop(want int, wait time.Duration) ([]time.Duration, error) {
	deadline := time.Now().Add(wait)
	for rb.count() < want && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	rb.cancel()
	<-rb.done
	rb.cl.Close()
	rb.mu.Lock()
	defer rb.mu.Unlock()
	return rb.lat, rb.err
}

// pacedRecords is the number of records a paced run sends: rate × seconds,
// a multiple of perCall.
func pacedRecords(rate int, seconds float64, perCall int) int {
	n := int(float64(rate)*seconds) / perCall * perCall
	return max(n, perCall)
}
