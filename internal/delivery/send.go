package delivery

import (
	"slices"
	"time"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// sendReady, one pass of the send loop (wakeSend), sends the head
// batches (up to Config.MaxInFlight) of every partition that has none in
// flight: one Produce call per leader broker, since Produce returns when
// all its batches are settled and a broker slow to answer (or timing out)
// must not hold up the partitions other brokers lead.
func (d *Dispatcher) sendReady() {
	var groups []*sendGroup
	for _, p := range d.snapshot() {
		p.mu.Lock()
		ready := d.sendable(p)
		var es []*queued
		if ready {
			p.inflight = true
			es = d.heads(p)
		}
		p.mu.Unlock()
		if !ready {
			continue
		}
		leader := d.kafka.Leader(message.TopicPartition{Topic: p.key.Topic, Partition: p.key.Partition})
		i := slices.IndexFunc(groups, func(g *sendGroup) bool { return g.leader == leader })
		if i < 0 {
			groups = append(groups, &sendGroup{leader: leader})
			i = len(groups) - 1
		}
		g := groups[i]
		for _, e := range es {
			g.batches, g.entries, g.parts = append(g.batches, &e.b), append(g.entries, e), append(g.parts, p)
		}
	}
	for _, g := range groups {
		// Only the send loop and, once it stopped, Close call sendReady,
		// so this Add never races Close's Wait.
		d.sending.Add(1)
		go d.send(g)
	}
}

// sendGroup is the head batches of partitions led by one broker.
type sendGroup struct {
	leader  int32
	batches []*message.Batch
	entries []*queued
	parts   []*partQueue
}

// send produces g's batches and settles them, partition by partition.
func (d *Dispatcher) send(g *sendGroup) {
	defer d.sending.Done()
	start := time.Now()
	outs := d.kafka.Produce(d.ctx, g.batches)
	took := time.Since(start)
	runs := partitionRuns(g.parts)
	// Partitions Kafka took whole first: a failed one may wait for the disk.
	for _, r := range runs {
		if allSent(outs[r.i:r.j]) {
			d.settleHeads(g.parts[r.i], g.entries[r.i:r.j], outs[r.i:r.j], took)
		}
	}
	d.reportFailed(g, outs)
	for _, r := range runs {
		if !allSent(outs[r.i:r.j]) {
			d.settleHeads(g.parts[r.i], g.entries[r.i:r.j], outs[r.i:r.j], took)
		}
	}
	d.wakeSend()
}

// heads returns the batches at the head of p's FIFO that one send takes:
// up to Config.MaxInFlight, in order. The producer keeps them in order,
// pipelined with idempotence. Called with p.mu held.
func (d *Dispatcher) heads(p *partQueue) []*queued {
	n := min(len(p.fifo), max(1, d.cfg.MaxInFlight))
	return append([]*queued(nil), p.fifo[:n]...)
}

// run is the index range [i, j) of one partition's batches in a send
// group; they are adjacent and in FIFO order.
type run struct{ i, j int }

// partitionRuns splits a group's batches by partition.
func partitionRuns(parts []*partQueue) []run {
	var runs []run
	for i := 0; i < len(parts); {
		j := i + 1
		for j < len(parts) && parts[j] == parts[i] {
			j++
		}
		runs = append(runs, run{i, j})
		i = j
	}
	return runs
}

func allSent(outs []message.Outcome) bool {
	for _, o := range outs {
		if o.Err != nil {
			return false
		}
	}
	return true
}
