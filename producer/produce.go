package producer

import (
	"context"
	"errors"
	"fmt"
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
	// parts are record runs still to send, in order; parts[0] goes next.
	// A batch is one part unless Kafka found it too large.
	parts    [][]message.Message
	rb       *sarama.RecordBatch // parts[0] encoded, kept for retries
	arrays   *recordArrays       // rb's records, back to the pool with dropRB
	pool     *recordPool
	failures int // retriable failures so far
	done     bool

	// Per round.
	err   error                        // the send failed as a whole
	block *sarama.ProduceResponseBlock // the partition's answer
}

// Produce sends each batch as one record batch to its partition's leader,
// batches led by the same broker in one request and brokers concurrently.
// It returns when every batch is acknowledged, rejected or failed, with
// one Outcome per batch in the order given. Records of a batch keep their
// order; batches for the same partition are sent one after the other in
// the order given. An Outcome's Err names the topic/partition and wraps
// ErrUnavailable (retry later), ErrAuthentication, ErrClosed, the
// context's error or the permanent Kafka error.
func (p *Producer) Produce(ctx context.Context, batches []*message.Batch) []message.Outcome {
	results := make([]message.Outcome, len(batches))
	jobs := make([]*job, len(batches))
	for i, b := range batches {
		jobs[i] = p.newJob(b, &results[i])
	}
	active := make([]*job, 0, len(jobs))
	for {
		active = runnable(jobs, active[:0])
		if len(active) == 0 {
			break
		}
		if err := p.stopErr(ctx); err != nil {
			for _, j := range active {
				p.fail(j, err)
			}
			continue
		}
		p.sendRound(ctx, active)
		retry, refreshTopics := p.settle(active)
		if len(refreshTopics) > 0 {
			p.refreshAfterErrors(ctx, active, refreshTopics)
		}
		if retry > 0 && anyPending(active) {
			p.sleep(ctx, p.backoff(retry))
		}
	}
	for _, j := range jobs {
		j.dropRB()
	}
	return results
}

