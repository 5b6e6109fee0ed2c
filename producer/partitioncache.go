package producer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// PartitionCache keeps the last known partition count of each topic in a
// file beside the temp storage, so an exporter restarted while Kafka is
// down still places records on the partitions their keys belong to. It is
// safe for concurrent use.
type PartitionCache struct {
	path string // "" keeps the counts in memory only

	mu     sync.Mutex
	counts map[string]int32
}

// LoadPartitionCache reads the cache at path ("" keeps the counts in memory
// only). A missing file is an empty cache; an unreadable or invalid one is an
// empty cache and an error to log.
func LoadPartitionCache(path string) (*PartitionCache, error) {
	c := &PartitionCache{path: path, counts: map[string]int32{}}
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

// Get returns the cached partition count of topic and whether there is one.
func (c *PartitionCache) Get(topic string) (int32, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.counts[topic]
	return n, ok
}

// Set records n partitions for topic and rewrites the file atomically.
func (c *PartitionCache) Set(topic string, n int32) error {
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

// PartitionCachePath is the cache file in the temp storage directory dir,
// or "" (memory only) when dir is "".
func PartitionCachePath(dir string) string {
	if dir == "" {
		return ""
	}
	return filepath.Join(dir, "partitions.json")
}
