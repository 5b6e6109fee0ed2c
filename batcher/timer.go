package batcher

import "time"

// armLocked keeps one timer per slot, due no later than the deadline. A
// timer due earlier than needed is kept: it finds nothing due and re-arms.
func (p *Pool) armLocked(e *slot, now time.Time) {
	if e.closed {
		return
	}
	d := e.acc.Deadline()
	if d.IsZero() {
		if e.timer != nil {
			e.timer.Stop()
			e.timer = nil
		}
		return
	}
	if e.timer != nil {
		if !e.timerAt.After(d) {
			return
		}
		e.timer.Stop()
	}
	e.timerGen++
	gen := e.timerGen
	e.timerAt = d
	e.timer = p.clk.AfterFunc(d.Sub(now), func() { p.fire(e, gen) })
}

// fire is a timer callback: release what is due, re-arm, hand off.
func (p *Pool) fire(e *slot, gen uint64) {
	if !p.enter() {
		return
	}
	defer p.exit()
	now := p.clk.Now()
	e.mu.Lock()
	if gen == e.timerGen {
		e.timer = nil
	}
	if e.closed {
		e.mu.Unlock()
		return
	}
	e.out = e.acc.Tick(now, e.out)
	p.syncHeld(e)
	p.armAndDrain(e, now)
}
