package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// machine describes where the benchmark ran.
type machine struct {
	CPUs    int
	Model   string
	Kernel  string
	MemGiB  float64
	Go      string
	LoadAvg string
}

func describeMachine() machine {
	m := machine{CPUs: runtime.NumCPU(), Go: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.Model = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb float64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %f kB", &kb); err == nil {
			m.MemGiB = kb / (1 << 20)
		}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.LoadAvg = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	return m
}

func (m machine) oneLine() string {
	return fmt.Sprintf("%d CPUs (%s), %.0f GiB, Linux %s, %s, load %s", m.CPUs, m.Model, m.MemGiB, m.Kernel, m.Go, m.LoadAvg)
}

// moduleVersions lists the versions of the peers compiled into this binary.
func moduleVersions() []string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return nil
	}
	want := map[string]bool{
		"github.com/IBM/sarama":    true,
		"github.com/twmb/franz-go": true,
		"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/kafkaexporter": true,
		"github.com/twmb/franz-go/pkg/kfake":                                               true,
		"go.opentelemetry.io/collector/exporter/exporterhelper":                            true,
	}
	var out []string
	for _, d := range bi.Deps {
		if want[d.Path] {
			out = append(out, d.Path+" "+d.Version)
		}
	}
	sort.Strings(out)
	return out
}

// report renders the results.
type report struct {
	opts    options
	machine machine
	results []runResult
	took    time.Duration
}

type scenario struct{ shape, encoding string }

func (s scenario) String() string {
	body := "200-byte body"
	if s.shape == "2KiB" {
		body = "2 KiB body"
	}
	return fmt.Sprintf("%s + 5 attributes, %s", body, s.encoding)
}

