package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/kafkabatcher/kafkabatcherexporter/testbench/realkafka"
)

// machine describes where the benchmark ran.
type machine struct {
	CPUs    int `json:"cpus"`
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
	loadEnd string
	when    time.Time
	floor   *floorCost // what a record costs at best, nil if not measured
	// others are the later full runs of the same invocation: the targets
	// show their ratios beside this run's.
	others []report
}

// scenario is what one table holds: one broker, one kind of record.
type scenario struct {
	broker, shape, encoding string
	partitions              int32
	keys                    int
	saturation              bool
	rate                    int // records/s of a paced scenario
}

func scenarioOf(r runResult) scenario {
	return scenario{r.Spec.BrokerName, r.Spec.Shape, r.Spec.Encoding, r.Spec.Partitions, r.Spec.Keys, r.Spec.Saturation, r.Spec.Rate}
}

func (s scenario) String() string {
	body := "200 B body"
	if s.shape == "2KiB" {
		body = "2 KiB body"
	}
	out := fmt.Sprintf("%s: %s, %s", s.broker, body, s.encoding)
	if s.keys > 0 {
		out += fmt.Sprintf(", %d keys into %d partitions", s.keys, s.partitions)
	}
	if s.saturation {
		out += ", saturation with defaults"
	}
	if s.rate > 0 {
		out += fmt.Sprintf(", paced at %s records/s, defaults", thousands(s.rate))
	}
	return out
}

