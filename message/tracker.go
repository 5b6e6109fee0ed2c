package message

import (
	"context"
	"errors"
	"sync"
)

// Tracker follows the records of one ConsumeLogs call under sync delivery:
// Wait returns once every record was acknowledged by Kafka, written to the
// temp storage or refused. A nil *Tracker ignores every call.
type Tracker struct {
	mu      sync.Mutex
	pending int
	err     error
	done    chan struct{}
}

// NewTracker returns a tracker waiting for n records.
func NewTracker(n int) *Tracker {
	t := &Tracker{pending: n, done: make(chan struct{})}
	if n <= 0 {
		close(t.done)
	}
	return t
}

// Done records the outcome of n records; a non-nil err is kept for Wait.
func (t *Tracker) Done(n int, err error) {
	if t == nil || n <= 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pending <= 0 {
		return
	}
	if err != nil {
		t.err = errors.Join(t.err, err)
	}
	t.pending -= n
	if t.pending <= 0 {
		close(t.done)
	}
}

// Wait blocks until every record has an outcome or ctx ends.
func (t *Tracker) Wait(ctx context.Context) error {
	if t == nil {
		return nil
	}
	select {
	case <-t.done:
		t.mu.Lock()
		defer t.mu.Unlock()
		return t.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TrackDone tells every tracker in msgs the outcome of its records. The
// records of one call are usually adjacent: each run of them is one Done.
func TrackDone(msgs []Message, err error) {
	for i := 0; i < len(msgs); {
		t, j := msgs[i].Tracker, i+1
		for j < len(msgs) && msgs[j].Tracker == t {
			j++
		}
		t.Done(j-i, err)
		i = j
	}
}
