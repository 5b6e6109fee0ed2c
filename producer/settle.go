package producer

// This file applies Kafka's answers to the partitions' windows: batches
// acknowledged, resent, split, rejected or failed, and the sequence
// numbers a failed batch keeps.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"

	"github.com/IBM/sarama"
	"go.uber.org/zap"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// sequence returns the sequence numbers of parts, a failed job's open
// parts in order, for its Outcome: nil without idempotence or when they
// were never numbered under an identity.
func (l *lane) sequence(parts []*part) *message.Sequence {
	if len(parts) == 0 || l.pw.id.gen == 0 {
		return nil
	}
	seq := &message.Sequence{
		ProducerID:    l.pw.id.id,
		ProducerEpoch: l.pw.id.epoch,
		BaseSequence:  parts[0].sb.base,
		Counts:        make([]int32, len(parts)),
	}
	for i, pt := range parts {
		seq.Counts[i] = pt.sb.count
		seq.Unsure = seq.Unsure || pt.sb.unsure
	}
	return seq
}

// possibleDuplicate counts and logs records that go again under other
// sequence numbers after a send of them may have been written: the broker
// cannot recognise the resend, so Kafka may hold them twice.
func (p *Producer) possibleDuplicate(tp message.TopicPartition, records int, producerID int64, epoch int16, base int32) {
	p.possibleDups.Add(int64(records))
	p.logger.Warn("kafka may hold these records twice: a send of them ended without an answer, and they go again under a new producer id",
		zap.String("topic", tp.Topic), zap.Int32("partition", tp.Partition), zap.Int("records", records),
		zap.Int64("producer_id", producerID), zap.Int16("producer_epoch", epoch), zap.Int32("base_sequence", base))
}

// PossibleDuplicates returns how many records were sent again under other
// sequence numbers after a send of them may have been written (a restart,
// or a broker that lost the producer's state): Kafka may hold them twice.
func (p *Producer) PossibleDuplicates() int64 { return p.possibleDups.Load() }

// settle applies each sent part's outcome to its window, in the order the
// window sent them. It returns the largest failure count among lanes to
// retry after a backoff (0: none) and the topics whose metadata must be
// refreshed first.
func (p *Producer) settle(active []*lane) (retry int, refreshTopics []string) {
	for _, l := range active {
		var sent []*part
		for _, j := range l.jobs {
			for _, pt := range j.parts {
				if pt.sb != nil && pt.sb.inFlight {
					sent = append(sent, pt)
				}
			}
		}
		slices.SortFunc(sent, func(a, b *part) int { return p.seqOrder(l, a, b) })
		l.reconnect = false
		retried := false
		for _, pt := range sent {
			if p.settlePart(l, pt) {
				retried = true
			}
		}
		if l.failErr != nil {
			p.failLane(l, l.failErr)
			continue
		}
		if retried && !l.pw.w.idle() {
			retry = max(retry, l.pw.w.pending[0].failures, 1)
			if !slices.Contains(refreshTopics, l.tp.Topic) {
				refreshTopics = append(refreshTopics, l.tp.Topic)
			}
		}
	}
	return retry, refreshTopics
}

// settlePart applies the answer to one sent part. It reports whether the
// topic's metadata should be refreshed.
func (p *Producer) settlePart(l *lane, pt *part) (refresh bool) {
	w := l.pw.w
	err := pt.sendErr
	if err == nil && pt.block != nil && !errors.Is(pt.block.Err, sarama.ErrNoError) {
		err = pt.block.Err
	}
	var out seqOutcome
	act := actRetry
	switch {
	case err == nil || errors.Is(err, sarama.ErrDuplicateSequenceNumber):
		out = seqAcked
	default:
		pt.err = err
		act = classify(err)
		switch act {
		case actSequence:
			out = seqOutOfOrder
			if !errors.Is(err, sarama.ErrOutOfOrderSequenceNumber) {
				out = seqUnknownProducer
			}
		case actSplit, actRecordErrors:
			out = seqRejected
		case actFail:
			out = seqUnsure
			if l.failErr == nil {
				l.failErr = p.explain(l.tp.Topic, "Write", err)
			}
		default: // actRetry, actReconnect
			out = seqRetry
			if ambiguous(err, pt.sent) {
				out = seqUnsure
			}
		}
		p.logger.Debug("kafka produce attempt failed",
			zap.String("topic", l.tp.Topic), zap.Int32("partition", l.tp.Partition),
			zap.Int("records", len(pt.msgs)), zap.Int("failures", pt.sb.failures),
			zap.String("action", act.String()), zap.Error(err))
	}
	first := len(w.pending) > 0 && w.pending[0] == pt.sb && pt.sb.sentFirst
	done, failed := w.answer(pt.sb, out)
	for _, d := range done {
		d.tag.acked()
	}
	if out == seqRejected && !pt.sb.acked {
		if act == actSplit {
			p.split(w, pt, message.RejectMessageTooLarge, err)
		} else {
			p.rejectRecords(w, pt, err)
		}
	}
	if len(failed) > 0 {
		p.giveUp(failed)
	}
	if act == actReconnect && first {
		l.reconnect = true
	}
	return out == seqRetry || out == seqUnsure
}

