package batcher

import "github.com/kafkabatcher/kafkabatcherexporter/message"

// deliver hands b to the sink, split by partition for a topic-wide
// accumulator.
func (p *Pool) deliver(b message.Batch) {
	if b.Partition >= 0 {
		p.sink.Ready(b)
		return
	}
	parts := p.appendSplit(nil, b)
	if len(parts) > 1 || &parts[0].Messages[0] != &b.Messages[0] {
		p.Recycle(b.Messages) // the parts are copies
	}
	for _, part := range parts {
		p.sink.Ready(part)
	}
}

// appendSplit appends b to dst as batches of one partition each, keeping
// record order, each within MaxBytes (a subset of a batch can encode larger
// than the whole when its first timestamp differs, so it is re-cut). Each
// partition's records get their own slice, so each part can be recycled.
func (p *Pool) appendSplit(dst []message.Batch, b message.Batch) []message.Batch {
	if b.Partition >= 0 || len(b.Messages) == 0 {
		return append(dst, b)
	}
	type group struct {
		part int32
		n    int
		msgs []message.Message
	}
	var buf [16]group
	groups := buf[:0]
	find := func(part int32, last int) int {
		if last < len(groups) && groups[last].part == part {
			return last
		}
		for k := range groups {
			if groups[k].part == part {
				return k
			}
		}
		groups = append(groups, group{part: part})
		return len(groups) - 1
	}
	k := 0
	for i := range b.Messages {
		k = find(b.Messages[i].Partition, k)
		groups[k].n++
	}
	if len(groups) == 1 && b.Bytes <= p.cfg.MaxBytes {
		b.Partition = groups[0].part
		return append(dst, b)
	}
	for k := range groups {
		groups[k].msgs = p.getSlice(groups[k].n)
	}
	k = 0
	for i := range b.Messages {
		k = find(b.Messages[i].Partition, k)
		groups[k].msgs = append(groups[k].msgs, b.Messages[i])
	}
	for _, g := range groups {
		dst = p.appendChunks(dst, b, g.part, g.msgs)
	}
	return dst
}

// appendChunks appends msgs, all of partition part, as batches within
// MaxBytes, cutting where the next record would not fit.
func (p *Pool) appendChunks(dst []message.Batch, b message.Batch, part int32, msgs []message.Message) []message.Batch {
	start, bytes := 0, 0
	for i := range msgs {
		var size int
		if i > start {
			size = message.RecordSize(&msgs[i], i-start, msgs[start].Timestamp)
			if bytes+size > p.cfg.MaxBytes {
				dst = append(dst, message.Batch{Topic: b.Topic, Partition: part, Messages: msgs[start:i:i], Bytes: bytes, Reason: b.Reason, Opened: b.Opened})
				start = i
			}
		}
		if i == start {
			size = message.BatchHeaderBytes + message.RecordSize(&msgs[i], 0, msgs[i].Timestamp)
			bytes = 0
		}
		bytes += size
	}
	return append(dst, message.Batch{Topic: b.Topic, Partition: part, Messages: msgs[start:], Bytes: bytes, Reason: b.Reason, Opened: b.Opened})
}
