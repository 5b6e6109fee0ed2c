// Package broker starts the brokers the benchmark and end-to-end suites
// run against, behind one small interface: the devbroker (cmd/devbroker,
// franz-go's kfake in one process), a real one-node Apache Kafka 4.4 and a
// real three-node cluster (testbench/realkafka), each optionally behind a
// toxiproxy that adds latency to every byte a client sends or receives.
package broker

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafkabatcher/kafkabatcherexporter/testbench/proxy"
	"github.com/kafkabatcher/kafkabatcherexporter/testbench/realkafka"
)

// Kind is a kind of broker.
type Kind string

// The kinds Start knows.
const (
	Devbroker Kind = "devbroker" // cmd/devbroker, in memory, one process
	Kafka1    Kind = "kafka-1"   // real Kafka, one KRaft node
	Kafka3    Kind = "kafka-3"   // real Kafka, three KRaft nodes, topics replicated 3 times
)

// Spec says what Start runs.
type Spec struct {
	Kind Kind
	// Latency, when positive, puts a toxiproxy in front of every broker's
	// client listener that delays what the broker sends by this much (a
	// whole-millisecond value; toxiproxy's unit).
	Latency time.Duration
	// DevbrokerBin is the devbroker binary (Kind Devbroker).
	DevbrokerBin string
	// Dist is the Kafka distribution (real kinds); nil fetches it into
	// realkafka.CacheDir.
	Dist *realkafka.Dist
	// Dir is scratch space for the real brokers' data. Required for them.
	Dir string
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

// Name is the spec's short name: the kind, with "+Nms" for a latency.
func (s Spec) Name() string {
	if s.Latency > 0 {
		return fmt.Sprintf("%s+%dms", s.Kind, s.Latency.Milliseconds())
	}
	return string(s.Kind)
}

// ParseSpec reads a Name ("devbroker", "kafka-3+2ms") back into a Spec.
func ParseSpec(name string) (Spec, error) {
	kind, lat, hasLat := strings.Cut(name, "+")
	s := Spec{Kind: Kind(kind)}
	switch s.Kind {
	case Devbroker, Kafka1, Kafka3:
	default:
		return Spec{}, fmt.Errorf("broker %q: kind must be devbroker, kafka-1 or kafka-3", name)
	}
	if hasLat {
		ms, err := strconv.Atoi(strings.TrimSuffix(lat, "ms"))
		if err != nil || ms <= 0 || !strings.HasSuffix(lat, "ms") {
			return Spec{}, fmt.Errorf("broker %q: latency must be a positive number of ms, as in +2ms", name)
		}
		s.Latency = time.Duration(ms) * time.Millisecond
	}
	return s, nil
}

// Broker is a running broker (or cluster).
type Broker interface {
	// Name is the Spec's Name.
	Name() string
	// Bootstrap returns the addresses clients dial (the proxies', with a
	// latency).
	Bootstrap() []string
	// ReplicationFactor is what CreateTopic gives a topic.
	ReplicationFactor() int
	// CreateTopic creates a topic and waits until every partition has a
	// leader.
	CreateTopic(ctx context.Context, name string, partitions int32) error
	// DeleteTopic deletes a topic.
	DeleteTopic(ctx context.Context, name string) error
	// Close stops the broker and its proxies; its data is gone.
	Close()
}

// Start starts the broker spec describes and waits until it is ready.
func Start(ctx context.Context, spec Spec) (Broker, error) {
	if spec.Log == nil {
		spec.Log = io.Discard
	}
	if spec.Latency > 0 && spec.Latency%time.Millisecond != 0 {
		return nil, fmt.Errorf("broker: latency %s is not a whole number of milliseconds", spec.Latency)
	}
	switch spec.Kind {
	case Devbroker:
		return startDevbroker(ctx, spec)
	case Kafka1, Kafka3:
		return startKafka(ctx, spec)
	}
	return nil, fmt.Errorf("broker: unknown kind %q", spec.Kind)
}

func latencyToxic(d time.Duration) proxy.Toxic {
	return proxy.Toxic{Name: "latency", Type: "latency", Attributes: map[string]any{"latency": d.Milliseconds()}}
}

// kafka is a real cluster.
type kafka struct {
	spec Spec
	c    *realkafka.Cluster
}

func startKafka(ctx context.Context, spec Spec) (Broker, error) {
	if spec.Dir == "" {
		return nil, errors.New("broker: Spec.Dir is required for real Kafka")
	}
	dist := spec.Dist
	if dist == nil {
		cache, err := realkafka.CacheDir()
		if err != nil {
			return nil, err
		}
		if dist, err = realkafka.Fetch(ctx, cache, spec.Log); err != nil {
			return nil, err
		}
	}
	nodes := 1
	if spec.Kind == Kafka3 {
		nodes = 3
	}
	c, err := realkafka.Start(ctx, dist, realkafka.Options{Nodes: nodes, Dir: spec.Dir, Proxy: spec.Latency > 0, Log: spec.Log})
	if err != nil {
		return nil, err
	}
	if spec.Latency > 0 {
		if err := c.AddToxic(latencyToxic(spec.Latency)); err != nil {
			c.Close()
			return nil, err
		}
	}
	return &kafka{spec: spec, c: c}, nil
}

func (k *kafka) Name() string           { return k.spec.Name() }
func (k *kafka) Bootstrap() []string    { return k.c.Bootstrap() }
func (k *kafka) ReplicationFactor() int { return len(k.c.Nodes()) }

// Close stops the cluster and removes its directory, so that a cluster
// started later in the same Spec.Dir formats afresh (Kafka refuses to
// format a log directory that holds another cluster's id).
func (k *kafka) Close() {
	k.c.Close()
	os.RemoveAll(k.spec.Dir)
}

// Cluster is the real cluster, for what only it can do (kill a node).
func (k *kafka) Cluster() *realkafka.Cluster { return k.c }

func (k *kafka) CreateTopic(ctx context.Context, name string, partitions int32) error {
	return k.c.CreateTopic(ctx, name, partitions, nil)
}

func (k *kafka) DeleteTopic(ctx context.Context, name string) error {
	return deleteTopic(ctx, k.Bootstrap(), name)
}

// devbroker is a cmd/devbroker process, optionally behind a proxy.
type devbroker struct {
	spec  Spec
	cmd   *exec.Cmd
	done  chan struct{}
	addr  string // as clients dial it
	proxy *proxy.Set
}

var readyRE = regexp.MustCompile(`ready on ([^ ,]+)`)

func startDevbroker(ctx context.Context, spec Spec) (Broker, error) {
	if spec.DevbrokerBin == "" {
		return nil, errors.New("broker: Spec.DevbrokerBin is required for the devbroker")
	}
	args := []string{"-addr", "127.0.0.1:0", "-topic", "bench_warm:1"}
	var listen, front string
	if spec.Latency > 0 {
		ports, err := realkafka.FreePorts(2)
		if err != nil {
			return nil, err
		}
		listen = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
		front = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1]))
		args = []string{"-addr", listen, "-advertise", front, "-topic", "bench_warm:1"}
	}
	cmd := exec.Command(spec.DevbrokerBin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("broker: start devbroker: %w", err)
	}
	b := &devbroker{spec: spec, cmd: cmd, done: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		defer close(b.done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			fmt.Fprintln(spec.Log, sc.Text())
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
	case <-b.done:
		_ = cmd.Wait()
		return nil, errors.New("broker: devbroker exited before it was ready")
	case <-time.After(30 * time.Second):
		b.Close()
		return nil, errors.New("broker: devbroker not ready after 30s")
	case <-ctx.Done():
		b.Close()
		return nil, ctx.Err()
	}
	if spec.Latency > 0 {
		b.proxy = proxy.New()
		if err := b.proxy.Add("devbroker", front, listen); err != nil {
			b.Close()
			return nil, fmt.Errorf("broker: %w", err)
		}
		if err := b.proxy.AddToxic(latencyToxic(spec.Latency)); err != nil {
			b.Close()
			return nil, fmt.Errorf("broker: %w", err)
		}
		b.addr = front
	}
	return b, nil
}

