package kafkabatcherexporter

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/kafkabatcher/kafkabatcherexporter/internal/metadata"
)

// newCluster starts an in-process Kafka-protocol broker with topic.
func newCluster(t *testing.T, partitions int32, topic string, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(partitions, topic)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

func testConfig(t *testing.T, brokers []string) *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.Brokers = brokers
	cfg.TempStorage.Directory = t.TempDir()
	cfg.Batch.MaxWait = 20 * time.Millisecond
	return cfg
}

func startExporter(t *testing.T, cfg *Config) *kafkaBatcherExporter {
	t.Helper()
	exp, err := newExporter(cfg, exportertest.NewNopSettings(metadata.Type))
	require.NoError(t, err)
	require.NoError(t, exp.start(context.Background(), componenttest.NewNopHost()))
	return exp
}

func logsWithBodies(bodies ...string) plog.Logs {
	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	for _, b := range bodies {
		lr := lrs.AppendEmpty()
		lr.Body().SetStr(b)
		lr.Attributes().PutStr("id", b)
	}
	return ld
}

// consumeAll reads n records of topic from the cluster.
func consumeAll(t *testing.T, c *kfake.Cluster, topic string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for len(recs) < n {
		fs := cl.PollFetches(ctx)
		require.NoError(t, ctx.Err(), "got %d of %d records", len(recs), n)
		fs.EachRecord(func(r *kgo.Record) { recs = append(recs, r) })
	}
	return recs
}

func TestRecordsReachKafkaRaw(t *testing.T) {
	c := newCluster(t, 6, "otlp_logs")
	cfg := testConfig(t, c.ListenAddrs())
	cfg.Encoding = EncodingRaw
	cfg.KeyFrom = []string{"attributes.id"}
	exp := startExporter(t, cfg)
	want := map[string]bool{}
	for i := 0; i < 10; i++ {
		var bodies []string
		for j := 0; j < 100; j++ {
			b := fmt.Sprintf("rec-%d-%d", i, j)
			bodies = append(bodies, b)
			want[b] = true
		}
		require.NoError(t, exp.consumeLogs(context.Background(), logsWithBodies(bodies...)))
	}
	recs := consumeAll(t, c, "otlp_logs", len(want))
	require.NoError(t, exp.shutdown(context.Background()))
	for _, r := range recs {
		require.Equal(t, string(r.Key), string(r.Value))
		require.True(t, want[string(r.Value)], "unexpected or duplicate %q", r.Value)
		delete(want, string(r.Value))
	}
	require.Empty(t, want)
}
