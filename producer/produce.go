package producer

// This file is Produce's round loop: batches become jobs and parts in
// their partitions' windows, and each round sends what the windows allow
// (request.go) and settles the answers (settle.go) until every batch is
// acknowledged, rejected or failed.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// job is the progress of one batch through Produce.
type job struct {
	batch *message.Batch
	res   *message.Outcome
	// parts are the batch's record runs, in order, each one record batch
	// in its partition's window. A batch is one part unless Kafka found it
	// too large.
	parts []*part
	open  int // parts neither acknowledged nor rejected
	done  bool
	// seq is the batch's sequence numbers from an earlier send
	// (message.Batch.Seq), when they fit its parts; nil once the parts are
	// numbered anew.
	seq *message.Sequence
	// failed are the parts left open when the job failed, for the
	// Outcome's Seq.
	failed []*part
}

// part is one record batch of a job.
type part struct {
	job    *job
	msgs   []message.Message
	sb     *seqBatch[*part]    // its place in the partition's window
	rb     *sarama.RecordBatch // msgs encoded, while its request is built and written
	arrays *recordArrays       // rb's records, back to the pool with dropRB
	id     identity            // the producer id its lane sends under this round
	pool   *recordPool
	closed bool  // acknowledged, rejected or failed
	err    error // the last send's error, for the failure message

	// Per round.
	sendErr error                        // the send failed as a whole
	sent    bool                         // the request left (the answer may be lost)
	block   *sarama.ProduceResponseBlock // the partition's answer
}

// lane is one partition's share of a Produce call: its window and the
// jobs for it, in order.
type lane struct {
	tp   message.TopicPartition
	pw   *partWindow
	jobs []*job
	// failErr, set in a round, fails everything of the lane left once the
	// round is settled (a permanent error, a canceled context).
	failErr error
	// reconnect: the first unacknowledged part failed on the connection.
	reconnect bool
}

// partWindow is a partition's seqWindow, used by one Produce call at a
// time.
type partWindow struct {
	sem chan struct{} // holds one token while a Produce call uses w and id
	w   *seqWindow[*part]
	id  identity // the producer id and epoch w's sequence numbers belong to
}

// Produce sends each batch as one record batch to its partition's leader,
// batches led by the same broker in one request and brokers concurrently.
// It returns when every batch is acknowledged, rejected or failed, with
// one Outcome per batch in the order given. An Outcome's Err names the
// topic/partition and wraps ErrUnavailable (retry later),
// ErrAuthentication, ErrClosed, the context's error or the permanent Kafka
// error. Records of a batch keep their order, and batches for the same
// partition keep the order given: with
// idempotence up to MaxInFlight of them are in flight at once, each in its
// own request; without, one after the other. When a batch of a partition
// fails, the batches given after it for that partition fail too (they
// cannot go before it).
func (p *Producer) Produce(ctx context.Context, batches []*message.Batch) []message.Outcome {
	results := make([]message.Outcome, len(batches))
	jobs := make([]*job, len(batches))
	for i, b := range batches {
		jobs[i] = p.newJob(b, &results[i])
	}
	lanes := p.lanesOf(jobs)
	if err := p.acquire(ctx, lanes); err != nil {
		for _, l := range lanes {
			for _, j := range l.jobs {
				p.failJob(j, err)
				j.res.Seq = j.seq // not sent: the numbers it came with still hold
			}
		}
		return results
	}
	defer p.release(lanes)
	for _, l := range lanes {
		for _, j := range l.jobs {
			p.addJob(l, j)
		}
	}
	for {
		if err := p.stopErr(ctx); err != nil {
			for _, l := range lanes {
				p.failLane(l, err)
			}
			break
		}
		var sends []*part
		var active []*lane
		for _, l := range lanes {
			if l.pw.w.idle() {
				continue
			}
			if l.pw.w.needsIdentity() {
				id, err := p.identity(ctx, l.pw.w.gen)
				if err != nil {
					// As a send that could not connect.
					for _, j := range l.jobs {
						j.res.Attempts++
					}
					p.failLane(l, err)
					continue
				}
				old := l.pw.id
				for _, sb := range l.pw.w.setIdentity(id.gen) {
					pt := sb.tag
					p.possibleDuplicate(l.tp, len(pt.msgs), old.id, old.epoch, sb.base)
				}
				l.pw.id = id
			}
			ss := l.pw.w.sendable()
			if len(ss) == 0 {
				continue
			}
			active = append(active, l)
			for _, sb := range ss {
				sends = append(sends, sb.tag)
			}
		}
		if len(sends) == 0 {
			break
		}
		for _, l := range active {
			p.countResends(l)
		}
		p.inFlight.Add(int64(len(sends)))
		p.sendRound(ctx, active)
		p.inFlight.Add(-int64(len(sends)))
		retry, refreshTopics := p.settle(active)
		if len(refreshTopics) > 0 {
			p.refreshAfterErrors(ctx, active, refreshTopics)
		}
		if retry > 0 && anyPending(active) {
			p.sleep(ctx, p.backoff(retry))
		}
	}
	for _, l := range lanes {
		if !l.pw.w.idle() { // cannot happen: every round ends settled
			p.failLane(l, errors.New("internal error: batches left unsent"))
		}
	}
	for _, l := range lanes {
		for _, j := range l.jobs {
			if j.res.Err != nil {
				j.res.Seq = l.sequence(j.failed)
			}
		}
	}
	for _, j := range jobs {
		for _, pt := range j.parts {
			pt.dropRB()
		}
	}
	return results
}

