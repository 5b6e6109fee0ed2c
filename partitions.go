package kafkabatcherexporter

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// partitionCache keeps the last known partition count of each topic in a
// file beside the temp storage, so an exporter restarted while Kafka is
// down still places records on the partitions their keys belong to.
type partitionCache struct {
	path string // "" keeps the counts in memory only

	mu     sync.Mutex
	counts map[string]int32
}

// loadPartitionCache reads path; a missing file is an empty cache.
func loadPartitionCache(path string) (*partitionCache, error) {
	c := &partitionCache{path: path, counts: map[string]int32{}}
	if path == "" {
		return c, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("read partition cache: %w", err)
	}
	if err := json.Unmarshal(data, &c.counts); err != nil {
		c.counts = map[string]int32{}
		return c, fmt.Errorf("partition cache %s is not valid JSON (ignored): %w", path, err)
	}
	for topic, n := range c.counts {
		if n <= 0 {
			delete(c.counts, topic)
		}
	}
	return c, nil
}

func (c *partitionCache) get(topic string) (int32, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.counts[topic]
	return n, ok
}

// set records n partitions for topic and rewrites the file atomically.
func (c *partitionCache) set(topic string, n int32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts[topic] == n {
		return nil
	}
	c.counts[topic] = n
	if c.path == "" {
		return nil
	}
	data, err := json.Marshal(c.counts)
	if err != nil {
		return err
	}
	tmp := c.path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("write partition cache: %w", err)
	}
	if err := os.Rename(tmp, c.path); err != nil {
		return fmt.Errorf("write partition cache: %w", err)
	}
	return nil
}

func partitionCachePath(dir string) string {
	if dir == "" {
		return ""
	}
	return filepath.Join(dir, "partitions.json")
}
