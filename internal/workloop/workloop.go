// Package workloop names one concurrency pattern: work that any goroutine
// may ask for and one goroutine at a time does, where a request that comes
// while the work is being done makes the worker go once more instead of
// waiting for it or being lost (franz-go's workLoop).
//
// A requester calls Begin and, when it returns true, does the work (or
// starts a goroutine that does it); the worker calls Again after each pass
// and goes on while it returns true:
//
//	if l.Begin() {
//		go func() {
//			for {
//				drain()
//				if !l.Again() {
//					return
//				}
//			}
//		}()
//	}
//
// Run does this on the caller's goroutine. The work must take everything
// asked for by the time its pass began, so that a request made during a
// pass is served by the next one.
package workloop

import "sync/atomic"

const (
	idle    = iota // no one is working
	working        // one goroutine is working
	again          // one goroutine is working and was asked to go once more
)

// Loop is the state of one kind of work. The zero Loop is idle. A Loop must
// not be copied after first use.
type Loop struct{ state atomic.Uint32 }

// Begin asks for the work. It returns true when no goroutine is doing it:
// the caller is now the worker. Otherwise it tells the worker to go once
// more and returns false.
func (l *Loop) Begin() bool {
	for {
		if l.state.CompareAndSwap(idle, working) {
			return true
		}
		if l.state.CompareAndSwap(working, again) || l.state.Load() == again {
			return false
		}
		// The worker went idle meanwhile: try again.
	}
}

// Again is called by the worker after each pass. It returns true when the
// work was asked for during the pass (the worker goes once more), false
// when it was not: the Loop is idle and the next Begin makes a new worker.
func (l *Loop) Again() bool {
	for {
		if l.state.CompareAndSwap(again, working) {
			return true
		}
		if l.state.CompareAndSwap(working, idle) {
			return false
		}
		// A Begin asked for another pass meanwhile: take it.
	}
}

// Run asks for the work and, when the caller becomes the worker, does it
// with f until no request is left.
func (l *Loop) Run(f func()) {
	if !l.Begin() {
		return
	}
	for {
		f()
		if !l.Again() {
			return
		}
	}
}
