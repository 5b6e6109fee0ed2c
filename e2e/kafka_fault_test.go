//go:build e2e

package e2e

import (
	"context"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kafkabatcher/kafkabatcherexporter/testbench/realkafka"
)

// Faults on the 3-node cluster, with records flowing at a steady rate the
// whole time. Each test ends with an account of every record sent: in Kafka
// (duplicates counted), in the dead-letter file, or refused to the client.

// stream sends records at a steady rate from its own goroutine and keeps
// which requests the collector accepted and which it refused.
type stream struct {
	s     *sender
	per   int
	every time.Duration
	stop  chan struct{}
	done  chan struct{}

	mu       sync.Mutex
	next     int
	accepted []int
	refused  []int
}

// startStream sends per records every interval, from sequence number
// from, until stopSending.
func startStream(s *sender, from, per int, every time.Duration) *stream {
	st := &stream{s: s, per: per, every: every, next: from, stop: make(chan struct{}), done: make(chan struct{})}
	go st.run()
	s.t.Cleanup(st.stopSending)
	return st
}

func (st *stream) run() {
	defer close(st.done)
	tick := time.NewTicker(st.every)
	defer tick.Stop()
	for {
		select {
		case <-st.stop:
			return
		case <-tick.C:
		}
		st.mu.Lock()
		lo := st.next
		st.next += st.per
		st.mu.Unlock()
		err := st.s.export(lo, lo+st.per, nil)
		st.mu.Lock()
		for seq := lo; seq < lo+st.per; seq++ {
			if err == nil {
				st.accepted = append(st.accepted, seq)
			} else {
				st.refused = append(st.refused, seq)
			}
		}
		st.mu.Unlock()
	}
}

// stopSending stops the stream and waits for the request in flight.
func (st *stream) stopSending() {
	select {
	case <-st.stop:
	default:
		close(st.stop)
	}
	<-st.done
}

// sent returns how many records the stream has sent so far.
func (st *stream) sent() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return len(st.accepted) + len(st.refused)
}

// result stops the stream and returns what was accepted and refused.
func (st *stream) result() (accepted, refused []int) {
	st.stopSending()
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.accepted, st.refused
}

// account settles the stream's records in a ledger (in Kafka, dead-lettered
// or refused; duplicates counted) and checks per partition that first
// copies keep acceptance order. crashed says the collector was killed with
// a request in flight: its records were refused to the client yet may be
// in Kafka (on disk before the kill), which the client's retry would
// duplicate anyway.
func (e *env) account(t *testing.T, recs []rec, accepted, refused []int, crashed bool) tally {
	t.Helper()
	l := newLedger(t)
	l.crashed = crashed
	l.add(accepted, false)
	l.add(refused, true)
	c := l.settle(recs, e.path("storage"))
	checkFirstCopiesInOrder(t, recs)
	return c
}

