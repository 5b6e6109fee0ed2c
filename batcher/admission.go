package batcher

import (
	"context"
	"fmt"
	"unsafe"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

type waiter struct {
	need    int64
	records int64
	ready   chan struct{}
	granted bool
	err     error
}

// recordBytes is what one record counts against MaxPendingBytes: its
// encoded size as the first record of a batch plus the memory its structs
// hold while it is pending (see heldBytes). Add and Release both use it.
func recordBytes(m *message.Message) int {
	return heldBytes(m, message.RecordSize(m, 0, m.Timestamp))
}

// heldBytes is recordBytes of m whose encoded size as the first record of a
// batch, alone, is known: alone plus its message.Message (in its batch's
// slice) and its Header structs. The key, value and header bytes are in
// alone.
func heldBytes(m *message.Message, alone int) int {
	return alone + int(unsafe.Sizeof(message.Message{})) + len(m.Headers)*int(unsafe.Sizeof(message.Header{}))
}

// admit reserves need bytes for n records, waiting in line for room.
func (p *Pool) admit(ctx context.Context, need, n int64) error {
	p.memMu.Lock()
	if p.closed {
		p.memMu.Unlock()
		return ErrClosed
	}
	if len(p.waiters) == 0 && p.fitsLocked(need) {
		p.used += need
		p.records += n
		p.active++
		p.memMu.Unlock()
		return nil
	}
	w := &waiter{need: need, records: n, ready: make(chan struct{})}
	p.waiters = append(p.waiters, w)
	relieve := p.heldMostLocked()
	p.memMu.Unlock()
	if relieve {
		p.relieve() // may admit w: the sink's Releases grant room
	}

	select {
	case <-w.ready:
		return w.err
	case <-ctx.Done():
	}
	p.memMu.Lock()
	defer p.memMu.Unlock()
	if w.granted { // room (or ErrClosed) came as ctx ended: take it
		return w.err
	}
	for i, x := range p.waiters {
		if x == w {
			p.waiters = append(p.waiters[:i], p.waiters[i+1:]...)
			break
		}
	}
	p.grantLocked() // those behind w may fit now
	return fmt.Errorf("add %d records (%d bytes, %d pending): %w: %w", n, need, p.used, ErrMemoryLimit, ctx.Err())
}

// fitsLocked: need bytes fit under the bound. An empty pool takes any call,
// so a call larger than the bound is not refused forever.
func (p *Pool) fitsLocked(need int64) bool {
	return p.cfg.MaxPendingBytes == 0 || p.used == 0 || p.used+need <= p.cfg.MaxPendingBytes
}

// grantLocked admits waiters from the head of the line while they fit.
func (p *Pool) grantLocked() {
	for len(p.waiters) > 0 {
		w := p.waiters[0]
		if !p.closed && !p.fitsLocked(w.need) {
			return
		}
		p.waiters[0] = nil
		p.waiters = p.waiters[1:]
		w.granted = true
		if p.closed {
			w.err = ErrClosed
		} else {
			p.used += w.need
			p.records += w.records
			p.active++
		}
		close(w.ready)
	}
}

// RefuseWaiting fails every call now waiting for room with err, admitting
// none of them: the exporter calls it when what they would add could not be
// saved (the temp storage is full). Later calls are not affected.
func (p *Pool) RefuseWaiting(err error) {
	p.memMu.Lock()
	defer p.memMu.Unlock()
	for _, w := range p.waiters {
		w.granted = true
		w.err = fmt.Errorf("add %d records (%d bytes, %d pending): %w", w.records, w.need, p.used, err)
		close(w.ready)
	}
	p.waiters = nil
}

// enter registers a timer callback; false once the pool is closed.
func (p *Pool) enter() bool {
	p.memMu.Lock()
	defer p.memMu.Unlock()
	if p.closed {
		return false
	}
	p.active++
	return true
}

func (p *Pool) exit() {
	p.memMu.Lock()
	defer p.memMu.Unlock()
	p.active--
	if p.active == 0 && p.idle != nil {
		close(p.idle)
		p.idle = nil
	}
}

// Release frees the memory counted for b's records. The exporter calls it
// once per batch received from Ready or Shutdown, when Kafka acknowledged it,
// it was spilled to disk, or it was rejected.
func (p *Pool) Release(b message.Batch) {
	var n int64
	for i := range b.Messages {
		n += int64(recordBytes(&b.Messages[i]))
	}
	p.memMu.Lock()
	defer p.memMu.Unlock()
	p.used -= n
	p.records -= int64(len(b.Messages))
	p.grantLocked()
}

// PendingRecords is the number of records accepted and not yet released.
func (p *Pool) PendingRecords() int64 {
	p.memMu.Lock()
	defer p.memMu.Unlock()
	return p.records
}

// PendingBytes is what the records accepted and not yet released count
// against MaxPendingBytes: their encoded size plus their structs (recordBytes).
func (p *Pool) PendingBytes() int64 {
	p.memMu.Lock()
	defer p.memMu.Unlock()
	return p.used
}