// answerTimedOut reports whether the last send of sb's part waited for
// its answer in vain.
func answerTimedOut(sb *seqBatch[*part]) bool {
	var ne net.Error
	return sb.unsure && errors.As(sb.tag.err, &ne) && ne.Timeout()
}

// ambiguous reports whether a failed send may have been written.
func ambiguous(err error, sent bool) bool {
	var kerr sarama.KError
	if errors.As(err, &kerr) {
		return kerr == sarama.ErrRequestTimedOut || kerr == sarama.ErrNotEnoughReplicasAfterAppend
	}
	if errors.Is(err, errNotSent) {
		return false
	}
	return sent
}

// countResends adds the lane's resends to the producer's counters.
func (p *Producer) countResends(l *lane) {
	r := l.pw.w.takeResends()
	for i, n := range r {
		if n > 0 {
			p.resends[i].Add(int64(n))
		}
	}
}

// Resends returns how many record batches were sent again, by reason:
// retriable_error, behind_failed_batch, new_producer_id (ResendReasons).
func (p *Producer) Resends() map[string]int64 {
	out := make(map[string]int64, len(p.resends)-1)
	for r := resendError; r <= resendProducerID; r++ {
		out[r.String()] = p.resends[r].Load()
	}
	return out
}

// giveUp fails the jobs of the parts a window gave up on (in order: the
// first may have had parts acknowledged before).
func (p *Producer) giveUp(failed []*seqBatch[*part]) {
	first := failed[0].tag
	err := first.err
	if err == nil {
		err = errors.New("no answer")
	}
	err = fmt.Errorf("%d attempts: %w", failed[0].failures, p.unavailable(err))
	for _, sb := range failed {
		pt := sb.tag
		if !pt.job.done {
			if pt.job != first.job {
				p.failJob(pt.job, fmt.Errorf("an earlier batch of the partition failed: %w", err))
			} else {
				p.failJob(pt.job, err)
			}
		}
	}
}

// failLane fails every job of the lane not done with err; their parts
// leave the window, which then needs a new identity.
func (p *Producer) failLane(l *lane, err error) {
	if l.pw.w.inFlight == 0 {
		l.pw.w.abandon()
	}
	for _, j := range l.jobs {
		if !j.done {
			p.failJob(j, err)
		}
	}
	l.failErr = nil
}

// refreshAfterErrors refreshes metadata for the retrying lanes' topics.
// When no broker can be reached, lanes whose first batch failed on the
// connection fail at once instead of waiting through their attempts,
// unless, with idempotence, that batch's answer timed out (the broker may
// have written it, as when answers are lost on the way back): its resend
// is then answered as a duplicate, where storing and replaying it under
// new sequence numbers would write it twice. A connection found closed
// (the broker went away) still fails at once.
func (p *Producer) refreshAfterErrors(ctx context.Context, active []*lane, topics []string) {
	err := p.refreshCtx(ctx, topics)
	if err == nil || !errors.Is(err, ErrUnavailable) && !errors.Is(err, ErrAuthentication) {
		return
	}
	for _, l := range active {
		if !l.reconnect || l.pw.w.idle() || p.st.idempotent && answerTimedOut(l.pw.w.pending[0]) {
			continue
		}
		first := l.pw.w.pending[0].tag.err
		if errors.Is(err, ErrAuthentication) {
			p.failLane(l, err)
		} else {
			p.failLane(l, fmt.Errorf("%w (send: %w)", err, first))
		}
	}
}

