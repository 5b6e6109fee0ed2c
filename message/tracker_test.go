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
