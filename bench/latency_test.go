package main

import (
	"math"
	"testing"
)

func TestLatencyHistQuantile(t *testing.T) {
	h := latencyHist{
		bounds: []float64{0.01, 0.05, 0.1},
		// 10 in (0, 0.01], none in (0.01, 0.05], 30 in (0.05, 0.1], 60 above.
		counts: []uint64{10, 0, 30, 60},
	}
	for _, c := range []struct{ q, want float64 }{
		{0.05, 0.005},        // rank 5 of the first bucket's 10, from 0
		{0.10, 0.01},         // the first bucket's upper bound
		{0.25, 0.05 + 0.025}, // rank 25: 15 of the 30 in (0.05, 0.1]
		{0.40, 0.1},
		{0.99, 0.1}, // above the last bound: the last bound
	} {
		if got := h.quantile(c.q); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("quantile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	if got := (latencyHist{bounds: h.bounds, counts: make([]uint64, 4)}).quantile(0.5); !math.IsNaN(got) {
		t.Errorf("quantile of an empty histogram = %v, want NaN", got)
	}
	window := h.since(latencyHist{bounds: h.bounds, counts: []uint64{10, 0, 0, 0}})
	if got := window.quantile(0.5); math.Abs(got-0.1) > 1e-12 {
		t.Errorf("window quantile(0.5) = %v, want 0.1 (rank 45: above the last bound)", got)
	}
	if got := window.quantile(0.1); math.Abs(got-(0.05+0.05*9/30)) > 1e-12 {
		t.Errorf("window quantile(0.1) = %v", got)
	}
}
