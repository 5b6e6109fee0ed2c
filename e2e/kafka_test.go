//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kafkabatcher/kafkabatcherexporter/testbench/realkafka"
)

// The real-Kafka part of the suite: Apache Kafka 4.4 clusters assembled from
// Maven Central by testbench/realkafka. Without java, keytool or mvn (and no
// warm cache) every test that needs a cluster fails with what is missing;
// none is skipped.

// kafkaStart bounds fetching Kafka (cold Maven cache) and starting a cluster.
const kafkaStart = 5 * time.Minute

// realKafka holds the distribution and the clusters shared by the tests of
// the package; each is made on first use and stopped by TestMain.
var realKafka struct {
	dir string // parent of every cluster's directory; set by TestMain

	distOnce sync.Once
	dist     *realkafka.Dist
	distErr  error

	mu     sync.Mutex
	shared map[string]*realkafka.Cluster // by sharedKey
	owned  []*realkafka.Cluster          // every cluster started, for stopAll
}

var topicSeq atomic.Int64

// kafkaDist returns the Kafka distribution, fetching it on first use.
func kafkaDist(t *testing.T) *realkafka.Dist {
	t.Helper()
	realKafka.distOnce.Do(func() {
		cache, err := realkafka.CacheDir()
		if err != nil {
			realKafka.distErr = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), kafkaStart)
		defer cancel()
		start := time.Now()
		realKafka.dist, realKafka.distErr = realkafka.Fetch(ctx, cache, os.Stderr)
		fmt.Fprintf(os.Stderr, "e2e: Kafka %s distribution in %s (%s)\n", realkafka.Version, cache, time.Since(start).Round(time.Millisecond))
	})
	if realKafka.distErr != nil {
		t.Fatalf("real Kafka %s is needed by this test and cannot be assembled: %v", realkafka.Version, realKafka.distErr)
	}
	return realKafka.dist
}

// sharedCluster returns the package's cluster with these options, starting
// it on first use. Tests that share a cluster leave it as they found it:
// nodes running, no toxics.
func sharedCluster(t *testing.T, opts realkafka.Options) *realkafka.Cluster {
	t.Helper()
	key := fmt.Sprintf("n%d-proxy%v-sec%v", opts.Nodes, opts.Proxy, opts.Security)
	realKafka.mu.Lock()
	defer realKafka.mu.Unlock()
	if c, ok := realKafka.shared[key]; ok {
		return c
	}
	opts.Dir = filepath.Join(realKafka.dir, "shared-"+key)
	c := startCluster(t, opts)
	if realKafka.shared == nil {
		realKafka.shared = map[string]*realkafka.Cluster{}
	}
	realKafka.shared[key] = c
	return c
}

// ownCluster starts a cluster for this test alone (for faults that leave a
// cluster changed), stopped when the test ends.
func ownCluster(t *testing.T, opts realkafka.Options) *realkafka.Cluster {
	t.Helper()
	opts.Dir = filepath.Join(t.TempDir(), "kafka")
	realKafka.mu.Lock()
	c := startCluster(t, opts)
	realKafka.mu.Unlock()
	t.Cleanup(func() {
		if t.Failed() {
			showNodeLogs(t, c)
		}
		c.Close()
	})
	return c
}

// startCluster is called with realKafka.mu held.
func startCluster(t *testing.T, opts realkafka.Options) *realkafka.Cluster {
	t.Helper()
	dist := kafkaDist(t)
	ctx, cancel := context.WithTimeout(context.Background(), kafkaStart)
	defer cancel()
	opts.Log = os.Stderr
	start := time.Now()
	c, err := realkafka.Start(ctx, dist, opts)
	if err != nil {
		t.Fatalf("start a %d-node Kafka: %v", opts.Nodes, err)
	}
	t.Logf("%d-node Kafka (proxy %v, security %v) started in %s", opts.Nodes, opts.Proxy, opts.Security,
		time.Since(start).Round(time.Millisecond))
	realKafka.owned = append(realKafka.owned, c)
	return c
}

// stopAllKafka stops every cluster the package started; TestMain calls it.
func stopAllKafka() {
	realKafka.mu.Lock()
	defer realKafka.mu.Unlock()
	for _, c := range realKafka.owned {
		c.Close()
	}
	realKafka.owned = nil
}

// newTopic creates a fresh topic for the test on c (the cluster's node
// count as replication factor, min.insync.replicas 2 on three nodes) and
// returns its name.
func newTopic(t *testing.T, c *realkafka.Cluster, partitions int32, configs map[string]string) string {
	t.Helper()
	name := fmt.Sprintf("%s-%d", strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()), topicSeq.Add(1))
	if len(name) > 200 {
		name = name[len(name)-200:]
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.CreateTopic(ctx, name, partitions, configs); err != nil {
		t.Fatal(err)
	}
	return name
}

// showNodeLogs logs the tail of every node's log.
func showNodeLogs(t *testing.T, c *realkafka.Cluster) {
	for _, n := range c.Nodes() {
		b, err := os.ReadFile(n.LogPath())
		if err != nil {
			continue
		}
		const limit = 16 << 10
		if len(b) > limit {
			b = b[len(b)-limit:]
		}
		t.Logf("==== kafka node %d (%s)\n%s", n.ID, n.LogPath(), b)
	}
}
