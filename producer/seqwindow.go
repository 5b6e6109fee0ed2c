package producer

// This file holds the per-partition sequence and in-flight window: pure
// bookkeeping, no goroutines and no I/O, so that it can be tested alone
// against a model broker (seqwindow_test.go). Produce drives it.

// seqOutcome is how one send of a window batch ended.
type seqOutcome uint8

const (
	// seqAcked: the broker wrote the batch, or answered
	// DUPLICATE_SEQUENCE_NUMBER (it had written it before).
	seqAcked seqOutcome = iota + 1
	// seqRetry: not written, and retriable (NOT_LEADER_OR_FOLLOWER, the
	// request never left, ...).
	seqRetry
	// seqUnsure: retriable, but the batch may have been written (timeout,
	// connection lost after the request was sent,
	// NOT_ENOUGH_REPLICAS_AFTER_APPEND).
	seqUnsure
	// seqOutOfOrder: OUT_OF_ORDER_SEQUENCE_NUMBER.
	seqOutOfOrder
	// seqUnknownProducer: UNKNOWN_PRODUCER_ID (the broker has no state for
	// the producer id on this partition).
	seqUnknownProducer
	// seqRejected: refused for good as sent (too large, invalid records),
	// so not written; the caller then calls resize or split.
	seqRejected
)

// resendReason says why a batch is sent again; it labels the resend
// counter.
type resendReason uint8

const (
	resendNone resendReason = iota
	// resendError: the batch's own send failed with a retriable error.
	resendError
	// resendBehind: an earlier batch of the partition failed, so the broker
	// could not take this one (OUT_OF_ORDER_SEQUENCE_NUMBER) or it must go
	// again after it.
	resendBehind
	// resendProducerID: the broker lost the producer's state (or the
	// sequences were abandoned); the batch goes again with a fresh producer
	// id and new sequence numbers.
	resendProducerID
)

// ResendReasons lists the values of the resend reason label.
func ResendReasons() []string {
	return []string{resendError.String(), resendBehind.String(), resendProducerID.String()}
}

func (r resendReason) String() string {
	switch r {
	case resendError:
		return "retriable_error"
	case resendBehind:
		return "behind_failed_batch"
	case resendProducerID:
		return "new_producer_id"
	}
	return "none"
}

// seqBatch is one record batch of a partition in its window.
type seqBatch[T any] struct {
	base  int32 // first sequence number, as of the window's identity
	count int32 // records
	tag   T     // the caller's

	inFlight bool
	acked    bool
	// sentFirst: the batch's send in flight went out as the window's first
	// unacknowledged batch, every earlier one acknowledged, so the broker
	// had every reason to take it.
	sentFirst bool
	sends     int // sends so far
	// failures counts retriable failures while the batch was the first
	// unacknowledged one of the window; at maxAttempts the window gives
	// up.
	failures int
	// unsure is set once a send ended ambiguously: the batch may be in
	// the log although it was not acknowledged.
	unsure bool
	// reason is why the next send is a resend.
	reason resendReason
}

// seqWindow is the idempotence state of one partition: the sequence
// numbers of its batches under one producer id and epoch, which batches
// are in flight, and what a failure means for the batches behind it.
//
// Batches are sent in sequence order and at most max at a time. The
// broker writes a batch only if it directly follows the last one it wrote
// for the producer, and answers a resend of one of its last five as a
// duplicate. After a failure nothing is sent until every send in flight has
// answered; then the unacknowledged batches go again, in order, with the
// sequence numbers they had, one at a time until one is acknowledged (a
// broker that just became leader must not take the second before the
// first). When the first unacknowledged batch uses up maxAttempts, the
// window gives up on every unacknowledged batch (the caller stores them,
// in order, with their numbers) and owes them: it keeps its identity and
// expects them back, in order, with the numbers they had (add with
// resume), so that their resend is written once or answered as a
// duplicate. A batch added without resume while the window owes abandons
// those numbers: the window needs a fresh producer id before it sends
// again. So does a broker that lost the producer's state.
//
// Without idempotence (max 1, no sequence numbers) the same rules give one
// batch in flight and retries up to maxAttempts.
//
// A seqWindow is not safe for concurrent use.
type seqWindow[T any] struct {
	max         int
	maxAttempts int
	idempotent  bool

	gen      uint64 // the producer identity the sequences belong to; 0: none
	start    int32  // sequence number the broker expects next: after the last acknowledged batch
	next     int32  // sequence number of the next batch added
	pending  []*seqBatch[T]
	inFlight int // sends of pending batches not yet answered

	// resends counts, by reason, the sends that were resends.
	resends [resendProducerID + 1]int

	okSeen bool // a batch was acknowledged since the last failure or identity
	// owed: batches given up on hold the numbers from next on; the next
	// add must resume them or they are abandoned.
	owed     bool
	draining bool // a send failed: wait for every answer before sending
	renumber bool // counts changed: renumber the pending batches before sending
	needID   bool // a fresh producer identity is needed before sending
}

