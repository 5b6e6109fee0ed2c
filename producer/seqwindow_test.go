package producer

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// modelBroker is one partition's leader as far as idempotence goes: it
// checks each batch's sequence against the last one it wrote for the
// producer identity, recognizes a resend of its last five batches as a
// duplicate, and can lose a producer's state (as when it expires).
type modelBroker struct {
	log    []int // record ids, as written
	inLog  map[int]bool
	states map[uint64]*modelProducer
}

// refusable reports whether records may be refused as invalid or too large:
// not once one of them was written.
func (mb *modelBroker) refusable(records []int) bool {
	for _, r := range records {
		if mb.inLog[r] {
			return false
		}
	}
	return true
}

type modelProducer struct {
	last   int32      // last sequence written
	recent [][2]int32 // base, count of the last five batches written
}

func (mb *modelBroker) produce(gen uint64, base, count int32, records []int) seqOutcome {
	st := mb.states[gen]
	if st == nil {
		if base != 0 {
			return seqUnknownProducer
		}
		st = &modelProducer{last: -1}
		mb.states[gen] = st
	}
	for _, r := range st.recent {
		if r == [2]int32{base, count} {
			return seqAcked // DUPLICATE_SEQUENCE_NUMBER: written before
		}
	}
	if base != incrementSeq(st.last, 1) && (st.last != -1 || base != 0) {
		return seqOutOfOrder
	}
	mb.log = append(mb.log, records...)
	for _, r := range records {
		mb.inLog[r] = true
	}
	st.last = incrementSeq(base, count-1)
	st.recent = append(st.recent, [2]int32{base, count})
	if len(st.recent) > MaxInFlightLimit {
		st.recent = st.recent[1:]
	}
	return seqAcked
}

// modelBatch is what the model producer tags a window batch with. A batch
// given up on keeps its numbers (numbered, gen, base, unsure), as the
// exporter stores them with it.
type modelBatch struct {
	records  []int
	numbered bool
	gen      uint64
	base     int32
	unsure   bool
}

type modelSend struct {
	part int
	b    *seqBatch[*modelBatch]
	out  seqOutcome
}

type modelFaults struct {
	forget      bool // the broker sometimes loses the producer's state
	maxAttempts int
}

type modelResult struct {
	logs [][]int
	want [][]int
	// renumbered are the records of batches given up after an ambiguous
	// send that went again under other numbers (a new identity): the only
	// ones that may be written twice.
	renumbered map[int]bool
	giveUps    int
	resends    [resendProducerID + 1]int
	ids        int // producer identities used
}