func (r report) scenarios() []scenario {
	var out []scenario
	seen := map[scenario]bool{}
	for _, res := range r.results {
		s := scenarioOf(res)
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func (r report) find(s scenario, system string) (runResult, bool) {
	for _, res := range r.results {
		if scenarioOf(res) == s && res.Spec.System == system && res.Failed == "" {
			return res, true
		}
	}
	return runResult{}, false
}

// target is one goal of project issues 14 and 22 for this exporter against
// a peer.
type target struct {
	ours, peer string
	// metric is "rate", "cpu", "rss" or "share" (CPU per record less the
	// floor system's in the same scenario).
	metric   string
	want     float64 // ratio ours/peer: rate at least want, cpu, share and rss at most want
	text     string
	realOnly bool   // only on real Kafka
	rate     int    // the paced scenarios of this rate only; 0: the unpaced ones
	encoding string // this encoding only; "": every one
}

// targets are issue 22's first, then what is left of issue 14's.
var targets = []target{
	{ours: sysOursDefaults, peer: sysContrib, metric: "share", want: 0.5, rate: 20_000,
		text: "everyday load (20,000 records/s, defaults): exporter share of CPU/record ≤ 0.5× contrib"},
	{ours: sysOursDefaults, peer: sysContrib, metric: "rss", want: 1, rate: 20_000,
		text: "everyday load (20,000 records/s, defaults): peak RSS ≤ 1× contrib"},
	{ours: sysOursPerKey, peer: sysContrib, metric: "share", want: 0.5, rate: 20_000,
		text: "everyday load (20,000 records/s, defaults), message_per: key: exporter share of CPU/record ≤ 0.5× contrib"},
	{ours: sysOurs, peer: sysContrib, metric: "cpu", want: 1, encoding: "otlp_proto",
		text: "saturation, one record per message: CPU/record ≤ 1× contrib (at its 100 records per message)"},
	{ours: sysOursPerKey, peer: sysContrib, metric: "cpu", want: 0.5, text: "saturation, message_per: key: CPU/record ≤ 0.5× contrib at equal records per message"},
	{ours: sysOursSync, peer: sysContribSync, metric: "rate", want: 1, text: "sync: records/s ≥ 1× contrib-sync"},
	{ours: sysOursSync, peer: sysContribSync, metric: "cpu", want: 1, text: "sync: CPU/record ≤ 1× contrib-sync"},
	{ours: sysOurs, peer: sysJavaTuned, metric: "rate", want: 0.8, text: "records/s ≥ 0.8× the tuned Java producer", realOnly: true},
	// Issue 14's.
	{ours: sysOurs, peer: sysContrib, metric: "rate", want: 2, text: "records/s ≥ 2× contrib"},
	{ours: sysOurs, peer: sysContrib, metric: "cpu", want: 0.5, encoding: "raw", text: "CPU/record ≤ 0.5× contrib"},
	{ours: sysOurs, peer: sysContribPerRecord, metric: "rate", want: 2, text: "records/s ≥ 2× contrib, one record per message (like for like)"},
	{ours: sysOurs, peer: sysContribPerRecord, metric: "cpu", want: 0.5, text: "CPU/record ≤ 0.5× contrib, one record per message"},
	{ours: sysOursDefaults, peer: sysContrib, metric: "rss", want: 1, text: "peak RSS under saturation, defaults ≤ 1× contrib"},
	{ours: sysOursDefaults, peer: sysContrib, metric: "rate", want: 1, text: "… without losing throughput: defaults records/s ≥ 1× contrib"},
	{ours: sysOurs, peer: sysJava, metric: "rate", want: 0.75, text: "records/s ≥ 0.75× the Java producer", realOnly: true},
}

// share is a paced run's CPU µs per record less the floor's.
func share(r, floor runResult) float64 { return r.cpuMicrosPerRecord() - floor.cpuMicrosPerRecord() }

func (t target) eval(ours, peer, floor runResult) (ratio float64, met bool) {
	switch t.metric {
	case "share":
		ratio = share(ours, floor) / share(peer, floor)
		return ratio, ratio <= t.want
	case "rate":
		ratio = ours.recordsPerSec() / peer.recordsPerSec()
		return ratio, ratio >= t.want
	case "rss":
		ratio = ours.peakRSSMiB() / peer.peakRSSMiB()
		return ratio, ratio <= t.want
	}
	ratio = ours.cpuMicrosPerRecord() / peer.cpuMicrosPerRecord()
	return ratio, ratio <= t.want
}

// outcome is one target evaluated on one scenario.
type outcome struct {
	scenario scenario
	text     string
	ours     string // the figures compared, as text
	peer     string
	ratio    float64
	met      bool
}

func figure(metric string, r, floor runResult) string {
	switch metric {
	case "share":
		return fmt.Sprintf("%s %.2f − floor %.2f = %.2f µs", r.Spec.System, r.cpuMicrosPerRecord(), floor.cpuMicrosPerRecord(), share(r, floor))
	case "rate":
		return fmt.Sprintf("%s %.0f rec/s", r.Spec.System, r.recordsPerSec())
	case "rss":
		return fmt.Sprintf("%s %.0f MiB", r.Spec.System, r.peakRSSMiB())
	}
	return fmt.Sprintf("%s %.2f µs", r.Spec.System, r.cpuMicrosPerRecord())
}

// outcomes evaluates every target on every scenario that has both systems,
// then the keyed targets on every broker that ran both keyed scenarios.
func (r report) outcomes() []outcome {
	var out []outcome
	for _, s := range r.scenarios() {
		if s.keys > 0 {
			continue
		}
		for _, t := range targets {
			if t.realOnly && strings.HasPrefix(s.broker, "devbroker") || t.rate != s.rate || t.encoding != "" && t.encoding != s.encoding {
				continue
			}
			ours, ok1 := r.find(s, t.ours)
			peer, ok2 := r.find(s, t.peer)
			floor, ok3 := r.find(s, sysFloor)
			if !ok1 || !ok2 || t.metric == "share" && !ok3 {
				continue
			}
			ratio, met := t.eval(ours, peer, floor)
			out = append(out, outcome{scenario: s, text: t.text, ours: figure(t.metric, ours, floor), peer: figure(t.metric, peer, floor), ratio: ratio, met: met})
		}
	}
	for _, s := range r.scenarios() {
		if s.keys == 0 || s.partitions == partitions {
			continue
		}
		many, ok1 := r.find(s, sysOursDefaults)
		few := s
		few.partitions = partitions
		base, ok2 := r.find(few, sysOursDefaults)
		if !ok1 {
			continue
		}
		bound := float64(many.MaxPendingBytes)/(1<<20) + float64(r.opts.keyedOverheadMiB)
		out = append(out, outcome{scenario: s,
			text: fmt.Sprintf("peak RSS ≤ max_pending_bytes + %d MiB", r.opts.keyedOverheadMiB),
			ours: fmt.Sprintf("%.0f MiB", many.peakRSSMiB()), peer: fmt.Sprintf("%.0f MiB", bound),
			ratio: many.peakRSSMiB() / bound, met: many.peakRSSMiB() <= bound})
		if ok2 {
			ratio := many.cpuMicrosPerRecord() / base.cpuMicrosPerRecord()
			out = append(out, outcome{scenario: s, text: fmt.Sprintf("CPU/record ≤ 1.2× the %d-partition run", partitions),
				ours: fmt.Sprintf("%.2f µs", many.cpuMicrosPerRecord()), peer: fmt.Sprintf("%.2f µs", base.cpuMicrosPerRecord()),
				ratio: ratio, met: ratio <= 1.2})
		}
	}
	return out
}

// ratioPairs are the ratio rows under every table.
var ratioPairs = [][2]string{
	{sysOurs, sysContrib}, {sysOurs, sysContribPerRecord}, {sysOursPerKey, sysContrib}, {sysOursSync, sysContribSync}, {sysOursDefaults, sysContrib},
	{sysOurs, sysSarama}, {sysOurs, sysFranz}, {sysOurs, sysJava}, {sysOurs, sysJavaTuned},
}

func (r report) markdown() string {
	var b bytes.Buffer
	o := r.opts
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("# Benchmarks\n\n")
	if len(r.others) == 0 {
		w("Written by `make bench` (bench/, its own Go module) on %s; the run took %s. ",
			r.when.Format("2006-01-02 15:04 UTC"), r.took.Round(time.Second))
	} else {
		w("Written by `make bench` (bench/, its own Go module) from %d full runs, one after the other: run A ended %s and took %s", len(r.others)+1, r.when.Format("2006-01-02 15:04 UTC"), r.took.Round(time.Second))
		for i, o := range r.others {
			w("; run %s ended %s and took %s (load average at its start %s, at its end %s)", runName(i+1), o.when.Format("15:04 UTC"), o.took.Round(time.Second), o.machine.LoadAvg, o.loadEnd)
		}
		w(". The targets show every run's ratio; every other table and the chart are run A's (run B's are kept in `bench/%s`: `go run . -render %s` writes its report). ",
			filepath.Base(runFile(o.resultsFile, 1)), filepath.Base(runFile(o.resultsFile, 1)))
	}
	w("Do not edit by hand: rerun it.\n\n")
	if o.partial() {
		w("**Partial run**: only the %s scenarios ran (`-scenarios %s`); the full report is `make bench`.\n\n",
			strings.Join(o.scenarios, ", "), strings.Join(o.scenarios, ","))
	}
	w("Brokers (testbench/broker), one after the other, each taking the records of every system: ")
	w("`devbroker` (cmd/devbroker: franz-go's kfake, in memory, one process on loopback), ")
	w("`kafka-1` (a real Apache Kafka %s, one KRaft node), `kafka-3` (three KRaft nodes, topics with replication factor 3 and min.insync.replicas 2); ", realkafka.Version)
	w("`+2ms` puts an in-process toxiproxy in front of every broker's client listener that delays what the broker sends by 2 ms. ")
	w("Each system runs in its own child process, so CPU, memory and allocations are that system's alone. ")
	w("All send the same records (one resource, one scope, a string body and 5 attributes), with acks=all and no compression, ")
	w("to a fresh %d-partition topic per run, deleted afterwards. ", partitions)
	w("%d goroutines drive each system, %d records per call; a warm-up call runs before the measured window. ", o.callers, o.perCall)
	w("Every figure is the median of %d repetitions, taken round the systems in turn so that load on the shared machine spreads over all of them. ", o.repeat)
	w("Load average at start %s, at the end %s; every run's is in the log and in the tables.\n\n", r.machine.LoadAvg, r.loadEnd)

	if rel, err := relPath(o.out, o.chart); err == nil {
		w("![records/s, CPU per record and peak RSS per system and broker](%s)\n\n", rel)
	}

	w("## Targets\n\n")
	w("%s\n", r.targetMatrix())
	runA := ""
	if len(r.others) > 0 {
		runA = " (run A)"
	}
	w("Every target on every scenario, with the figures compared%s:\n\n", runA)
	w("| scenario | target | ours | peer / bound | ratio | met |\n|---|---|---|---|---:|:---:|\n")
	for _, oc := range r.outcomes() {
		mark := "yes"
		if !oc.met {
			mark = "**no**"
		}
		w("| %s | %s | %s | %s | %.2f | %s |\n", oc.scenario, oc.text, oc.ours, oc.peer, oc.ratio, mark)
	}
	w("\n")

	w("%s", r.everydayMarkdown())
	w("%s", r.floorMarkdown())

	w("## Results\n\n")
	w("records/s: records in the window divided by its length, from the first call until the broker acknowledged the last record ")
	w("(for the asynchronous exporters, until Shutdown returned, which waits for every acknowledgement). ")
	w("CPU µs/record: user+system time of the whole child process in the window (getrusage), every goroutine included; for java the JVM's own process CPU time over its window. ")
	w("allocs and bytes/record: runtime.MemStats Mallocs and TotalAlloc in the window (not known for java). ")
	w("Peak RSS: the child's own peak RSS over its life (VmHWM at its end: records built, client, run; the maxrss wait4 gives for a child also counts the driver's RSS when it started the child, which Linux carries over the exec); for java the JVM's maxrss (-Xmx%s). ", javaHeap)
	w("Peak heap: the largest `/memory/classes/heap/objects:bytes` a 10 ms sampler saw in the window (Go heap objects, live or not yet swept). ")
	w("Latency: from the call to the broker's acknowledgement, per ConsumeLogs call for the sync exporters, per record for the raw clients and java; ")
	w("for kafkabatcher async it is read from the exporter's own `otelcol_kafkabatcher_delivery_latency` histogram ")
	w("(per batch, from the acceptance of its oldest record to the acknowledgement, interpolated inside buckets of 1, 5, 10, 25, 50, 100, 250, 500 ms, 1 s ...), ")
	w("so it is not comparable with per-record figures and no ratio is given between them. ")
	w("\"—\" where ConsumeLogs returns before the acknowledgement and the system reports no latency of its own. ")
	w("messages: what the topic held afterwards (window plus warm-up). load: /proc/loadavg (1, 5, 15 min) after the median run.\n\n")
	for _, s := range r.scenarios() {
		if s.rate > 0 {
			continue // in the everyday load's tables above
		}
		w("### %s\n\n", s)
		w("| system | records/s | CPU µs/record | allocs/record | bytes/record | peak RSS MiB | peak heap MiB | p50 ms | p99 ms | latency of | messages | load |\n")
		w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|\n")
		for _, sys := range o.systems {
			res, ok := r.find(s, sys)
			if !ok {
				for _, f := range r.results {
					if scenarioOf(f) == s && f.Spec.System == sys && f.Failed != "" {
						w("| %s | every run failed: %s | | | | | | | | | | |\n", sys, strings.ReplaceAll(f.Failed, "|", "/"))
					}
				}
				continue
			}
			if res.FailedRepeats > 0 {
				sys = fmt.Sprintf("%s (%d of %d runs failed)", sys, res.FailedRepeats, res.Repeats+res.FailedRepeats)
			}
			p50, p99, of := "—", "—", "—"
			if res.LatencyOf != "" {
				p50, p99, of = fmt.Sprintf("%.2f", res.P50Ms), fmt.Sprintf("%.2f", res.P99Ms), res.LatencyOf
			}
			allocs, bytesPer, heap := "—", "—", "—"
			if !res.NoAllocs {
				allocs, bytesPer = fmt.Sprintf("%.1f", res.allocsPerRecord()), fmt.Sprintf("%.0f", res.bytesPerRecord())
				heap = fmt.Sprintf("%.0f", float64(res.PeakHeapBytes)/(1<<20))
			}
			w("| %s | %.0f | %.2f | %s | %s | %.0f | %s | %s | %s | %s | %d | %s |\n",
				sys, res.recordsPerSec(), res.cpuMicrosPerRecord(), allocs, bytesPer,
				res.peakRSSMiB(), heap, p50, p99, of, res.InTopic, res.LoadAvg)
			sys = res.Spec.System
			if res.HistOf != "" {
				w("| *%s, histogram* | | | | | | | %.2f | %.2f | %s | | |\n", sys, res.HistP50Ms, res.HistP99Ms, res.HistOf)
			}
			if res.Detail != "" && s.keys > 0 {
				w("| *%s: %s* | | | | | | | | | | | |\n", sys, res.Detail)
			}
		}
		for _, pair := range ratioPairs {
			ours, ok1 := r.find(s, pair[0])
			peer, ok2 := r.find(s, pair[1])
			if !ok1 || !ok2 {
				continue
			}
			lat := "—"
			if ours.LatencyOf != "" && peer.LatencyOf != "" && (ours.LatencyOf == histLatencyOf) == (peer.LatencyOf == histLatencyOf) {
				lat = fmt.Sprintf("%.2f× / %.2f×", ours.P50Ms/peer.P50Ms, ours.P99Ms/peer.P99Ms)
			}
			allocs, bytesPer := "—", "—"
			if !peer.NoAllocs {
				allocs = fmt.Sprintf("%.2f×", ours.allocsPerRecord()/peer.allocsPerRecord())
				bytesPer = fmt.Sprintf("%.2f×", ours.bytesPerRecord()/peer.bytesPerRecord())
			}
			w("| *ratio %s / %s* | %.2f× | %.2f× | %s | %s | %.2f× | | %s | | | | |\n", pair[0], pair[1],
				ours.recordsPerSec()/peer.recordsPerSec(), ours.cpuMicrosPerRecord()/peer.cpuMicrosPerRecord(),
				allocs, bytesPer, ours.peakRSSMiB()/peer.peakRSSMiB(), lat)
		}
		w("\n")
	}

	w("## Systems\n\n")
	w("- **kafkabatcher**: this exporter through `NewFactory().CreateLogs` with `exportertest.NewNopSettings` and an OpenTelemetry SDK meter provider (ManualReader) to read its own metrics, `delivery: async` (ConsumeLogs returns once the records are in an accumulator), `batch.max_wait: 100ms`.\n")
	w("- **kafkabatcher-sync**: the same with `delivery: sync` (ConsumeLogs returns when Kafka acknowledged its records), `batch.size` %d and `max_wait: 100ms`; a sync call's partitions are cut once it has added its records (flush reason `call`), so it waits for neither.\n", o.syncBatch)
	w("- **kafkabatcher-defaults**: this exporter with nothing set but brokers, topic, encoding and the scratch directory (and `key_from` in the keyed runs). It runs in the saturation scenarios (%d records, enough to fill the default `max_pending_bytes` of 64 MiB several times; the callers always outrun Kafka, so the exporter sits at the bound) against contrib on the same load: the peak RSS an operator sizes a memory limit by; and in the keyed runs. In the saturation runs every ConsumeLogs call, of both systems, gets a copy of its request of its own, as a receiver hands over what it decoded, so an exporter that queues references to requests holds their memory as it would in a collector.\n", o.saturationRecords)
	w("- **kafkabatcher-per-key** (otlp_proto only): kafkabatcher with `message_per: key`: the records of a call that share resource, scope and key (there is no key here) go in one OTLP message, so its messages hold %d records, as contrib's do (in the paced scenarios: the defaults with `message_per: key`).\n", o.perCall)
	w("- **contrib**: the contrib kafka exporter through its factory with its default `sending_queue` (10 consumers, no batching), `block_on_overflow: true` so nothing is dropped.\n")
	w("- **contrib-sync**: the same with `sending_queue: {enabled: false}`: ConsumeLogs returns after franz-go's ProduceSync.\n")
	w("- **contrib-per-record** (otlp_proto only): contrib as above fed the same records one per ConsumeLogs call, so each of its Kafka messages holds one record, as ours do: the like-for-like otlp_proto row.\n")
	w("- **sarama**: a raw sarama AsyncProducer (defaults, V2_8_0_0, WaitForAll, Return.Successes) fed, as fast as it takes them, the values this exporter produces (pre-encoded outside the window); its default partitioner is random for keyless messages.\n")
	w("- **franz-go**: a raw franz-go client (defaults: idempotent, linger 0, sticky partitioner; AllISRAcks, no compression) with asynchronous Produce and a promise per record, fed the same values.\n")
	w("- **java**: the Apache Kafka Java client %s (`bench/java/Producer.java`, run with `java -cp <realkafka lib>/* Producer.java`) fed the same values from a file, %d threads, acks=all, no compression, otherwise the client's defaults (idempotent, linger.ms 5, batch.size 16384); it times its own window and reads its process CPU time from the JVM.\n", realkafka.Version, o.callers)
	w("- **java-tuned**: the same client tuned for throughput: `%s` (the JVM client's ceiling on the same broker).\n", javaTuned)
	w("- **floor** (paced scenarios only): the paced calls received the same way (a fresh copy of the request's OTLP protobuf decoded per call) and handed to the collector's nop exporter (`exportertest.NewNopFactory`): what receiving costs without an exporter.\n\n")
	w("Encodings differ in one way that matters: this exporter writes **one Kafka message per log record** in every encoding; ")
	w("the contrib exporter does so for `raw`, but for `otlp_proto` writes **one message per ConsumeLogs call** (the whole plog.Logs, %d records), ", o.perCall)
	w("so its otlp_proto records/s count log records inside far fewer, larger Kafka messages (see the messages column); contrib-per-record is the like-for-like row. ")
	w("contrib's `raw` writes a string body JSON-quoted; this exporter writes its bytes.\n\n")
	if o.keyedPartitions > 0 {
		w("Keyed runs: every record carries a `client.id` attribute, one of %d values, and `key_from: [attributes.client.id]` (murmur2, as the Java client) spreads them over %d and over %d partitions, %d records per run. ",
			o.keys, partitions, o.keyedPartitions, o.keyedRecords)
		w("Their targets compare peak RSS with `max_pending_bytes` plus a fixed overhead of %d MiB (-keyed-overhead-mib) and CPU per record with the %d-partition run.\n\n", o.keyedOverheadMiB, partitions)
	}
	w("Exporter configuration (collector YAML; brokers, topic and directory are set per run):\n\n```yaml\n")
	dummy := runSpec{Brokers: []string{"127.0.0.1:PORT"}, Topic: "bench_NNN", Encoding: "raw | otlp_proto", Dir: "<scratch>"}
	for _, k := range []string{sysOurs, sysOursSync, sysOursDefaults, sysOursPerKey, sysContrib, sysContribSync} {
		y, _ := yaml.Marshal(map[string]any{k: exporterConfig(k, dummy)})
		b.Write(y)
	}
	w("```\n\n")

	w("## Machine\n\n")
	w("- %d CPUs: %s\n- %.1f GiB memory, Linux %s\n- %s\n- load average at start: %s, at the end: %s (the machine is shared; numbers move with it)\n",
		r.machine.CPUs, r.machine.Model, r.machine.MemGiB, r.machine.Kernel, r.machine.Go, r.machine.LoadAvg, r.loadEnd)
	if v := javaVersion(); v != "" {
		w("- %s\n", v)
	}
	w("- Apache Kafka %s (brokers and Java client) from Maven Central via testbench/realkafka\n", realkafka.Version)
	for _, v := range moduleVersions() {
		w("- %s\n", v)
	}
	w("\n## Commands\n\n```sh\n")
	w("make bench                      # = cd bench && go run . (two full runs)\n")
	w("cd bench && go run .%s   # this run\n", argString(o.args))
	w("cd bench && go run . -quick     # smoke run, 10x fewer records, one run\n")
	w("cd bench && go run . -runs 1    # one full run\n")
	w("cd bench && go run . -brokers devbroker,kafka-3 -systems kafkabatcher,contrib,java   # a subset\n")
	w("cd bench && go run . -scenarios paced -brokers devbroker,kafka-1 -paced-brokers devbroker,kafka-1 -out /tmp/b.md -chart /tmp/b.png -results /tmp/b.json   # the everyday load only (a partial report)\n")
	w("cd bench && go run . -scenarios throughput -brokers kafka-1,kafka-3 -systems kafkabatcher,java,java-tuned -out /tmp/b.md -chart /tmp/b.png -results /tmp/b.json   # against the tuned Java producer\n")
	w("cd bench && go test -run '^$' -bench Floor .   # what a record costs at best, part by part\n")
	w("cd bench && go run . -render results.json,results-run-b.json   # the report and chart again from the saved figures of both runs (after NOTES.md changed)\n")
	w("cd bench && go run . -brokers devbroker -systems kafkabatcher -cpuprofile-dir /tmp/prof -heapprofile-dir /tmp/heap -out /tmp/b.md -chart /tmp/b.png\n")
	w("go tool pprof -top /tmp/prof/devbroker_kafkabatcher_200B_raw_p6_0.pprof\n")
	w("go tool pprof -sample_index=inuse_space -top /tmp/heap/devbroker_kafkabatcher-defaults_200B_raw_p1000_k10000_0.heap\n```\n\n")
	if notes, err := os.ReadFile("NOTES.md"); err == nil {
		w("%s\n", strings.TrimSpace(string(notes)))
	}
	return b.String()
}

// runs is r and its later runs, in order.
func (r report) runs() []report { return append([]report{r}, r.others...) }

// targetMatrix is the targets at a glance: one row per target and
// encoding, one column per broker, each cell the ratio and whether it met.
func (r report) targetMatrix() string {
	var brokers []string
	type rowKey struct{ text, encoding string }
	var rows []rowKey
	runs := r.runs()
	cells := map[rowKey]map[string][]string{} // per broker, one cell per run
	for run, rr := range runs {
		for _, oc := range rr.outcomes() {
			if !slices.Contains(brokers, oc.scenario.broker) {
				brokers = append(brokers, oc.scenario.broker)
			}
			enc := oc.scenario.encoding
			if oc.scenario.keys > 0 {
				enc = fmt.Sprintf("raw, %d partitions keyed", oc.scenario.partitions)
			}
			k := rowKey{oc.text, enc}
			if cells[k] == nil {
				cells[k] = map[string][]string{}
				rows = append(rows, k)
			}
			mark := "✓"
			if !oc.met {
				mark = "✗"
			}
			if cells[k][oc.scenario.broker] == nil {
				cells[k][oc.scenario.broker] = make([]string, len(runs))
			}
			cells[k][oc.scenario.broker][run] = fmt.Sprintf("%.2f %s", oc.ratio, mark)
		}
	}
	order := map[string]int{}
	for i, t := range targets {
		order[t.text] = i
	}
	rank := func(k rowKey) int {
		if i, ok := order[k.text]; ok {
			return i
		}
		return len(targets)
	}
	slices.SortStableFunc(rows, func(a, b rowKey) int { return rank(a) - rank(b) })
	var b strings.Builder
	b.WriteString("Ratio ours / peer (or / bound) and whether the target is met (✓) or missed (✗), 200 B records")
	if len(runs) > 1 {
		names := make([]string, len(runs))
		for i := range runs {
			names[i] = "run " + runName(i)
		}
		fmt.Fprintf(&b, "; each cell is %s, in that order (— where a run has no figure)", strings.Join(names, " / "))
	}
	b.WriteString(":\n\n| target | records |")
	for _, br := range brokers {
		b.WriteString(" " + br + " |")
	}
	b.WriteString("\n|---|---|" + strings.Repeat("---:|", len(brokers)) + "\n")
	for _, k := range rows {
		fmt.Fprintf(&b, "| %s | %s |", k.text, k.encoding)
		for _, br := range brokers {
			c := "—"
			if per := cells[k][br]; per != nil {
				for i := range per {
					if per[i] == "" {
						per[i] = "—"
					}
				}
				c = strings.Join(per, " / ")
			}
			b.WriteString(" " + c + " |")
		}
		b.WriteString("\n")
	}
	return b.String()
}

// javaVersion is the first line of `java -version`, "" without java.
func javaVersion() string {
	out, err := exec.Command("java", "-version").CombinedOutput()
	if err != nil {
		return ""
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
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
	for run, rr := range r.runs() {
		if len(r.others) > 0 {
			fmt.Fprintf(&b, "run %s:\n", runName(run))
		}
		for _, o := range rr.outcomes() {
			mark := "met"
			if !o.met {
				mark = "MISSED"
			}
			fmt.Fprintf(&b, "%-55s %-62s %5.2f %s\n", o.scenario, o.text, o.ratio, mark)
		}
	}
	return b.String()
}
