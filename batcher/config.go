// Package batcher collects messages into per-partition batches and decides
// when each batch is ready to send: by record count (batch.size, held back by
// batch.min_delay), by bytes (batch.max_bytes), by age (batch.max_wait) or by
// a flush_when match, in the order Accumulator documents; the Pool also
// releases the oldest pending batches early when max_pending_bytes is reached
// with most bytes still in accumulators (memory).
//
// Accumulator is the pure state machine of one partition (or of one topic
// when batches are not collected by partition): no locks, no timers, time is
// an argument. Pool runs one Accumulator per key behind locks, arms one timer
// per accumulator on an injected Clock, bounds the memory the pending records
// hold, and hands ready batches to a Sink.
package batcher

import (
	"errors"
	"fmt"
	"time"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// Config holds the batching settings of one exporter.
type Config struct {
	// Size is the record count that makes a batch ready (batch.size).
	Size int
	// MaxBytes bounds a batch as sent: the v2 record batch, 61-byte header
	// included, before compression (batch.max_bytes).
	MaxBytes int
	// MaxMessageBytes is producer.max_message_bytes: a record that does not
	// fit in a batch of its own this large is rejected.
	MaxMessageBytes int
	// MaxWait bounds how long the first record of a batch waits (batch.max_wait).
	MaxWait time.Duration
	// MinDelay is the least time between the start of an accumulator's last
	// send (its cut, acknowledged or not) and a batch made ready by Size
	// (batch.min_delay).
	MinDelay time.Duration
	// CollectByPartition false keeps one accumulator per topic; its ready
	// batches are split into one batch per partition when handed off.
	CollectByPartition bool
	// CutEachAdd releases, when an Add has added its records, what is
	// pending in every accumulator that Add touched (reason call), unless
	// MinDelay holds it back (Accumulator.CutSoon). A caller that waits for
	// its records' acknowledgement (delivery: sync) waits for Kafka, not for
	// later callers to fill the batch.
	CutEachAdd bool
	// MaxPendingBytes bounds what the records accepted and not yet released
	// (see Pool.Release) hold in memory: each counts its encoded size plus
	// its Message and Header structs. 0 means no bound.
	MaxPendingBytes int64
}

// oversize reports whether a record of size alone (its size as the only
// record of a batch) cannot be sent even in a batch of its own. The
// accumulator rejects exactly these, and the pool does not count them
// against MaxPendingBytes.
func (c Config) oversize(alone int) bool {
	return message.BatchHeaderBytes+alone > c.MaxMessageBytes
}

// Validate returns every setting out of range, joined, each named by its
// config key. It is the one place the batch settings are checked: the
// exporter's config validation calls it too. A non-positive MaxMessageBytes
// is reported in the producer's words (producer.max_message_bytes), so the
// exporter lists it once.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Size <= 0 {
		add("batch.size: must be > 0, got %d", c.Size)
	}
	if c.MaxMessageBytes <= 0 {
		add("producer.max_message_bytes: must be > 0, got %d", c.MaxMessageBytes)
	}
	switch {
	case c.MaxBytes <= message.BatchHeaderBytes:
		add("batch.max_bytes: must be > %d (the record batch header), got %d", message.BatchHeaderBytes, c.MaxBytes)
	case c.MaxMessageBytes > 0 && c.MaxBytes > c.MaxMessageBytes:
		add("batch.max_bytes: must be <= producer.max_message_bytes (%d), got %d", c.MaxMessageBytes, c.MaxBytes)
	}
	if c.MaxWait <= 0 {
		add("batch.max_wait: must be > 0, got %s", c.MaxWait)
	}
	switch {
	case c.MinDelay < 0:
		add("batch.min_delay: must be >= 0, got %s", c.MinDelay)
	case c.MaxWait > 0 && c.MinDelay > c.MaxWait:
		add("batch.min_delay: must be <= batch.max_wait (%s), got %s", c.MaxWait, c.MinDelay)
	}
	if c.MaxPendingBytes < 0 {
		add("max_pending_bytes: must not be negative, got %d", c.MaxPendingBytes)
	}
	return errors.Join(errs...)
}

// Errors returned by Pool.Add; callers branch on them with errors.Is.
var (
	// ErrMemoryLimit is returned when the records did not fit under
	// MaxPendingBytes before the context ended. Nothing of the call was
	// accepted.
	ErrMemoryLimit = errors.New("batcher: pending bytes at max_pending_bytes")
	// ErrClosed is returned once Shutdown was called: the pool accepts
	// nothing more.
	ErrClosed = errors.New("batcher: pool shut down")
	// ErrInvalidPartition is returned when a message has a negative
	// partition.
	ErrInvalidPartition = errors.New("batcher: message without a partition")
)

// Timer is a scheduled callback. It is an alias so that clocks from other
// packages (such as internal/fakeclock) satisfy Clock without importing this
// package.
type Timer = interface{ Stop() bool }

// Clock is the source of time and timers; tests inject a fake one.
type Clock interface {
	Now() time.Time
	// AfterFunc runs f in its own goroutine (or, for a fake clock, when the
	// test moves time) once d has passed.
	AfterFunc(d time.Duration, f func()) Timer
}

// SystemClock returns the real clock (time.Now, time.AfterFunc).
func SystemClock() Clock { return systemClock{} }

type systemClock struct{}

func (systemClock) Now() time.Time                            { return time.Now() }
func (systemClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }
