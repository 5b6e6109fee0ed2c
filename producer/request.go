package producer

// This file builds and sends produce requests: a round's record batches,
// one request per leader broker and slot, written back to back on the
// broker's connection; settle.go applies the answers.

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

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
	pt.rb, pt.arrays = pt.pool.batch(pt.msgs, st.codec, st.level)
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
