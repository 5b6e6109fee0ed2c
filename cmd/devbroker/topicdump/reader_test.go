package topicdump

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/kafkabatcher/kafkabatcherexporter/cmd/devbroker/internal/kafkatest"
	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/rcrowley/go-metrics.(*meterArbiter).tick"),
		goleak.IgnoreTopFunction("github.com/twmb/franz-go/pkg/kfake.(*group).manage"),
	)
}

// produceBatches sends one record batch per entry of sizes to the
// partition and returns each batch's messages.
func produceBatches(ctx context.Context, t *testing.T, cl *kgo.Client, topic string, partition int32, sizes ...int) [][]message.Message {
	t.Helper()
	ts := time.UnixMilli(1_700_000_000_000)
	var out [][]message.Message
	for bi, n := range sizes {
		msgs := make([]message.Message, n)
		for i := range msgs {
			msgs[i] = message.Message{
				Key:       []byte(fmt.Sprintf("k%d", i)),
				Value:     []byte(fmt.Sprintf("batch %d record %d", bi, i)),
				Timestamp: ts.Add(time.Duration(i) * time.Millisecond),
			}
		}
		_, err := kafkatest.Produce(ctx, cl, topic, partition, msgs)
		require.NoError(t, err)
		out = append(out, msgs)
	}
	return out
}

func newClient(t *testing.T, addrs []string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	return cl
}

func TestReaderSeesBatchesAsProduced(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := kfake.NewCluster(kfake.NumBrokers(2), kfake.SeedTopics(3, "logs"))
	require.NoError(t, err)
	defer c.Close()

	prod := newClient(t, c.ListenAddrs())
	p0 := produceBatches(ctx, t, prod, "logs", 0, 5, 3)
	p2 := produceBatches(ctx, t, prod, "logs", 2, 10)

	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	require.NoError(t, err)
	defer cl.Close()
	r := NewReader(cl, "logs")

	top, err := r.Poll(ctx)
	require.NoError(t, err)
	require.Len(t, top.Partitions, 3)
	assert.Equal(t, 18, top.Records())
	assert.Equal(t, 3, top.DataBatches())

	got0 := top.Partitions[0]
	require.Len(t, got0.Batches, 2)
	assert.Equal(t, int64(8), got0.HighWatermark)
	assert.Equal(t, Batch{BaseOffset: 0, LastOffset: 4, Records: 5, Bytes: message.BatchSize(p0[0]),
		Codec: CodecNone, Magic: 2, FirstTimestamp: p0[0][0].Timestamp}, got0.Batches[0])
	assert.Equal(t, int64(5), got0.Batches[1].BaseOffset)
	assert.Equal(t, 3, got0.Batches[1].Records)
	assert.Equal(t, message.BatchSize(p0[1]), got0.Batches[1].Bytes)

	assert.Empty(t, top.Partitions[1].Batches)
	require.Len(t, top.Partitions[2].Batches, 1)
	assert.Equal(t, 10, top.Partitions[2].Batches[0].Records)
	assert.Equal(t, message.BatchSize(p2[0]), top.Partitions[2].Batches[0].Bytes)

	// The next Poll reads only what arrived since, and keeps what it had.
	produceBatches(ctx, t, prod, "logs", 1, 4)
	top2, err := r.Poll(ctx)
	require.NoError(t, err)
	assert.Equal(t, 22, top2.Records())
	assert.Equal(t, 4, top2.DataBatches())
	assert.Equal(t, 4, top2.Partitions[1].Records())
	assert.Equal(t, got0, top2.Partitions[0])
	assert.Equal(t, 18, top.Records(), "an earlier snapshot does not change")
}

func TestReaderFollowsManyBatches(t *testing.T) {
	// More data than one fetch returns: the reader fetches until the high
	// watermark.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "big"))
	require.NoError(t, err)
	defer c.Close()
	prod := newClient(t, c.ListenAddrs())
	ts := time.UnixMilli(1_700_000_000_000)
	msgs := make([]message.Message, 5)
	for i := range msgs {
		msgs[i] = message.Message{Value: make([]byte, 100_000), Timestamp: ts}
	}
	const batches, perBatch = 40, 5 // about 20 MB, more than one 16 MiB fetch
	for range batches {
		_, err := kafkatest.Produce(ctx, prod, "big", 0, msgs)
		require.NoError(t, err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	require.NoError(t, err)
	defer cl.Close()
	top, err := NewReader(cl, "big").Poll(ctx)
	require.NoError(t, err)
	assert.Equal(t, batches*perBatch, top.Records())
	assert.Equal(t, batches, top.DataBatches())
	for _, b := range top.Partitions[0].Batches {
		assert.Equal(t, perBatch, b.Records)
	}
}

func TestReaderUnknownTopic(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "logs"))
	require.NoError(t, err)
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	require.NoError(t, err)
	defer cl.Close()
	_, err = NewReader(cl, "nope").Poll(ctx)
	require.ErrorIs(t, err, ErrUnknownTopic)
}
