package main

import (
	"context"
	"fmt"
	"math"
	"slices"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// deliveryLatencyMetric is the exporter's histogram of the time from the
// acceptance of a batch's oldest record to Kafka's acknowledgement.
const deliveryLatencyMetric = "otelcol_kafkabatcher_delivery_latency"

// histLatencyOf is the "latency of" text of figures read from it.
const histLatencyOf = "oldest record of a batch, accept to ack (histogram)"

// latencyHist is the delivery latency histogram summed over its attribute
// sets (topic, partition): counts[i] is the number of batches with a
// latency in (bounds[i-1], bounds[i]] seconds, counts[len(bounds)] those
// above the last bound.
type latencyHist struct {
	bounds []float64
	counts []uint64
}

// readLatencyHist collects the exporter's metrics and returns the delivery
// latency histogram; empty when no batch was recorded yet.
func readLatencyHist(ctx context.Context, r *sdkmetric.ManualReader) (latencyHist, error) {
	var rm metricdata.ResourceMetrics
	if err := r.Collect(ctx, &rm); err != nil {
		return latencyHist{}, err
	}
	var h latencyHist
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != deliveryLatencyMetric {
				continue
			}
			d, ok := m.Data.(metricdata.Histogram[float64])
			if !ok {
				return latencyHist{}, fmt.Errorf("%s is %T", m.Name, m.Data)
			}
			for _, p := range d.DataPoints {
				if h.counts == nil {
					h.bounds = slices.Clone(p.Bounds)
					h.counts = make([]uint64, len(p.BucketCounts))
				}
				if !slices.Equal(h.bounds, p.Bounds) || len(p.BucketCounts) != len(h.counts) {
					return latencyHist{}, fmt.Errorf("%s: data points with different buckets", m.Name)
				}
				for i, c := range p.BucketCounts {
					h.counts[i] += c
				}
			}
		}
	}
	return h, nil
}

// since returns h less an earlier reading of the same cumulative histogram.
func (h latencyHist) since(earlier latencyHist) latencyHist {
	out := latencyHist{bounds: h.bounds, counts: slices.Clone(h.counts)}
	if len(earlier.counts) == len(out.counts) {
		for i, c := range earlier.counts {
			out.counts[i] -= c
		}
	}
	return out
}

func (h latencyHist) total() uint64 {
	var n uint64
	for _, c := range h.counts {
		n += c
	}
	return n
}

// quantile returns the q-quantile in seconds as Prometheus'
// histogram_quantile does: find the bucket holding rank q×total and
// interpolate linearly inside it (from 0 for the first bucket); the last
// finite bound when the rank falls above it. NaN when h is empty.
func (h latencyHist) quantile(q float64) float64 {
	total := h.total()
	if total == 0 || len(h.bounds) == 0 {
		return math.NaN()
	}
	rank := q * float64(total)
	var below uint64
	for i, c := range h.counts {
		if float64(below+c) < rank || c == 0 {
			below += c
			continue
		}
		if i == len(h.bounds) {
			return h.bounds[len(h.bounds)-1]
		}
		lower := 0.0
		if i > 0 {
			lower = h.bounds[i-1]
		} else if h.bounds[0] <= 0 {
			return h.bounds[0]
		}
		return lower + (h.bounds[i]-lower)*(rank-float64(below))/float64(c)
	}
	return h.bounds[len(h.bounds)-1]
}
