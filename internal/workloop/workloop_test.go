package workloop

import (
	"sync"
	"sync/atomic"
	"testing"
)

// TestOneWorkerAtATimeAndNoRequestLost: many goroutines ask for the work;
// at most one does it at a time, and every request is served by a pass
// that began after it.
func TestOneWorkerAtATimeAndNoRequestLost(t *testing.T) {
	var (
		l       Loop
		busy    atomic.Int32
		asked   atomic.Int64 // requests made
		served  atomic.Int64 // requests taken by a pass
		wg      sync.WaitGroup
		overlap atomic.Bool
	)
	pass := func() {
		if busy.Add(1) != 1 {
			overlap.Store(true)
		}
		served.Store(asked.Load())
		busy.Add(-1)
	}
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 2000 {
				asked.Add(1)
				l.Run(pass)
			}
		}()
	}
	wg.Wait()
	if overlap.Load() {
		t.Fatal("two goroutines did the work at once")
	}
	if served.Load() != asked.Load() {
		t.Fatalf("served %d of %d requests", served.Load(), asked.Load())
	}
	if !l.Begin() {
		t.Fatal("the loop is not idle after the last pass")
	}
}

// TestBeginDuringAPassMakesTheWorkerGoAgain: a request made while the work
// runs is served by the worker's next pass, not by a second worker.
func TestBeginDuringAPassMakesTheWorkerGoAgain(t *testing.T) {
	var l Loop
	passes := 0
	l.Run(func() {
		passes++
		if passes == 1 && l.Begin() {
			t.Fatal("Begin during a pass made a second worker")
		}
	})
	if passes != 2 {
		t.Fatalf("%d passes, want 2", passes)
	}
}
