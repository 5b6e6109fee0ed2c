// Command bench runs the kafkabatcher exporter side by side with its peers
// against one devbroker process and writes BENCHMARKS.md with a chart.
//
//	cd bench && go run .            # full run (make bench)
//	cd bench && go run . -quick     # smoke run
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
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
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
}

const partitions = 6

func main() {
	child := flag.String("child", "", "internal: run one system in this process (JSON run spec)")
	var o options
	flag.IntVar(&o.records, "n", 400_000, "records per run for the 200-byte shape")
	flag.IntVar(&o.recordsLarge, "n-large", 100_000, "records per run for the 2 KiB shape")
	flag.IntVar(&o.callers, "callers", 4, "concurrent ConsumeLogs callers (or feeding goroutines)")
	flag.IntVar(&o.perCall, "per-call", 100, "records per ConsumeLogs call")
	flag.IntVar(&o.repeat, "repeat", 3, "runs per system and scenario; the median by records/s is reported")
	systems := flag.String("systems", strings.Join(allSystems, ","), "systems to run, comma-separated")
	shapeList := flag.String("shapes", "200B,2KiB", "record shapes, comma-separated")
	encodings := flag.String("encodings", "raw,otlp_proto", "encodings, comma-separated")
	flag.StringVar(&o.root, "root", "..", "repository root (for cmd/devbroker)")
	flag.StringVar(&o.out, "out", "../BENCHMARKS.md", "report to write")
	flag.StringVar(&o.chart, "chart", "results.png", "chart to write (PNG), referenced from the report")
	flag.StringVar(&o.profileDir, "cpuprofile-dir", "", "write a pprof CPU profile of every kafkabatcher child into this directory")
	flag.IntVar(&o.syncBatch, "sync-batch-size", 0, "batch.size of kafkabatcher-sync (0: -per-call, the records one caller has in flight)")
	flag.BoolVar(&o.quick, "quick", false, "smoke run: 10x fewer records, one repeat")
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
	if o.syncBatch == 0 {
		o.syncBatch = o.perCall
	}
	if o.quick {
		o.records /= 10
		o.recordsLarge /= 10
		o.repeat = 1
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

// drive starts the devbroker, runs every scenario and system in a child
// process, and writes the report and chart.
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
	if o.records%o.perCall != 0 || o.recordsLarge%o.perCall != 0 {
		return fmt.Errorf("-n and -n-large must be multiples of -per-call (%d)", o.perCall)
	}
	tmp, err := os.MkdirTemp("", "kafkabatcher-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if o.profileDir != "" {
		if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
			return err
		}
	}

	machine := describeMachine()
	fmt.Fprintf(os.Stderr, "bench: %s\n", machine.oneLine())
	broker, err := startBroker(ctx, o.root, tmp)
	if err != nil {
		return err
	}
	defer broker.stop()
	fmt.Fprintf(os.Stderr, "bench: devbroker on %s\n", broker.addr)

	admin, err := kgo.NewClient(kgo.SeedBrokers(broker.addr))
	if err != nil {
		return err
	}
	defer admin.Close()
	adm := kadm.NewClient(admin)

	exe, err := os.Executable()
	if err != nil {
		return err
	}
	started := time.Now()
	var results []runResult
	runNo := 0
	for _, shapeName := range o.shapes {
		n := o.records
		if shapeName != "200B" {
			n = o.recordsLarge
		}
		for _, enc := range o.encodings {
			// Repetitions go round the systems, so a burst of load on a
			// shared machine does not land on one system's runs only.
			reps := make(map[string][]runResult)
			for rep := range o.repeat {
				for _, sys := range o.systems {
					runNo++
					spec := runSpec{
						System: sys, Shape: shapeName, Encoding: enc,
						Records: n, Callers: o.callers, PerCall: o.perCall,
						Broker: broker.addr, SyncBatchSize: o.syncBatch,
						Topic: fmt.Sprintf("bench_%03d", runNo),
						Dir:   filepath.Join(tmp, fmt.Sprintf("run%03d", runNo)),
					}
					if o.profileDir != "" && strings.HasPrefix(sys, "kafkabatcher") {
						p, err := filepath.Abs(filepath.Join(o.profileDir, fmt.Sprintf("%s_%s_%s_%d.pprof", sys, shapeName, enc, rep)))
						if err != nil {
							return err
						}
						spec.CPUProfile = p
					}
					res, err := runOne(ctx, exe, adm, spec)
					if err != nil {
						return fmt.Errorf("%s %s %s: %w", sys, shapeName, enc, err)
					}
					fmt.Fprintf(os.Stderr, "bench: %-18s %-4s %-10s %9.0f rec/s %6.2f µs CPU/rec %6.1f allocs/rec %5.0f MiB p50 %s p99 %s\n",
						sys, shapeName, enc, res.recordsPerSec(), res.cpuMicrosPerRecord(), res.allocsPerRecord(),
						float64(res.MaxRSSKiB)/1024, fmtMs(res.P50Ms, res.LatencyOf), fmtMs(res.P99Ms, res.LatencyOf))
					if res.Detail != "" {
						fmt.Fprintf(os.Stderr, "bench:   %s\n", res.Detail)
					}
					if res.HistOf != "" {
						fmt.Fprintf(os.Stderr, "bench:   %s: p50 %.2fms p99 %.2fms\n", res.HistOf, res.HistP50Ms, res.HistP99Ms)
					}
					reps[sys] = append(reps[sys], res)
				}
			}
			for _, sys := range o.systems {
				results = append(results, median(reps[sys]))
			}
		}
	}
	took := time.Since(started)

	if err := drawChart(o.chart, results, o); err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	rep := report{opts: o, machine: machine, results: results, took: took}
	if err := os.WriteFile(o.out, []byte(rep.markdown()+keptSections(o.out)), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench: wrote %s and %s in %s\n", o.out, o.chart, took.Round(time.Second))
	fmt.Print(rep.summary())
	return nil
}

// runOne creates a fresh topic, runs spec in a child, checks what reached
// the topic, and deletes the topic so the broker's memory stays flat.
func runOne(ctx context.Context, exe string, adm *kadm.Client, spec runSpec) (runResult, error) {
	if _, err := adm.CreateTopics(ctx, partitions, 1, nil, spec.Topic); err != nil {
		return runResult{}, fmt.Errorf("create topic: %w", err)
	}
	defer func() {
		if _, err := adm.DeleteTopics(context.Background(), spec.Topic); err != nil {
			fmt.Fprintf(os.Stderr, "bench: delete topic %s: %v\n", spec.Topic, err)
		}
	}()
	if err := os.MkdirAll(spec.Dir, 0o700); err != nil {
		return runResult{}, err
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
	offs, err := adm.ListEndOffsets(ctx, spec.Topic)
	if err != nil {
		return res, fmt.Errorf("end offsets: %w", err)
	}
	offs.Each(func(o kadm.ListedOffset) {
		if o.Err == nil {
			res.InTopic += o.Offset
		}
	})
	if res.Errors > 0 {
		return res, fmt.Errorf("%d records failed: %s", res.Errors, res.FirstError)
	}
	// Everything sent (window plus warm-up round) must be in the topic: one
	// message per record, except contrib's otlp_proto, one per call.
	want := int64(res.Records + spec.PerCall)
	if strings.HasPrefix(spec.System, sysContrib) && spec.Encoding != "raw" {
		want = int64((res.Records + spec.PerCall) / spec.PerCall)
	}
	if res.InTopic < want {
		return res, fmt.Errorf("topic holds %d messages, want at least %d", res.InTopic, want)
	}
	return res, nil
}

func lastLine(b []byte) []byte {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return []byte(lines[len(lines)-1])
}

// median returns the run with the median records/s, with CPU, allocations
// and peak RSS replaced by their own medians over rs (all runs send the same
// number of records), so one disturbed run moves no column.
func median(rs []runResult) runResult {
	mid := func(v []float64) float64 {
		s := slices.Clone(v)
		slices.Sort(s)
		return s[len(s)/2]
	}
	var rate, cpu, mallocs, bytes, rss []float64
	for _, r := range rs {
		rate = append(rate, r.recordsPerSec())
		cpu = append(cpu, float64(r.CPUNs))
		mallocs = append(mallocs, float64(r.Mallocs))
		bytes = append(bytes, float64(r.AllocBytes))
		rss = append(rss, float64(r.MaxRSSKiB))
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
	return out
}

func fmtMs(v float64, of string) string {
	if of == "" {
		return "—"
	}
	return fmt.Sprintf("%.2fms", v)
}

// devbroker is the broker process.
type devbroker struct {
	cmd  *exec.Cmd
	addr string
	done chan struct{}
}

var readyRE = regexp.MustCompile(`ready on ([^ ,]+)`)

// startBroker builds cmd/devbroker and starts it on a free loopback port.
func startBroker(ctx context.Context, root, tmp string) (*devbroker, error) {
	bin := filepath.Join(tmp, "devbroker")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/devbroker")
	build.Dir = root
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return nil, fmt.Errorf("build devbroker: %w", err)
	}
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0", "-topic", "bench_warm:1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start devbroker: %w", err)
	}
	b := &devbroker{cmd: cmd, done: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		defer close(b.done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := readyRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	select {
	case b.addr = <-addr:
		return b, nil
	case <-b.done:
		_ = cmd.Wait()
		return nil, errors.New("devbroker exited before it was ready")
	case <-time.After(30 * time.Second):
		b.stop()
		return nil, errors.New("devbroker not ready after 30s")
	}
}

func (b *devbroker) stop() {
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	<-b.done
	_ = b.cmd.Wait()
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
