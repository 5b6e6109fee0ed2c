package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"
)

// runSpec is what the driver asks one child process to do.
type runSpec struct {
	System   string `json:"system"`
	Shape    string `json:"shape"`
	Encoding string `json:"encoding"`
	Records  int    `json:"records"`  // sent inside the measured window
	Callers  int    `json:"callers"`  // concurrent senders
	PerCall  int    `json:"per_call"` // records per ConsumeLogs call (or per sender round)
	// Brokers are the bootstrap addresses, BrokerName what they are
	// (testbench/broker Spec names: devbroker, kafka-3+2ms, ...).
	Brokers    []string `json:"brokers"`
	BrokerName string   `json:"broker_name"`
	// ReplicationFactor of the topic (1 or 3).
	ReplicationFactor int `json:"replication_factor"`
	// Partitions of the run's topic; Keys, when positive, gives every
	// record a client.id attribute out of that many, which the exporters
	// key by.
	Partitions int32 `json:"partitions"`
	Keys       int   `json:"keys"`
	// Saturation marks the runs of the peak-RSS-under-saturation scenario.
	Saturation bool `json:"saturation,omitempty"`
	// Rate, when positive, paces the calls at that many records/s (the
	// everyday load, paced.go).
	Rate       int    `json:"rate,omitempty"`
	Topic      string `json:"topic"`
	Dir        string `json:"dir"`         // scratch directory (temp storage)
	CPUProfile string `json:"cpu_profile"` // pprof CPU profile of the window, when set
	// HeapProfile is a pprof heap profile written when the callers are
	// done, before Shutdown drains what is pending (the fullest moment).
	HeapProfile string `json:"heap_profile"`
	// OursSet is the -ours-set flag: extra settings of this exporter.
	OursSet map[string]any `json:"ours_set,omitempty"`
	// JavaLib is the realkafka jar directory (system java).
	JavaLib string `json:"java_lib"`
	// SyncBatchSize is batch.size of kafkabatcher-sync.
	SyncBatchSize int `json:"sync_batch_size"`
}

// runResult is what a child reports; the driver adds the fields marked.
type runResult struct {
	Spec       runSpec `json:"spec"`
	Records    int     `json:"records"`
	Errors     int     `json:"errors"`
	FirstError string  `json:"first_error,omitempty"`
	ElapsedNs  int64   `json:"elapsed_ns"`
	// OfferedNs is, for a paced run, the time from the first call to the
	// return of the last: Records/OfferedNs is the rate achieved.
	OfferedNs  int64  `json:"offered_ns,omitempty"`
	CPUNs      int64  `json:"cpu_ns"` // user+system time of the whole process inside the window
	Mallocs    uint64 `json:"mallocs"`
	AllocBytes uint64 `json:"alloc_bytes"`
	// Latency from the call (ConsumeLogs, Input, Produce) to the broker's
	// acknowledgement; LatencyOf says what one sample is, "" when the system
	// does not expose acknowledgements (async exporters).
	// kafkabatcher: read from its delivery latency histogram (the oldest
	// record of each batch of the window, accept to ack; quantiles
	// interpolated inside the bucket), as histLatencyOf says.
	LatencyOf string  `json:"latency_of,omitempty"`
	P50Ms     float64 `json:"p50_ms"`
	P99Ms     float64 `json:"p99_ms"`
	// The histogram's figures for a system whose own columns hold samples
	// measured per call (kafkabatcher-sync); HistOf is "" otherwise.
	HistOf    string  `json:"hist_of,omitempty"`
	HistP50Ms float64 `json:"hist_p50_ms,omitempty"`
	HistP99Ms float64 `json:"hist_p99_ms,omitempty"`
	Detail    string  `json:"detail,omitempty"`
	// PeakHeapBytes is the largest Go heap (live and unswept objects,
	// runtime/metrics /memory/classes/heap/objects:bytes) seen by a 10 ms
	// sampler over the window; PeakSampledRSS the largest RSS it read from
	// /proc/self/statm. Both 0 for java.
	PeakHeapBytes  uint64 `json:"peak_heap_bytes"`
	PeakSampledRSS uint64 `json:"peak_sampled_rss"`
	// MaxPendingBytes is the exporter's max_pending_bytes, 0 for the others.
	MaxPendingBytes int64 `json:"max_pending_bytes,omitempty"`
	// ChildMaxRSSKiB is the peak RSS of a process the child ran (java).
	ChildMaxRSSKiB int64 `json:"child_max_rss_kib,omitempty"`
	// NoAllocs is set when allocations are not known (java).
	NoAllocs bool `json:"no_allocs,omitempty"`

	// HWMKiB is the child's own peak RSS (VmHWM of /proc/self/status at
	// its end). The driver's maxrss of the child is at least the driver's
	// RSS when it started the child (Linux keeps the exec'ing process's
	// high-water mark, and Go starts children with vfork semantics, so
	// that is the driver's), so peakRSSMiB prefers this.
	HWMKiB    int64  `json:"hwm_kib,omitempty"`
	MaxRSSKiB int64  `json:"max_rss_kib"` // driver: peak RSS of the child (maxrss, see HWMKiB)
	InTopic   int64  `json:"in_topic"`    // driver: Kafka messages the topic holds after the run
	Wall      int64  `json:"wall_ns"`     // driver: the child's whole life
	LoadAvg   string `json:"load_avg"`    // driver: /proc/loadavg after the run
	// Failed is why the run failed (driver); a failed run has no figures.
	Failed string `json:"failed,omitempty"`
	// Repeats and FailedRepeats count the runs a median was taken over and
	// those that failed (driver).
	Repeats       int `json:"repeats,omitempty"`
	FailedRepeats int `json:"failed_repeats,omitempty"`
}

