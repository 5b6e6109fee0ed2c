package sharedcomponent

import (
	"context"
	"errors"
	"sync"
	"testing"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/component/componenttest"
)

// recordingHost records the status events reported to it.
type recordingHost struct {
	component.Host
	mu     sync.Mutex
	events []componentstatus.Status
}

func newRecordingHost() *recordingHost { return &recordingHost{Host: componenttest.NewNopHost()} }

func (h *recordingHost) Report(e *componentstatus.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, e.Status())
}

func (h *recordingHost) statuses() []componentstatus.Status {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]componentstatus.Status(nil), h.events...)
}

// shared returns a component whose instance keeps the host it is started
// with, for the test to report through, and n pipelines of it.
func shared(t *testing.T, n int) (*component.Host, []*Pipeline[int]) {
	t.Helper()
	var instanceHost component.Host
	c, err := NewMap[string, int]().LoadOrStore("k", func() (int, Lifecycle, error) {
		return 0, Lifecycle{
			Start:    func(_ context.Context, h component.Host) error { instanceHost = h; return nil },
			Shutdown: func(context.Context) error { return nil },
		}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ps := make([]*Pipeline[int], n)
	for i := range ps {
		ps[i] = c.Pipeline()
	}
	return &instanceHost, ps
}

// TestStatusReachesPipelineStartedLater: a status the instance reported
// before a pipeline started (Kafka found unreachable while the first
// pipeline's start looks topics up in the background) reaches that
// pipeline's host when it starts; the instance reports on change only and
// would not tell it again.
func TestStatusReachesPipelineStartedLater(t *testing.T) {
	ctx := context.Background()
	instanceHost, ps := shared(t, 3)
	hosts := []*recordingHost{newRecordingHost(), newRecordingHost(), newRecordingHost()}
	if err := ps[0].Start(ctx, hosts[0]); err != nil {
		t.Fatal(err)
	}
	componentstatus.ReportStatus(*instanceHost, componentstatus.NewRecoverableErrorEvent(errors.New("kafka down")))
	for i := 1; i < len(ps); i++ {
		if err := ps[i].Start(ctx, hosts[i]); err != nil {
			t.Fatal(err)
		}
	}
	componentstatus.ReportStatus(*instanceHost, componentstatus.NewEvent(componentstatus.StatusOK))
	want := []componentstatus.Status{componentstatus.StatusRecoverableError, componentstatus.StatusOK}
	for i, h := range hosts {
		if got := h.statuses(); !equal(got, want) {
			t.Errorf("host %d got %v, want %v", i, got, want)
		}
	}
}

// TestStatusNotRepeatedToEarlierPipelines: a pipeline starting late is
// told the last status; the pipelines already started are not told again.
func TestStatusNotRepeatedToEarlierPipelines(t *testing.T) {
	ctx := context.Background()
	instanceHost, ps := shared(t, 2)
	first, second := newRecordingHost(), newRecordingHost()
	if err := ps[0].Start(ctx, first); err != nil {
		t.Fatal(err)
	}
	if got := second.statuses(); len(got) != 0 {
		t.Fatalf("nothing reported yet, host got %v", got)
	}
	componentstatus.ReportStatus(*instanceHost, componentstatus.NewRecoverableErrorEvent(errors.New("kafka down")))
	componentstatus.ReportStatus(*instanceHost, componentstatus.NewEvent(componentstatus.StatusOK))
	if err := ps[1].Start(ctx, second); err != nil {
		t.Fatal(err)
	}
	if got, want := first.statuses(), []componentstatus.Status{componentstatus.StatusRecoverableError, componentstatus.StatusOK}; !equal(got, want) {
		t.Errorf("first host got %v, want %v", got, want)
	}
	if got, want := second.statuses(), []componentstatus.Status{componentstatus.StatusOK}; !equal(got, want) {
		t.Errorf("second host got %v, want %v (the last status only)", got, want)
	}
}

func equal(a, b []componentstatus.Status) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
