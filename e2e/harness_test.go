//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Bounds of the harness; every wait in the suite has one.
const (
	stopGrace     = 15 * time.Second // SIGTERM to SIGKILL
	brokerReady   = 10 * time.Second
	collectorUp   = 30 * time.Second
	buildTimeout  = 8 * time.Minute
	validateLimit = 30 * time.Second
	topic         = "e2e"
)

// bins are the binaries under test, found or built once by TestMain.
type bins struct {
	collector    string
	devbroker    string
	telemetrygen string
}

// binaries is set by TestMain before any test runs and only read after.
var binaries bins

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "kafkabatcher-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	realKafka.dir = tmp
	defer stopAllKafka()
	b, err := findOrBuild(tmp)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	binaries = b
	fmt.Fprintf(os.Stderr, "e2e: collector %s\ne2e: devbroker %s\n", b.collector, b.devbroker)
	if producerTimeout, err = producerTimeoutFromEnv(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "e2e: producer.timeout %s\n", producerTimeoutText())
	return m.Run()
}

// producerTimeoutEnv names the environment variable that sets the
// suite's producer.timeout (newConfig): empty or unset keeps 3s; "default"
// leaves the key out, so the exporter's default (10s) applies; anything
// else is a Go duration ("5s", "1500ms"). make e2e-stress runs the fault
// tests under several.
const producerTimeoutEnv = "KAFKABATCHER_E2E_PRODUCER_TIMEOUT"

// producerTimeout is the producer.timeout newConfig sets, "" for none (the
// exporter's default); set by TestMain before any test runs.
var producerTimeout = "3s"

// producerTimeoutFromEnv reads producerTimeoutEnv.
func producerTimeoutFromEnv() (string, error) {
	v := strings.TrimSpace(os.Getenv(producerTimeoutEnv))
	switch v {
	case "":
		return "3s", nil
	case "default":
		return "", nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return "", fmt.Errorf("%s=%q: want empty, \"default\" or a positive duration", producerTimeoutEnv, v)
	}
	return v, nil
}

// producerTimeoutText says which producer.timeout the suite runs with.
func producerTimeoutText() string {
	if producerTimeout == "" {
		return "the exporter's default (" + producerTimeoutEnv + "=default)"
	}
	if os.Getenv(producerTimeoutEnv) == "" {
		return producerTimeout + " (the suite's; " + producerTimeoutEnv + " unset)"
	}
	return producerTimeout + " (" + producerTimeoutEnv + ")"
}

// findOrBuild takes OTELCOL_BIN, DEVBROKER_BIN and TELEMETRYGEN_BIN when
// set; else it runs `make build` in the repository (ocb, reusing an
// up-to-date _build/otelcol-kafkabatcher), builds the devbroker into tmp and
// runs `make telemetrygen` (bin/telemetrygen).
func findOrBuild(tmp string) (bins, error) {
	root, err := filepath.Abs("..")
	if err != nil {
		return bins{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	b := bins{collector: os.Getenv("OTELCOL_BIN"), devbroker: os.Getenv("DEVBROKER_BIN"), telemetrygen: os.Getenv("TELEMETRYGEN_BIN")}
	if b.telemetrygen == "" {
		cmd := exec.CommandContext(ctx, "make", "--no-print-directory", "telemetrygen")
		cmd.Dir = root
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return bins{}, fmt.Errorf("make telemetrygen: %w", err)
		}
		b.telemetrygen = filepath.Join(root, "bin", "telemetrygen")
	}
	if b.collector == "" {
		cmd := exec.CommandContext(ctx, "make", "--no-print-directory", "build")
		cmd.Dir = root
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return bins{}, fmt.Errorf("make build: %w", err)
		}
		b.collector = filepath.Join(root, "_build", "otelcol-kafkabatcher")
	}
	if b.devbroker == "" {
		b.devbroker = filepath.Join(tmp, "devbroker")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", b.devbroker, "./cmd/devbroker")
		cmd.Dir = root
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return bins{}, fmt.Errorf("go build ./cmd/devbroker: %w", err)
		}
	}
	for _, p := range []string{b.collector, b.devbroker, b.telemetrygen} {
		if st, err := os.Stat(p); err != nil || st.Mode()&0o111 == 0 {
			return bins{}, fmt.Errorf("%s: not an executable (%v)", p, err)
		}
	}
	return b, nil
}

