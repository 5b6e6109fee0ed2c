package kafkabatcherexporter

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkabatcher/kafkabatcherexporter/logmsg"
)

// A broker that does not answer holds up only the partitions it leads:
// the partitions of the other broker keep flowing, batch after batch.
func TestSlowBrokerHoldsUpOnlyItsPartitions(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(2), kfake.SeedTopics(6, outageTopic))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	// Partitions 0-2 on node 0, 3-5 on node 1; node 0 does not answer.
	for p := int32(0); p < 6; p++ {
		require.NoError(t, c.MoveTopicPartition(outageTopic, p, p/3))
	}
	const slow = 0
	release := make(chan struct{})
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if c.CurrentNode() == slow {
			c.SleepControl(func() { <-release })
		}
		return nil, nil, false
	})
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})

	cfg := testConfig(t, c.ListenAddrs())
	cfg.Encoding = logmsg.EncodingRaw
	cfg.KeyFrom = []string{"attributes.k"}
	cfg.Batch.Size = 10
	cfg.Producer.Timeout = time.Minute
	exp := run(t, cfg, nopSettings())
	waitPartitions(t, exp, outageTopic, 6)

	const total = 600
	var onSlow int64
	for i := 0; i < total; i++ {
		if c.LeaderFor(outageTopic, javaMurmur2Partition([]byte(fmt.Sprintf("key-%d", i%32)), 6)) == slow {
			onSlow++
		}
	}
	require.True(t, onSlow > 0 && onSlow < total, "records on both brokers")
	sendSeq(t, exp, 0, total)
	waitRecords(t, c, outageTopic, total-onSlow, 20*time.Second)
	for p, hw := range highWatermarks(c, outageTopic) {
		if c.LeaderFor(outageTopic, p) == slow {
			require.Zero(t, hw, "partition %d of the silent broker", p)
		}
	}

	close(release)
	requireKeyedSeq(t, c, total)
	require.NoError(t, exp.stop())
}
