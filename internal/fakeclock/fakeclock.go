// Package fakeclock is a manually driven clock for tests of timing logic:
// time moves only when the test calls Advance or Set, and timers created with
// AfterFunc fire synchronously, in deadline order, inside those calls.
//
// Its method set matches clock interfaces of the form
//
//	Now() time.Time
//	AfterFunc(d time.Duration, f func()) Timer   // with type Timer = interface{ Stop() bool }
//
// so a *Clock can be injected wherever such an interface is declared with a
// Timer type alias (as batcher.Clock is).
package fakeclock

import (
	"container/heap"
	"sync"
	"time"
)

// Timer is what AfterFunc returns. It is an alias so that interfaces in other
// packages that declare the same alias are satisfied by *Clock.
type Timer = interface{ Stop() bool }

// Clock is a fake clock. The zero value is not usable; use New.
// It is safe for concurrent use; Advance and Set calls are serialized.
type Clock struct {
	advance sync.Mutex // serializes Advance/Set so callbacks fire in order

	mu     sync.Mutex
	now    time.Time
	seq    uint64
	timers timerHeap
}

// New returns a clock reading start.
func New(start time.Time) *Clock {
	return &Clock{now: start}
}

// Now returns the clock's current time. Inside a timer callback it is the
// timer's deadline.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Since returns the time elapsed since t on this clock.
func (c *Clock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }

// AfterFunc schedules f to run when the clock reaches Now()+d. A timer whose
// deadline is already reached (d <= 0) fires at the next Advance or Set,
// even Advance(0): like a real timer it never runs inside AfterFunc itself.
func (c *Clock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	t := &timer{c: c, at: c.now.Add(d), seq: c.seq, f: f}
	heap.Push(&c.timers, t)
	return t
}

// After returns a channel that receives the clock's time once it reaches
// Now()+d.
func (c *Clock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.AfterFunc(d, func() { ch <- c.Now() })
	return ch
}

// Advance moves the clock forward by d, firing every timer due on the way in
// deadline order (ties in creation order). While a callback runs, Now()
// reads its deadline; callbacks may create or stop timers, and new timers due
// within the advance fire too. A negative d is treated as zero.
func (c *Clock) Advance(d time.Duration) {
	if d < 0 {
		d = 0
	}
	c.advance.Lock()
	defer c.advance.Unlock()
	c.mu.Lock()
	target := c.now.Add(d)
	c.mu.Unlock()
	c.runUntil(target)
}

// Set moves the clock to t, firing due timers as Advance does. A t before
// the current time fires the timers already due and leaves the clock where
// it is: the fake clock, like the monotonic clock, never goes back.
func (c *Clock) Set(t time.Time) {
	c.advance.Lock()
	defer c.advance.Unlock()
	c.runUntil(t)
}

// runUntil fires due timers one at a time, without holding c.mu during a
// callback, then sets the clock to target.
func (c *Clock) runUntil(target time.Time) {
	for {
		c.mu.Lock()
		if len(c.timers) == 0 || c.timers[0].at.After(target) {
			if target.After(c.now) {
				c.now = target
			}
			c.mu.Unlock()
			return
		}
		t := heap.Pop(&c.timers).(*timer)
		if t.at.After(c.now) {
			c.now = t.at
		}
		c.mu.Unlock()
		t.f()
	}
}

// Pending returns how many timers are scheduled and not yet fired or stopped.
func (c *Clock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// NextDeadline returns the earliest scheduled timer's deadline; ok is false
// when no timer is scheduled.
func (c *Clock) NextDeadline() (deadline time.Time, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.timers) == 0 {
		return time.Time{}, false
	}
	return c.timers[0].at, true
}

type timer struct {
	c     *Clock
	at    time.Time
	seq   uint64
	f     func()
	index int // position in the heap; -1 once fired or stopped
}

// Stop cancels the timer. It returns false if the timer already fired or was
// stopped.
func (t *timer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	if t.index < 0 {
		return false
	}
	heap.Remove(&t.c.timers, t.index)
	return true
}

type timerHeap []*timer

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].seq < h[j].seq
}
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *timerHeap) Push(x any) {
	t := x.(*timer)
	t.index = len(*h)
	*h = append(*h, t)
}
func (h *timerHeap) Pop() any {
	old := *h
	n := len(old)
	t := old[n-1]
	old[n-1] = nil
	t.index = -1
	*h = old[:n-1]
	return t
}
