package delivery

import (
	"time"

	"go.uber.org/zap"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// heads returns the batches at the head of p's FIFO that one send takes:
// up to Config.MaxInFlight, in order. The producer keeps them in order,
// pipelined with idempotence. Called with p.mu held.
func (d *Dispatcher) heads(p *part) []*entry {
	n := min(len(p.fifo), max(1, d.cfg.MaxInFlight))
	return append([]*entry(nil), p.fifo[:n]...)
}

// run is the index range [i, j) of one partition's batches in a send
// group; they are adjacent and in FIFO order.
type run struct{ i, j int }

// partitionRuns splits a group's batches by partition.
func partitionRuns(parts []*part) []run {
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

// settleHeads applies Kafka's answers to p's head batches sent together
// (es, in FIFO order, at the head of p.fifo). The acknowledged ones leave
// the FIFO; from the first failed one on, the batches that still hold
// records Kafka did not take are spilled with the rest of the FIFO, in
// order (the producer fails every batch of a partition after a failed
// one: they could not go before it).
func (d *Dispatcher) settleHeads(p *part, es []*entry, outs []message.Outcome, took time.Duration) {
	k := 0
	for k < len(es) && outs[k].Err == nil {
		d.sentHead(p, es[k], outs[k], took)
		k++
	}
	if k == len(es) {
		p.mu.Lock()
		p.inflight = false
		p.mu.Unlock()
		return
	}
	cause := outs[k].Err
	drop := map[*entry]bool{}
	for i := k; i < len(es); i++ {
		e, out := es[i], outs[i]
		b := &e.b
		for _, r := range out.Rejected {
			d.obs.Rejected(r)
			r.Message.Tracker.Done(1, nil)
		}
		if out.Err == nil {
			// Nothing left to send (all refused for good) or, should the
			// producer have taken it after a failed one, acknowledged.
			sent := acknowledged(b, out.Rejected)
			if len(sent.Messages) > 0 {
				d.obs.Sent(sent, took)
				message.TrackDone(sent.Messages, nil)
			}
			d.obs.Left(&e.orig)
			drop[e] = true
			continue
		}
		d.logger.Warn("kafka did not take a batch",
			zap.String("topic", b.Topic), zap.Int32("partition", b.Partition),
			zap.Int("records", len(b.Messages)), zap.Error(out.Err))
		rest := out.Remaining
		if rest == nil {
			rest = withoutRejected(b.Messages, out.Rejected)
		} else {
			// Records acknowledged before the failure are done.
			message.TrackDone(without(b.Messages, out.Rejected, rest), nil)
		}
		b.Messages = rest
		b.Bytes = message.BatchSize(b.Messages)
		// Its retry or replay resends the records with the numbers they
		// were sent with, so that Kafka writes them once.
		b.Seq = out.Seq
	}
	p.mu.Lock()
	if len(drop) > 0 {
		kept := p.fifo[:0:0]
		for _, e := range p.fifo {
			if !drop[e] {
				kept = append(kept, e)
			}
		}
		p.fifo = kept
	}
	p.inflight = false
	d.spillFIFO(p, cause)
	p.mu.Unlock()
}

// reportFailed tells the Observer of every batch of the group Kafka did
// not take, before any of them is spilled (spilling many partitions takes
// a while): a replay that meanwhile finds Kafka back reports after them.
func (d *Dispatcher) reportFailed(g *sendGroup, outs []message.Outcome) {
	for i, out := range outs {
		if out.Err != nil {
			d.obs.Failed(&g.entries[i].b, out.Err)
		}
	}
}

// sentHead settles p's head batch, acknowledged (less Rejected).
func (d *Dispatcher) sentHead(p *part, e *entry, out message.Outcome, took time.Duration) {
	b := &e.b
	for _, r := range out.Rejected {
		d.obs.Rejected(r)
		r.Message.Tracker.Done(1, nil)
	}
	p.mu.Lock()
	p.fifo = p.fifo[1:]
	p.mu.Unlock()
	sent := acknowledged(b, out.Rejected)
	d.obs.Sent(sent, took)
	message.TrackDone(sent.Messages, nil)
	d.obs.Left(&e.orig)
}
