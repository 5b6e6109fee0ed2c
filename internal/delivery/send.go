package delivery

import (
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// sendReady, one pass of the send loop (wakeSend), sends the head batch
// of every partition that has none in flight: one Produce call per leader broker, since Produce returns when
// all its batches are settled and a broker slow to answer (or timing out)
// must not hold up the partitions other brokers lead.
func (d *Dispatcher) sendReady() {
	var groups []*sendGroup
	for _, p := range d.snapshot() {
		p.mu.Lock()
		ready := d.sendable(p)
		var e *entry
		if ready {
			p.inflight = true
			e = p.fifo[0]
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
		g.batches, g.entries, g.parts = append(g.batches, &e.b), append(g.entries, e), append(g.parts, p)
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
	entries []*entry
	parts   []*part
}

// send produces g's batches and settles them.
func (d *Dispatcher) send(g *sendGroup) {
	defer d.sending.Done()
	start := time.Now()
	outs := d.kafka.Produce(d.ctx, g.batches)
	took := time.Since(start)
	// Acknowledged batches first: a failed one may wait for the disk.
	for i, p := range g.parts {
		if outs[i].Err == nil {
			d.finish(p, g.entries[i], outs[i], took)
		}
	}
	for i, p := range g.parts {
		if outs[i].Err != nil {
			d.finish(p, g.entries[i], outs[i], took)
		}
	}
	d.wakeSend()
}

// finish settles a direct send of p's head batch.
func (d *Dispatcher) finish(p *part, e *entry, out message.Outcome, took time.Duration) {
	b := &e.b
	for _, r := range out.Rejected {
		d.obs.Rejected(r)
		r.Message.Tracker.Done(1, nil)
	}
	if out.Err == nil {
		p.mu.Lock()
		p.fifo = p.fifo[1:]
		p.inflight = false
		p.mu.Unlock()
		sent := acknowledged(b, out.Rejected)
		d.obs.Sent(sent, took)
		message.TrackDone(sent.Messages, nil)
		d.obs.Left(&e.orig)
		return
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
	p.mu.Lock()
	p.inflight = false
	d.spillFIFO(p, out.Err)
	p.mu.Unlock()
	d.obs.Failed(b, out.Err)
}
