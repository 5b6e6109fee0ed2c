// Package sharedcomponent lets the pipelines of one component id share one
// instance, as contrib's internal/sharedcomponent does (it cannot be
// imported): the instance starts when the first pipeline starts and shuts
// down when the last one that started stops. Status events the instance
// reports reach every pipeline that started it; a pipeline that starts
// after an event is told the last one when it starts.
package sharedcomponent

import (
	"context"
	"errors"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
)

// Map holds the shared instances by key (the component's config).
type Map[K comparable, V any] struct {
	mu    sync.Mutex
	comps map[K]*Component[V]
}

// NewMap returns an empty Map.
func NewMap[K comparable, V any]() *Map[K, V] {
	return &Map[K, V]{comps: map[K]*Component[V]{}}
}

// Len returns the number of instances held: created and not yet shut down.
func (m *Map[K, V]) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.comps)
}

// Lifecycle is what an instance does on the first start and the last stop.
type Lifecycle struct {
	Start    func(ctx context.Context, host component.Host) error
	Shutdown func(ctx context.Context) error
}

// LoadOrStore returns the instance of key, creating it with create when
// there is none. create returns the value and its lifecycle.
func (m *Map[K, V]) LoadOrStore(key K, create func() (V, Lifecycle, error)) (*Component[V], error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.comps[key]; ok {
		return c, nil
	}
	v, lc, err := create()
	if err != nil {
		return nil, err
	}
	c := &Component[V]{Value: v, lc: lc}
	c.remove = func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.comps[key] == c {
			delete(m.comps, key)
		}
	}
	m.comps[key] = c
	return c, nil
}

// Component is one shared instance; each pipeline uses it through its own
// Pipeline.
type Component[V any] struct {
	Value V
	lc    Lifecycle

	mu       sync.Mutex
	open     int // pipelines created and not yet shut down
	started  int // pipelines started and not yet shut down
	startErr error
	stopped  bool
	host     *host
	remove   func()
}

// Pipeline returns the handle of one more pipeline using the instance.
func (c *Component[V]) Pipeline() *Pipeline[V] {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.open++
	return &Pipeline[V]{c: c}
}

// Pipeline is one pipeline's use of a shared instance.
type Pipeline[V any] struct {
	c       *Component[V]
	started bool
	done    bool
}

// ErrStopped is returned by Start after the instance was shut down.
var ErrStopped = errors.New("shared component already shut down")

// Start starts the instance on the first call of any pipeline; later calls
// add the pipeline's host to those that receive status events and return
// the first call's error.
func (p *Pipeline[V]) Start(ctx context.Context, h component.Host) error {
	c := p.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return ErrStopped
	}
	if p.started {
		return c.startErr
	}
	p.started = true
	c.started++
	if c.host == nil {
		c.host = &host{Host: h}
		c.host.add(h)
		c.startErr = c.lc.Start(ctx, c.host)
		return c.startErr
	}
	c.host.add(h)
	return c.startErr
}

// Shutdown shuts the instance down when the last started pipeline stops; a
// pipeline that never started stops nothing. Once every pipeline is shut
// down, or the instance is, it leaves its Map, so a later create makes a
// new one (a config reload).
func (p *Pipeline[V]) Shutdown(ctx context.Context) error {
	c := p.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if p.done {
		return nil
	}
	p.done = true
	c.open--
	if p.started {
		c.started--
	}
	if c.started == 0 && c.host != nil && !c.stopped {
		c.stopped = true
		c.remove()
		return c.lc.Shutdown(ctx)
	}
	if c.open == 0 {
		c.remove()
	}
	return nil
}

// host is the host given to the instance: the first pipeline's for
// extensions, and status events reported to every pipeline's host.
//
// A pipeline can start after the instance reported its status: the first
// pipeline's Start begins work in the background (Kafka found unreachable
// is reported from there), and the instance reports a status only when it
// changes. So add tells a host that comes late the last status, and both
// add and Report hold mu while reporting: a host gets each event once and
// in order, the last one being the instance's status, however a Report
// and an add interleave.
type host struct {
	component.Host
	mu    sync.Mutex
	hosts []component.Host
	last  *componentstatus.Event // the last event reported; nil before any
}

func (h *host) add(x component.Host) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hosts = append(h.hosts, x)
	if h.last != nil {
		componentstatus.ReportStatus(x, h.last)
	}
}

// Report sends ev to every pipeline's host (componentstatus.Reporter).
func (h *host) Report(ev *componentstatus.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.last = ev
	for _, x := range h.hosts {
		componentstatus.ReportStatus(x, ev)
	}
}