// runModel produces records of parts partitions through seqWindows with
// up to maxInFlight in flight against model brokers that lose requests,
// lose answers, answer NOT_LEADER, refuse too large batches (split) and
// invalid records (dropped), with the answers in random order. Batches the
// window gives up on are produced again ahead of anything new, as the
// exporter replays what it stored.
func runModel(t *testing.T, seed uint64, parts, maxInFlight int, f modelFaults) modelResult {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	const recordsPerPart = 400
	res := modelResult{renumbered: map[int]bool{}}
	brokers := make([]*modelBroker, parts)
	windows := make([]*seqWindow[*modelBatch], parts)
	nextID := make([]int, parts)
	replay := make([][]*modelBatch, parts) // given up, to produce again first
	var gen uint64
	for p := range parts {
		brokers[p] = &modelBroker{inLog: map[int]bool{}, states: map[uint64]*modelProducer{}}
		windows[p] = newSeqWindow[*modelBatch](maxInFlight, f.maxAttempts, true)
		res.want = append(res.want, nil)
	}
	var flight []modelSend
	for steps := 0; ; steps++ {
		require.Less(t, steps, 1_000_000, "no progress")
		busy := len(flight) > 0
		for p, w := range windows {
			// Feed: stored batches first, then new ones.
			for len(w.pending) < 8 && (len(replay[p]) > 0 || nextID[p] < recordsPerPart) {
				var mbt *modelBatch
				if len(replay[p]) > 0 {
					mbt, replay[p] = replay[p][0], replay[p][1:]
				} else {
					n := min(1+rng.IntN(6), recordsPerPart-nextID[p])
					mbt = &modelBatch{}
					for range n {
						mbt.records = append(mbt.records, p*1_000_000+nextID[p])
						nextID[p]++
					}
				}
				resume := mbt.numbered && mbt.gen == w.gen && w.resumes(mbt.base)
				if mbt.numbered && !resume && mbt.unsure {
					for _, id := range mbt.records {
						res.renumbered[id] = true
					}
				}
				w.add(int32(len(mbt.records)), mbt, resume, mbt.unsure)
			}
			if !w.idle() || len(replay[p]) > 0 || nextID[p] < recordsPerPart {
				busy = true
			}
			if w.needsIdentity() {
				gen++
				res.ids++
				for _, b := range w.setIdentity(gen) {
					for _, id := range b.tag.records {
						res.renumbered[id] = true
					}
				}
			}
			for _, b := range w.sendable() {
				require.LessOrEqual(t, w.inFlight, maxInFlight)
				recs := b.tag.records
				require.Len(t, recs, int(b.count))
				var out seqOutcome
				switch r := rng.IntN(100); {
				case r < 8: // lost on the way: not written, the client cannot tell
					out = seqUnsure
				case r < 16: // NOT_LEADER_OR_FOLLOWER
					out = seqRetry
				case r < 20 && b.count > 1 && brokers[p].refusable(recs): // MESSAGE_TOO_LARGE
					out = seqRejected
				case r < 22 && brokers[p].refusable(recs): // INVALID_RECORD: the last record is dropped
					out = seqRejected
				case r < 30: // written, the answer is lost
					brokers[p].produce(w.gen, b.base, b.count, recs)
					out = seqUnsure
				default:
					out = brokers[p].produce(w.gen, b.base, b.count, recs)
				}
				flight = append(flight, modelSend{part: p, b: b, out: out})
			}
		}
		if !busy {
			break
		}
		// A broker forgets a producer when it has not produced for a
		// long time (or the log was truncated past its batches): never
		// while a batch of it is in flight or in doubt.
		if p := rng.IntN(parts); f.forget && rng.IntN(100) == 0 && windows[p].inFlight == 0 &&
			!slices.ContainsFunc(windows[p].pending, func(b *seqBatch[*modelBatch]) bool { return b.unsure }) {
			delete(brokers[p].states, windows[p].gen)
		}
		if len(flight) == 0 {
			continue
		}
		i := rng.IntN(len(flight))
		s := flight[i]
		flight = slices.Delete(flight, i, i+1)
		w := windows[s.part]
		wasAcked := s.b.acked
		done, failed := w.answer(s.b, s.out)
		for _, d := range done {
			res.want[s.part] = append(res.want[s.part], d.tag.records...)
		}
		if s.out == seqRejected && !wasAcked {
			mbt := s.b.tag
			if s.b.count > 1 && rng.IntN(2) == 0 {
				n := s.b.count / 2
				rest := &modelBatch{records: mbt.records[n:]}
				mbt.records = mbt.records[:n]
				w.split(s.b, n, rest)
			} else {
				mbt.records = mbt.records[:len(mbt.records)-1]
				w.resize(s.b, int32(len(mbt.records)))
			}
		}
		if len(failed) > 0 {
			// They are older than what waits to be replayed: they go
			// first, as stored batches stay at the head until taken.
			res.giveUps++
			var again []*modelBatch
			for _, fb := range failed {
				mbt := fb.tag
				again = append(again, &modelBatch{records: mbt.records, numbered: true, gen: w.gen, base: fb.base, unsure: fb.unsure})
			}
			replay[s.part] = append(again, replay[s.part]...)
		}
	}
	for p, w := range windows {
		r := w.takeResends()
		for i := range r {
			res.resends[i] += r[i]
		}
		res.logs = append(res.logs, brokers[p].log)
	}
	return res
}