// acked records that the part was acknowledged.
func (pt *part) acked() {
	pt.finish()
}

// finish closes the part; its job is done with its last part.
func (pt *part) finish() {
	if pt.closed {
		return
	}
	pt.closed = true
	pt.dropRB()
	pt.job.open--
	if pt.job.open == 0 {
		pt.job.done = true
	}
}

// split replaces the part by its two halves, or rejects its only record.
func (p *Producer) split(w *seqWindow[*part], pt *part, reason message.RejectReason, err error) {
	j := pt.job
	pt.dropRB()
	if len(pt.msgs) == 1 {
		j.res.Rejected = append(j.res.Rejected, message.Rejected{Message: pt.msgs[0], Reason: reason, Err: err})
		p.logger.Warn("kafka rejected record",
			zap.String("topic", j.batch.Topic), zap.Int32("partition", j.batch.Partition),
			zap.String("reason", string(reason)), zap.Int("value_bytes", len(pt.msgs[0].Value)), zap.Error(err))
		w.resize(pt.sb, 0)
		pt.finish()
		return
	}
	half := len(pt.msgs) / 2
	rest := &part{job: j, msgs: pt.msgs[half:], pool: pt.pool}
	pt.msgs = pt.msgs[:half]
	rest.sb = w.split(pt.sb, int32(half), rest)
	i := slices.Index(j.parts, pt)
	j.parts = slices.Insert(j.parts, i+1, rest)
	j.open++
}

// rejectRecords rejects the records the broker named and resends the rest
// of the part; when it named none, it splits.
func (p *Producer) rejectRecords(w *seqWindow[*part], pt *part, err error) {
	j := pt.job
	var recErrs []sarama.ProduceResponseRecordError
	if pt.block != nil {
		recErrs = pt.block.RecordErrors
	}
	bad := make(map[int32]error, len(recErrs))
	for _, re := range recErrs {
		if re.BatchIndex < 0 || int(re.BatchIndex) >= len(pt.msgs) {
			continue
		}
		msg := err.Error()
		if re.BatchIndexErrorMessage != nil {
			msg = *re.BatchIndexErrorMessage
		} else if pt.block.ErrorMessage != nil {
			msg = *pt.block.ErrorMessage
		}
		bad[re.BatchIndex] = fmt.Errorf("%w: %s", err, msg)
	}
	if len(bad) == 0 {
		p.split(w, pt, message.RejectInvalidRecord, err)
		return
	}
	keep := make([]message.Message, 0, len(pt.msgs)-len(bad))
	for i := range pt.msgs {
		if e, ok := bad[int32(i)]; ok {
			j.res.Rejected = append(j.res.Rejected, message.Rejected{Message: pt.msgs[i], Reason: message.RejectInvalidRecord, Err: e})
			continue
		}
		keep = append(keep, pt.msgs[i])
	}
	p.logger.Warn("kafka rejected records",
		zap.String("topic", j.batch.Topic), zap.Int32("partition", j.batch.Partition),
		zap.String("reason", string(message.RejectInvalidRecord)), zap.Int("rejected", len(bad)), zap.Error(err))
	pt.dropRB()
	w.resize(pt.sb, int32(len(keep)))
	if len(keep) == 0 {
		pt.finish()
		return
	}
	pt.msgs = keep
}

// failJob ends the job with err; its records not acknowledged become
// Remaining.
func (p *Producer) failJob(j *job, err error) {
	if j.done {
		return
	}
	j.done = true
	j.res.Err = fmt.Errorf("produce %s/%d: %w", j.batch.Topic, j.batch.Partition, err)
	var open []*part
	n := 0
	for _, pt := range j.parts {
		if !pt.closed {
			open = append(open, pt)
			n += len(pt.msgs)
		}
		pt.closed = true
		pt.dropRB()
	}
	j.failed = open
	if len(open) == 1 {
		j.res.Remaining = open[0].msgs
	} else {
		j.res.Remaining = make([]message.Message, 0, n)
		for _, pt := range open {
			j.res.Remaining = append(j.res.Remaining, pt.msgs...)
		}
	}
}
