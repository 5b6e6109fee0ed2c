//go:build e2e

package e2e

import (
	"context"
	"os"
	"regexp"
	"slices"
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
	requests []request
}

// request is one export call of a stream: records lo..hi-1, when it was
// sent and when it was answered.
type request struct {
	lo, hi     int
	start, end time.Time
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
		start := time.Now()
		err := st.s.export(lo, lo+st.per, nil)
		st.mu.Lock()
		st.requests = append(st.requests, request{lo: lo, hi: lo + st.per, start: start, end: time.Now()})
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

// inFlight returns the records of the requests sent before to and
// answered after from: those whose fate a crash between the two may have
// left unknown.
func (st *stream) inFlight(from, to time.Time) []int {
	st.mu.Lock()
	defer st.mu.Unlock()
	var out []int
	for _, r := range st.requests {
		if r.start.Before(to) && r.end.After(from) {
			out = append(out, seqRange(r.lo, r.hi)...)
		}
	}
	return out
}

// accounting is what a fault test tells account beyond the records
// accepted and refused.
type accounting struct {
	// idempotent: producer.idempotent was on (the default with acks
	// all). Then no record may be in Kafka twice, but those of ambiguous,
	// and each partition's records rise at its offsets, repeats included.
	// Without it duplicates are logged, and only first copies must keep
	// acceptance order.
	idempotent bool
	// crashed: the collector was SIGKILLed with a request in flight (see
	// ledger.crashed).
	crashed bool
	// ambiguous are the records whose fate a crash left unknown (see
	// ledger.ambiguous): the only ones that may come twice with
	// idempotence.
	ambiguous []int
}

// account settles the stream's records in a ledger (in Kafka, dead-lettered
// or refused; duplicates counted), checks per partition that first copies
// keep acceptance order and, with idempotence, that no record is in Kafka
// twice (but a.ambiguous) and the order holds with repeats. Out of order
// is always a failure. It logs the ledger line (tally.ledgerLine) that
// make e2e-stress reads.
func (e *env) account(t *testing.T, recs []rec, accepted, refused []int, a accounting) tally {
	t.Helper()
	l := newLedger(t)
	l.crashed = a.crashed
	l.ambiguous = map[int]bool{}
	for _, seq := range a.ambiguous {
		l.ambiguous[seq] = true
	}
	l.add(accepted, false)
	l.add(refused, true)
	c := l.settle(recs, e.path("storage"))
	c.outOfOrder = checkFirstCopiesInOrder(t, recs)
	c.orderBreaks = -1
	if a.idempotent {
		// Every record once, so offsets hold rising sequence numbers
		// with no repeat; a repeat of an ambiguous record is passed over.
		c.orderBreaks = orderCheckSkipping(t, recs, func(seq int) bool { return l.ambiguous[seq] })
		if n := c.duplicates - c.crashDuplicates; n > 0 {
			t.Errorf("%d duplicate records with producer.idempotent on", n)
		}
		if c.crashDuplicates > 0 {
			t.Logf("%d duplicates of %d records whose fate a crash left unknown (allowed)", c.crashDuplicates, len(a.ambiguous))
		}
	} else {
		t.Logf("producer.idempotent off: %d duplicate records", c.duplicates)
	}
	t.Log(c.ledgerLine())
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

// faultConfig is the collector config of the fault tests; it logs the
// producer.timeout they run with (KAFKABATCHER_E2E_PRODUCER_TIMEOUT).
func (e *env) faultConfig(c *realkafka.Cluster, topic string) *cfg {
	e.t.Logf("producer.timeout: %s", producerTimeoutText())
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
// and restarts it 10 s later: nothing lost, order kept per partition; with
// idempotence (the default with acks all) no duplicate and no record out of
// order, repeats included; without it the duplicates are logged.
func TestRealKafkaLeaderKilled(t *testing.T) {
	for _, idempotent := range []bool{true, false} {
		name := "idempotent"
		if !idempotent {
			name = "not_idempotent"
		}
		t.Run(name, func(t *testing.T) {
			c := ownCluster(t, realkafka.Options{Nodes: 3})
			e := newEnv(t)
			name := newTopic(t, c, 6, nil)
			col := e.startCollector(e.faultConfig(c, name).set("producer.idempotent", idempotent))
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
			e.account(t, recs, accepted, refused, accounting{idempotent: idempotent})
		})
	}
}

// TestRealKafkaFollowerKilled SIGKILLs a follower of partition 0 (a
// replica that is not its leader) mid-stream and keeps it dead for 40 s,
// longer than the broker session timeout (the controller then fences it)
// and replica.lag.time.max.ms (30 s, Kafka 4's default: realkafka leaves
// it), so the ISR of the partitions it holds shrinks to two, which is
// min.insync.replicas; then it is started again. Until the ISR shrinks, a
// produce request with acks all to a partition it follows waits for it and
// may end in REQUEST_TIMED_OUT, written on the leader and not answered: the
// ambiguous failure of issue 19, resent and, after producer.max_attempts,
// spilled to disk and replayed. (With 6 partitions the node also leads
// some, which fail over as in TestRealKafkaLeaderKilled.) With idempotence
// on: nothing lost, no duplicate, no record out of order, repeats included.
func TestRealKafkaFollowerKilled(t *testing.T) {
	c := ownCluster(t, realkafka.Options{Nodes: 3})
	e := newEnv(t)
	name := newTopic(t, c, 6, nil) // RF 3 (the node count), min.insync.replicas 2 (the brokers' default)
	col := e.startCollector(e.faultConfig(c, name).set("producer.idempotent", true))
	st := startStream(dial(t, col.otlp, 60, 100), 0, streamPer, streamEvery)
	time.Sleep(3 * time.Second)

	p0 := partitionState(t, c, name, 0)
	follower := 0
	for _, id := range p0.Replicas {
		if id != p0.Leader && slices.Contains(p0.ISR, id) {
			follower = id
			break
		}
	}
	if follower == 0 {
		t.Fatalf("%s/0: no in-sync follower (leader %d, replicas %v, ISR %v)", name, p0.Leader, p0.Replicas, p0.ISR)
	}
	c.Node(follower).Kill()
	killed := time.Now()
	t.Logf("killed node %d (follower of %s/0: leader %d, replicas %v, ISR %v) after %d records",
		follower, name, p0.Leader, p0.Replicas, p0.ISR, st.sent())
	// The ISR as it changes while the node is down, to show it shrank.
	isr := p0.ISR
	for time.Since(killed) < 40*time.Second {
		time.Sleep(min(5*time.Second, time.Until(killed.Add(40*time.Second))))
		if now := partitionState(t, c, name, 0); !slices.Equal(now.ISR, isr) {
			isr = now.ISR
			t.Logf("%s/0 after %s: leader %d, ISR %v", name, time.Since(killed).Round(time.Second), now.Leader, now.ISR)
		}
	}
	if slices.Contains(isr, follower) {
		t.Logf("%s/0: node %d still in the ISR %v after %s", name, follower, isr, time.Since(killed).Round(time.Second))
	}
	startNodes(t, c, c.Node(follower))
	t.Logf("node %d back after %d records", follower, st.sent())
	time.Sleep(3 * time.Second)
	accepted, refused := st.result()
	p0 = partitionState(t, c, name, 0)
	t.Logf("%s/0 at the end: leader %d, ISR %v", name, p0.Leader, p0.ISR)
	recs := newTopicConsumer(t, c.Bootstrap(), name).read(accepted, readLimit, 2*time.Second)
	e.logWarnings(t)
	e.account(t, recs, accepted, refused, accounting{idempotent: true})
}

// partitionState returns topic/partition's leader, replicas and ISR now.
func partitionState(t *testing.T, c *realkafka.Cluster, topic string, partition int32) realkafka.PartitionState {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, err := c.Partition(ctx, topic, partition)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(p.ISR)
	return p
}

// TestRealKafkaTwoBrokersDown stops two of three brokers (acks all,
// min.insync.replicas 2): batches spill to disk; once the brokers are back,
// everything is replayed in order. Idempotence is on (the default with
// acks all, which is the default): a batch written on the leader as the
// ISR shrank (NOT_ENOUGH_REPLICAS_AFTER_APPEND, a timeout) keeps its
// producer id and sequence numbers through the disk, so no duplicate.
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
	e.account(t, recs, accepted, refused, accounting{idempotent: true})
}

// TestRealKafkaClusterDownCollectorKilled stops the whole cluster for 60 s;
// meanwhile the collector (sync delivery: accepted means in Kafka or on
// disk) is SIGKILLed and started again. Nothing accepted is lost, order is
// kept, and (idempotence on, the default) a duplicate is allowed only for
// a record whose fate the cluster's crash left unknown.
//
// Why those and only those: a request answered before the first node was
// killed is in Kafka (acks all). One sent after the last node died
// reached no broker: its batches failed to connect, went to disk, and the
// replay, in the second collector, is the only copy. The requests in
// flight while the nodes were killed are ambiguous: a broker may have
// appended their batches and died before answering. The first collector
// spills them after producer.max_attempts and is killed while the cluster
// is still down; the second replays them, and unless it sends them under
// the first one's producer id and sequence numbers the brokers cannot tell
// them from new records. The collector's crash adds
// nothing ambiguous: with the cluster down, nothing it had was in flight
// to a broker (the records refused to the client at the kill may still
// arrive from disk: crashed).
func TestRealKafkaClusterDownCollectorKilled(t *testing.T) {
	c := ownCluster(t, realkafka.Options{Nodes: 3})
	e := newEnv(t)
	name := newTopic(t, c, 6, nil)
	conf := e.faultConfig(c, name).set("delivery", "sync")
	col := e.startCollector(conf)
	st := startStream(dial(t, col.otlp, 60, 100), 0, streamPer, streamEvery)
	time.Sleep(3 * time.Second)

	killing := time.Now()
	for _, n := range c.Nodes() {
		n.Kill() // returns once the node's process is gone
	}
	down := time.Now()
	t.Logf("cluster down after %d records", st.sent())
	time.Sleep(20 * time.Second)
	col.kill()
	accepted1, refused1 := st.result()
	ambiguous := st.inFlight(killing, down)
	t.Logf("%d records in flight while the cluster was killed", len(ambiguous))
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
	e.account(t, recs, accepted, refused, accounting{idempotent: true, crashed: true, ambiguous: ambiguous})
}

// TestRealKafkaToxics puts network faults between the collector and every
// broker with toxiproxy: 200 ms latency for 30 s; every connection reset
// mid-request; requests that get no answer for 20 s. Nothing lost, order
// kept, duplicates counted: none with idempotence (a batch keeps its
// producer id and sequence numbers through retries, the disk and replay,
// so the broker drops a resend it wrote before); the no-answer run without
// idempotence shows them.
func TestRealKafkaToxics(t *testing.T) {
	c := three(t)
	noAnswer := realkafka.Toxic{Name: "timeout", Type: "timeout", Attributes: map[string]any{"timeout": 0}}
	for _, tc := range []struct {
		name  string
		toxic realkafka.Toxic
		hold  time.Duration
		// idempotent sets producer.idempotent; with it the run must have
		// no duplicate and no record out of order, repeats included.
		idempotent bool
	}{
		{"latency_200ms", realkafka.Toxic{Name: "lat", Type: "latency", Attributes: map[string]any{"latency": 200}}, 30 * time.Second, true},
		// A connection reset mid-request is ambiguous (the broker may have
		// written the batch): resent, or spilled and replayed, with the
		// numbers it had, it is written once.
		{"reset_peer", realkafka.Toxic{Name: "reset", Type: "reset_peer", Stream: "upstream", Attributes: map[string]any{"timeout": 0}}, 5 * time.Second, true},
		// The requests reach the brokers, which write the batches; the
		// answers never come back, and the batches are resent after the
		// timeout: the brokers drop the resends as duplicates with
		// idempotence, and write them again without.
		{"no_answer", noAnswer, 20 * time.Second, true},
		{"no_answer_not_idempotent", noAnswer, 20 * time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			name := newTopic(t, c, 6, nil)
			col := e.startCollector(e.faultConfig(c, name).set("producer.idempotent", tc.idempotent))
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
			e.account(t, recs, accepted, refused, accounting{idempotent: tc.idempotent})
		})
	}
}
