package tempstorage

import (
	"time"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// headTimeBytes is as much of an entry as the first record's timestamp
// needs: the frame header, the route (maxRouteBytes), a sequence of up to
// four record batches (v2), the first record's flags and its timestamp
// (10 + 5). An entry whose sequence has more is read again, further.
const headTimeBytes = frameHeaderLen + maxRouteBytes + maxSequenceBytes + 4*5 + 1 + 10 + 5

// Oldest returns, for every partition with stored batches, the timestamp of
// the first record of its oldest batch (the one replayed next): how far
// behind the partition is. It reads a few hundred bytes per partition and
// waits for a Peek or Ack in progress.
func (s *Store) Oldest() map[message.TopicPartition]time.Time {
	out := map[message.TopicPartition]time.Time{}
	s.each(func(p message.TopicPartition, q *queue) {
		if t, ok := q.headTime(); ok {
			out[p] = t
		}
	})
	return out
}

// headTime returns the timestamp of the first record of the oldest entry,
// false when the queue is empty or the entry cannot be read (Peek then
// finds out why).
func (q *queue) headTime() (time.Time, bool) {
	q.rmu.Lock()
	defer q.rmu.Unlock()
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return time.Time{}, false
	}
	seg, _, e, ok := q.head()
	q.mu.Unlock()
	if !ok {
		return time.Time{}, false
	}
	size := min(int(e.size), headTimeBytes)
	for {
		buf := make([]byte, size)
		if err := q.readAt(seg.id, buf, e.off); err != nil || size < frameHeaderLen {
			return time.Time{}, false
		}
		t, ok := firstTimestamp(buf)
		if ok || size == int(e.size) {
			return t, ok
		}
		size = min(int(e.size), 4*size)
	}
}

// firstTimestamp returns the timestamp of the first record of the entry
// that buf starts with, false when buf ends before it or the entry has no
// record or does not parse.
func firstTimestamp(buf []byte) (time.Time, bool) {
	r := reader{b: buf[frameHeaderLen:]}
	if h := r.head(buf[2]); h.records == 0 {
		return time.Time{}, false
	}
	r.byte() // flags
	sec, nsec := r.varint(), r.uvarint()
	if r.err != nil || nsec >= 1e9 {
		return time.Time{}, false
	}
	return time.Unix(sec, int64(nsec)), true
}
