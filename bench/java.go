package main

import (
	"bufio"
	"context"
	_ "embed"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

//go:embed java/Producer.java
var javaProducer []byte

// javaSystem runs the Apache Kafka Java client (java/Producer.java on the
// realkafka classpath) in a JVM the child starts: it writes the run's
// pre-encoded values to a file, and the JVM reports its own window
// (elapsed, process CPU, per-record latency). Peak RSS is the JVM's.
type javaSystem struct {
	// settings override the producer's properties (key=value,...); empty
	// for the client's defaults.
	settings string
}

// javaTuned is the java-tuned system's settings: the Java client tuned for
// throughput (1 MiB batches, 10 ms linger), acks all and idempotence on as
// in the default row. The tuned client's ceiling on the same broker is the
// comparison for real Kafka.
const javaTuned = "batch.size=1048576,linger.ms=10,acks=all,enable.idempotence=true"

// javaHeap is the JVM's -Xmx: the client's default buffer.memory is 32 MiB.
const javaHeap = "256m"

func (s *javaSystem) prepare(ctx context.Context, spec runSpec) (func(context.Context) (sendStats, error), error) {
	if spec.JavaLib == "" {
		return nil, errors.New("java: no realkafka classpath (JavaLib)")
	}
	java, err := exec.LookPath("java")
	if err != nil {
		return nil, fmt.Errorf("java: %w", err)
	}
	vals, err := preEncoded(spec)
	if err != nil {
		return nil, err
	}
	valuesPath := filepath.Join(spec.Dir, "values.bin")
	if err := writeValues(valuesPath, vals); err != nil {
		return nil, err
	}
	src := filepath.Join(spec.Dir, "Producer.java")
	if err := os.WriteFile(src, javaProducer, 0o644); err != nil {
		return nil, err
	}
	return func(ctx context.Context) (sendStats, error) {
		cmd := exec.CommandContext(ctx, java, "-Xmx"+javaHeap, "-XX:+UseG1GC", "-Dlog4j2.level=warn",
			"-cp", filepath.Join(spec.JavaLib, "*"), src,
			strings.Join(spec.Brokers, ","), spec.Topic, valuesPath,
			strconv.Itoa(spec.Records), strconv.Itoa(spec.Callers), strconv.Itoa(spec.PerCall), "50000", s.settings)
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			return sendStats{}, fmt.Errorf("java producer: %w", err)
		}
		var r struct {
			Records    int     `json:"records"`
			Errors     int     `json:"errors"`
			ElapsedNs  int64   `json:"elapsed_ns"`
			CPUNs      int64   `json:"cpu_ns"`
			P50Ms      float64 `json:"p50_ms"`
			P99Ms      float64 `json:"p99_ms"`
			FirstError string  `json:"first_error"`
		}
		if err := json.Unmarshal(lastLine(out), &r); err != nil {
			return sendStats{}, fmt.Errorf("java producer output %q: %w", out, err)
		}
		st := sendStats{errors: r.Errors, latencyOf: "record, send to callback",
			external: &externalStats{elapsedNs: r.ElapsedNs, cpuNs: r.CPUNs, p50Ms: r.P50Ms, p99Ms: r.P99Ms}}
		if r.FirstError != "" {
			st.firstError = errors.New(r.FirstError)
		}
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			st.external.maxRSSKiB = ru.Maxrss
		}
		return st, nil
	}, nil
}

func (s *javaSystem) close(context.Context) error { return nil }

// writeValues writes every value as a 4-byte big-endian length and its
// bytes, the order Producer.java cycles through.
func writeValues(path string, vals [][][]byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	var n [4]byte
	for _, call := range vals {
		for _, v := range call {
			binary.BigEndian.PutUint32(n[:], uint32(len(v)))
			_, _ = w.Write(n[:])
			_, _ = w.Write(v)
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
