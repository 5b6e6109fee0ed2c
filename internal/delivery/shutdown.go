package delivery

import (
	"context"
	"errors"
	"fmt"
)

// Close stops the loops. Within ctx it waits for in-flight sends, then sends
// what is queued in memory once more; what Kafka does not take is spilled.
// Batches that can be neither sent nor stored are reported Lost.
func (d *Dispatcher) Close(ctx context.Context) error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.timer.Stop()
	d.mu.Unlock()
	close(d.stop)
	// A replay may be in a produce that Kafka does not answer: ctx bounds
	// the wait, and the replayed batch stays on disk.
	loopsDone := make(chan struct{})
	go func() {
		d.loops.Wait()
		close(loopsDone)
	}()
	select {
	case <-loopsDone:
	case <-ctx.Done():
		d.cancel()
		<-loopsDone
	}

	// Last direct attempts, bounded by ctx: one send per partition FIFO.
	waited := make(chan struct{})
	go func() {
		for {
			d.sending.Wait()
			if !d.hasSendable() || ctx.Err() != nil {
				break
			}
			d.sendReady()
		}
		close(waited)
	}()
	select {
	case <-waited:
	case <-ctx.Done():
		d.cancel() // in-flight sends end and spill
		<-waited
	}
	d.cancel()

	d.submits.Wait() // a Submit may be storing behind a backlog
	var lost int
	for _, p := range d.snapshot() {
		p.mu.Lock()
		p.stalled = false
		if len(p.fifo) > 0 {
			d.spillFIFO(p, errors.New("shutdown"))
		}
		failed := p.fifo
		p.fifo = nil
		p.mu.Unlock()
		for _, e := range failed {
			lost += len(e.b.Messages)
			d.settle(e, endLost, &e.b, 0, fmt.Errorf("%w: shutdown", ErrNotStored))
		}
	}
	if lost > 0 {
		return fmt.Errorf("shutdown: %d records neither sent nor stored", lost)
	}
	return nil
}

func (d *Dispatcher) hasSendable() bool {
	for _, p := range d.snapshot() {
		p.mu.Lock()
		ok := d.sendable(p)
		p.mu.Unlock()
		if ok {
			return true
		}
	}
	return false
}