// env is one test's world: a temp dir, the processes it started and the
// files to show when it fails.
type env struct {
	t     *testing.T
	dir   string
	shown []string // logs and configs printed on failure
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir()}
	// Registered after TempDir and before any process: runs after every
	// process is stopped and before the directory is removed.
	t.Cleanup(e.showOnFailure)
	return e
}

func (e *env) path(name string) string { return filepath.Join(e.dir, name) }

func (e *env) showOnFailure() {
	if !e.t.Failed() {
		return
	}
	for _, p := range e.shown {
		b, err := os.ReadFile(p)
		if err != nil {
			e.t.Logf("==== %s: %v", p, err)
			continue
		}
		const limit = 40 << 10 // the tail is where the failure is
		if len(b) > limit {
			b = append([]byte("...\n"), b[len(b)-limit:]...)
		}
		e.t.Logf("==== %s\n%s", filepath.Base(p), b)
	}
}

// proc is a process started by a test; stop or kill it by its pid.
type proc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error // set before done closes
}

// start runs bin with args, output appended to logPath, and registers its
// stop for the end of the test.
func (e *env) start(name, logPath, bin string, args ...string) *proc {
	e.t.Helper()
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		e.t.Fatalf("%s log: %v", name, err)
	}
	defer f.Close() // the child has its own descriptor
	fmt.Fprintf(f, "---- %s: %s %s\n", time.Now().Format(time.RFC3339Nano), bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		e.t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{t: e.t, name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	e.t.Cleanup(func() { p.stop() })
	e.t.Logf("started %s, pid %d", name, cmd.Process.Pid)
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, then SIGKILL if the process outlives stopGrace. It
// returns whether the process stopped by itself.
func (p *proc) stop() bool {
	if p.exited() {
		return true
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return true
	case <-time.After(stopGrace):
	}
	p.t.Errorf("%s (pid %d) did not stop within %s of SIGTERM; killing it", p.name, p.cmd.Process.Pid, stopGrace)
	p.kill()
	return false
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p.t.Logf("killed %s, pid %d", p.name, p.cmd.Process.Pid)
}

// freePort returns a loopback port nothing listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// waitListening polls addr until it accepts a connection, p exits, or
// limit passes.
func waitListening(t *testing.T, p *proc, addr string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if p.exited() {
			t.Fatalf("%s exited before listening on %s: %v", p.name, addr, p.err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not listening on %s after %s", p.name, addr, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// broker is a devbroker process on a fixed loopback port.
type broker struct {
	*proc
	addr string
}

// startBroker runs the devbroker on 127.0.0.1:port with topic e2e and the
// given partition count, and waits until it accepts connections.
func (e *env) startBroker(port, partitions int) *broker {
	e.t.Helper()
	return e.startBrokerTopics(port, fmt.Sprintf("%s:%d", topic, partitions))
}

// startBrokerTopics runs the devbroker on 127.0.0.1:port with the topics
// given as name:partitions.
func (e *env) startBrokerTopics(port int, topics ...string) *broker {
	e.t.Helper()
	addr := loopback(port)
	log := e.path("devbroker.log")
	e.addShown(log)
	args := []string{"-addr", addr}
	for _, tp := range topics {
		args = append(args, "-topic", tp)
	}
	p := e.start("devbroker", log, binaries.devbroker, args...)
	waitListening(e.t, p, addr, brokerReady)
	return &broker{proc: p, addr: addr}
}

func (e *env) addShown(path string) {
	for _, p := range e.shown {
		if p == path {
			return
		}
	}
	e.shown = append(e.shown, path)
}

// collector is an otelcol-kafkabatcher process.
type collector struct {
	*proc
	otlp string // OTLP gRPC endpoint
}

// cfg is a collector configuration: an OTLP gRPC receiver on a free port and
// the kafkabatcher exporter with exp as its settings.
type cfg struct {
	otlpPort int
	exp      map[string]any
	// signals are the pipelines from the OTLP receiver to kafkabatcher;
	// none means logs only.
	signals []string
	// receivers, exporters and pipelines are added to the configuration
	// (the read-back side of a round trip).
	receivers, exporters, pipelines map[string]any
}

// newConfig returns the suite's exporter defaults: raw encoding (the body
// is the value), the key from attributes.key, short waits so outages heal
// fast (producer.timeout 3s unless producerTimeoutEnv says otherwise), and
// temp storage under the test's directory.
func (e *env) newConfig(brokerAddr string) *cfg {
	producer := map[string]any{}
	if producerTimeout != "" {
		producer["timeout"] = producerTimeout
	}
	return &cfg{
		otlpPort: freePort(e.t),
		exp: map[string]any{
			"brokers":  []string{brokerAddr},
			"topic":    topic,
			"encoding": "raw",
			"key_from": []string{"attributes.key"},
			"batch":    map[string]any{"size": 500, "max_wait": "500ms"},
			"producer": producer,
			"metadata": map[string]any{"refresh_interval": "2s"},
			"temp_storage": map[string]any{
				"directory":      e.path("storage"),
				"retry_interval": "500ms",
			},
		},
	}
}

// set sets a dotted key of the exporter's settings, e.g. "batch.size".
func (c *cfg) set(key string, v any) *cfg {
	m := c.exp
	parts := strings.Split(key, ".")
	for _, k := range parts[:len(parts)-1] {
		sub, ok := m[k].(map[string]any)
		if !ok {
			sub = map[string]any{}
			m[k] = sub
		}
		m = sub
	}
	m[parts[len(parts)-1]] = v
	return c
}

// yaml renders the whole collector configuration. JSON is YAML, and
// encoding/json keeps the suite free of a YAML dependency.
func (c *cfg) yaml() []byte {
	receivers := map[string]any{
		"otlp": map[string]any{"protocols": map[string]any{
			"grpc": map[string]any{"endpoint": loopback(c.otlpPort)},
		}},
	}
	exporters := map[string]any{"kafkabatcher": c.exp}
	pipelines := map[string]any{}
	signals := c.signals
	if len(signals) == 0 {
		signals = []string{"logs"}
	}
	for _, s := range signals {
		pipelines[s] = map[string]any{"receivers": []string{"otlp"}, "exporters": []string{"kafkabatcher"}}
	}
	maps.Copy(receivers, c.receivers)
	maps.Copy(exporters, c.exporters)
	maps.Copy(pipelines, c.pipelines)
	doc := map[string]any{
		"receivers": receivers,
		"exporters": exporters,
		"service": map[string]any{
			"pipelines": pipelines,
			"telemetry": map[string]any{
				"logs":    map[string]any{"level": "info"},
				"metrics": map[string]any{"level": "none"},
			},
		},
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		panic(err) // only maps, slices, strings and numbers
	}
	return b
}

// writeConfig writes c to the test's directory and returns its path.
func (e *env) writeConfig(name string, c *cfg) string {
	e.t.Helper()
	p := e.path(name)
	if err := os.WriteFile(p, c.yaml(), 0o600); err != nil {
		e.t.Fatal(err)
	}
	e.addShown(p)
	return p
}

// startCollector runs the collector on c and waits until its OTLP
// receiver accepts connections (the exporter has started by then).
func (e *env) startCollector(c *cfg) *collector {
	e.t.Helper()
	path := e.writeConfig("collector.yaml", c)
	log := e.path("collector.log")
	e.addShown(log)
	p := e.start("collector", log, binaries.collector, "--config="+path)
	otlp := loopback(c.otlpPort)
	waitListening(e.t, p, otlp, collectorUp)
	return &collector{proc: p, otlp: otlp}
}

// validate runs `otelcol validate` on c; it returns the exit code and the
// output.
func validate(t *testing.T, path string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), validateLimit)
	defer cancel()
	out, err := exec.CommandContext(ctx, binaries.collector, "validate", "--config="+path).CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("validate %s: no answer within %s", path, validateLimit)
	}
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &exit):
		return exit.ExitCode(), string(out)
	}
	t.Fatalf("validate %s: %v", path, err)
	return 0, ""
}
