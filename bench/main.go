// Command bench runs the kafkabatcher exporter side by side with its peers
// against several brokers (testbench/broker: the devbroker, a real one-node
// Kafka 4.4 and a real three-node cluster, each also behind a toxiproxy
// adding 2 ms) and writes BENCHMARKS.md with a chart.
//
//	cd bench && go run .                      # full run (make bench)
//	cd bench && go run . -quick               # smoke run
//	cd bench && go run . -brokers devbroker   # one broker
//	cd bench && go run . -scenarios paced -out /tmp/b.md -chart /tmp/b.png -results /tmp/b.json   # the everyday load only
//
// Each system runs in its own child process (this binary re-executed with
// -child), so CPU time, peak RSS and allocations are that system's alone.
// The systems, all sending the same records with acks=all and no
// compression:
//
//   - kafkabatcher: this exporter through its factory, delivery async.
//   - kafkabatcher-sync: the same with delivery sync (ConsumeLogs returns at
//     the broker's acknowledgement), for latency.
//   - contrib: the contrib kafka exporter v0.165.1 (franz-go) through its
//     factory with its default sending_queue (block_on_overflow on).
//   - contrib-sync: the same with sending_queue disabled, so ConsumeLogs
//     returns after the produce.
//   - sarama: a raw sarama AsyncProducer fed the exporter's pre-encoded values.
//   - franz-go: a raw franz-go client fed the same values.
//   - java: the Apache Kafka Java client (java/Producer.java) fed the same
//     values, the ceiling a JVM client reaches on the same broker.
//   - kafkabatcher-defaults: this exporter with default settings (the
//     peak-RSS-under-saturation row, and the keyed many-partition runs).
//   - contrib-per-record: contrib fed one record per call, so its
//     otlp_proto messages hold one record each, like ours.
//   - kafkabatcher-per-key: this exporter with message_per: key, so its
//     otlp_proto messages hold a call's records, like contrib's.
//   - java-tuned: the Java client with 1 MiB batches and linger.ms 10, the
//     JVM client's ceiling on the same broker.
//   - floor: the paced scenarios' receiving path with the collector's nop
//     exporter, so an exporter's own CPU per record is its total less the
//     floor's (paced.go).
//
// Scenarios (-scenarios): throughput (every system as fast as it goes, per
// shape and encoding), saturation (kafkabatcher-defaults against contrib
// with the default max_pending_bytes full), keyed (1,000 partitions) and
// paced (the everyday load: kafkabatcher-defaults, contrib and the floor at
// the fixed -rates, on -paced-brokers).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.yaml.in/yaml/v3"

	"github.com/kafkabatcher/kafkabatcherexporter/testbench/broker"
	"github.com/kafkabatcher/kafkabatcherexporter/testbench/realkafka"
)

// options are the driver's flags.
type options struct {
	records      int
	recordsLarge int
	callers      int
	perCall      int
	repeat       int
	systems      []string
	shapes       []string
	encodings    []string
	root         string
	out          string
	chart        string
	profileDir   string
	quick        bool
	syncBatch    int
	args         []string // as given, for the report

	brokers           []string // testbench/broker spec names
	keyedBrokers      []string // brokers that also run the keyed scenario
	keyedPartitions   int
	keys              int
	keyedRecords      int
	saturationRecords int
	heapProfileDir    string
	// keyedOverheadMiB is the fixed overhead the keyed target allows above
	// max_pending_bytes.
	keyedOverheadMiB int
	resultsFile      string
	// warmupRecords go through franz-go to every real Kafka before its
	// first measured run.
	warmupRecords int
	// runs is how many full runs one invocation makes; the report's
	// targets show each run's ratio.
	runs int

	// scenarios are the kinds of plan run (allScenarios by default).
	scenarios []string
	// rates are the paced scenarios' records/s, pacedSeconds their length
	// and pacedBrokers the brokers that run them.
	rates        []int
	pacedSeconds float64
	pacedBrokers []string
}

// Scenario kinds (-scenarios).
const (
	scenThroughput = "throughput"
	scenSaturation = "saturation"
	scenKeyed      = "keyed"
	scenPaced      = "paced"
)

var allScenarios = []string{scenThroughput, scenSaturation, scenKeyed, scenPaced}

// partial reports whether o runs only some of the scenario kinds.
func (o options) partial() bool {
	for _, sc := range allScenarios {
		if !slices.Contains(o.scenarios, sc) {
			return true
		}
	}
	return false
}