// addJob puts the job's parts in its lane's window. A job whose batch was
// numbered before keeps its numbers when they are the ones the window
// expects next under its identity (a batch it gave up on, back from the
// temp storage); otherwise the old numbers are dropped, and if a send of
// them may have been written, that is a possible duplicate.
func (p *Producer) addJob(l *lane, j *job) {
	w := l.pw.w
	resume := j.seq != nil && l.pw.id.gen != 0 &&
		j.seq.ProducerID == l.pw.id.id && j.seq.ProducerEpoch == l.pw.id.epoch && w.resumes(j.seq.BaseSequence)
	unsure := resume && j.seq.Unsure
	if !resume && j.seq != nil {
		if j.seq.Unsure {
			p.possibleDuplicate(l.tp, len(j.batch.Messages), j.seq.ProducerID, j.seq.ProducerEpoch, j.seq.BaseSequence)
		}
		j.seq = nil
	}
	for _, pt := range j.parts {
		pt.sb = w.add(int32(len(pt.msgs)), pt, resume, unsure)
	}
}

// lanesOf groups the unfinished jobs by partition, in order of first
// appearance.
func (p *Producer) lanesOf(jobs []*job) []*lane {
	var lanes []*lane
	idx := map[message.TopicPartition]*lane{}
	for _, j := range jobs {
		if j.done {
			continue
		}
		tp := message.TopicPartition{Topic: j.batch.Topic, Partition: j.batch.Partition}
		l := idx[tp]
		if l == nil {
			l = &lane{tp: tp, pw: p.partWindow(tp)}
			idx[tp] = l
			lanes = append(lanes, l)
		}
		l.jobs = append(l.jobs, j)
	}
	return lanes
}

// partWindow returns the window of tp, created on first use.
func (p *Producer) partWindow(tp message.TopicPartition) *partWindow {
	p.winMu.Lock()
	defer p.winMu.Unlock()
	pw := p.windows[tp]
	if pw == nil {
		pw = &partWindow{sem: make(chan struct{}, 1), w: newSeqWindow[*part](p.st.maxInFlight, p.st.cfg.MaxAttempts, p.st.idempotent)}
		p.windows[tp] = pw
	}
	return pw
}

// acquire takes the lanes' windows for this call, in topic-partition order
// so that concurrent calls cannot deadlock.
func (p *Producer) acquire(ctx context.Context, lanes []*lane) error {
	sorted := slices.Clone(lanes)
	slices.SortFunc(sorted, func(a, b *lane) int {
		if c := strings.Compare(a.tp.Topic, b.tp.Topic); c != 0 {
			return c
		}
		return cmp.Compare(a.tp.Partition, b.tp.Partition)
	})
	for i, l := range sorted {
		select {
		case l.pw.sem <- struct{}{}:
		case <-ctx.Done():
			p.release(sorted[:i])
			return ctx.Err()
		case <-p.closing:
			p.release(sorted[:i])
			return ErrClosed
		}
	}
	return nil
}