// peakRSSMiB is the peak RSS of the process that sent the records: the
// child's, or the JVM's it ran.
func (r runResult) peakRSSMiB() float64 {
	own := r.MaxRSSKiB
	if r.HWMKiB > 0 {
		own = r.HWMKiB
	}
	return float64(max(own, r.ChildMaxRSSKiB)) / 1024
}

// vmHWMKiB is this process's peak RSS (VmHWM), 0 if unknown.
func vmHWMKiB() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			var kib int64
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kib); err == nil {
				return kib
			}
		}
	}
	return 0
}

func (r runResult) recordsPerSec() float64 {
	if r.ElapsedNs == 0 {
		return 0
	}
	return float64(r.Records) / (float64(r.ElapsedNs) / 1e9)
}

// achievedRate is the records/s a paced run's calls achieved.
func (r runResult) achievedRate() float64 {
	if r.OfferedNs == 0 {
		return 0
	}
	return float64(r.Records) / (float64(r.OfferedNs) / 1e9)
}

func (r runResult) cpuMicrosPerRecord() float64 { return float64(r.CPUNs) / 1e3 / float64(r.Records) }
func (r runResult) allocsPerRecord() float64    { return float64(r.Mallocs) / float64(r.Records) }
func (r runResult) bytesPerRecord() float64     { return float64(r.AllocBytes) / float64(r.Records) }

// system is one way of getting records to Kafka. prepare does everything
// that is not measured (building records, connecting, a warm-up round) and
// returns the measured part: send spec.Records records and return when the
// broker has acknowledged all of them.
type system interface {
	prepare(ctx context.Context, spec runSpec) (run func(ctx context.Context) (sendStats, error), err error)
	close(ctx context.Context) error
}

// sendStats is what the measured part observed.
type sendStats struct {
	errors     int
	firstError error
	latencyOf  string
	latencies  []time.Duration
	hist       *latencyHist // the exporter's delivery latency in the window, if it has one
	detail     string       // what the system says about its batching, if anything
	// maxPendingBytes is the exporter's max_pending_bytes, 0 if none.
	maxPendingBytes int64
	// offered is the time from the first call to the last one's return.
	offered time.Duration
	// external holds the figures of a process that did the sending (java).
	external *externalStats
}

// externalStats is what a sending process reported about its window.
type externalStats struct {
	elapsedNs, cpuNs int64
	p50Ms, p99Ms     float64
	maxRSSKiB        int64
}

func newSystem(name string) (system, error) {
	switch name {
	case sysOurs:
		return &exporterSystem{kind: sysOurs}, nil
	case sysOursSync:
		return &exporterSystem{kind: sysOursSync}, nil
	case sysContrib:
		return &exporterSystem{kind: sysContrib}, nil
	case sysContribSync:
		return &exporterSystem{kind: sysContribSync}, nil
	case sysContribPerRecord:
		return &exporterSystem{kind: sysContribPerRecord}, nil
	case sysOursDefaults:
		return &exporterSystem{kind: sysOursDefaults}, nil
	case sysOursPerKey:
		return &exporterSystem{kind: sysOursPerKey}, nil
	case sysJava:
		return &javaSystem{}, nil
	case sysJavaTuned:
		return &javaSystem{settings: javaTuned}, nil
	case sysFloor:
		return &exporterSystem{kind: sysFloor}, nil
	case sysSarama:
		return &saramaSystem{}, nil
	case sysFranz:
		return &franzSystem{}, nil
	}
	return nil, fmt.Errorf("unknown system %q", name)
}