func (r report) scenarios() []scenario {
	var out []scenario
	seen := map[scenario]bool{}
	for _, res := range r.results {
		s := scenario{res.Spec.Shape, res.Spec.Encoding}
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func (r report) find(s scenario, system string) (runResult, bool) {
	for _, res := range r.results {
		if res.Spec.Shape == s.shape && res.Spec.Encoding == s.encoding && res.Spec.System == system {
			return res, true
		}
	}
	return runResult{}, false
}

// target is one goal of project issue 6 for this exporter against a peer.
type target struct {
	ours, peer string
	metric     string  // "rate" or "cpu"
	want       float64 // ratio ours/peer: rate at least want, cpu at most want
	text       string
}

var targets = []target{
	{sysOurs, sysContrib, "rate", 2, "records/s ≥ 2× contrib"},
	{sysOurs, sysContrib, "cpu", 0.5, "CPU/record ≤ ½ contrib"},
	{sysOursSync, sysContribSync, "rate", 2, "records/s ≥ 2× contrib (both sync)"},
	{sysOursSync, sysContribSync, "cpu", 0.5, "CPU/record ≤ ½ contrib (both sync)"},
	{sysOurs, sysSarama, "rate", 3, "records/s ≥ 3× raw sarama AsyncProducer"},
	{sysOurs, sysFranz, "rate", 0.75, "records/s within 25% of raw franz-go (≥ 0.75×)"},
}

func (t target) eval(ours, peer runResult) (ratio float64, met bool) {
	if t.metric == "rate" {
		ratio = ours.recordsPerSec() / peer.recordsPerSec()
		return ratio, ratio >= t.want
	}
	ratio = ours.cpuMicrosPerRecord() / peer.cpuMicrosPerRecord()
	return ratio, ratio <= t.want
}

func (r report) markdown() string {
	var b bytes.Buffer
	o := r.opts
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("# Benchmarks\n\n")
	w("Written by `make bench` (bench/, its own Go module) on %s; the run took %s. ",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), r.took.Round(time.Second))
	w("Do not edit by hand: rerun it.\n\n")
	w("One devbroker process (cmd/devbroker: franz-go's kfake, in memory, on loopback) takes the records of every system. ")
	w("Each system runs in its own child process, so CPU, memory and allocations are that system's alone. ")
	w("All send the same records (one resource, one scope, a string body and 5 attributes), with acks=all and no compression, ")
	w("to a fresh %d-partition topic per run, deleted afterwards. ", partitions)
	w("%d goroutines drive each system, %d records per call; a warm-up call runs before the measured window.\n\n", o.callers, o.perCall)

	if rel, err := relPath(o.out, o.chart); err == nil {
		w("![records/s and CPU per record per system](%s)\n\n", rel)
	}

	w("## Targets\n\n")
	w("| scenario | target | ours | peer | ratio | met |\n|---|---|---|---|---:|:---:|\n")
	for _, o := range r.outcomes() {
		mark := "yes"
		if !o.met {
			mark = "**no**"
		}
		w("| %s | %s | %s | %s | %.2f | %s |\n", o.scenario, o.t.text, o.t.ours, o.t.peer, o.ratio, mark)
	}
	w("\n")

	w("## Results\n\n")
	w("records/s: records in the window divided by its length, from the first call until the broker acknowledged the last record ")
	w("(for the asynchronous exporters, until Shutdown returned, which waits for every acknowledgement). ")
	w("CPU µs/record: user+system time of the whole child process in the window (getrusage), every goroutine included. ")
	w("allocs and bytes/record: runtime.MemStats Mallocs and TotalAlloc in the window. ")
	w("Peak RSS: the child's maxrss over its life (records built, client, run). ")
	w("Latency: from the call to the broker's acknowledgement, per ConsumeLogs call for the sync exporters, per record for the raw clients; ")
	w("for kafkabatcher (async, where ConsumeLogs returns before the acknowledgement) it is read from the exporter's own ")
	w("`otelcol_kafkabatcher_delivery_latency` histogram: per batch sent in the window, from the acceptance of its oldest record ")
	w("to Kafka's acknowledgement, so it includes the wait in the accumulator (up to `max_wait`) and is the worst wait of the batch's records; ")
	w("p50 and p99 are interpolated linearly inside the histogram's bucket (as Prometheus' histogram_quantile does; ")
	w("buckets 1, 5, 10, 25, 50, 100, 250, 500 ms, 1 s ...), so they are only as fine as the buckets. ")
	w("The row below kafkabatcher-sync gives the same histogram figures for it. ")
	w("No latency ratio is given between a histogram figure and a per-call or per-record one: they measure different things. ")
	w("\"—\" where ConsumeLogs returns before the acknowledgement and the system reports no latency of its own. ")
	w("messages: what the topic held afterwards (window plus warm-up).\n\n")
	for _, s := range r.scenarios() {
		w("### %s\n\n", s)
		w("| system | records/s | CPU µs/record | allocs/record | bytes/record | peak RSS MiB | p50 ms | p99 ms | latency of | messages |\n")
		w("|---|---:|---:|---:|---:|---:|---:|---:|---|---:|\n")
		for _, sys := range o.systems {
			res, ok := r.find(s, sys)
			if !ok {
				continue
			}
			p50, p99, of := "—", "—", "—"
			if res.LatencyOf != "" {
				p50, p99, of = fmt.Sprintf("%.2f", res.P50Ms), fmt.Sprintf("%.2f", res.P99Ms), res.LatencyOf
			}
			w("| %s | %.0f | %.2f | %.1f | %.0f | %.0f | %s | %s | %s | %d |\n",
				sys, res.recordsPerSec(), res.cpuMicrosPerRecord(), res.allocsPerRecord(), res.bytesPerRecord(),
				float64(res.MaxRSSKiB)/1024, p50, p99, of, res.InTopic)
			if res.HistOf != "" {
				w("| *%s, histogram* | | | | | | %.2f | %.2f | %s | |\n", sys, res.HistP50Ms, res.HistP99Ms, res.HistOf)
			}
		}
		for _, pair := range [][2]string{{sysOurs, sysContrib}, {sysOursSync, sysContribSync}, {sysOurs, sysSarama}, {sysOurs, sysFranz}} {
			ours, ok1 := r.find(s, pair[0])
			peer, ok2 := r.find(s, pair[1])
			if !ok1 || !ok2 {
				continue
			}
			lat := "—"
			if ours.LatencyOf != "" && peer.LatencyOf != "" && (ours.LatencyOf == histLatencyOf) == (peer.LatencyOf == histLatencyOf) {
				lat = fmt.Sprintf("%.2f× / %.2f×", ours.P50Ms/peer.P50Ms, ours.P99Ms/peer.P99Ms)
			}
			w("| *ratio %s / %s* | %.2f× | %.2f× | %.2f× | %.2f× | %.2f× | %s | | | |\n", pair[0], pair[1],
				ours.recordsPerSec()/peer.recordsPerSec(), ours.cpuMicrosPerRecord()/peer.cpuMicrosPerRecord(),
				ours.allocsPerRecord()/peer.allocsPerRecord(), ours.bytesPerRecord()/peer.bytesPerRecord(),
				float64(ours.MaxRSSKiB)/float64(peer.MaxRSSKiB), lat)
		}
		w("\n")
	}

	w("## Systems\n\n")
	w("- **kafkabatcher**: this exporter through `NewFactory().CreateLogs` with `exportertest.NewNopSettings` and an OpenTelemetry SDK meter provider (ManualReader) to read its own metrics, `delivery: async` (ConsumeLogs returns once the records are in an accumulator).\n")
	w("- **kafkabatcher-sync**: the same with `delivery: sync` (ConsumeLogs returns when Kafka acknowledged its records) and `max_wait: 10ms`, the contrib producer's linger.\n")
	w("- **contrib**: the contrib kafka exporter through its factory with its default `sending_queue` (10 consumers, no batching), `block_on_overflow: true` so nothing is dropped.\n")
	w("- **contrib-sync**: the same with `sending_queue: {enabled: false}`: ConsumeLogs returns after franz-go's ProduceSync.\n")
	w("- **sarama**: a raw sarama AsyncProducer (defaults, V2_8_0_0, WaitForAll, Return.Successes) fed, as fast as it takes them, the values this exporter produces (pre-encoded outside the window); its default partitioner is random for keyless messages.\n")
	w("- **franz-go**: a raw franz-go client (defaults: idempotent, linger 0, sticky partitioner; AllISRAcks, no compression) with asynchronous Produce and a promise per record, fed the same values.\n\n")
	w("Encodings differ in one way that matters: this exporter writes **one Kafka message per log record** in every encoding; ")
	w("the contrib exporter does so for `raw`, but for `otlp_proto` writes **one message per ConsumeLogs call** (the whole plog.Logs, %d records). ", o.perCall)
	w("Its otlp_proto records/s therefore count log records inside far fewer, larger Kafka messages (see the messages column). ")
	w("contrib's `raw` writes a string body JSON-quoted; this exporter writes its bytes.\n\n")
	w("Exporter configuration (collector YAML; brokers, topic and directory are set per run):\n\n```yaml\n")
	dummy := runSpec{Broker: "127.0.0.1:PORT", Topic: "bench_NNN", Encoding: "raw | otlp_proto", Dir: "<scratch>"}
	for _, k := range []string{sysOurs, sysOursSync, sysContrib, sysContribSync} {
		y, _ := yaml.Marshal(map[string]any{k: exporterConfig(k, dummy)})
		b.Write(y)
	}
	w("```\n\n")

	w("## Machine\n\n")
	w("- %d CPUs: %s\n- %.1f GiB memory, Linux %s\n- %s\n- load average at start: %s (the machine may be shared; numbers move with it)\n",
		r.machine.CPUs, r.machine.Model, r.machine.MemGiB, r.machine.Kernel, r.machine.Go, r.machine.LoadAvg)
	for _, v := range moduleVersions() {
		w("- %s\n", v)
	}
	w("\n## Commands\n\n```sh\n")
	w("make bench                      # = cd bench && go run .\n")
	w("cd bench && go run .%s   # this run\n", argString(o.args))
	w("cd bench && go run . -quick     # smoke run, 10x fewer records\n")
	w("cd bench && go run . -systems kafkabatcher -cpuprofile-dir /tmp/prof -out /tmp/b.md -chart /tmp/b.png\n")
	w("go tool pprof -top /tmp/prof/kafkabatcher_200B_otlp_proto_0.pprof\n```\n\n")
	if notes, err := os.ReadFile("NOTES.md"); err == nil {
		w("%s\n", strings.TrimSpace(string(notes)))
	}
	return b.String()
}

func argString(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return " " + strings.Join(args, " ")
}

func relPath(from, to string) (string, error) {
	a, err := filepath.Abs(filepath.Dir(from))
	if err != nil {
		return "", err
	}
	t, err := filepath.Abs(to)
	if err != nil {
		return "", err
	}
	return filepath.Rel(a, t)
}

// summary is the targets table for the terminal.
func (r report) summary() string {
	var b strings.Builder
	for _, o := range r.outcomes() {
		mark := "met"
		if !o.met {
			mark = "MISSED"
		}
		fmt.Fprintf(&b, "%-40s %-50s %5.2f %s\n", o.scenario, o.t.text, o.ratio, mark)
	}
	return b.String()
}

// outcome is one target evaluated on one scenario.
type outcome struct {
	scenario scenario
	t        target
	ratio    float64
	met      bool
}

// outcomes evaluates every target on every scenario that has both systems.
func (r report) outcomes() []outcome {
	var out []outcome
	for _, s := range r.scenarios() {
		for _, t := range targets {
			ours, ok1 := r.find(s, t.ours)
			peer, ok2 := r.find(s, t.peer)
			if !ok1 || !ok2 {
				continue
			}
			ratio, met := t.eval(ours, peer)
			out = append(out, outcome{scenario: s, t: t, ratio: ratio, met: met})
		}
	}
	return out
}
