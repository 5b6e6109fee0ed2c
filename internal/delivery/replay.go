package delivery

import (
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// replay is one pass of the replay loop (wakeReplay).
func (d *Dispatcher) replay() {
	d.replayRounds()
	d.checkRoom() // replayed segments were deleted
}

// maxReplayBytes bounds the stored batches read into memory for one replay
// round (max_pending_bytes does not count them); the rest of the backlogged
// partitions go in the next round.
const maxReplayBytes = 8 << 20

// replayRounds replays the stored backlogs in rounds: each round sends the oldest
// stored batch of every backlogged partition in one Produce call, up to
// maxReplayBytes, the next round starting after the last partition taken so
// that every partition gets its turn. A partition Kafka does not take sits
// out until the next retry tick; the others go on until their backlogs are
// gone.
func (d *Dispatcher) replayRounds() {
	paused := make(map[message.TopicPartition]bool)
	var keys []message.TopicPartition
	var stored, send []message.Batch
	var last message.TopicPartition // the next round starts after it
	for {
		select {
		case <-d.stop:
			return
		default:
		}
		keys, stored, send = keys[:0], stored[:0], send[:0]
		bytes := 0
		ps := d.storage.Partitions()
		start, _ := slices.BinarySearchFunc(ps, last, message.TopicPartition.Compare)
		if start < len(ps) && ps[start] == last {
			start++
		}
		for n := range ps {
			tp := ps[(start+n)%len(ps)]
			k := tp
			if paused[k] {
				continue
			}
			if n, ok := d.kafka.Partitions(k.Topic); ok && k.Partition >= n {
				if !d.dropGone(k, n) {
					paused[k] = true
				}
				continue
			}
			b, ok, err := d.head(k)
			if err != nil {
				paused[k] = true
				continue
			}
			if !ok {
				continue
			}
			if bytes > 0 && bytes+b.Bytes > maxReplayBytes {
				break
			}
			bytes += b.Bytes
			keys, stored, send = append(keys, k), append(stored, b), append(send, d.unsent(k, b))
			last = tp
		}
		if len(keys) == 0 {
			return
		}
		outs, took := d.replayRound(send)
		for i, k := range keys {
			if !d.settleReplay(k, &stored[i], &send[i], outs[i], took) {
				paused[k] = true
			}
		}
		d.wakeSend() // a released partition's FIFO may go now
	}
}

// dropGone moves the stored backlog of a partition that Kafka's metadata
// no longer has (the topic recreated with n partitions) to the dead-letter
// file, reason partition_gone: no Produce can ever take it. It reports
// whether the backlog is gone.
func (d *Dispatcher) dropGone(k message.TopicPartition, n int32) bool {
	batches, records := 0, 0
	defer func() {
		if batches > 0 {
			d.logger.Warn("stored batches of a partition that no longer exists moved to the dead-letter file",
				zap.String("topic", k.Topic), zap.Int32("partition", k.Partition), zap.Int32("partitions", n),
				zap.Int("batches", batches), zap.Int("records", records), zap.String("reason", string(message.RejectPartitionGone)))
		}
	}()
	for {
		select {
		case <-d.stop:
			return false
		default:
		}
		b, ok, err := d.head(k)
		if err != nil {
			return false
		}
		if !ok {
			return true
		}
		rest := d.unsent(k, b) // less records an earlier replay got through
		for _, m := range rest.Messages {
			d.reject(message.Rejected{Message: m, Reason: message.RejectPartitionGone,
				Err: fmt.Errorf("partition %d of %s no longer exists (%d partitions)", k.Partition, k.Topic, n)})
		}
		if err := d.storage.Ack(k); err != nil {
			d.logger.Error("temp storage checkpoint failed",
				zap.String("topic", k.Topic), zap.Int32("partition", k.Partition), zap.Error(err))
			d.markDone(k, &b, &rest, nil) // not dead-lettered twice
			return false
		}
		d.forgetHead(k)
		batches++
		records += len(rest.Messages)
	}
}

// head returns the oldest stored batch of the partition, its records
// numbered (see number) so that markDone can find them; a read error is
// logged.
func (d *Dispatcher) head(k message.TopicPartition) (message.Batch, bool, error) {
	b, ok, err := d.storage.Peek(k)
	if err != nil {
		d.logger.Error("temp storage read failed",
			zap.String("topic", k.Topic), zap.Int32("partition", k.Partition), zap.Error(err))
		return message.Batch{}, false, err
	}
	number(b.Messages)
	return b, ok, nil
}

// unsent is b less the records an earlier replay got through, with the
// sequence numbers that replay left them.
func (d *Dispatcher) unsent(k message.TopicPartition, b message.Batch) message.Batch {
	if seq, ok := d.headSeq[k]; ok {
		b.Seq = seq
	}
	done := d.headDone[k]
	if done == nil {
		return b
	}
	msgs := make([]message.Message, 0, len(b.Messages))
	for i, m := range b.Messages {
		if i >= len(done) || !done[i] {
			msgs = append(msgs, m)
		}
	}
	b.Messages, b.Bytes = msgs, 0
	if len(msgs) > 0 {
		b.Bytes = message.BatchSize(msgs)
	}
	return b
}

// markDone records in headDone which records of the stored head went
// through: those of send (the head less earlier ones) not in remaining,
// the records Kafka did not take, in order. Records keep the Index head
// gave them in the stored batch.
func (d *Dispatcher) markDone(k message.TopicPartition, stored, send *message.Batch, remaining []message.Message) {
	done := d.headDone[k]
	if done == nil {
		done = make([]bool, len(stored.Messages))
		d.headDone[k] = done
	}
	for _, m := range without(send.Messages, nil, remaining) {
		done[m.Index] = true
	}
}

// replayRound sends the batches that have records left; the others are
// only acknowledged in the storage.
func (d *Dispatcher) replayRound(send []message.Batch) (outs []message.Outcome, took time.Duration) {
	outs = make([]message.Outcome, len(send))
	var batches []*message.Batch
	var idx []int
	for i := range send {
		if len(send[i].Messages) > 0 {
			batches = append(batches, &send[i])
			idx = append(idx, i)
		}
	}
	if len(batches) > 0 {
		start := time.Now()
		got := d.kafka.Produce(d.ctx, batches)
		took = time.Since(start)
		for n, i := range idx {
			outs[i] = got[n]
		}
	}
	return outs, took
}

// settleReplay applies Kafka's answer to one partition's stored head. It
// reports whether the partition may go on replaying.
func (d *Dispatcher) settleReplay(k message.TopicPartition, stored, send *message.Batch, out message.Outcome, took time.Duration) bool {
	d.reject(out.Rejected...)
	if out.Err != nil {
		rest := out.Remaining
		if rest == nil {
			rest = withoutRejected(send.Messages, out.Rejected)
		}
		d.markDone(k, stored, send, rest)
		d.headSeq[k] = out.Seq
		d.saveHead(k, stored, out.Seq)
		d.logger.Info("replay of a partition paused: kafka did not take its oldest stored batch",
			zap.String("topic", k.Topic), zap.Int32("partition", k.Partition),
			zap.Int("records", len(send.Messages)), zap.Error(out.Err))
		return false
	}
	// A failed Ack is retried without a resend.
	d.markDone(k, stored, send, nil)
	// No partition lock: until Ack returns the backlog counts this entry,
	// so a Submit for its partition appends behind it; after, the entry is
	// in Kafka and a direct send comes after it.
	if err := d.storage.Ack(k); err != nil {
		d.logger.Error("temp storage checkpoint failed",
			zap.String("topic", k.Topic), zap.Int32("partition", k.Partition), zap.Error(err))
		return false
	}
	d.forgetHead(k)
	d.obs.Replayed(acknowledged(send, out.Rejected), took)
	return true
}

// saveHead records in the storage (SetHead) what failed replays left of
// the stored head, stored as Peek returned it, when it differs from that:
// records Kafka took (or refused for good) since it was last recorded, or
// seq, the sequence numbers of the others, not the head's. A restart then
// neither sends those records again nor forgets that Kafka may hold the
// others (seq.Unsure). Once recorded, the in-memory state goes: the next
// Peek returns the head less those records, with seq. A failure is logged
// and the in-memory state kept.
func (d *Dispatcher) saveHead(k message.TopicPartition, stored *message.Batch, seq *message.Sequence) {
	done := d.headDone[k]
	if !slices.Contains(done, true) && sameSequence(seq, stored.Seq) {
		return // a restart replays what this process would
	}
	if err := d.storage.SetHead(k, done, seq); err != nil {
		d.logger.Warn("temp storage cannot record how far the replay of the oldest stored batch got; "+
			"after a restart its records kafka took are sent again",
			zap.String("topic", k.Topic), zap.Int32("partition", k.Partition), zap.Error(err))
		return
	}
	d.forgetHead(k)
}

// sameSequence reports whether a and b number records alike: the same
// producer id, epoch, base sequence, record batch counts and Unsure.
func sameSequence(a, b *message.Sequence) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.ProducerID == b.ProducerID && a.ProducerEpoch == b.ProducerEpoch && a.BaseSequence == b.BaseSequence &&
		a.Unsure == b.Unsure && slices.Equal(a.Counts, b.Counts)
}

// forgetHead drops what earlier replays left of a stored head once it is
// acknowledged in the storage, or recorded there (saveHead).
func (d *Dispatcher) forgetHead(k message.TopicPartition) {
	delete(d.headDone, k)
	delete(d.headSeq, k)
}
