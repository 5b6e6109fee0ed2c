package kafkabatcherexporter

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"

	"github.com/kafkabatcher/kafkabatcherexporter/logmsg"
)

// groupedLogs is one call's records for message_per: key: scope a holds
// 30 small records over keys k0..k2 and 10 records of key big of about
// 3 KB; scope b holds 3 records of key k0; and one record of key huge is
// larger than producer.max_message_bytes alone. Bodies are "<scope>-<seq>".
func groupedLogs() plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "checkout")
	add := func(sl plog.ScopeLogs, seq int, key, pad string) {
		lr := sl.LogRecords().AppendEmpty()
		lr.Body().SetStr(fmt.Sprintf("%s-%d%s", sl.Scope().Name(), seq, pad))
		lr.Attributes().PutStr("k", key)
	}
	a := rl.ScopeLogs().AppendEmpty()
	a.Scope().SetName("a")
	for i := range 30 {
		add(a, i, fmt.Sprintf("k%d", i%3), "")
		if i%3 == 0 {
			add(a, 100+i, "big", " "+strings.Repeat("x", 3000))
		}
	}
	add(a, 200, "huge", " "+strings.Repeat("x", 30000))
	b := rl.ScopeLogs().AppendEmpty()
	b.Scope().SetName("b")
	for i := range 3 {
		add(b, i, "k0", "")
	}
	return ld
}

// TestMessagePerKeyReachesKafka: with message_per: key the records of one
// resource, scope and key of a call arrive as one OTLP message that decodes
// with pdata, in order; a group larger than producer.max_message_bytes
// arrives split, in order; a record too large alone is rejected as
// oversize. Kafka records (messages) are what records_sent counts.
func TestMessagePerKeyReachesKafka(t *testing.T) {
	for _, enc := range logmsg.GroupEncodings() {
		t.Run(enc, func(t *testing.T) {
			c := newCluster(t, 3, "otlp_logs")
			cfg := testConfig(t, c.ListenAddrs())
			cfg.Encoding = enc
			cfg.MessagePer = logmsg.MessagePerKey
			cfg.KeyFrom = []string{"attributes.k"}
			cfg.Producer.MaxMessageBytes = 20_000
			cfg.Batch.MaxBytes = 20_000
			exp, tt := runObserved(t, cfg)
			require.NoError(t, exp.consumeLogs(context.Background(), groupedLogs()))

			// a: k0, k1, k2 (10 each), big (10 of 3 KB: two halves); b: k0.
			const messages = 6
			recs := consumeAll(t, c, "otlp_logs", messages)
			require.Len(t, recs, messages)
			var unmarshal plog.Unmarshaler = &plog.ProtoUnmarshaler{}
			if enc == logmsg.EncodingOTLPJSON {
				unmarshal = &plog.JSONUnmarshaler{}
			}
			bodies := map[string][]string{} // scope/key -> bodies in the order read
			partition := map[string]int32{}
			for _, r := range recs {
				ld, err := unmarshal.UnmarshalLogs(r.Value)
				require.NoError(t, err)
				require.Equal(t, 1, ld.ResourceLogs().Len())
				rl := ld.ResourceLogs().At(0)
				svc, _ := rl.Resource().Attributes().Get("service.name")
				assert.Equal(t, "checkout", svc.Str())
				require.Equal(t, 1, rl.ScopeLogs().Len())
				sl := rl.ScopeLogs().At(0)
				group := sl.Scope().Name() + "/" + string(r.Key)
				for i := range sl.LogRecords().Len() {
					lr := sl.LogRecords().At(i)
					k, _ := lr.Attributes().Get("k")
					require.Equal(t, string(r.Key), k.Str(), "every record of a message has its key")
					body, _, _ := strings.Cut(lr.Body().Str(), " ")
					bodies[group] = append(bodies[group], body)
				}
				if p, ok := partition[string(r.Key)]; ok {
					assert.Equal(t, p, r.Partition, "one key, one partition")
				}
				partition[string(r.Key)] = r.Partition
			}
			seqs := func(scope string, from, step, n int) []string {
				var out []string
				for i := range n {
					out = append(out, fmt.Sprintf("%s-%d", scope, from+i*step))
				}
				return out
			}
			assert.Equal(t, map[string][]string{
				"a/k0":  seqs("a", 0, 3, 10),
				"a/k1":  seqs("a", 1, 3, 10),
				"a/k2":  seqs("a", 2, 3, 10),
				"a/big": seqs("a", 100, 3, 10),
				"b/k0":  seqs("b", 0, 1, 3),
			}, bodies)

			waitFor(t, 5*time.Second, func() bool {
				return sumAll(sumByAttrs(t, tt, "otelcol_kafkabatcher_records_sent")) == messages
			}, "records_sent counts messages: %v", sumByAttrs(t, tt, "otelcol_kafkabatcher_records_sent"))
			assert.Equal(t, map[attribute.Set]int64{
				attribute.NewSet(attribute.String("reason", "oversize"), attribute.String("signal", "logs")): 1,
			}, sumByAttrs(t, tt, "otelcol_kafkabatcher_records_rejected"))
		})
	}
}

func sumAll(m map[attribute.Set]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}
