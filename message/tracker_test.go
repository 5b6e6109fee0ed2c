package message

import (
	"context"
	"errors"
	"testing"
)

func TestTrackerWaitsForEveryRecord(t *testing.T) {
	tr := NewTracker(3)
	msgs := []Message{{Tracker: tr}, {Tracker: tr}, {}}
	TrackDone(msgs, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := tr.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait with 1 record open = %v, want context.Canceled", err)
	}
	boom := errors.New("disk full")
	tr.Done(1, boom)
	if err := tr.Wait(context.Background()); !errors.Is(err, boom) {
		t.Fatalf("Wait = %v, want %v", err, boom)
	}
	tr.Done(1, nil) // outcomes past the count are ignored
}

func TestNilTrackerIsNoop(t *testing.T) {
	var tr *Tracker
	tr.Done(1, errors.New("x"))
	if err := tr.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := NewTracker(0).Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestTrackDoneCountsInterleavedCalls(t *testing.T) {
	a, b := NewTracker(3), NewTracker(2)
	// Two calls' records interleaved, and a record without a tracker.
	msgs := []Message{{Tracker: a}, {Tracker: a}, {Tracker: b}, {}, {Tracker: a}}
	TrackDone(msgs, nil)
	if err := a.Wait(context.Background()); err != nil {
		t.Fatalf("a: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("b with 1 record open = %v, want context.Canceled", err)
	}
	TrackDone([]Message{{Tracker: b}}, nil)
	if err := b.Wait(context.Background()); err != nil {
		t.Fatalf("b: %v", err)
	}
}