// runChild is the child process: it runs one spec and prints its result as
// JSON on stdout.
func runChild(specJSON string) error {
	var spec runSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		return fmt.Errorf("child spec: %w", err)
	}
	sys, err := newSystem(spec.System)
	if err != nil {
		return err
	}
	if spec.OursSet != nil {
		oursSet = spec.OursSet
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	run, err := sys.prepare(ctx, spec)
	if err != nil {
		return fmt.Errorf("%s: prepare: %w", spec.System, err)
	}

	runtime.GC()
	var ms0, ms1 runtime.MemStats
	var ru0, ru1 syscall.Rusage
	if spec.CPUProfile != "" {
		f, err := os.Create(spec.CPUProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	runtime.ReadMemStats(&ms0)
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru0); err != nil {
		return err
	}
	stopSampling := sampleMemory()
	start := time.Now()
	st, err := run(ctx)
	elapsed := time.Since(start)
	peakHeap, peakRSS := stopSampling()
	if err2 := syscall.Getrusage(syscall.RUSAGE_SELF, &ru1); err2 != nil {
		return err2
	}
	runtime.ReadMemStats(&ms1)
	if spec.CPUProfile != "" {
		pprof.StopCPUProfile()
	}
	if err != nil {
		return fmt.Errorf("%s: run: %w", spec.System, err)
	}
	if err := sys.close(ctx); err != nil {
		return fmt.Errorf("%s: close: %w", spec.System, err)
	}

	res := runResult{
		Spec:       spec,
		Records:    spec.Records,
		Errors:     st.errors,
		ElapsedNs:  elapsed.Nanoseconds(),
		OfferedNs:  st.offered.Nanoseconds(),
		CPUNs:      cpuNs(ru1) - cpuNs(ru0),
		Mallocs:    ms1.Mallocs - ms0.Mallocs,
		AllocBytes: ms1.TotalAlloc - ms0.TotalAlloc,
		LatencyOf:  st.latencyOf,
		Detail:     st.detail,

		PeakHeapBytes:   peakHeap,
		PeakSampledRSS:  peakRSS,
		MaxPendingBytes: st.maxPendingBytes,
		HWMKiB:          vmHWMKiB(),
	}
	if st.external != nil {
		// The records went through another process: its figures.
		res.ElapsedNs, res.CPUNs = st.external.elapsedNs, st.external.cpuNs
		res.Mallocs, res.AllocBytes, res.NoAllocs = 0, 0, true
		res.PeakHeapBytes, res.PeakSampledRSS = 0, 0
		res.ChildMaxRSSKiB = st.external.maxRSSKiB
		if len(st.latencies) == 0 {
			res.P50Ms, res.P99Ms = st.external.p50Ms, st.external.p99Ms
		}
	}
	if st.firstError != nil {
		res.FirstError = st.firstError.Error()
	}
	if len(st.latencies) > 0 {
		res.P50Ms, res.P99Ms = percentiles(st.latencies)
	}
	if h := st.hist; h != nil {
		p50, p99 := 1000*h.quantile(0.50), 1000*h.quantile(0.99)
		if res.LatencyOf == "" {
			res.LatencyOf, res.P50Ms, res.P99Ms = histLatencyOf, p50, p99
		} else {
			res.HistOf, res.HistP50Ms, res.HistP99Ms = histLatencyOf, p50, p99
		}
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// sampleMemory samples the Go heap and the process RSS every 10 ms until
// the returned function is called, which returns the peaks.
func sampleMemory() func() (heap, rss uint64) {
	done := make(chan struct{})
	var peakHeap, peakRSS uint64
	finished := make(chan struct{})
	page := uint64(os.Getpagesize())
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() {
		metrics.Read(sample)
		if v := sample[0].Value; v.Kind() == metrics.KindUint64 {
			peakHeap = max(peakHeap, v.Uint64())
		}
		if b, err := os.ReadFile("/proc/self/statm"); err == nil {
			var size, res uint64
			if _, err := fmt.Sscan(string(b), &size, &res); err == nil {
				peakRSS = max(peakRSS, res*page)
			}
		}
	}
	go func() {
		defer close(finished)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			read()
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() (uint64, uint64) {
		close(done)
		<-finished
		return peakHeap, peakRSS
	}
}

func cpuNs(ru syscall.Rusage) int64 {
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// percentiles returns the 50th and 99th percentile in milliseconds
// (nearest rank).
func percentiles(d []time.Duration) (p50, p99 float64) {
	s := slices.Clone(d)
	slices.Sort(s)
	at := func(q float64) float64 {
		i := int(q*float64(len(s))+0.5) - 1
		i = max(0, min(i, len(s)-1))
		return float64(s[i]) / 1e6
	}
	return at(0.50), at(0.99)
}