func (b *devbroker) Name() string           { return b.spec.Name() }
func (b *devbroker) Bootstrap() []string    { return []string{b.addr} }
func (b *devbroker) ReplicationFactor() int { return 1 }

func (b *devbroker) CreateTopic(ctx context.Context, name string, partitions int32) error {
	return createTopic(ctx, b.Bootstrap(), name, partitions, 1)
}

func (b *devbroker) DeleteTopic(ctx context.Context, name string) error {
	return deleteTopic(ctx, b.Bootstrap(), name)
}

// Close stops the devbroker (SIGTERM) and the proxy.
func (b *devbroker) Close() {
	if b.proxy != nil {
		b.proxy.Close()
	}
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	<-b.done
	_ = b.cmd.Wait()
}

func admin(seeds []string) (*kadm.Client, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.RequestTimeoutOverhead(5*time.Second))
	if err != nil {
		return nil, err
	}
	return kadm.NewClient(cl), nil
}

func createTopic(ctx context.Context, seeds []string, name string, partitions int32, rf int16) error {
	adm, err := admin(seeds)
	if err != nil {
		return err
	}
	defer adm.Close()
	res, err := adm.CreateTopic(ctx, partitions, rf, nil, name)
	if err == nil {
		err = res.Err
	}
	if err != nil {
		return fmt.Errorf("broker: create topic %s: %w", name, err)
	}
	return nil
}

func deleteTopic(ctx context.Context, seeds []string, name string) error {
	adm, err := admin(seeds)
	if err != nil {
		return err
	}
	defer adm.Close()
	res, err := adm.DeleteTopic(ctx, name)
	if err == nil {
		err = res.Err
	}
	if err != nil {
		return fmt.Errorf("broker: delete topic %s: %w", name, err)
	}
	return nil
}
