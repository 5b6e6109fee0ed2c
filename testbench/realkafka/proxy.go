package realkafka

import (
	"errors"
	"fmt"

	"github.com/kafkabatcher/kafkabatcherexporter/testbench/proxy"
)

// Toxic is a toxiproxy toxic, e.g. {Type: "latency", Attributes:
// map[string]any{"latency": 200}}. Stream is "downstream" (broker to
// client, the default) or "upstream".
type Toxic = proxy.Toxic

var errNoProxy = errors.New("realkafka: cluster has no proxies (Options.Proxy)")

// AddToxic adds t to every broker's proxy (Options.Proxy).
func (c *Cluster) AddToxic(t Toxic) error {
	if c.proxy == nil {
		return errNoProxy
	}
	if err := c.proxy.AddToxic(t); err != nil {
		return fmt.Errorf("realkafka: %w", err)
	}
	return nil
}

// RemoveToxic removes the toxic named name from every proxy.
func (c *Cluster) RemoveToxic(name string) error {
	if c.proxy == nil {
		return errNoProxy
	}
	if err := c.proxy.RemoveToxic(name); err != nil {
		return fmt.Errorf("realkafka: %w", err)
	}
	return nil
}

// CutConnections disables every proxy (open connections are closed, new
// ones refused) until RestoreConnections.
func (c *Cluster) CutConnections() { c.proxy.Cut() }

// RestoreConnections enables every proxy again.
func (c *Cluster) RestoreConnections() error {
	if err := c.proxy.Restore(); err != nil {
		return fmt.Errorf("realkafka: %w", err)
	}
	return nil
}