// TestSeqWindowModel checks the in-flight window against model brokers:
// random acknowledgements, lost requests and answers (connection losses),
// NOT_LEADER, duplicates, out-of-order answers and rejected batches; each
// partition's records reach the log exactly once and in the order they
// were acknowledged, under one producer identity per partition.
func TestSeqWindowModel(t *testing.T) {
	for seed := range uint64(40) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			res := runModel(t, seed, 3, MaxInFlightLimit, modelFaults{maxAttempts: 1 << 30})
			assert.Zero(t, res.giveUps, "gave up")
			assert.Equal(t, 3, res.ids, "one producer identity per partition")
			for p := range res.logs {
				require.Equal(t, res.want[p], res.logs[p], "partition %d: log is not the acknowledged records exactly once, in order", p)
			}
			assert.Positive(t, res.resends[resendError])
			assert.Positive(t, res.resends[resendBehind])
		})
	}
}

// TestSeqWindowModelGivesUpKeepsNumbers uses a small max_attempts: batches
// given up go to the store and are produced again with the numbers they
// had, so that with brokers that keep the producer's state every record is
// written exactly once, in order, under one identity per partition.
func TestSeqWindowModelGivesUpKeepsNumbers(t *testing.T) {
	giveUps := 0
	for seed := range uint64(40) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			res := runModel(t, seed, 3, MaxInFlightLimit, modelFaults{maxAttempts: 2})
			giveUps += res.giveUps
			assert.Equal(t, 3, res.ids, "one producer identity per partition")
			assert.Empty(t, res.renumbered)
			for p := range res.logs {
				require.Equal(t, res.want[p], res.logs[p], "partition %d: log is not the acknowledged records exactly once, in order", p)
			}
		})
	}
	assert.Positive(t, giveUps)
}

// TestSeqWindowModelGivesUp adds brokers that lose the producer's state:
// a batch given up after an ambiguous send may then go again under a new
// identity. Order still holds; a record appears twice only if it was in
// such a batch (counted by the producer as a possible duplicate).
func TestSeqWindowModelGivesUp(t *testing.T) {
	giveUps, dups := 0, 0
	for seed := range uint64(40) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			res := runModel(t, seed, 3, MaxInFlightLimit, modelFaults{forget: true, maxAttempts: 2})
			giveUps += res.giveUps
			for p, log := range res.logs {
				seen := map[int]bool{}
				var firsts []int
				for _, id := range log {
					if seen[id] {
						dups++
						require.True(t, res.renumbered[id], "partition %d: record %d twice, not from an ambiguous send renumbered", p, id)
						continue
					}
					seen[id] = true
					firsts = append(firsts, id)
				}
				require.True(t, slices.IsSorted(firsts), "partition %d: records out of order", p)
				want := slices.Clone(res.want[p])
				slices.Sort(want)
				require.Equal(t, want, firsts, "partition %d: every acknowledged record once (first copies)", p)
			}
		})
	}
	assert.Positive(t, giveUps)
	t.Logf("%d give-ups, %d duplicate records from ambiguous sends given up", giveUps, dups)
}

// TestSeqWindowWithoutIdempotence sends one batch at a time.
func TestSeqWindowWithoutIdempotence(t *testing.T) {
	w := newSeqWindow[*modelBatch](5, 3, false)
	a, b := w.add(2, nil, false, false), w.add(3, nil, false, false)
	require.False(t, w.needsIdentity())
	require.Equal(t, []*seqBatch[*modelBatch]{a}, w.sendable())
	require.Empty(t, w.sendable())
	done, failed := w.answer(a, seqAcked)
	require.Equal(t, []*seqBatch[*modelBatch]{a}, done)
	require.Empty(t, failed)
	require.Equal(t, []*seqBatch[*modelBatch]{b}, w.sendable())
	for range 2 {
		_, failed = w.answer(b, seqUnsure)
		require.Empty(t, failed)
		require.Equal(t, []*seqBatch[*modelBatch]{b}, w.sendable())
	}
	_, failed = w.answer(b, seqRetry)
	require.Equal(t, []*seqBatch[*modelBatch]{b}, failed, "third failure gives up")
	require.True(t, w.idle())
}