// allBrokers are the brokers of a full run.
var allBrokers = []string{"devbroker", "devbroker+2ms", "kafka-1", "kafka-1+2ms", "kafka-3", "kafka-3+2ms"}

const partitions = 6

// perRecordDivisor divides the records of a contrib-per-record run: it
// makes one Kafka round trip per record.
const perRecordDivisor = 30

func main() {
	child := flag.String("child", "", "internal: run one system in this process (JSON run spec)")
	var o options
	flag.IntVar(&o.records, "n", 200_000, "records per run for the 200-byte shape")
	flag.IntVar(&o.recordsLarge, "n-large", 100_000, "records per run for the 2 KiB shape")
	flag.IntVar(&o.callers, "callers", 4, "concurrent ConsumeLogs callers (or feeding goroutines)")
	flag.IntVar(&o.perCall, "per-call", 100, "records per ConsumeLogs call")
	flag.IntVar(&o.repeat, "repeat", 3, "runs per system and scenario; the median by records/s is reported")
	systems := flag.String("systems", strings.Join(allSystems, ","), "systems to run, comma-separated")
	shapeList := flag.String("shapes", "200B", "record shapes, comma-separated (200B, 2KiB)")
	encodings := flag.String("encodings", "raw,otlp_proto", "encodings, comma-separated")
	flag.StringVar(&o.root, "root", "..", "repository root (for cmd/devbroker)")
	flag.StringVar(&o.out, "out", "../BENCHMARKS.md", "report to write")
	flag.StringVar(&o.chart, "chart", "results.png", "chart to write (PNG), referenced from the report")
	flag.StringVar(&o.profileDir, "cpuprofile-dir", "", "write a pprof CPU profile of every kafkabatcher child into this directory")
	flag.IntVar(&o.syncBatch, "sync-batch-size", 0, "batch.size of kafkabatcher-sync (0: 500, as the async kafkabatcher)")
	flag.BoolVar(&o.quick, "quick", false, "smoke run: 10x fewer records, one repeat")
	brokers := flag.String("brokers", strings.Join(allBrokers, ","), "brokers, comma-separated: devbroker, kafka-1 (one real node), kafka-3 (three, replication 3), each optionally +Nms (a toxiproxy adding N ms)")
	keyedBrokers := flag.String("keyed-brokers", "devbroker", "brokers that also run the keyed many-partition scenario")
	flag.IntVar(&o.keyedPartitions, "keyed-partitions", 1000, "partitions of the keyed scenario's topic (0: no keyed scenario); it also runs at 6 for comparison")
	flag.IntVar(&o.keyedOverheadMiB, "keyed-overhead-mib", 64, "fixed overhead above max_pending_bytes the keyed target allows, MiB")
	flag.IntVar(&o.keys, "keys", 10_000, "distinct client.id keys of the keyed scenario")
	flag.IntVar(&o.keyedRecords, "n-keyed", 1_000_000, "records per keyed run")
	flag.IntVar(&o.saturationRecords, "n-saturation", 600_000, "records per saturation run (kafkabatcher-defaults against contrib; 0: none): enough to fill max_pending_bytes several times")
	flag.StringVar(&o.heapProfileDir, "heapprofile-dir", "", "write a pprof heap profile of every kafkabatcher child (when its callers are done) into this directory")
	flag.StringVar(&o.resultsFile, "results", "results.json", "file that keeps the run's figures (for -render); a second run's go beside it (results-run-b.json)")
	flag.IntVar(&o.warmupRecords, "warmup-records", 1_000_000, "records sent through franz-go to every real Kafka before its first measured run, not measured (0: none)")
	flag.IntVar(&o.runs, "runs", 2, "full runs, one after the other: the tables are the first run's, the targets show every run's ratio")
	renderFrom := flag.String("render", "", "write the report and chart from these saved -results files (comma-separated, one per run) instead of measuring")
	scenarios := flag.String("scenarios", strings.Join(allScenarios, ","), "scenario kinds to run, comma-separated: "+strings.Join(allScenarios, ", "))
	rates := flag.String("rates", "20000,100000", "records/s of the paced scenarios (the everyday load), comma-separated")
	flag.Float64Var(&o.pacedSeconds, "paced-seconds", 5, "length of a paced run's window, seconds (records = rate × seconds)")
	pacedBrokers := flag.String("paced-brokers", "devbroker,kafka-1,kafka-3", "brokers that also run the paced scenarios")
	oursSetFlag := flag.String("ours-set", "", "extra settings of the kafkabatcher systems as dotted.key=value,... (e.g. producer.max_in_flight=5,producer.idempotent=true,max_pending_bytes=16777216)")
	flag.Parse()

	if *child != "" {
		if err := runChild(*child); err != nil {
			fmt.Fprintln(os.Stderr, "bench child:", err)
			os.Exit(1)
		}
		return
	}
	o.args = os.Args[1:]
	o.systems = splitList(*systems)
	o.shapes = splitList(*shapeList)
	o.encodings = splitList(*encodings)
	o.brokers = splitList(*brokers)
	o.keyedBrokers = splitList(*keyedBrokers)
	o.scenarios = splitList(*scenarios)
	o.pacedBrokers = splitList(*pacedBrokers)
	for _, sc := range o.scenarios {
		if !slices.Contains(allScenarios, sc) {
			fmt.Fprintf(os.Stderr, "bench: -scenarios: unknown %q (want %s)\n", sc, strings.Join(allScenarios, ", "))
			os.Exit(2)
		}
	}
	for _, r := range splitList(*rates) {
		n, err := strconv.Atoi(r)
		if err != nil || n <= 0 {
			fmt.Fprintf(os.Stderr, "bench: -rates: %q is not a positive number of records/s\n", r)
			os.Exit(2)
		}
		o.rates = append(o.rates, n)
	}
	for _, kv := range splitList(*oursSetFlag) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			fmt.Fprintf(os.Stderr, "bench: -ours-set %q: want dotted.key=value\n", kv)
			os.Exit(2)
		}
		var val any
		if err := yaml.Unmarshal([]byte(v), &val); err != nil {
			val = v
		}
		oursSet[k] = val
	}
	if o.syncBatch == 0 {
		o.syncBatch = 500
	}
	if o.quick {
		o.records /= 10
		o.recordsLarge /= 10
		o.keyedRecords /= 10
		o.saturationRecords /= 10
		o.pacedSeconds /= 5
		o.repeat = 1
		o.runs = 1
		o.warmupRecords /= 10
	}
	if o.runs < 1 {
		fmt.Fprintln(os.Stderr, "bench: -runs must be at least 1")
		os.Exit(2)
	}
	if *renderFrom != "" {
		if err := renderSaved(splitList(*renderFrom), o); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := drive(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// drive starts each broker in turn, runs every scenario and system against
// it in a child process, and writes the report and chart.
func drive(ctx context.Context, o options) error {
	for _, s := range o.systems {
		if _, err := newSystem(s); err != nil {
			return err
		}
	}
	for _, s := range o.shapes {
		if _, err := shapeByName(s); err != nil {
			return err
		}
	}
	var specs []broker.Spec
	for _, name := range o.brokers {
		bs, err := broker.ParseSpec(name)
		if err != nil {
			return err
		}
		specs = append(specs, bs)
	}
	if o.records%o.perCall != 0 || o.recordsLarge%o.perCall != 0 || o.keyedRecords%o.perCall != 0 || o.saturationRecords%o.perCall != 0 {
		return fmt.Errorf("-n, -n-large, -n-keyed and -n-saturation must be multiples of -per-call (%d)", o.perCall)
	}
	tmp, err := os.MkdirTemp("", "kafkabatcher-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	for _, d := range []string{o.profileDir, o.heapProfileDir} {
		if d != "" {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return err
			}
		}
	}

	machine := describeMachine()
	fmt.Fprintf(os.Stderr, "bench: %s\n", machine.oneLine())
	var floor *floorCost
	if slices.Contains(o.scenarios, scenPaced) {
		// What a record costs at best, before any broker loads the machine.
		f, err := measureFloorCost()
		if err != nil {
			return err
		}
		floor = &f
		fmt.Fprintf(os.Stderr, "bench: a record at best: copy %.1f + encode %.1f + CRC32C %.1f + syscall %.1f = %.1f ns\n",
			f.CopyNs, f.EncodeNs, f.CRCNs, f.SyscallNs, f.totalNs())
	}
	devbrokerBin := filepath.Join(tmp, "devbroker")
	build := exec.CommandContext(ctx, "go", "build", "-o", devbrokerBin, "./cmd/devbroker")
	build.Dir = o.root
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("build devbroker: %w", err)
	}
	var dist *realkafka.Dist
	needDist := slices.Contains(o.systems, sysJava)
	for _, bs := range specs {
		needDist = needDist || bs.Kind != broker.Devbroker
	}
	if needDist {
		cache, err := realkafka.CacheDir()
		if err != nil {
			return err
		}
		if dist, err = realkafka.Fetch(ctx, cache, os.Stderr); err != nil {
			return err
		}
	}

	exe, err := os.Executable()
	if err != nil {
		return err
	}
	var reps []report
	runNo := 0
	for run := range o.runs {
		if o.runs > 1 {
			fmt.Fprintf(os.Stderr, "bench: full run %s of %d (load %s)\n", runName(run), o.runs, loadAvg())
		}
		started := time.Now()
		var results []runResult
		for _, bs := range specs {
			bs.DevbrokerBin, bs.Dist, bs.Dir = devbrokerBin, dist, filepath.Join(tmp, "broker-"+bs.Name())
			fmt.Fprintf(os.Stderr, "bench: starting %s (load %s)\n", bs.Name(), loadAvg())
			b, err := broker.Start(ctx, bs)
			if err != nil {
				return fmt.Errorf("%s: %w", bs.Name(), err)
			}
			fmt.Fprintf(os.Stderr, "bench: %s on %s\n", b.Name(), strings.Join(b.Bootstrap(), ","))
			res, err := driveBroker(ctx, o, exe, b, dist, tmp, &runNo)
			b.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", bs.Name(), err)
			}
			results = append(results, res...)
		}
		rep := report{opts: o, machine: machine, results: results, took: time.Since(started), loadEnd: loadAvg(), when: time.Now().UTC(), floor: floor}
		machine = describeMachine() // the next run's load at its start
		if o.resultsFile != "" {
			if err := saveResults(runFile(o.resultsFile, run), rep); err != nil {
				return err
			}
		}
		reps = append(reps, rep)
	}
	rep := reps[0]
	rep.others = reps[1:]
	return render(rep)
}

