package fakeclock

import (
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

func TestAdvanceFiresInDeadlineOrderWithNowAtDeadline(t *testing.T) {
	c := New(t0)
	type fire struct {
		name string
		at   time.Duration
	}
	var got []fire
	rec := func(name string) func() {
		return func() { got = append(got, fire{name, c.Now().Sub(t0)}) }
	}
	c.AfterFunc(30*time.Millisecond, rec("c"))
	c.AfterFunc(10*time.Millisecond, rec("a"))
	c.AfterFunc(20*time.Millisecond, rec("b1"))
	c.AfterFunc(20*time.Millisecond, rec("b2")) // same deadline: creation order
	c.AfterFunc(50*time.Millisecond, rec("late"))

	c.Advance(25 * time.Millisecond)
	want := []fire{{"a", 10 * time.Millisecond}, {"b1", 20 * time.Millisecond}, {"b2", 20 * time.Millisecond}}
	if len(got) != len(want) {
		t.Fatalf("fired %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("fired %v, want %v", got, want)
		}
	}
	if now := c.Now().Sub(t0); now != 25*time.Millisecond {
		t.Fatalf("Now after Advance = %v, want 25ms", now)
	}
	if c.Pending() != 2 {
		t.Fatalf("Pending = %d, want 2", c.Pending())
	}
	if d, ok := c.NextDeadline(); !ok || !d.Equal(t0.Add(30*time.Millisecond)) {
		t.Fatalf("NextDeadline = %v %v", d, ok)
	}
}

func TestStop(t *testing.T) {
	c := New(t0)
	fired := false
	tm := c.AfterFunc(time.Second, func() { fired = true })
	if !tm.Stop() {
		t.Fatal("first Stop = false, want true")
	}
	if tm.Stop() {
		t.Fatal("second Stop = true, want false")
	}
	c.Advance(2 * time.Second)
	if fired {
		t.Fatal("stopped timer fired")
	}
	tm2 := c.AfterFunc(time.Second, func() {})
	c.Advance(time.Second)
	if tm2.Stop() {
		t.Fatal("Stop after firing = true, want false")
	}
}

func TestCallbackSchedulesTimerWithinAdvance(t *testing.T) {
	c := New(t0)
	var at []time.Duration
	var tick func()
	tick = func() {
		at = append(at, c.Now().Sub(t0))
		if len(at) < 10 {
			c.AfterFunc(100*time.Millisecond, tick)
		}
	}
	c.AfterFunc(100*time.Millisecond, tick)
	c.Advance(350 * time.Millisecond)
	if len(at) != 3 || at[2] != 300*time.Millisecond {
		t.Fatalf("ticks at %v, want 100ms,200ms,300ms", at)
	}
	// A callback may stop another timer that is due in the same Advance.
	var victimFired bool
	victim := c.AfterFunc(time.Second, func() { victimFired = true })
	c.AfterFunc(900*time.Millisecond, func() { victim.Stop() })
	c.Advance(2 * time.Second)
	if victimFired {
		t.Fatal("timer stopped by an earlier callback still fired")
	}
}

func TestZeroDelayFiresOnNextAdvanceNotInline(t *testing.T) {
	c := New(t0)
	fired := false
	c.AfterFunc(0, func() { fired = true })
	if fired {
		t.Fatal("AfterFunc(0) ran inline")
	}
	c.Advance(0)
	if !fired {
		t.Fatal("AfterFunc(0) did not fire on Advance(0)")
	}
}

func TestSetAndAfter(t *testing.T) {
	c := New(t0)
	ch := c.After(time.Minute)
	c.Set(t0.Add(30 * time.Second))
	select {
	case <-ch:
		t.Fatal("After fired early")
	default:
	}
	c.Set(t0.Add(2 * time.Minute))
	select {
	case v := <-ch:
		if !v.Equal(t0.Add(time.Minute)) {
			t.Fatalf("After delivered %v, want deadline", v)
		}
	default:
		t.Fatal("After did not fire")
	}
	c.Set(t0) // never goes back
	if !c.Now().Equal(t0.Add(2 * time.Minute)) {
		t.Fatalf("Set to the past moved the clock to %v", c.Now())
	}
	if got := c.Since(t0); got != 2*time.Minute {
		t.Fatalf("Since = %v", got)
	}
}

func TestConcurrentUse(t *testing.T) {
	c := New(t0)
	var mu sync.Mutex
	n, stopped := 0, 0
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				tm := c.AfterFunc(time.Duration(i)*time.Millisecond, func() { mu.Lock(); n++; mu.Unlock() })
				if i%2 == 0 && tm.Stop() {
					mu.Lock()
					stopped++
					mu.Unlock()
				}
				c.Advance(time.Millisecond)
				_ = c.Now()
			}
		}()
	}
	wg.Wait()
	c.Advance(time.Hour)
	if n+stopped != 400 || stopped == 0 {
		t.Fatalf("fired %d and stopped %d timers, want 400 in all", n, stopped)
	}
}