func newSeqWindow[T any](max, maxAttempts int, idempotent bool) *seqWindow[T] {
	if !idempotent {
		max = 1
	}
	return &seqWindow[T]{max: max, maxAttempts: maxAttempts, idempotent: idempotent, needID: idempotent}
}

// incrementSeq adds n to a sequence number; they wrap from MaxInt32 to 0.
func incrementSeq(seq, n int32) int32 {
	return int32((int64(seq) + int64(n)) % (1 << 31))
}

// add appends a batch of count records (count > 0) to the window, to be
// sent after those already in it. resume says the batch was numbered
// before, under the window's identity, from next on (a batch the window
// gave up on, back from a retry or the temp storage): it keeps its number
// and unsure marks that one of its sends may have been written. Any other
// batch added while the window owes given-up numbers abandons them.
func (w *seqWindow[T]) add(count int32, tag T, resume, unsure bool) *seqBatch[T] {
	if w.owed && !resume {
		w.needID = true
	}
	w.owed = false
	b := &seqBatch[T]{base: w.next, count: count, tag: tag, unsure: resume && unsure}
	w.next = incrementSeq(w.next, count)
	w.pending = append(w.pending, b)
	return b
}

// idle reports whether the window holds no batch.
func (w *seqWindow[T]) idle() bool { return len(w.pending) == 0 }

// needsIdentity reports whether the window waits for a producer identity
// newer than gen before it can send; it is asked for one only once nothing
// is in flight.
func (w *seqWindow[T]) needsIdentity() bool {
	return w.idempotent && w.needID && w.inFlight == 0
}

// setIdentity makes gen, a producer identity the window's partition has
// not used, the window's: sequence numbers start again at 0. It returns
// the pending batches that may have been written under the old identity
// (unsure): renumbered, they may be written twice.
func (w *seqWindow[T]) setIdentity(gen uint64) (renumbered []*seqBatch[T]) {
	if w.inFlight != 0 {
		panic("producer: seqWindow.setIdentity with sends in flight")
	}
	if w.gen != 0 {
		for _, b := range w.pending {
			if b.unsure {
				// Counted by the caller; under the new identity its
				// sends start with nothing in doubt.
				renumbered = append(renumbered, b)
				b.unsure = false
			}
		}
	}
	w.gen, w.needID, w.okSeen, w.owed = gen, false, false, false
	w.start = 0
	w.renumberFrom()
	return renumbered
}

// sendable marks the batches that may be sent now as in flight and
// returns them in sequence order; they must go out in that order.
func (w *seqWindow[T]) sendable() []*seqBatch[T] {
	if w.draining && w.inFlight > 0 || w.idempotent && w.needID {
		return nil
	}
	if w.draining {
		w.draining = false
	}
	if w.renumber {
		w.renumberFrom()
	}
	limit := 1
	if w.okSeen {
		limit = w.max
	}
	// Only the first limit batches from the first unacknowledged one: a
	// resend of that one must find it among the broker's last five
	// batches of the producer if it was written.
	var out []*seqBatch[T]
	for _, b := range w.pending[:min(limit, len(w.pending))] {
		if b.inFlight || b.acked {
			continue
		}
		b.inFlight = true
		b.sentFirst = b == w.pending[0]
		b.sends++
		if b.sends > 1 {
			w.resends[b.reason]++
		}
		b.reason = resendNone
		w.inFlight++
		out = append(out, b)
	}
	return out
}

// renumberFrom gives the pending batches contiguous sequence numbers
// from start on.
func (w *seqWindow[T]) renumberFrom() {
	w.renumber = false
	base := w.start
	for _, b := range w.pending {
		b.base = base
		base = incrementSeq(base, b.count)
	}
	w.next = base
}

