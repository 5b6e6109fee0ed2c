package producer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/zap"

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
	sb     *seqBatch           // its place in the partition's window
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
	w   *seqWindow
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
					pt := sb.tag.(*part)
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
				sends = append(sends, sb.tag.(*part))
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

// sequence returns the sequence numbers of parts, a failed job's open
// parts in order, for its Outcome: nil without idempotence or when they
// were never numbered under an identity.
func (l *lane) sequence(parts []*part) *message.Sequence {
	if len(parts) == 0 || parts[0].sb == nil || l.pw.id.gen == 0 || l.pw.w.gen != l.pw.id.gen || !l.pw.w.idempotent {
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
		pw = &partWindow{sem: make(chan struct{}, 1), w: newSeqWindow(p.st.maxInFlight, p.st.cfg.MaxAttempts, p.st.idempotent)}
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
		// Its numbers do not fit its records: counted as renumbered.
		j.seq = &message.Sequence{ProducerID: b.Seq.ProducerID, ProducerEpoch: b.Seq.ProducerEpoch, BaseSequence: -1, Unsure: true}
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

// sendRound sends the parts each lane's window allows now, one request
// per leader broker and slot (a request holds at most one record batch per
// partition: the k-th in flight of each partition goes in the k-th
// request), requests to one broker pipelined in order, brokers
// concurrently. It records each part's outcome in sendErr / block.
func (p *Producer) sendRound(ctx context.Context, active []*lane) {
	type brokerReqs struct {
		broker *sarama.Broker
		slots  [][]*part // slot k: the k-th part in flight of each lane
	}
	var brokers []*brokerReqs
	for _, l := range active {
		var inflight []*part
		for _, j := range l.jobs {
			for _, pt := range j.parts {
				if pt.sb != nil && pt.sb.inFlight && !pt.closed {
					pt.sendErr, pt.sent, pt.block = nil, false, nil
					inflight = append(inflight, pt)
				}
			}
		}
		slices.SortFunc(inflight, func(a, b *part) int { return p.seqOrder(l, a, b) })
		broker, err := p.client.Leader(l.tp.Topic, l.tp.Partition)
		for _, pt := range inflight {
			pt.job.res.Attempts++
			if err != nil {
				pt.sendErr = err
			}
		}
		if err != nil {
			continue
		}
		i := slices.IndexFunc(brokers, func(b *brokerReqs) bool { return b.broker == broker })
		if i < 0 {
			brokers = append(brokers, &brokerReqs{broker: broker})
			i = len(brokers) - 1
		}
		br := brokers[i]
		for k, pt := range inflight {
			pt.id = l.pw.id
			for len(br.slots) <= k {
				br.slots = append(br.slots, nil)
			}
			br.slots[k] = append(br.slots[k], pt)
		}
	}
	var wg sync.WaitGroup
	for i, br := range brokers {
		// A broker refuses a request above socket.request.max.bytes (100
		// MiB by default) and sarama one above MaxRequestSize: many
		// partitions' batches for one broker go in several requests.
		var reqs [][]*part
		for _, slot := range br.slots {
			reqs = append(reqs, chunkParts(slot, p.st.maxRequestBytes)...)
		}
		if i == len(brokers)-1 {
			p.sendTo(ctx, br.broker, reqs)
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.sendTo(ctx, br.broker, reqs)
		}()
	}
	wg.Wait()
}

// seqOrder orders parts of one lane as its window sends them.
func (p *Producer) seqOrder(l *lane, a, b *part) int {
	for _, sb := range l.pw.w.pending {
		switch sb {
		case a.sb:
			return -1
		case b.sb:
			return 1
		}
	}
	return 0
}

// encode builds pt's record batch for the request being written, under
// identity id and pt's current base sequence; sendTo drops it once the
// request is written, so every send, a resend too, builds it afresh.
func (pt *part) encode(st *settings, id identity) {
	pt.rb, pt.arrays = pt.pool.batch(pt.msgs, st.codec)
	if st.idempotent {
		pt.rb.ProducerID, pt.rb.ProducerEpoch, pt.rb.FirstSequence = id.id, id.epoch, pt.sb.base
	}
}

// chunkParts splits parts, in order, into runs whose record batches add
// up to at most limit bytes; a run has at least one part.
func chunkParts(parts []*part, limit int) [][]*part {
	var out [][]*part
	start, sum := 0, 0
	for i, pt := range parts {
		n := pt.bytes()
		if i > start && sum+n > limit {
			out = append(out, parts[start:i])
			start, sum = i, 0
		}
		sum += n
	}
	if start < len(parts) {
		out = append(out, parts[start:])
	}
	return out
}

type produceReply struct {
	resp *sarama.ProduceResponse
	err  error
}

// sendTo sends the produce requests, in order, to broker without waiting
// in between, then waits for their answers. A request that cannot be
// written fails it and those after it, which are not sent.
func (p *Producer) sendTo(ctx context.Context, broker *sarama.Broker, reqs [][]*part) {
	replies := make([]chan produceReply, len(reqs))
	var sendErr error
	sentReqs := 0
	for r, parts := range reqs {
		req := &sarama.ProduceRequest{
			RequiredAcks: sarama.RequiredAcks(p.st.cfg.RequiredAcks),
			Timeout:      int32(p.st.cfg.Timeout / time.Millisecond),
			Version:      p.st.produceVersion,
		}
		for _, pt := range parts {
			// Encoded only now, so that the record arrays of one request
			// at a time are in use, not those of every batch in flight.
			pt.encode(p.st, pt.id)
			req.AddBatch(pt.job.batch.Topic, pt.job.batch.Partition, pt.rb)
		}
		// AsyncProduce lets requests to one broker, from this call and
		// concurrent ones, share the connection without waiting for each
		// other's answers.
		reply := make(chan produceReply, 1)
		replies[r] = reply
		sendErr = broker.AsyncProduce(req, func(resp *sarama.ProduceResponse, err error) {
			reply <- produceReply{resp, err} // must not block or touch the broker
		})
		// The request is encoded and written: its record arrays go back to
		// the pool now rather than when Kafka answers, so batches in flight
		// do not hold them (a resend builds its batch again, the same).
		for _, pt := range parts {
			pt.dropRB()
		}
		if sendErr != nil {
			// It may have been written in part: ambiguous, unless the
			// connection could not be opened.
			for _, pt := range parts {
				pt.sendErr, pt.sent = sendErr, !isDialError(sendErr)
			}
			break
		}
		sentReqs++
		for _, pt := range parts {
			pt.sent = true
		}
	}
	for _, parts := range reqs[min(sentReqs+1, len(reqs)):] {
		for _, pt := range parts {
			pt.sendErr = errNotSent
		}
	}
	if sendErr == nil && p.st.cfg.RequiredAcks == AcksNone {
		return // written; acks 0 has no answer
	}
	broken := sendErr
	for r := range sentReqs {
		var resp *sarama.ProduceResponse
		var err error
		select {
		case rep := <-replies[r]:
			resp, err = rep.resp, rep.err
		case <-ctx.Done():
			err = ctx.Err()
		case <-p.closing:
			err = ErrClosed
		}
		if err != nil {
			if broken == nil {
				broken = err
			}
			for _, pt := range reqs[r] {
				pt.sendErr = err
			}
			continue
		}
		for _, pt := range reqs[r] {
			pt.block = resp.GetBlock(pt.job.batch.Topic, pt.job.batch.Partition)
			if pt.block == nil {
				pt.sendErr = sarama.ErrIncompleteResponse
			}
		}
	}
	if broken != nil && (isConnBroken(broken) || isDialError(broken)) {
		// A broken connection stays broken in sarama; closing lets the
		// next Leader call reconnect.
		_ = broker.Close()
	}
}

// errNotSent marks a request that was not sent because one before it to
// the same broker could not be written.
var errNotSent = errors.New("not sent: an earlier request to the broker failed")

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
			if !containsString(refreshTopics, l.tp.Topic) {
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
		d.tag.(*part).acked()
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
func answerTimedOut(sb *seqBatch) bool {
	pt, _ := sb.tag.(*part)
	var ne net.Error
	return pt != nil && sb.unsure && errors.As(pt.err, &ne) && ne.Timeout()
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

// InFlight returns the number of record batches in flight now.
func (p *Producer) InFlight() int64 { return p.inFlight.Load() }

// giveUp fails the jobs of the parts a window gave up on (in order: the
// first may have had parts acknowledged before).
func (p *Producer) giveUp(failed []*seqBatch) {
	first := failed[0].tag.(*part)
	err := first.err
	if err == nil {
		err = errors.New("no answer")
	}
	err = fmt.Errorf("%d attempts: %w", failed[0].failures, p.unavailable(err))
	for _, sb := range failed {
		pt := sb.tag.(*part)
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
		var first error
		if pt, _ := l.pw.w.pending[0].tag.(*part); pt != nil {
			first = pt.err
		}
		if errors.Is(err, ErrAuthentication) {
			p.failLane(l, err)
		} else {
			p.failLane(l, fmt.Errorf("%w (send: %w)", err, first))
		}
	}
}

// bytes is the size of the part's record batch.
func (pt *part) bytes() int {
	if len(pt.job.parts) == 1 && pt.job.batch.Bytes > 0 && len(pt.msgs) == len(pt.job.batch.Messages) {
		return pt.job.batch.Bytes
	}
	return message.BatchSize(pt.msgs)
}

// dropRB releases the encoded record batch: it is done or changed.
func (pt *part) dropRB() {
	pt.pool.release(pt.arrays)
	pt.rb, pt.arrays = nil, nil
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
func (p *Producer) split(w *seqWindow, pt *part, reason message.RejectReason, err error) {
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
func (p *Producer) rejectRecords(w *seqWindow, pt *part, err error) {
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
	j.res.Seq = j.seq // numbered anew, Produce replaces it
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

func containsString(s []string, v string) bool {
	for _, e := range s {
		if e == v {
			return true
		}
	}
	return false
}
