//go:build e2e

package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/collector/pdata/plog"
)

// TestRoundTripLogsPerKey is TestRoundTripAllSignals with message_per: key
// for the logs, keyed by service: the contrib kafka receiver reads the
// grouped messages, and what comes out is what went in. Each call's 400
// records (two resources, two scopes each) are four Kafka records of 100
// log records.
func TestRoundTripLogsPerKey(t *testing.T) {
	for _, enc := range []string{"otlp_proto", "otlp_json"} {
		t.Run(enc, func(t *testing.T) {
			e := newEnv(t)
			topics := signalTopics{"pk_logs", "pk_spans", "pk_metrics"}
			b := e.startBrokerTopics(freePort(t), topics.logs+":3", topics.traces+":3", topics.metrics+":3")
			roundTrip(t, e, []string{b.addr}, topics, enc, func(c *cfg) {
				c.set("message_per", "key")
				c.set("key_from", []string{"resource.service.name"})
			})

			// 10 calls x 2 resources x 2 scopes.
			const messages, perMessage = 40, 100
			c := newTopicConsumer(t, []string{b.addr}, topics.logs)
			var unmarshal plog.Unmarshaler = &plog.ProtoUnmarshaler{}
			if enc == "otlp_json" {
				unmarshal = &plog.JSONUnmarshaler{}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			n := 0
			for n < messages && ctx.Err() == nil {
				c.cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
					n++
					ld, err := unmarshal.UnmarshalLogs(r.Value)
					if err != nil {
						t.Errorf("record at partition %d offset %d: %v", r.Partition, r.Offset, err)
						return
					}
					rls := ld.ResourceLogs()
					if rls.Len() != 1 || rls.At(0).ScopeLogs().Len() != 1 {
						t.Errorf("record at partition %d offset %d: %d resources, want one with one scope", r.Partition, r.Offset, rls.Len())
						return
					}
					svc, _ := rls.At(0).Resource().Attributes().Get("service.name")
					if string(r.Key) != svc.Str() {
						t.Errorf("record key %q, resource service.name %q", r.Key, svc.Str())
					}
					if got := ld.LogRecordCount(); got != perMessage {
						t.Errorf("record at partition %d offset %d holds %d log records, want %d", r.Partition, r.Offset, got, perMessage)
					}
				})
			}
			if n != messages {
				t.Fatalf("read %d Kafka records of %s, want %d", n, topics.logs, messages)
			}
		})
	}
}
