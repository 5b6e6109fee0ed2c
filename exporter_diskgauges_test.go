package kafkabatcherexporter

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/kafkabatcher/kafkabatcherexporter/internal/metadatatest"
	"github.com/kafkabatcher/kafkabatcherexporter/message"
	"github.com/kafkabatcher/kafkabatcherexporter/tempstorage"
)

// TestDiskGaugesShowStoredAgeAndDeadLetterBytes: batches left on disk by an
// earlier run and an earlier dead-letter file show in the gauges at start,
// with Kafka unreachable (nothing replays): the age of each topic's oldest
// batch by its first record's timestamp, the oldest of all, and the bytes
// of the dead-letter file.
func TestDiskGaugesShowStoredAgeAndDeadLetterBytes(t *testing.T) {
	cfg := testConfig(t, []string{"127.0.0.1:1"})
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	s, err := tempstorage.OpenStore(cfg.TempStorage.Directory, tempstorage.Options{})
	require.NoError(t, err)
	batch := func(topic string, partition int32, ts time.Time) message.Batch {
		msgs := []message.Message{
			{Topic: topic, Partition: partition, Value: []byte("a"), Timestamp: ts},
			{Topic: topic, Partition: partition, Value: []byte("b"), Timestamp: ts.Add(-time.Hour)}, // only the first counts
		}
		return message.Batch{Topic: topic, Partition: partition, Messages: msgs, Bytes: message.BatchSize(msgs)}
	}
	require.NoError(t, s.Append(batch("a", 0, start.Add(-90*time.Second))))
	require.NoError(t, s.Append(batch("a", 0, start.Add(-10*time.Second)))) // behind the first
	require.NoError(t, s.Append(batch("a", 1, start.Add(-30*time.Second))))
	require.NoError(t, s.Append(batch("b", 0, start.Add(-5*time.Second))))
	require.NoError(t, s.Close())
	dl, err := tempstorage.OpenDeadLetter(cfg.TempStorage.Directory, 0)
	require.NoError(t, err)
	_, err = dl.Write(message.TopicPartition{Topic: "a", Partition: 0}, message.RejectOversize, message.Message{Value: []byte("too big")})
	require.NoError(t, err)
	require.NoError(t, dl.Close())
	st, err := os.Stat(filepath.Join(cfg.TempStorage.Directory, "deadletter", "deadletter.jsonl"))
	require.NoError(t, err)

	_, clk, tt := fakeClockExporter(t, cfg)
	clk.Set(start)
	metadatatest.AssertEqualKafkabatcherTempStorageOldestBatchAge(t, tt,
		[]metricdata.DataPoint[float64]{{Value: 90}}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualKafkabatcherTempStorageTopicOldestBatchAge(t, tt, []metricdata.DataPoint[float64]{
		{Attributes: attribute.NewSet(attribute.String("topic", "a")), Value: 90},
		{Attributes: attribute.NewSet(attribute.String("topic", "b")), Value: 5},
	}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualKafkabatcherDeadLetterBytes(t, tt,
		[]metricdata.DataPoint[int64]{{Value: st.Size()}}, metricdatatest.IgnoreTimestamp())
}

// TestDiskGaugesWhenEmpty: an empty temp storage has age 0 and no
// per-topic series; no dead-letter file is 0 bytes.
func TestDiskGaugesWhenEmpty(t *testing.T) {
	cfg := testConfig(t, []string{"127.0.0.1:1"})
	_, tt := runObserved(t, cfg)
	metadatatest.AssertEqualKafkabatcherTempStorageOldestBatchAge(t, tt,
		[]metricdata.DataPoint[float64]{{Value: 0}}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualKafkabatcherDeadLetterBytes(t, tt,
		[]metricdata.DataPoint[int64]{{Value: 0}}, metricdatatest.IgnoreTimestamp())
	_, err := tt.GetMetric("otelcol_kafkabatcher_temp_storage_topic_oldest_batch_age")
	require.Error(t, err, "a per-topic age series without stored batches")
}