// answer applies how a send of b ended. done are the batches now
// acknowledged in sequence order (an acknowledged batch waits for the
// batches before it); failed, when not empty, are the batches the window
// gave up on, in order (the caller stores them).
//
// An acknowledgement of a later batch is not taken as proof that an
// earlier one was written, although a broker that checks sequences never
// writes a batch after a gap: a broker that lost the producer's state
// takes any first sequence number, and an earlier batch taken for written
// would be lost. Its resend is answered as a duplicate instead.
func (w *seqWindow[T]) answer(b *seqBatch[T], out seqOutcome) (done, failed []*seqBatch[T]) {
	if !b.inFlight {
		panic("producer: seqWindow.answer for a batch not in flight")
	}
	b.inFlight = false
	w.inFlight--
	first := b.sentFirst && w.pending[0] == b
	switch out {
	case seqAcked:
		w.okSeen = true
		b.acked = true
		n := 0
		for n < len(w.pending) && w.pending[n].acked {
			n++
		}
		if n > 0 {
			done = w.pending[:n:n]
			w.pending = w.pending[n:]
			last := done[n-1]
			w.start = incrementSeq(last.base, last.count)
		}
		d, f := w.maybeGiveUp()
		return append(done, d...), f
	case seqRetry, seqUnsure:
		if out == seqUnsure {
			b.unsure = true
		}
		if first {
			b.failures++
		}
		w.fail(b, resendError)
	case seqOutOfOrder, seqUnknownProducer:
		if !first || !w.idempotent {
			// An earlier batch failed: the broker could not take this one.
			w.fail(b, resendBehind)
			break
		}
		// Every earlier batch is acknowledged, yet the broker does not
		// follow: it lost the producer's state on this partition. Unless
		// b may be in the log already, it goes again under a fresh
		// identity, renumbered.
		b.failures++
		w.fail(b, resendProducerID)
		w.needID = true
		if b.unsure {
			b.failures = max(b.failures, w.maxAttempts) // cannot tell: give up
		}
	case seqRejected:
		w.fail(b, resendBehind)
		w.renumber = true
	}
	return w.maybeGiveUp()
}

// fail marks b and the batches behind it to be sent again after the drain.
func (w *seqWindow[T]) fail(b *seqBatch[T], why resendReason) {
	w.draining, w.okSeen = true, false
	b.reason = why
	behind := false
	for _, p := range w.pending {
		switch {
		case p == b:
			behind = true
		case behind && why == resendProducerID:
			p.reason = resendProducerID
		case behind && p.reason == resendNone:
			p.reason = resendBehind
		}
	}
}

// maybeGiveUp, once the drain is complete, gives up on every pending batch
// when the first used up its attempts. Those acknowledged behind the first
// are given up too: the caller stores the batches of a partition in order,
// and a replayed copy of one is the price of keeping that order.
func (w *seqWindow[T]) maybeGiveUp() (done, failed []*seqBatch[T]) {
	if !w.draining || w.inFlight > 0 || len(w.pending) == 0 || w.pending[0].failures < w.maxAttempts {
		return nil, nil
	}
	return nil, w.release()
}

// release empties the window of its pending batches, which keep their
// numbers, and returns them in order. With idempotence the window owes
// them: whether the broker wrote them may be unknown, and only a resend
// with the same numbers is safe.
func (w *seqWindow[T]) release() []*seqBatch[T] {
	if w.renumber {
		w.renumberFrom()
	}
	out := w.pending
	w.pending = nil
	w.draining = false
	if len(out) > 0 {
		w.next = out[0].base
		w.owed = w.idempotent && w.gen != 0
	}
	return out
}

// resumes reports whether a batch numbered from base under the window's
// identity takes up where the window expects (add's resume).
func (w *seqWindow[T]) resumes(base int32) bool {
	return w.idempotent && w.gen != 0 && !w.needID && base == w.next
}

// resize sets the record count of b, rejected as sent, to n (0 removes
// it): some of its records were refused for good. Later batches are
// renumbered before the next send.
func (w *seqWindow[T]) resize(b *seqBatch[T], n int32) {
	w.renumber = true
	if n > 0 {
		b.count = n
		return
	}
	for i, p := range w.pending {
		if p == b {
			w.pending = append(w.pending[:i:i], w.pending[i+1:]...)
			break
		}
	}
}

// split replaces b, rejected as too large, by two batches: b with its
// first n records and a new one, tagged tag, with the rest. The sequence
// numbers of the batches behind are unchanged.
func (w *seqWindow[T]) split(b *seqBatch[T], n int32, tag T) *seqBatch[T] {
	rest := &seqBatch[T]{base: incrementSeq(b.base, n), count: b.count - n, tag: tag, reason: b.reason}
	b.count = n
	for i, p := range w.pending {
		if p == b {
			w.pending = append(w.pending[:i+1], append([]*seqBatch[T]{rest}, w.pending[i+1:]...)...)
			break
		}
	}
	return rest
}

// abandon drops every pending batch (the caller failed them without
// waiting for their attempts: a permanent error, a canceled context) and
// returns them, in order; the window owes them as after giving up.
func (w *seqWindow[T]) abandon() []*seqBatch[T] {
	if w.inFlight > 0 {
		panic("producer: seqWindow.abandon with sends in flight")
	}
	return w.release()
}

// takeResends returns the resends counted since the last call, by reason,
// and resets them.
func (w *seqWindow[T]) takeResends() [resendProducerID + 1]int {
	r := w.resends
	w.resends = [resendProducerID + 1]int{}
	return r
}