// runName is "A", "B", ... for the runs of one invocation.
func runName(run int) string { return string(rune('A' + run)) }

// runFile is where run's figures are kept: path itself for the first run,
// path with "-run-b" (and so on) before its extension for the others.
func runFile(path string, run int) string {
	if run == 0 {
		return path
	}
	ext := filepath.Ext(path)
	return strings.TrimSuffix(path, ext) + "-run-" + strings.ToLower(runName(run)) + ext
}

// render writes the report and the chart.
func render(rep report) error {
	o := rep.opts
	if err := drawChart(o.chart, rep.results, o, rep.floor); err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	if err := os.WriteFile(o.out, []byte(rep.markdown()+keptSections(o.out)), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench: wrote %s and %s (run took %s; load now %s)\n", o.out, o.chart, rep.took.Round(time.Second), loadAvg())
	fmt.Print(rep.summary())
	return nil
}

// savedRun is what -results keeps of a run, so that -render can write the
// report again (after NOTES.md changed) without measuring again.
type savedRun struct {
	Args              []string    `json:"args"`
	Systems           []string    `json:"systems"`
	Callers           int         `json:"callers"`
	PerCall           int         `json:"per_call"`
	Repeat            int         `json:"repeat"`
	SyncBatch         int         `json:"sync_batch"`
	Keys              int         `json:"keys"`
	KeyedPartitions   int         `json:"keyed_partitions"`
	KeyedRecords      int         `json:"keyed_records"`
	SaturationRecords int         `json:"saturation_records"`
	Scenarios         []string    `json:"scenarios,omitempty"`
	Rates             []int       `json:"rates,omitempty"`
	PacedSeconds      float64     `json:"paced_seconds,omitempty"`
	FloorCost         *floorCost  `json:"floor_cost,omitempty"`
	Machine           machine     `json:"machine"`
	LoadEnd           string      `json:"load_end"`
	TookNs            int64       `json:"took_ns"`
	When              time.Time   `json:"when"`
	Results           []runResult `json:"results"`
}

func saveResults(path string, rep report) error {
	o := rep.opts
	js, err := json.MarshalIndent(savedRun{
		Args: o.args, Systems: o.systems, Callers: o.callers, PerCall: o.perCall, Repeat: o.repeat,
		SyncBatch: o.syncBatch, Keys: o.keys, KeyedPartitions: o.keyedPartitions, KeyedRecords: o.keyedRecords, SaturationRecords: o.saturationRecords,
		Scenarios: o.scenarios, Rates: o.rates, PacedSeconds: o.pacedSeconds, FloorCost: rep.floor,
		Machine: rep.machine, LoadEnd: rep.loadEnd, TookNs: rep.took.Nanoseconds(), When: rep.when, Results: rep.results,
	}, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, js, 0o644)
}

// renderSaved writes the report of saved runs, the first one's tables and
// every run's targets; o gives the output paths and the keyed overhead.
func renderSaved(paths []string, o options) error {
	var reps []report
	for _, path := range paths {
		js, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var sr savedRun
		if err := json.Unmarshal(js, &sr); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		o := o
		o.args, o.systems, o.callers, o.perCall, o.repeat = sr.Args, sr.Systems, sr.Callers, sr.PerCall, sr.Repeat
		o.syncBatch, o.keys, o.keyedPartitions, o.keyedRecords = sr.SyncBatch, sr.Keys, sr.KeyedPartitions, sr.KeyedRecords
		o.saturationRecords = sr.SaturationRecords
		o.scenarios, o.rates, o.pacedSeconds = sr.Scenarios, sr.Rates, sr.PacedSeconds
		if sr.Scenarios == nil { // saved before -scenarios: a full run of its day
			o.scenarios = allScenarios
		}
		reps = append(reps, report{opts: o, machine: sr.Machine, results: sr.Results, took: time.Duration(sr.TookNs), loadEnd: sr.LoadEnd, when: sr.When, floor: sr.FloorCost})
	}
	if len(reps) == 0 {
		return fmt.Errorf("-render: no results file named")
	}
	rep := reps[0]
	rep.others = reps[1:]
	return render(rep)
}

// plan is one scenario on one broker: the systems that run it.
type plan struct {
	shape, encoding string
	records         int
	partitions      int32
	keys            int
	saturation      bool
	rate            int // records/s of a paced plan, 0 otherwise
	systems         []string
}

// pacedSystems are the systems of the paced scenarios, in table order.
var pacedSystems = []string{sysOursDefaults, sysOursPerKey, sysContrib, sysFloor}

// plans lists the scenarios of one broker: every shape and encoding with
// every system that makes sense for it, then the keyed runs.
func plans(o options, brokerName string) []plan {
	var out []plan
	for _, sh := range o.shapes {
		if !slices.Contains(o.scenarios, scenThroughput) {
			break
		}
		n := o.records
		if sh != "200B" {
			n = o.recordsLarge
		}
		for _, enc := range o.encodings {
			var sys []string
			for _, s := range o.systems {
				if (s == sysContribPerRecord || s == sysOursPerKey) && enc != "otlp_proto" {
					continue // raw is one message per record already; message_per: key is OTLP's
				}
				if s == sysOursDefaults || s == sysFloor {
					continue // their own scenarios below
				}
				sys = append(sys, s)
			}
			out = append(out, plan{shape: sh, encoding: enc, records: n, partitions: partitions, systems: sys})
		}
	}
	// Saturation: enough records that this exporter's default
	// max_pending_bytes fills and stays full, defaults against contrib.
	if slices.Contains(o.systems, sysOursDefaults) && o.saturationRecords > 0 && slices.Contains(o.scenarios, scenSaturation) {
		for _, enc := range o.encodings {
			sys := []string{sysOursDefaults}
			if slices.Contains(o.systems, sysContrib) {
				sys = append(sys, sysContrib)
			}
			out = append(out, plan{shape: "200B", encoding: enc, records: o.saturationRecords, partitions: partitions,
				saturation: true, systems: sys})
		}
	}
	// The everyday load: fixed rates, defaults, and the floor.
	if slices.Contains(o.pacedBrokers, brokerName) && slices.Contains(o.scenarios, scenPaced) {
		for _, rate := range o.rates {
			for _, enc := range o.encodings {
				var sys []string
				for _, s := range pacedSystems {
					if slices.Contains(o.systems, s) && (s != sysOursPerKey || enc == "otlp_proto") {
						sys = append(sys, s)
					}
				}
				if len(sys) > 0 {
					out = append(out, plan{shape: "200B", encoding: enc, records: pacedRecords(rate, o.pacedSeconds, o.perCall),
						partitions: partitions, rate: rate, systems: sys})
				}
			}
		}
	}
	if slices.Contains(o.keyedBrokers, brokerName) && o.keyedPartitions > 0 && slices.Contains(o.scenarios, scenKeyed) {
		for _, p := range []int32{partitions, int32(o.keyedPartitions)} {
			out = append(out, plan{shape: "200B", encoding: "raw", records: o.keyedRecords, partitions: p,
				keys: o.keys, systems: []string{sysOursDefaults}})
		}
	}
	return out
}

// driveBroker runs every plan against b.
func driveBroker(ctx context.Context, o options, exe string, b broker.Broker, dist *realkafka.Dist, tmp string, runNo *int) ([]runResult, error) {
	adminCl, err := kgo.NewClient(kgo.SeedBrokers(b.Bootstrap()...))
	if err != nil {
		return nil, err
	}
	defer adminCl.Close()
	adm := kadm.NewClient(adminCl)
	if err := warmUp(ctx, o, exe, adm, b, tmp, runNo); err != nil {
		return nil, err
	}
	var results, failed []runResult
	for _, pl := range plans(o, b.Name()) {
		// Repetitions go round the systems, so a burst of load on a
		// shared machine does not land on one system's runs only.
		reps := make(map[string][]runResult)
		for rep := range o.repeat {
			for _, sys := range pl.systems {
				n := pl.records
				if sys == sysContribPerRecord {
					// One produce per record through 10 queue consumers:
					// a rate, not a volume.
					n = max(o.perCall, n/perRecordDivisor/o.perCall*o.perCall)
				}
				spec := nextSpec(o, b, tmp, runNo)
				spec.System, spec.Shape, spec.Encoding, spec.Records = sys, pl.shape, pl.encoding, n
				spec.Partitions, spec.Keys, spec.Saturation, spec.Rate = pl.partitions, pl.keys, pl.saturation, pl.rate
				if dist != nil {
					spec.JavaLib = dist.Lib
				}
				label := fmt.Sprintf("%s_%s_%s_%s_p%d_%d", b.Name(), sys, pl.shape, pl.encoding, pl.partitions, rep)
				if pl.saturation {
					label = fmt.Sprintf("%s_%s_%s_%s_p%d_saturation_%d", b.Name(), sys, pl.shape, pl.encoding, pl.partitions, rep)
				}
				if pl.rate > 0 {
					label = fmt.Sprintf("%s_%s_%s_%s_p%d_r%d_%d", b.Name(), sys, pl.shape, pl.encoding, pl.partitions, pl.rate, rep)
				}
				if pl.keys > 0 {
					label = fmt.Sprintf("%s_%s_%s_%s_p%d_k%d_%d", b.Name(), sys, pl.shape, pl.encoding, pl.partitions, pl.keys, rep)
				}
				if o.profileDir != "" && (strings.HasPrefix(sys, "kafkabatcher") || pl.rate > 0 && sys != sysJava) {
					p, err := filepath.Abs(filepath.Join(o.profileDir, label+".pprof"))
					if err != nil {
						return nil, err
					}
					spec.CPUProfile = p
				}
				if o.heapProfileDir != "" && strings.HasPrefix(sys, "kafkabatcher") {
					p, err := filepath.Abs(filepath.Join(o.heapProfileDir, label+".heap"))
					if err != nil {
						return nil, err
					}
					spec.HeapProfile = p
				}
				res, err := runOne(ctx, exe, adm, b, spec)
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				if err != nil {
					// One failed run must not throw away a long bench: the
					// report says which failed and why.
					fmt.Fprintf(os.Stderr, "bench: %s %s %s %s p%d FAILED: %v\n", b.Name(), sys, pl.shape, pl.encoding, pl.partitions, err)
					res.Spec, res.Failed = spec, err.Error()
				}
				res.LoadAvg = loadAvg()
				fmt.Fprintf(os.Stderr, "bench: %-12s %-21s %-4s %-10s p%-4d %9.0f rec/s %6.2f µs CPU/rec %6.1f allocs/rec %5.0f MiB p50 %s p99 %s load %s\n",
					b.Name(), sys, pl.shape, pl.encoding, pl.partitions, res.recordsPerSec(), res.cpuMicrosPerRecord(), res.allocsPerRecord(),
					res.peakRSSMiB(), fmtMs(res.P50Ms, res.LatencyOf), fmtMs(res.P99Ms, res.LatencyOf), res.LoadAvg)
				if res.Detail != "" {
					fmt.Fprintf(os.Stderr, "bench:   %s\n", res.Detail)
				}
				if res.HistOf != "" {
					fmt.Fprintf(os.Stderr, "bench:   %s: p50 %.2fms p99 %.2fms\n", res.HistOf, res.HistP50Ms, res.HistP99Ms)
				}
				if pl.rate > 0 {
					fmt.Fprintf(os.Stderr, "bench:   paced at %d rec/s: achieved %.0f rec/s\n", pl.rate, res.achievedRate())
				}
				reps[sys] = append(reps[sys], res)
			}
		}
		for _, sys := range pl.systems {
			if m, ok := median(reps[sys]); ok {
				results = append(results, m)
			} else {
				failed = append(failed, reps[sys][0])
			}
		}
	}
	return append(results, failed...), nil
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

// nextSpec is the next run on b: its number, a topic and a scratch
// directory of its own, and the callers and settings every run shares.
func nextSpec(o options, b broker.Broker, tmp string, runNo *int) runSpec {
	*runNo++
	return runSpec{
		Callers: o.callers, PerCall: o.perCall,
		Brokers: b.Bootstrap(), BrokerName: b.Name(), ReplicationFactor: b.ReplicationFactor(),
		SyncBatchSize: o.syncBatch, OursSet: oursSet,
		Topic: fmt.Sprintf("bench_%03d", *runNo),
		Dir:   filepath.Join(tmp, fmt.Sprintf("run%03d", *runNo)),
	}
}

// warmUp sends o.warmupRecords through franz-go to a real Kafka before
// anything is measured on it, so that the first scenario does not pay for
// the brokers' JIT compilation and first log segments; not measured, and a
// failure is only logged.
func warmUp(ctx context.Context, o options, exe string, adm *kadm.Client, b broker.Broker, tmp string, runNo *int) error {
	if o.warmupRecords <= 0 || strings.HasPrefix(b.Name(), "devbroker") {
		return nil
	}
	spec := nextSpec(o, b, tmp, runNo)
	spec.System, spec.Shape, spec.Encoding, spec.Partitions = sysFranz, "200B", "raw", partitions
	spec.Records = o.warmupRecords / o.perCall * o.perCall
	start := time.Now()
	res, err := runOne(ctx, exe, adm, b, spec)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %s warm-up (not measured) failed: %v\n", b.Name(), err)
		return nil
	}
	fmt.Fprintf(os.Stderr, "bench: %s warmed up with %d records through franz-go in %s (%.0f rec/s, not measured)\n",
		b.Name(), spec.Records, time.Since(start).Round(time.Second), res.recordsPerSec())
	return nil
}

// runOne creates a fresh topic, runs spec in a child, checks what reached
// the topic, and deletes the topic so the broker's memory stays flat.
func runOne(ctx context.Context, exe string, adm *kadm.Client, b broker.Broker, spec runSpec) (runResult, error) {
	if err := b.CreateTopic(ctx, spec.Topic, spec.Partitions); err != nil {
		return runResult{}, err
	}
	defer func() {
		if err := b.DeleteTopic(context.Background(), spec.Topic); err != nil {
			fmt.Fprintf(os.Stderr, "bench: delete topic %s: %v\n", spec.Topic, err)
		}
	}()
	if err := os.MkdirAll(spec.Dir, 0o700); err != nil {
		return runResult{}, err
	}
	defer os.RemoveAll(spec.Dir)
	// A paced run's records are read back while it runs: their latency
	// from the call to a consumer (paced.go).
	var rb *readBack
	if spec.Rate > 0 && spec.System != sysFloor {
		var err error
		if rb, err = startReadBack(ctx, b.Bootstrap(), spec.Topic, spec.Partitions); err != nil {
			return runResult{}, err
		}
		defer func() {
			if rb != nil {
				rb.stop(0, 0)
			}
		}()
	}
	js, err := json.Marshal(spec)
	if err != nil {
		return runResult{}, err
	}
	cmd := exec.CommandContext(ctx, exe, "-child", string(js))
	cmd.Stderr = os.Stderr
	start := time.Now()
	out, err := cmd.Output()
	if err != nil {
		return runResult{}, fmt.Errorf("child: %w", err)
	}
	var res runResult
	if err := json.Unmarshal(lastLine(out), &res); err != nil {
		return runResult{}, fmt.Errorf("child output %q: %w", out, err)
	}
	res.Wall = time.Since(start).Nanoseconds()
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		res.MaxRSSKiB = ru.Maxrss // KiB on Linux
	}
	if res.Errors > 0 {
		return res, fmt.Errorf("%d records failed: %s", res.Errors, res.FirstError)
	}
	if spec.System == sysFloor {
		return res, nil // it sends nothing
	}
	if rb != nil {
		lat, err := rb.stop(res.Records, 20*time.Second)
		rb = nil
		if err != nil {
			return res, fmt.Errorf("read back: %w", err)
		}
		if len(lat) < res.Records {
			return res, fmt.Errorf("read back %d stamped records of %d", len(lat), res.Records)
		}
		if res.LatencyOf != "" {
			res.HistOf, res.HistP50Ms, res.HistP99Ms = res.LatencyOf, res.P50Ms, res.P99Ms
		}
		res.LatencyOf = pacedLatencyOf
		res.P50Ms, res.P99Ms = percentiles(lat)
	}
	// Everything sent (window plus warm-up round) must be in the topic: one
	// message per record, except contrib's otlp_proto, one per call. A
	// real broker may answer ListOffsets for a partition late: ask again
	// for a while before calling a run short.
	want := int64(res.Records + spec.PerCall)
	switch {
	case spec.System == sysContribPerRecord:
		want = int64(res.Records + 1)
	case (strings.HasPrefix(spec.System, sysContrib) || spec.System == sysOursPerKey) && spec.Encoding != "raw":
		want = int64((res.Records + spec.PerCall) / spec.PerCall)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		res.InTopic = 0
		offs, err := adm.ListEndOffsets(ctx, spec.Topic)
		if err == nil {
			offs.Each(func(o kadm.ListedOffset) {
				if o.Err == nil {
					res.InTopic += o.Offset
				}
			})
		}
		if err == nil && res.InTopic >= want {
			return res, nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return res, fmt.Errorf("end offsets: %w", err)
			}
			return res, fmt.Errorf("topic holds %d messages, want at least %d", res.InTopic, want)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func lastLine(b []byte) []byte {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return []byte(lines[len(lines)-1])
}

// median returns the run with the median records/s, with CPU, allocations
// and peak RSS replaced by their own medians over rs (all runs send the same
// number of records), so one disturbed run moves no column. Failed runs
// are left out; false when every run failed.
func median(all []runResult) (runResult, bool) {
	var rs []runResult
	for _, r := range all {
		if r.Failed == "" {
			rs = append(rs, r)
		}
	}
	if len(rs) == 0 {
		return runResult{}, false
	}
	mid := func(v []float64) float64 {
		s := slices.Clone(v)
		slices.Sort(s)
		return s[len(s)/2]
	}
	var rate, cpu, mallocs, bytes, rss, hwm, heap, crss []float64
	for _, r := range rs {
		rate = append(rate, r.recordsPerSec())
		cpu = append(cpu, float64(r.CPUNs))
		mallocs = append(mallocs, float64(r.Mallocs))
		bytes = append(bytes, float64(r.AllocBytes))
		rss = append(rss, float64(r.MaxRSSKiB))
		hwm = append(hwm, float64(r.HWMKiB))
		heap = append(heap, float64(r.PeakHeapBytes))
		crss = append(crss, float64(r.ChildMaxRSSKiB))
	}
	m := mid(rate)
	out := rs[0]
	for _, r := range rs {
		if r.recordsPerSec() == m {
			out = r
			break
		}
	}
	out.CPUNs = int64(mid(cpu))
	out.Mallocs = uint64(mid(mallocs))
	out.AllocBytes = uint64(mid(bytes))
	out.MaxRSSKiB = int64(mid(rss))
	out.HWMKiB = int64(mid(hwm))
	out.PeakHeapBytes = uint64(mid(heap))
	out.ChildMaxRSSKiB = int64(mid(crss))
	out.Repeats, out.FailedRepeats = len(rs), len(all)-len(rs)
	return out, true
}

func fmtMs(v float64, of string) string {
	if of == "" {
		return "—"
	}
	return fmt.Sprintf("%.2fms", v)
}

// keptMarker starts the part of the report that other benchmarks write
// (the real-Kafka pipelining table of e2e): a rerun keeps it.
const keptMarker = "<!-- written by other benchmarks; make bench keeps what follows -->"

// keptSections returns the part of the report at path from keptMarker on,
// or "" when there is none.
func keptSections(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if i := strings.Index(string(b), keptMarker); i >= 0 {
		return "\n" + string(b[i:])
	}
	return ""
}
