package main

import (
	"strings"
	"testing"
)

// A report of two runs shows each run's ratio in every target cell, run A
// first, and "—" where a run has no figure.
func TestTargetMatrixShowsEveryRun(t *testing.T) {
	res := func(system, enc string, recordsPerSec, cpuMicros float64) runResult {
		const n = 100_000
		return runResult{
			Spec:      runSpec{System: system, Shape: "200B", Encoding: enc, BrokerName: "devbroker", Partitions: partitions},
			Records:   n,
			ElapsedNs: int64(n / recordsPerSec * 1e9),
			CPUNs:     int64(cpuMicros * 1e3 * n),
		}
	}
	a := report{results: []runResult{
		res(sysOurs, "raw", 300_000, 0.4), res(sysContrib, "raw", 100_000, 1.0),
		res(sysOurs, "otlp_proto", 100_000, 1.0), res(sysContrib, "otlp_proto", 100_000, 1.0),
	}}
	b := report{results: []runResult{
		res(sysOurs, "raw", 150_000, 0.6), res(sysContrib, "raw", 100_000, 1.0),
	}}
	a.others = []report{b}
	m := a.targetMatrix()
	for _, want := range []string{
		"each cell is run A / run B",
		"| records/s ≥ 2× contrib | raw | 3.00 ✓ / 1.50 ✗ |",
		"| CPU/record ≤ 0.5× contrib | raw | 0.40 ✓ / 0.60 ✗ |",
		"| saturation, one record per message: CPU/record ≤ 1× contrib (at its 100 records per message) | otlp_proto | 1.00 ✓ / — |",
	} {
		if !strings.Contains(m, want) {
			t.Errorf("matrix lacks %q:\n%s", want, m)
		}
	}
	// CPU ≤ 0.5× contrib is issue 14's raw target; otlp_proto has issue 22's 1×.
	if strings.Contains(m, "| CPU/record ≤ 0.5× contrib | otlp_proto |") {
		t.Errorf("the raw-only target is evaluated for otlp_proto:\n%s", m)
	}
}

func TestRunFile(t *testing.T) {
	for _, c := range []struct {
		path string
		run  int
		want string
	}{
		{"results.json", 0, "results.json"},
		{"results.json", 1, "results-run-b.json"},
		{"/tmp/x/r.json", 2, "/tmp/x/r-run-c.json"},
	} {
		if got := runFile(c.path, c.run); got != c.want {
			t.Errorf("runFile(%q, %d) = %q, want %q", c.path, c.run, got, c.want)
		}
	}
}