// newJob rejects records too large to be sent even alone and splits the
// rest into parts that fit MaxMessageBytes (normally a single part).
func (p *Producer) newJob(b *message.Batch, res *message.Outcome) *job {
	j := &job{batch: b, res: res, pool: &p.records}
	limit := p.st.cfg.MaxMessageBytes
	if len(b.Messages) > 0 && b.Bytes > 0 && b.Bytes <= limit {
		// The batcher measured it, and no record is larger alone than
		// inside the batch: nothing to reject or split.
		j.parts = [][]message.Message{b.Messages}
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
	j.parts = fit(msgs, limit)
	return j
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

// runnable appends to dst the unfinished jobs that may be sent now: a job
// waits while an earlier one for the same partition is unfinished.
func runnable(jobs []*job, dst []*job) []*job {
	for i, j := range jobs {
		if j.done {
			continue
		}
		blocked := false
		for _, e := range jobs[:i] {
			if !e.done && e.batch.Partition == j.batch.Partition && e.batch.Topic == j.batch.Topic {
				blocked = true
				break
			}
		}
		if !blocked {
			dst = append(dst, j)
		}
	}
	return dst
}

func (p *Producer) stopErr(ctx context.Context) error {
	if p.closed() {
		return ErrClosed
	}
	return ctx.Err()
}

// sendRound sends parts[0] of every job, one request per leader broker,
// and records each job's outcome in j.err / j.block.
func (p *Producer) sendRound(ctx context.Context, active []*job) {
	type group struct {
		broker *sarama.Broker
		jobs   []*job
	}
	var groups []group
	for _, j := range active {
		j.err, j.block = nil, nil
		j.res.Attempts++
		broker, err := p.client.Leader(j.batch.Topic, j.batch.Partition)
		if err != nil {
			j.err = err
			continue
		}
		if j.rb == nil {
			j.rb, j.arrays = j.pool.batch(j.parts[0], p.st.codec)
		}
		found := false
		for g := range groups {
			if groups[g].broker == broker {
				groups[g].jobs = append(groups[g].jobs, j)
				found = true
				break
			}
		}
		if !found {
			groups = append(groups, group{broker: broker, jobs: []*job{j}})
		}
	}
	// A broker refuses a request above socket.request.max.bytes (100 MiB
	// by default) and sarama one above MaxRequestSize: many partitions'
	// batches for one broker go in several requests.
	var reqs []group
	for _, g := range groups {
		for _, jobs := range chunkJobs(g.jobs, p.st.maxRequestBytes) {
			reqs = append(reqs, group{broker: g.broker, jobs: jobs})
		}
	}
	switch len(reqs) {
	case 0:
	case 1:
		p.sendTo(ctx, reqs[0].broker, reqs[0].jobs)
	default:
		var wg sync.WaitGroup
		for _, r := range reqs[1:] {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.sendTo(ctx, r.broker, r.jobs)
			}()
		}
		p.sendTo(ctx, reqs[0].broker, reqs[0].jobs)
		wg.Wait()
	}
}

// chunkJobs splits jobs, in order, into runs whose record batches
// (parts[0]) add up to at most limit bytes; a run has at least one job.
func chunkJobs(jobs []*job, limit int) [][]*job {
	var out [][]*job
	start, sum := 0, 0
	for i, j := range jobs {
		n := j.partBytes()
		if i > start && sum+n > limit {
			out = append(out, jobs[start:i])
			start, sum = i, 0
		}
		sum += n
	}
	if start < len(jobs) {
		out = append(out, jobs[start:])
	}
	return out
}

type produceReply struct {
	resp *sarama.ProduceResponse
	err  error
}

// sendTo sends one produce request with the jobs' record batches to broker
// and waits for its answer.
func (p *Producer) sendTo(ctx context.Context, broker *sarama.Broker, jobs []*job) {
	req := &sarama.ProduceRequest{
		RequiredAcks: sarama.RequiredAcks(p.st.cfg.RequiredAcks),
		Timeout:      int32(p.st.cfg.Timeout / time.Millisecond),
		Version:      p.st.produceVersion,
	}
	for _, j := range jobs {
		req.AddBatch(j.batch.Topic, j.batch.Partition, j.rb)
	}
	// AsyncProduce lets requests to one broker from concurrent Produce
	// calls share the connection instead of waiting for each other.
	reply := make(chan produceReply, 1)
	err := broker.AsyncProduce(req, func(resp *sarama.ProduceResponse, err error) {
		reply <- produceReply{resp, err} // must not block or touch the broker
	})
	if err == nil && req.RequiredAcks == sarama.NoResponse {
		return // written; acks 0 has no answer
	}
	var resp *sarama.ProduceResponse
	if err == nil {
		select {
		case r := <-reply:
			resp, err = r.resp, r.err
		case <-ctx.Done():
			err = ctx.Err()
		case <-p.closing:
			err = ErrClosed
		}
	}
	if err != nil {
		if isConnBroken(err) || isDialError(err) {
			// A broken connection stays broken in sarama; closing lets the
			// next Leader call reconnect.
			_ = broker.Close()
		}
		for _, j := range jobs {
			j.err = err
		}
		return
	}
	for _, j := range jobs {
		j.block = resp.GetBlock(j.batch.Topic, j.batch.Partition)
		if j.block == nil {
			j.err = sarama.ErrIncompleteResponse
		}
	}
}

// settle applies each job's outcome. It returns the largest failure count
// among jobs to retry after a backoff (0: none) and the topics whose
// metadata must be refreshed first.
func (p *Producer) settle(active []*job) (retry int, refreshTopics []string) {
	for _, j := range active {
		err := j.err
		if err == nil && j.block != nil && !errors.Is(j.block.Err, sarama.ErrNoError) {
			err = j.block.Err
		}
		if err == nil {
			j.partSent()
			continue
		}
		act := classify(err)
		switch act {
		case actSplit:
			p.split(j, message.RejectMessageTooLarge, err)
		case actRecordErrors:
			p.rejectRecords(j, err)
		case actFail:
			p.fail(j, p.explain(j.batch.Topic, "Write", err))
		case actRetry, actReconnect:
			j.failures++
			p.logger.Debug("kafka produce attempt failed",
				zap.String("topic", j.batch.Topic), zap.Int32("partition", j.batch.Partition),
				zap.Int("records", len(j.parts[0])), zap.Int("failures", j.failures),
				zap.String("action", act.String()), zap.Error(err))
			if j.failures >= p.st.cfg.MaxAttempts {
				p.fail(j, fmt.Errorf("%d attempts: %w", j.failures, p.unavailable(err)))
				continue
			}
			j.err = err
			if !containsString(refreshTopics, j.batch.Topic) {
				refreshTopics = append(refreshTopics, j.batch.Topic)
			}
			retry = max(retry, j.failures)
		}
	}
	return retry, refreshTopics
}

// refreshAfterErrors refreshes metadata for the retrying jobs' topics. When
// no broker can be reached, jobs that failed on the connection fail at once
// instead of waiting through their attempts.
func (p *Producer) refreshAfterErrors(ctx context.Context, active []*job, topics []string) {
	err := p.refreshCtx(ctx, topics)
	if err == nil || !errors.Is(err, ErrUnavailable) && !errors.Is(err, ErrAuthentication) {
		return
	}
	for _, j := range active {
		if j.done || j.err == nil || classify(j.err) != actReconnect {
			continue
		}
		if errors.Is(err, ErrAuthentication) {
			p.fail(j, err)
		} else {
			p.fail(j, fmt.Errorf("%w (send: %w)", err, j.err))
		}
	}
}

// partBytes is the size of the record batch of parts[0].
func (j *job) partBytes() int {
	if len(j.parts) == 1 && j.batch.Bytes > 0 && len(j.parts[0]) == len(j.batch.Messages) {
		return j.batch.Bytes
	}
	return message.BatchSize(j.parts[0])
}

// dropRB releases the encoded parts[0]: it is done or changed.
func (j *job) dropRB() {
	j.pool.release(j.arrays)
	j.rb, j.arrays = nil, nil
}

// partSent records that parts[0] was acknowledged.
func (j *job) partSent() {
	j.parts = j.parts[1:]
	j.dropRB()
	if len(j.parts) == 0 {
		j.done = true
	}
}

// split replaces parts[0] by its two halves, or rejects its only record.
func (p *Producer) split(j *job, reason message.RejectReason, err error) {
	part := j.parts[0]
	j.dropRB()
	if len(part) == 1 {
		j.res.Rejected = append(j.res.Rejected, message.Rejected{Message: part[0], Reason: reason, Err: err})
		p.logger.Warn("kafka rejected record",
			zap.String("topic", j.batch.Topic), zap.Int32("partition", j.batch.Partition),
			zap.String("reason", string(reason)), zap.Int("value_bytes", len(part[0].Value)), zap.Error(err))
		j.partSent()
		return
	}
	half := len(part) / 2
	parts := make([][]message.Message, 0, len(j.parts)+1)
	parts = append(parts, part[:half], part[half:])
	j.parts = append(parts, j.parts[1:]...)
}

// rejectRecords rejects the records the broker named and resends the rest
// of parts[0]; when it named none, it splits.
func (p *Producer) rejectRecords(j *job, err error) {
	part := j.parts[0]
	var recErrs []sarama.ProduceResponseRecordError
	if j.block != nil {
		recErrs = j.block.RecordErrors
	}
	bad := make(map[int32]error, len(recErrs))
	for _, re := range recErrs {
		if re.BatchIndex < 0 || int(re.BatchIndex) >= len(part) {
			continue
		}
		msg := err.Error()
		if re.BatchIndexErrorMessage != nil {
			msg = *re.BatchIndexErrorMessage
		} else if j.block.ErrorMessage != nil {
			msg = *j.block.ErrorMessage
		}
		bad[re.BatchIndex] = fmt.Errorf("%w: %s", err, msg)
	}
	if len(bad) == 0 {
		p.split(j, message.RejectInvalidRecord, err)
		return
	}
	keep := make([]message.Message, 0, len(part)-len(bad))
	for i := range part {
		if e, ok := bad[int32(i)]; ok {
			j.res.Rejected = append(j.res.Rejected, message.Rejected{Message: part[i], Reason: message.RejectInvalidRecord, Err: e})
			continue
		}
		keep = append(keep, part[i])
	}
	p.logger.Warn("kafka rejected records",
		zap.String("topic", j.batch.Topic), zap.Int32("partition", j.batch.Partition),
		zap.String("reason", string(message.RejectInvalidRecord)), zap.Int("rejected", len(bad)), zap.Error(err))
	j.dropRB()
	if len(keep) == 0 {
		j.partSent()
		return
	}
	j.parts[0] = keep
}

// fail ends the job with err; its unsent parts become Remaining.
func (p *Producer) fail(j *job, err error) {
	j.done = true
	j.dropRB()
	j.res.Err = fmt.Errorf("produce %s/%d: %w", j.batch.Topic, j.batch.Partition, err)
	n := 0
	for _, part := range j.parts {
		n += len(part)
	}
	if len(j.parts) == 1 {
		j.res.Remaining = j.parts[0]
	} else {
		j.res.Remaining = make([]message.Message, 0, n)
		for _, part := range j.parts {
			j.res.Remaining = append(j.res.Remaining, part...)
		}
	}
	j.parts = nil
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

func anyPending(jobs []*job) bool {
	for _, j := range jobs {
		if !j.done {
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
