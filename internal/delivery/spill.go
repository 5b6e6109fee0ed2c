package delivery

import (
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// appendStored appends b to the temp storage and tracks whether the disk
// is full: a refusal for lack of space is returned wrapping ErrDiskFull.
// Called by store, without the partition's lock.
func (d *Dispatcher) appendStored(b message.Batch) error {
	err := d.storage.Append(b)
	switch {
	case err == nil:
		// A small batch may fit where a large one did not: the state
		// ends only with room for any batch.
		d.checkRoom()
	case storageFull(err):
		err = fmt.Errorf("%w: %w", ErrDiskFull, err)
		if !d.full.Load() {
			d.setFull(err)
		}
	}
	return err
}

// storageFull reports whether err, from Storage.Append, refuses the batch
// for lack of space (see Storage).
func storageFull(err error) bool {
	var full interface{ StorageFull() bool }
	return errors.As(err, &full) && full.StorageFull()
}

// setFull records the disk as full (err) or with room again (nil) and
// tells the Observer when that changes.
func (d *Dispatcher) setFull(err error) {
	d.fullMu.Lock()
	defer d.fullMu.Unlock()
	if d.full.Load() == (err != nil) {
		return
	}
	d.full.Store(err != nil)
	d.obs.DiskFull(err)
}

// checkRoom ends the full state once the storage has room for a batch.
func (d *Dispatcher) checkRoom() {
	if d.storage != nil && d.full.Load() && d.storage.HasRoom(d.cfg.EntryBytes) {
		d.setFull(nil)
	}
}

// DiskFull reports whether the temp storage refused a batch for lack of
// space and has not had room for one since: records accepted now could
// not be saved if Kafka does not take them.
func (d *Dispatcher) DiskFull() bool { return d.full.Load() }

// store moves p's FIFO to disk, oldest first, until it is empty or the
// storage refuses its head (the error returned; the head stays). It is
// called with p.mu held and returns with it held, but releases it during
// each append: p.spilling tells the others meanwhile that the FIFO is
// neither to be sent nor stored by them, and batches submitted meanwhile
// queue behind and are stored in turn.
func (d *Dispatcher) store(p *partQueue) error {
	p.spilling = true
	defer func() { p.spilling = false }()
	for len(p.fifo) > 0 {
		e := p.fifo[0]
		p.mu.Unlock()
		err := d.appendStored(e.b)
		if err == nil {
			d.settle(e, endSpilled, &e.b, 0, nil)
		}
		p.mu.Lock()
		if err != nil {
			return err
		}
		p.fifo = p.fifo[1:]
	}
	return nil
}

// spillFIFO moves p's whole FIFO to disk, in order, so later batches queue
// behind it. Called with p.mu held (see store).
func (d *Dispatcher) spillFIFO(p *partQueue, cause error) {
	if d.storage != nil {
		if err := d.store(p); err != nil {
			b := &p.fifo[0].b
			d.logger.Error("temp storage refused a batch",
				zap.String("topic", b.Topic), zap.Int32("partition", b.Partition),
				zap.Int("records", len(b.Messages)), zap.Error(err))
			cause = fmt.Errorf("%w: %w", cause, err)
		}
	}
	if len(p.fifo) == 0 {
		return
	}
	if d.cfg.Sync {
		// The caller is waiting: tell it now rather than hold its records.
		d.loseFIFO(p, fmt.Errorf("%w: %w", ErrNotStored, cause))
		return
	}
	p.stalled = true // retried on the next tick; memory bound backs callers off
}

// loseFIFO empties p's FIFO, its batches Lost with err. Called with p.mu
// held, which it releases while it reports them.
func (d *Dispatcher) loseFIFO(p *partQueue, err error) {
	failed := p.fifo
	p.fifo = nil
	p.mu.Unlock()
	for _, e := range failed {
		d.settle(e, endLost, &e.b, 0, err)
	}
	p.mu.Lock()
}
