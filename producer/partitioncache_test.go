package producer

import (
	"os"
	"path/filepath"
	"testing"
)

func TestPartitionCacheSurvivesARestart(t *testing.T) {
	path := PartitionCachePath(t.TempDir())
	c, err := LoadPartitionCache(path)
	if err != nil {
		t.Fatalf("missing file: %v, want an empty cache", err)
	}
	if n, ok := c.Get("logs"); ok {
		t.Fatalf("empty cache has logs = %d", n)
	}
	if err := c.Set("logs", 6); err != nil {
		t.Fatal(err)
	}
	again, err := LoadPartitionCache(path)
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := again.Get("logs"); !ok || n != 6 {
		t.Fatalf("after reload logs = %d, %v, want 6, true", n, ok)
	}
}

func TestPartitionCacheIgnoresBadFilesAndCounts(t *testing.T) {
	dir := t.TempDir()
	path := PartitionCachePath(dir)
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadPartitionCache(path)
	if err == nil {
		t.Fatal("invalid JSON: no error")
	}
	if err := c.Set("logs", 2); err != nil {
		t.Fatalf("a cache loaded from a bad file is still usable: %v", err)
	}

	if err := os.WriteFile(path, []byte(`{"logs": 3, "gone": 0, "odd": -1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err = LoadPartitionCache(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range []string{"gone", "odd"} {
		if n, ok := c.Get(topic); ok {
			t.Errorf("%s = %d kept, want non-positive counts dropped", topic, n)
		}
	}
}

func TestPartitionCacheInMemoryOnly(t *testing.T) {
	if PartitionCachePath("") != "" {
		t.Fatal("no directory must mean no file")
	}
	c, err := LoadPartitionCache("")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Set("logs", 4); err != nil {
		t.Fatal(err)
	}
	if n, _ := c.Get("logs"); n != 4 {
		t.Fatalf("logs = %d, want 4", n)
	}
	if got := filepath.Base(PartitionCachePath("/x")); got != "partitions.json" {
		t.Fatalf("file name %q, want partitions.json (files of earlier versions are read)", got)
	}
}