// TestSeqWindowPipelinesAfterFirstAck sends one batch under a fresh
// identity, then up to max; a failure drains the window and resends the
// batches behind with the numbers they had.
func TestSeqWindowPipelinesAfterFirstAck(t *testing.T) {
	w := newSeqWindow[*modelBatch](3, 3, true)
	var bs []*seqBatch[*modelBatch]
	for range 5 {
		bs = append(bs, w.add(10, nil, false, false))
	}
	require.True(t, w.needsIdentity())
	w.setIdentity(1)
	require.Equal(t, bs[:1], w.sendable())
	done, _ := w.answer(bs[0], seqAcked)
	require.Equal(t, bs[:1], done)
	require.Equal(t, bs[1:4], w.sendable())
	assert.Equal(t, []int32{10, 20, 30}, []int32{bs[1].base, bs[2].base, bs[3].base})
	w.answer(bs[1], seqRetry)
	require.Empty(t, w.sendable(), "drains first")
	w.answer(bs[2], seqOutOfOrder)
	require.Empty(t, w.sendable())
	w.answer(bs[3], seqOutOfOrder)
	require.Equal(t, bs[1:2], w.sendable(), "one at a time after a failure")
	assert.Equal(t, int32(10), bs[1].base, "same sequence numbers")
	done, _ = w.answer(bs[1], seqAcked)
	require.Equal(t, bs[1:2], done)
	require.Equal(t, bs[2:5], w.sendable())
	r := w.takeResends()
	assert.Equal(t, 1, r[resendError])
	assert.Equal(t, 2, r[resendBehind])
	// A later acknowledgement waits for the batches before it.
	done, _ = w.answer(bs[4], seqAcked)
	require.Empty(t, done)
	done, _ = w.answer(bs[2], seqAcked)
	require.Equal(t, bs[2:3], done)
	done, _ = w.answer(bs[3], seqUnsure)
	require.Empty(t, done)
	require.Equal(t, bs[3:4], w.sendable(), "resent; the acknowledged one behind it is not")
	done, _ = w.answer(bs[3], seqAcked) // DUPLICATE_SEQUENCE_NUMBER
	require.Equal(t, bs[3:5], done)
	require.True(t, w.idle())
}

// TestSeqWindowLostProducerState renumbers under a fresh identity when the
// broker does not know the producer and nothing is ambiguous, and gives up
// when the first batch may have been written.
func TestSeqWindowLostProducerState(t *testing.T) {
	w := newSeqWindow[*modelBatch](5, 3, true)
	w.setIdentity(1)
	a := w.add(4, nil, false, false)
	w.sendable()
	w.answer(a, seqAcked)
	b, c := w.add(2, nil, false, false), w.add(3, nil, false, false)
	w.sendable()
	_, failed := w.answer(b, seqUnknownProducer)
	require.Empty(t, failed)
	require.False(t, w.needsIdentity(), "c is in flight")
	_, failed = w.answer(c, seqOutOfOrder)
	require.Empty(t, failed)
	require.True(t, w.needsIdentity())
	w.setIdentity(2)
	assert.Equal(t, []int32{0, 2}, []int32{b.base, c.base})
	require.Equal(t, []*seqBatch[*modelBatch]{b}, w.sendable())
	assert.Equal(t, 1, w.takeResends()[resendProducerID])

	// b may be written (timeout), then the broker says out of order: cannot tell.
	_, failed = w.answer(b, seqUnsure)
	require.Empty(t, failed)
	require.Equal(t, []*seqBatch[*modelBatch]{b}, w.sendable())
	_, failed = w.answer(b, seqOutOfOrder)
	require.Equal(t, []*seqBatch[*modelBatch]{b, c}, failed)
	require.True(t, w.needsIdentity())
}

func TestIncrementSeqWraps(t *testing.T) {
	assert.Equal(t, int32(4), incrementSeq(0, 4))
	assert.Equal(t, int32(0), incrementSeq(1<<31-1, 1))
	assert.Equal(t, int32(2), incrementSeq(1<<31-2, 4))
}