// startNodes starts stopped nodes of c again and waits until the cluster
// answers with all of them.
func startNodes(t *testing.T, c *realkafka.Cluster, nodes ...*realkafka.Node) {
	t.Helper()
	for _, n := range nodes {
		if err := n.Start(); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := c.WaitReady(ctx, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
}

// faultConfig is the collector config of the fault tests.
func (e *env) faultConfig(c *realkafka.Cluster, topic string) *cfg {
	return e.kafkaConfig(c, topic).
		set("batch.size", 200).
		set("batch.max_wait", "200ms")
}

// logWarnings logs how often each distinct warning or error message
// appears in the collector's log: what Kafka answered during a fault.
func (e *env) logWarnings(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile(e.path("collector.log"))
	if err != nil {
		t.Logf("collector log: %v", err)
		return
	}
	counts := map[string]int{}
	var order []string
	for _, line := range strings.Split(string(b), "\n") {
		// console encoding: time, level, caller, message, fields (tab separated)
		f := strings.SplitN(line, "\t", 5)
		if len(f) < 4 || (f[1] != "warn" && f[1] != "error") {
			continue
		}
		msg := f[1] + ": " + f[3]
		if len(f) == 5 {
			if i := strings.Index(f[4], `"error": "`); i >= 0 {
				errText := f[4][i+10:]
				if j := strings.IndexByte(errText, '"'); j >= 0 {
					errText = errText[:j]
				}
				msg += " (" + digits.ReplaceAllString(errText, "N") + ")"
			}
		}
		if counts[msg] == 0 {
			order = append(order, msg)
		}
		counts[msg]++
	}
	for _, m := range order {
		t.Logf("collector log: %dx %s", counts[m], m)
	}
}

// digits folds numbers (ports, offsets, counts) so equal messages group.
var digits = regexp.MustCompile(`[0-9]+`)

const (
	streamPer   = 50
	streamEvery = 25 * time.Millisecond // 2,000 records/s
	readLimit   = 3 * time.Minute
)

// TestRealKafkaLeaderKilled SIGKILLs the leader of partition 0 mid-stream
// and restarts it 10 s later: nothing lost, order kept per partition.
func TestRealKafkaLeaderKilled(t *testing.T) {
	c := ownCluster(t, realkafka.Options{Nodes: 3})
	e := newEnv(t)
	name := newTopic(t, c, 6, nil)
	col := e.startCollector(e.faultConfig(c, name))
	st := startStream(dial(t, col.otlp, 60, 100), 0, streamPer, streamEvery)
	time.Sleep(3 * time.Second)

	leader, err := c.Leader(context.Background(), name, 0)
	if err != nil {
		t.Fatal(err)
	}
	c.Node(leader).Kill()
	t.Logf("killed node %d (leader of %s/0) after %d records", leader, name, st.sent())
	time.Sleep(10 * time.Second)
	startNodes(t, c, c.Node(leader))
	t.Logf("node %d back after %d records", leader, st.sent())
	time.Sleep(3 * time.Second)
	accepted, refused := st.result()
	recs := newTopicConsumer(t, c.Bootstrap(), name).read(accepted, readLimit, 2*time.Second)
	e.logWarnings(t)
	e.account(t, recs, accepted, refused, false)
}

// TestRealKafkaTwoBrokersDown stops two of three brokers (acks all,
// min.insync.replicas 2): batches spill to disk; once the brokers are back,
// everything is replayed in order.
func TestRealKafkaTwoBrokersDown(t *testing.T) {
	c := ownCluster(t, realkafka.Options{Nodes: 3})
	e := newEnv(t)
	name := newTopic(t, c, 6, nil)
	col := e.startCollector(e.faultConfig(c, name))
	st := startStream(dial(t, col.otlp, 60, 100), 0, streamPer, streamEvery)
	time.Sleep(3 * time.Second)

	c.Node(2).Stop()
	c.Node(3).Stop()
	t.Logf("stopped nodes 2 and 3 after %d records", st.sent())
	time.Sleep(15 * time.Second)
	stored := dirSummary(e.path("storage"))
	t.Logf("temp storage with two brokers down: %s", stored)
	startNodes(t, c, c.Node(2), c.Node(3))
	t.Logf("nodes 2 and 3 back after %d records", st.sent())
	time.Sleep(3 * time.Second)
	accepted, refused := st.result()
	recs := newTopicConsumer(t, c.Bootstrap(), name).read(accepted, readLimit, 2*time.Second)
	e.logWarnings(t)
	e.account(t, recs, accepted, refused, false)
}

// TestRealKafkaClusterDownCollectorKilled stops the whole cluster for 60 s;
// meanwhile the collector (sync delivery: accepted means in Kafka or on
// disk) is SIGKILLed and started again. Nothing accepted is lost.
func TestRealKafkaClusterDownCollectorKilled(t *testing.T) {
	c := ownCluster(t, realkafka.Options{Nodes: 3})
	e := newEnv(t)
	name := newTopic(t, c, 6, nil)
	conf := e.faultConfig(c, name).set("delivery", "sync")
	col := e.startCollector(conf)
	st := startStream(dial(t, col.otlp, 60, 100), 0, streamPer, streamEvery)
	time.Sleep(3 * time.Second)

	for _, n := range c.Nodes() {
		n.Kill()
	}
	down := time.Now()
	t.Logf("cluster down after %d records", st.sent())
	time.Sleep(20 * time.Second)
	col.kill()
	accepted1, refused1 := st.result()
	t.Logf("collector killed after %d records; temp storage: %s", len(accepted1)+len(refused1), dirSummary(e.path("storage")))
	col2 := e.startCollector(conf)
	st2 := startStream(dial(t, col2.otlp, 60, 100), len(accepted1)+len(refused1), streamPer, streamEvery)
	time.Sleep(time.Until(down.Add(60 * time.Second)))
	startNodes(t, c, c.Nodes()...)
	t.Logf("cluster back after %s", time.Since(down).Round(time.Second))
	time.Sleep(5 * time.Second)
	accepted2, refused2 := st2.result()
	accepted := append(accepted1, accepted2...)
	refused := append(refused1, refused2...)
	recs := newTopicConsumer(t, c.Bootstrap(), name).read(accepted, readLimit, 2*time.Second)
	e.logWarnings(t)
	e.account(t, recs, accepted, refused, true)
}

// TestRealKafkaToxics puts network faults between the collector and every
// broker with toxiproxy: 200 ms latency for 30 s; every connection reset
// mid-request; requests that get no answer for 20 s. Nothing lost, order
// kept, duplicates counted.
func TestRealKafkaToxics(t *testing.T) {
	c := three(t)
	for _, tc := range []struct {
		name  string
		toxic realkafka.Toxic
		hold  time.Duration
	}{
		{"latency_200ms", realkafka.Toxic{Name: "lat", Type: "latency", Attributes: map[string]any{"latency": 200}}, 30 * time.Second},
		{"reset_peer", realkafka.Toxic{Name: "reset", Type: "reset_peer", Stream: "upstream", Attributes: map[string]any{"timeout": 0}}, 5 * time.Second},
		{"no_answer", realkafka.Toxic{Name: "timeout", Type: "timeout", Attributes: map[string]any{"timeout": 0}}, 20 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			name := newTopic(t, c, 6, nil)
			col := e.startCollector(e.faultConfig(c, name))
			st := startStream(dial(t, col.otlp, 60, 100), 0, streamPer, streamEvery)
			time.Sleep(3 * time.Second)
			if err := c.AddToxic(tc.toxic); err != nil {
				t.Fatal(err)
			}
			removed := false
			remove := func() {
				if !removed {
					removed = true
					if err := c.RemoveToxic(tc.toxic.Name); err != nil {
						t.Error(err)
					}
				}
			}
			t.Cleanup(remove)
			t.Logf("toxic %s on after %d records", tc.toxic.Type, st.sent())
			time.Sleep(tc.hold)
			remove()
			t.Logf("toxic %s off after %d records", tc.toxic.Type, st.sent())
			time.Sleep(5 * time.Second)
			accepted, refused := st.result()
			recs := newTopicConsumer(t, c.Bootstrap(), name).read(accepted, readLimit, 2*time.Second)
			e.logWarnings(t)
			e.account(t, recs, accepted, refused, false)
		})
	}
}
