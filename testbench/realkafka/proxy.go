package realkafka

import (
	"context"
	"fmt"
	"strings"
	"sync"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// proxies are the in-process toxiproxies in front of a cluster's brokers.
type proxies struct {
	server *toxiproxy.ApiServer
	mu     sync.Mutex
	list   []*toxiproxy.Proxy
}

func newProxies() *proxies {
	return &proxies{server: toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())}
}

func (p *proxies) add(name, listen, upstream string) error {
	px := toxiproxy.NewProxy(p.server, name, listen, upstream)
	if err := px.Start(); err != nil {
		return fmt.Errorf("realkafka: proxy %s on %s: %w", name, listen, err)
	}
	p.mu.Lock()
	p.list = append(p.list, px)
	p.mu.Unlock()
	return nil
}

func (p *proxies) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, px := range p.list {
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

// AddToxic adds t to every broker's proxy (Options.Proxy).
func (c *Cluster) AddToxic(t Toxic) error {
	if c.proxy == nil {
		return fmt.Errorf("realkafka: cluster has no proxies (Options.Proxy)")
	}
	if t.Name == "" {
		t.Name = t.Type + "_" + t.Stream
	}
	c.proxy.mu.Lock()
	defer c.proxy.mu.Unlock()
	for _, px := range c.proxy.list {
		if _, err := px.Toxics.AddToxicJson(strings.NewReader(t.json())); err != nil {
			return fmt.Errorf("realkafka: toxic %s on %s: %w", t.Name, px.Name, err)
		}
	}
	return nil
}

// RemoveToxic removes the toxic named name from every proxy.
func (c *Cluster) RemoveToxic(name string) error {
	if c.proxy == nil {
		return fmt.Errorf("realkafka: cluster has no proxies (Options.Proxy)")
	}
	c.proxy.mu.Lock()
	defer c.proxy.mu.Unlock()
	for _, px := range c.proxy.list {
		if err := px.Toxics.RemoveToxic(context.Background(), name); err != nil {
			return fmt.Errorf("realkafka: remove toxic %s on %s: %w", name, px.Name, err)
		}
	}
	return nil
}

// CutConnections disables every proxy (open connections are closed, new
// ones refused) until RestoreConnections.
func (c *Cluster) CutConnections() {
	c.proxy.mu.Lock()
	defer c.proxy.mu.Unlock()
	for _, px := range c.proxy.list {
		px.Stop()
	}
}

// RestoreConnections enables every proxy again.
func (c *Cluster) RestoreConnections() error {
	c.proxy.mu.Lock()
	defer c.proxy.mu.Unlock()
	for _, px := range c.proxy.list {
		if err := px.Start(); err != nil {
			return fmt.Errorf("realkafka: restart proxy %s: %w", px.Name, err)
		}
	}
	return nil
}
