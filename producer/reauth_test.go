package producer

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// TestReauthenticationKeepsRecordsFlowing: a broker that ends SASL
// sessions after 150 ms (connections.max.reauth.ms, KIP-368) sees the
// producer log in again on the same connections while produce requests
// are pipelined on them; every batch is acknowledged, none fails, and
// each record is in Kafka once, in order.
func TestReauthenticationKeepsRecordsFlowing(t *testing.T) {
	c := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(3, "t"),
		kfake.EnableSASL(), kfake.Superuser(SASLPlain, "alice", "s3cret"),
		kfake.BrokerConfigs(map[string]string{"connections.max.reauth.ms": "150"}))
	var handshakes atomic.Int64
	c.ControlKey(int16(kmsg.SASLHandshake), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		handshakes.Add(1)
		return nil, nil, false
	})
	p := newProducer(t, Config{Brokers: c.ListenAddrs(), SASL: SASLConfig{Mechanism: SASLPlain, Username: "alice", Password: "s3cret"}})
	if err := p.Refresh(context.Background(), "t"); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	start := handshakes.Load()
	want := map[int32][]message.Message{}
	deadline := time.Now().Add(20 * time.Second)
	rounds := 0
	// Sessions end by the wall clock; produce until several have.
	for ; handshakes.Load()-start < 6 || rounds < 20; rounds++ {
		if time.Now().After(deadline) {
			t.Fatalf("%d re-authentications in %d rounds", handshakes.Load()-start, rounds)
		}
		var batches []*message.Batch
		for part := int32(0); part < 3; part++ {
			for k := 0; k < 3; k++ { // pipelined: several batches of a partition per call
				b := batchOf("t", part, fmt.Sprintf("r%d-%d", rounds, k), 20, 40)
				batches = append(batches, b)
				want[part] = append(want[part], b.Messages...)
			}
		}
		produceOK(t, p, batches...)
	}
	t.Logf("%d rounds, %d logins after the first", rounds, handshakes.Load()-start)
	total := 0
	for _, m := range want {
		total += len(m)
	}
	got := consume(t, total, "t", kgo.SeedBrokers(c.ListenAddrs()...), kgo.SASL(plain.Auth{User: "alice", Pass: "s3cret"}.AsMechanism()))
	for part, msgs := range want {
		assertRecords(t, got[part], msgs)
	}
}
