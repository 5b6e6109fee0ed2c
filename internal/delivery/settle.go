package delivery

import (
	"time"

	"go.uber.org/zap"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// ending is where a submitted batch went when it left memory.
type ending int

const (
	endSent    ending = iota // Kafka acknowledged it, less the records it refused for good: Sent
	endSpilled               // written to the temp storage: Spilled
	endLost                  // neither sent nor stored: Lost
	endRefused               // Kafka refused every record for good, each told by reject: nothing more
)

// settle is where every submitted batch leaves the Dispatcher, exactly
// once: the Observer hears where it went (how), the trackers of b's
// records finish, with err (nil unless lost), and Left gets the batch as
// submitted. b is e's batch as it went: for endSent, less the records Kafka
// refused for good (acknowledged).
func (d *Dispatcher) settle(e *queued, how ending, b *message.Batch, took time.Duration, err error) {
	switch how {
	case endSent:
		d.obs.Sent(b, took)
	case endSpilled:
		d.obs.Spilled(b)
	case endLost:
		d.obs.Lost(b, err)
	}
	message.TrackDone(b.Messages, err)
	d.obs.Left(&e.orig)
}

// reject tells the Observer of records Kafka refused for good, or that
// can never be sent (partition_gone), and finishes their trackers (a
// stored record has none: see Storage.Peek).
func (d *Dispatcher) reject(rs ...message.Rejected) {
	for _, r := range rs {
		d.obs.Rejected(r)
		r.Message.Tracker.Done(1, nil)
	}
}

// settleHeads applies Kafka's answers to p's head batches sent together
// (es, in FIFO order, at the head of p.fifo). The acknowledged ones leave
// the FIFO; from the first failed one on, the batches that still hold
// records Kafka did not take are spilled with the rest of the FIFO, in
// order (the producer fails every batch of a partition after a failed
// one: they could not go before it).
func (d *Dispatcher) settleHeads(p *partQueue, es []*queued, outs []message.Outcome, took time.Duration) {
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
	drop := map[*queued]bool{}
	for i := k; i < len(es); i++ {
		e, out := es[i], outs[i]
		b := &e.b
		d.reject(out.Rejected...)
		if out.Err == nil {
			// Nothing left to send (all refused for good) or, should the
			// producer have taken it after a failed one, acknowledged.
			a, how := acknowledged(b, out.Rejected), endSent
			if len(a.Messages) == 0 {
				how = endRefused
			}
			d.settle(e, how, a, took, nil)
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

// sentHead settles p's head batch, acknowledged (less Rejected), Sent even
// when Kafka refused all its records.
func (d *Dispatcher) sentHead(p *partQueue, e *queued, out message.Outcome, took time.Duration) {
	d.reject(out.Rejected...)
	p.mu.Lock()
	p.fifo = p.fifo[1:]
	p.mu.Unlock()
	d.settle(e, endSent, acknowledged(&e.b, out.Rejected), took, nil)
}