func (p *Producer) release(lanes []*lane) {
	for _, l := range lanes {
		<-l.pw.sem
	}
}

// newJob rejects records too large to be sent even alone and splits the
// rest into parts that fit MaxMessageBytes (normally a single part).
func (p *Producer) newJob(b *message.Batch, res *message.Outcome) *job {
	j := &job{batch: b, res: res}
	limit := p.st.cfg.MaxMessageBytes
	if b.Seq != nil && b.Seq.Records() == len(b.Messages) && !slices.ContainsFunc(b.Seq.Counts, func(n int32) bool { return n <= 0 }) {
		// Sent before: the same record batches, so that the broker can
		// recognise them by their numbers.
		j.seq = b.Seq
		runs := make([][]message.Message, 0, len(b.Seq.Counts))
		msgs := b.Messages
		for _, n := range b.Seq.Counts {
			runs = append(runs, msgs[:n:n])
			msgs = msgs[n:]
		}
		j.addParts(&p.records, runs)
		return j
	}
	if b.Seq != nil && b.Seq.Unsure {
		// Its numbers do not fit its records: they go again renumbered.
		p.possibleDuplicate(b.TopicPartition(), len(b.Messages), b.Seq.ProducerID, b.Seq.ProducerEpoch, b.Seq.BaseSequence)
	}
	if len(b.Messages) > 0 && b.Bytes > 0 && b.Bytes <= limit {
		// The batcher measured it, and no record is larger alone than
		// inside the batch: nothing to reject or split.
		j.addParts(&p.records, [][]message.Message{b.Messages})
		return j
	}
	var kept []message.Message // non-nil once a record was rejected
	for i := range b.Messages {
		m := &b.Messages[i]
		if size := message.BatchHeaderBytes + message.RecordSize(m, 0, m.Timestamp); size > limit {
			if kept == nil {
				kept = append(make([]message.Message, 0, len(b.Messages)-1), b.Messages[:i]...)
			}
			res.Rejected = append(res.Rejected, message.Rejected{
				Message: *m,
				Reason:  message.RejectMessageTooLarge,
				Err:     fmt.Errorf("record batch of %d bytes for one record exceeds max_message_bytes %d", size, limit),
			})
			continue
		}
		if kept != nil {
			kept = append(kept, *m)
		}
	}
	msgs := b.Messages
	if kept != nil {
		msgs = kept
	}
	if len(msgs) == 0 {
		j.done = true
		return j
	}
	j.addParts(&p.records, fit(msgs, limit))
	return j
}

func (j *job) addParts(pool *recordPool, runs [][]message.Message) {
	for _, msgs := range runs {
		j.parts = append(j.parts, &part{job: j, msgs: msgs, pool: pool})
	}
	j.open = len(j.parts)
}

// fit splits msgs into runs, in order, whose record batches are at most
// limit bytes, halving as needed.
func fit(msgs []message.Message, limit int) [][]message.Message {
	if len(msgs) == 1 || message.BatchSize(msgs) <= limit {
		return [][]message.Message{msgs}
	}
	half := len(msgs) / 2
	return append(fit(msgs[:half], limit), fit(msgs[half:], limit)...)
}

func (p *Producer) stopErr(ctx context.Context) error {
	if p.closed() {
		return ErrClosed
	}
	return ctx.Err()
}

// InFlight returns the number of record batches in flight now.
func (p *Producer) InFlight() int64 { return p.inFlight.Load() }

// backoff is the wait before the failures-th retry: RetryBackoff doubling
// per failure, at most maxBackoff (or RetryBackoff when that is larger).
func (p *Producer) backoff(failures int) time.Duration {
	d := p.st.cfg.RetryBackoff
	limit := max(maxBackoff, d)
	for i := 1; i < failures && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

func (p *Producer) sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	case <-p.closing:
	}
}

func anyPending(lanes []*lane) bool {
	for _, l := range lanes {
		if !l.pw.w.idle() {
			return true
		}
	}
	return false
}
