// Package proxy runs in-process toxiproxies in front of broker listeners,
// for the fault suites and for benchmarks that add network latency. It is
// shared by testbench/realkafka and testbench/broker.
package proxy

import (
	"context"
	"fmt"
	"strings"
	"sync"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Set is a group of proxies that take toxics together.
type Set struct {
	server *toxiproxy.ApiServer
	mu     sync.Mutex
	list   []*toxiproxy.Proxy
}

// New returns an empty Set.
func New() *Set {
	return &Set{server: toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())}
}

// Add starts a proxy named name that listens on listen and forwards to
// upstream (both host:port).
func (s *Set) Add(name, listen, upstream string) error {
	px := toxiproxy.NewProxy(s.server, name, listen, upstream)
	if err := px.Start(); err != nil {
		return fmt.Errorf("proxy %s on %s: %w", name, listen, err)
	}
	s.mu.Lock()
	s.list = append(s.list, px)
	s.mu.Unlock()
	return nil
}

// Close stops every proxy.
func (s *Set) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, px := range s.list {
		px.Stop()
	}
}

// Toxic is a toxiproxy toxic, e.g. {Type: "latency", Attributes:
// map[string]any{"latency": 200}}. Stream is "downstream" (broker to
// client, the default) or "upstream".
type Toxic struct {
	Name       string
	Type       string
	Stream     string
	Attributes map[string]any
}

func (t Toxic) json() string {
	stream := t.Stream
	if stream == "" {
		stream = "downstream"
	}
	var attrs []string
	for k, v := range t.Attributes {
		attrs = append(attrs, fmt.Sprintf("%q:%v", k, v))
	}
	return fmt.Sprintf(`{"name":%q,"type":%q,"stream":%q,"toxicity":1,"attributes":{%s}}`,
		t.Name, t.Type, stream, strings.Join(attrs, ","))
}

// AddToxic adds t to every proxy of the set; an empty Name becomes
// Type_Stream.
func (s *Set) AddToxic(t Toxic) error {
	if t.Name == "" {
		t.Name = t.Type + "_" + t.Stream
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, px := range s.list {
		if _, err := px.Toxics.AddToxicJson(strings.NewReader(t.json())); err != nil {
			return fmt.Errorf("toxic %s on %s: %w", t.Name, px.Name, err)
		}
	}
	return nil
}

// RemoveToxic removes the toxic named name from every proxy.
func (s *Set) RemoveToxic(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, px := range s.list {
		if err := px.Toxics.RemoveToxic(context.Background(), name); err != nil {
			return fmt.Errorf("remove toxic %s on %s: %w", name, px.Name, err)
		}
	}
	return nil
}

// Cut disables every proxy (open connections are closed, new ones
// refused) until Restore.
func (s *Set) Cut() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, px := range s.list {
		px.Stop()
	}
}

// Restore enables every proxy again.
func (s *Set) Restore() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, px := range s.list {
		if err := px.Start(); err != nil {
			return fmt.Errorf("restart proxy %s: %w", px.Name, err)
		}
	}
	return nil
}
