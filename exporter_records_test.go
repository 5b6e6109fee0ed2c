package kafkabatcherexporter

import (
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/kafkabatcher/kafkabatcherexporter/internal/kfaketest"
	"github.com/kafkabatcher/kafkabatcherexporter/logmsg"
	"github.com/kafkabatcher/kafkabatcherexporter/producer"
)

var (
	encTime    = time.Date(2025, 3, 4, 5, 6, 7, 123456789, time.UTC)
	encTraceID = pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	encSpanID  = pcommon.SpanID{0xa, 0xb, 0xc, 0xd, 1, 2, 3, 4}
)

// encodingLogs is two resources with one scope each and four records of
// different body kinds; attribute id (the key) names each record.
func encodingLogs() plog.Logs {
	ld := plog.NewLogs()

	rla := ld.ResourceLogs().AppendEmpty()
	rla.SetSchemaUrl("https://opentelemetry.io/schemas/1.26.0")
	rla.Resource().Attributes().PutStr("service.name", "svc-a")
	rla.Resource().Attributes().PutStr("host", "h1")
	sla := rla.ScopeLogs().AppendEmpty()
	sla.SetSchemaUrl("https://example.com/scope")
	sla.Scope().SetName("scope-a")
	sla.Scope().SetVersion("1.0")
	sla.Scope().Attributes().PutStr("lib", "x")

	a1 := sla.LogRecords().AppendEmpty()
	a1.Attributes().PutStr("id", "a1")
	a1.Attributes().PutInt("n", 7)
	a1.Body().SetStr("hello")
	a1.SetTimestamp(pcommon.NewTimestampFromTime(encTime))
	a1.SetObservedTimestamp(pcommon.NewTimestampFromTime(encTime.Add(time.Millisecond)))
	a1.SetSeverityNumber(plog.SeverityNumberInfo)
	a1.SetSeverityText("INFO")
	a1.SetTraceID(encTraceID)
	a1.SetSpanID(encSpanID)
	a1.SetFlags(plog.DefaultLogRecordFlags.WithIsSampled(true))

	a2 := sla.LogRecords().AppendEmpty()
	a2.Attributes().PutStr("id", "a2")
	m := a2.Body().SetEmptyMap()
	m.PutStr("msg", "m")
	m.PutInt("n", 3)
	a2.SetTimestamp(pcommon.NewTimestampFromTime(encTime.Add(time.Second)))
	a2.SetSeverityNumber(plog.SeverityNumberError)
	a2.SetSeverityText("ERROR")

	rlb := ld.ResourceLogs().AppendEmpty()
	rlb.Resource().Attributes().PutStr("service.name", "svc-b")
	slb := rlb.ScopeLogs().AppendEmpty()
	slb.Scope().SetName("scope-b")

	b1 := slb.LogRecords().AppendEmpty()
	b1.Attributes().PutStr("id", "b1")
	b1.Body().SetInt(42)
	b1.SetObservedTimestamp(pcommon.NewTimestampFromTime(encTime.Add(2 * time.Second)))

	b2 := slb.LogRecords().AppendEmpty()
	b2.Attributes().PutStr("id", "b2")
	b2.SetTimestamp(pcommon.NewTimestampFromTime(encTime.Add(3 * time.Second)))
	return ld
}

// oneRecordLogs returns, per id, a LogsData with the record's resource,
// scope (schema URLs included) and the record alone: what an OTLP value
// must decode to.
func oneRecordLogs(ld plog.Logs) map[string]plog.Logs {
	out := map[string]plog.Logs{}
	for i := 0; i < ld.ResourceLogs().Len(); i++ {
		rl := ld.ResourceLogs().At(i)
		for j := 0; j < rl.ScopeLogs().Len(); j++ {
			sl := rl.ScopeLogs().At(j)
			for k := 0; k < sl.LogRecords().Len(); k++ {
				lr := sl.LogRecords().At(k)
				one := plog.NewLogs()
				orl := one.ResourceLogs().AppendEmpty()
				rl.Resource().CopyTo(orl.Resource())
				orl.SetSchemaUrl(rl.SchemaUrl())
				osl := orl.ScopeLogs().AppendEmpty()
				sl.Scope().CopyTo(osl.Scope())
				osl.SetSchemaUrl(sl.SchemaUrl())
				lr.CopyTo(osl.LogRecords().AppendEmpty())
				id, _ := lr.Attributes().Get("id")
				out[id.Str()] = one
			}
		}
	}
	return out
}

func TestEncodingsRoundTripThroughBroker(t *testing.T) {
	ts := func(d time.Duration) string { return encTime.Add(d).Format(time.RFC3339Nano) }
	wantJSON := map[string]string{
		"a1": fmt.Sprintf(`{"time":%q,"observed_time":%q,"severity_number":9,"severity_text":"INFO","body":"hello",
			"attributes":{"id":"a1","n":7},"resource":{"service.name":"svc-a","host":"h1"},
			"scope":{"name":"scope-a","version":"1.0","attributes":{"lib":"x"}},
			"trace_id":%q,"span_id":%q,"flags":1}`, ts(0), ts(time.Millisecond), hex.EncodeToString(encTraceID[:]), hex.EncodeToString(encSpanID[:])),
		"a2": fmt.Sprintf(`{"time":%q,"severity_number":17,"severity_text":"ERROR","body":{"msg":"m","n":3},
			"attributes":{"id":"a2"},"resource":{"service.name":"svc-a","host":"h1"},
			"scope":{"name":"scope-a","version":"1.0","attributes":{"lib":"x"}}}`, ts(time.Second)),
		"b1": fmt.Sprintf(`{"observed_time":%q,"body":42,"attributes":{"id":"b1"},
			"resource":{"service.name":"svc-b"},"scope":{"name":"scope-b"}}`, ts(2*time.Second)),
		"b2": fmt.Sprintf(`{"time":%q,"attributes":{"id":"b2"},"resource":{"service.name":"svc-b"},
			"scope":{"name":"scope-b"}}`, ts(3*time.Second)),
	}
	wantRaw := map[string]string{"a1": "hello", "a2": `{"msg":"m","n":3}`, "b1": "42", "b2": ""}
	wantOTLP := oneRecordLogs(encodingLogs())

	for _, enc := range logmsg.Encodings() {
		t.Run(enc, func(t *testing.T) {
			c := newCluster(t, 3, "otlp_logs")
			cfg := testConfig(t, c.ListenAddrs())
			cfg.Encoding = enc
			cfg.KeyFrom = []string{"attributes.id"}
			exp := run(t, cfg, nopSettings())
			require.NoError(t, exp.consumeLogs(context.Background(), encodingLogs()))

			recs := consumeAll(t, c, "otlp_logs", 4)
			require.Len(t, recs, 4)
			seen := map[string]bool{}
			for _, r := range recs {
				id := string(r.Key)
				require.False(t, seen[id], "record %q twice", id)
				seen[id] = true
				switch enc {
				case logmsg.EncodingOTLPProto, logmsg.EncodingOTLPJSON:
					var got plog.Logs
					var err error
					if enc == logmsg.EncodingOTLPProto {
						got, err = (&plog.ProtoUnmarshaler{}).UnmarshalLogs(r.Value)
					} else {
						got, err = (&plog.JSONUnmarshaler{}).UnmarshalLogs(r.Value)
					}
					require.NoError(t, err, "record %s", id)
					want, ok := wantOTLP[id]
					require.True(t, ok, "unexpected key %q", id)
					wantText, err := (&plog.JSONMarshaler{}).MarshalLogs(want)
					require.NoError(t, err)
					gotText, err := (&plog.JSONMarshaler{}).MarshalLogs(got)
					require.NoError(t, err)
					require.JSONEq(t, string(wantText), string(gotText), "record %s", id)
				case logmsg.EncodingJSON:
					require.JSONEq(t, wantJSON[id], string(r.Value), "record %s", id)
				case logmsg.EncodingRaw:
					if id == "a2" {
						require.JSONEq(t, wantRaw[id], string(r.Value))
					} else {
						require.Equal(t, wantRaw[id], string(r.Value), "record %s", id)
					}
				}
				// The Kafka timestamp is the record's time, else its observed time.
				wantTS := map[string]time.Time{"a1": encTime, "a2": encTime.Add(time.Second),
					"b1": encTime.Add(2 * time.Second), "b2": encTime.Add(3 * time.Second)}[id]
				require.Equal(t, wantTS.UnixMilli(), r.Timestamp.UnixMilli(), "record %s timestamp", id)
			}
			require.NoError(t, exp.stop())
		})
	}
}

func TestKeyedRecordsLandOnMurmur2Partition(t *testing.T) {
	const parts = 6
	c := newCluster(t, parts, "otlp_logs")
	cfg := testConfig(t, c.ListenAddrs())
	cfg.Encoding = logmsg.EncodingRaw
	cfg.KeyFrom = []string{"attributes.x"}
	exp := run(t, cfg, nopSettings())

	const n = 300
	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	for i := 0; i < n; i++ {
		lr := lrs.AppendEmpty()
		lr.Body().SetStr(fmt.Sprintf("v%d", i))
		lr.Attributes().PutStr("x", fmt.Sprintf("user-%d", i))
	}
	require.NoError(t, exp.consumeLogs(context.Background(), ld))

	recs := consumeAll(t, c, "otlp_logs", n)
	require.Len(t, recs, n)
	sp := sarama.NewMurmur2Partitioner("otlp_logs")
	used := map[int32]bool{}
	for _, r := range recs {
		require.Equal(t, javaMurmur2Partition(r.Key, parts), r.Partition, "key %q", r.Key)
		want, err := sp.Partition(&sarama.ProducerMessage{Key: sarama.ByteEncoder(r.Key)}, parts)
		require.NoError(t, err)
		require.Equal(t, want, r.Partition, "key %q: sarama's murmur2 partitioner disagrees", r.Key)
		used[r.Partition] = true
	}
	require.Len(t, used, parts, "300 keys should cover every partition")
}

func TestBatchSizeMakesBatchesOfExactlySize(t *testing.T) {
	c, obs, cfg := observedRawSetup(t, 1)
	cfg.Batch.Size = 100
	cfg.Batch.MaxWait = time.Hour
	exp := run(t, cfg, nopSettings())

	// Uneven calls: batches are cut by count, not by call.
	for sent := 0; sent < 1000; {
		n := min(37, 1000-sent)
		require.NoError(t, exp.consumeLogs(context.Background(), seqLogs(sent, n, 0)))
		sent += n
	}
	waitRecords(t, c, "otlp_logs", 1000, 10*time.Second)
	batches := seen(obs)
	require.Len(t, batches, 10)
	for _, b := range batches {
		require.Equal(t, kfaketest.Batch{Topic: "otlp_logs", Partition: 0, Records: 100}, b)
	}
	requireAllInOrder(t, c, "otlp_logs", 1000)
	require.NoError(t, exp.stop())
	require.Len(t, seen(obs), 10, "nothing was pending at shutdown")
}

func TestConcurrentConsumeLogsDeliverEverythingOnce(t *testing.T) {
	c := newCluster(t, 4, "otlp_logs")
	cfg := testConfig(t, c.ListenAddrs())
	cfg.Encoding = logmsg.EncodingRaw
	cfg.KeyFrom = []string{"attributes.k"}
	cfg.Batch.Size = 64
	exp := run(t, cfg, nopSettings())

	const goroutines, calls, perCall = 8, 50, 20
	const total = goroutines * calls * perCall
	var wg sync.WaitGroup
	errs := make(chan error, goroutines*calls)
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < calls; i++ {
				// Each goroutine owns its keys: per key, its records are
				// accepted in seq order, so the broker must keep that order.
				first := (g*calls + i) * perCall
				ld := seqLogs(first, perCall, 0)
				lrs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
				for j := 0; j < lrs.Len(); j++ {
					lrs.At(j).Attributes().PutStr("k", fmt.Sprintf("g%d-%d", g, j%3))
				}
				if err := exp.consumeLogs(context.Background(), ld); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	recs := readSeq(t, c, "otlp_logs", total)
	requireExactlyOnce(t, recs, total)
	// Each goroutine accepts its keys' records in seq order, one call after
	// the other: per key that order must hold at the broker.
	requireOrdered(t, recs, func(r seqRecord) string { return "key " + r.key })
	byKey := map[string]int{}
	for _, r := range recs {
		require.Equal(t, javaMurmur2Partition([]byte(r.key), 4), r.partition, "key %q", r.key)
		byKey[r.key]++
	}
	require.Len(t, byKey, goroutines*3)
	require.NoError(t, exp.stop())
}

func TestOneAccumulatorPerTopicSplitsByPartition(t *testing.T) {
	c, obs, cfg := observedRawSetup(t, 6)
	cfg.KeyFrom = []string{"attributes.k"}
	cfg.Partitioning.CollectByPartition = false
	cfg.Batch.Size = 60
	cfg.Batch.MaxWait = time.Hour
	exp := run(t, cfg, nopSettings())

	const total = 600
	for i := 0; i < total; i += 60 {
		require.NoError(t, exp.consumeLogs(context.Background(), seqLogs(i, 60, 32)))
	}
	waitRecords(t, c, "otlp_logs", total, 10*time.Second)
	recs := readSeq(t, c, "otlp_logs", total)
	requireExactlyInOrder(t, recs, total)
	for _, r := range recs {
		require.Equal(t, javaMurmur2Partition([]byte(r.key), 6), r.partition, "key %q", r.key)
	}
	// Ten topic batches of 60, each cut into one batch per partition.
	var n int
	parts := map[int32]bool{}
	for _, b := range seen(obs) {
		require.LessOrEqual(t, b.Records, 60)
		n += b.Records
		parts[b.Partition] = true
	}
	require.Equal(t, total, n)
	require.Len(t, parts, 6)
	require.GreaterOrEqual(t, len(seen(obs)), 10*2, "each 60-record batch spans several partitions")
	require.NoError(t, exp.stop())
}

func TestTopicFromAndHeadersFrom(t *testing.T) {
	c := newCluster(t, 2, "otlp_logs", kfake.SeedTopics(3, "audit"), kfake.SeedTopics(1, "debug"))
	cfg := testConfig(t, c.ListenAddrs())
	cfg.Encoding = logmsg.EncodingRaw
	cfg.TopicFrom = "attributes.topic"
	cfg.HeadersFrom = []string{"attributes.seq", "resource.service.name", "attributes.missing"}
	exp := run(t, cfg, nopSettings())

	ld := seqLogs(0, 30, 0)
	ld.ResourceLogs().At(0).Resource().Attributes().PutStr("service.name", "checkout")
	lrs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	wantTopic := map[string]string{}
	for i := 0; i < lrs.Len(); i++ {
		topic := []string{"audit", "debug", "", "otlp_logs"}[i%4]
		if topic != "" {
			lrs.At(i).Attributes().PutStr("topic", topic)
		} else {
			topic = "otlp_logs" // empty or absent: the default topic
		}
		wantTopic[fmt.Sprintf("rec-%d", i)] = topic
	}
	require.NoError(t, exp.consumeLogs(context.Background(), ld))

	got := 0
	for _, topic := range []string{"audit", "debug", "otlp_logs"} {
		var n int
		for _, v := range wantTopic {
			if v == topic {
				n++
			}
		}
		for _, r := range consumeAll(t, c, topic, n) {
			got++
			require.Equal(t, wantTopic[string(r.Value)], r.Topic, "record %s", r.Value)
			var seq int
			_, err := fmt.Sscanf(string(r.Value), "rec-%d", &seq)
			require.NoError(t, err)
			hs := map[string]string{}
			for _, h := range r.Headers {
				hs[h.Key] = string(h.Value)
			}
			require.Equal(t, map[string]string{"attributes.seq": fmt.Sprint(seq), "resource.service.name": "checkout"}, hs)
		}
	}
	require.Equal(t, 30, got)
	require.NoError(t, exp.stop())
}

func TestCompressionCodecsReachTheBroker(t *testing.T) {
	codecs := map[string]int8{producer.CompressionGzip: 1, producer.CompressionSnappy: 2, producer.CompressionLZ4: 3, producer.CompressionZstd: 4}
	for comp, id := range codecs {
		t.Run(comp, func(t *testing.T) {
			c := newCluster(t, 1, "otlp_logs")
			var mu sync.Mutex
			seen := map[int8]int{}
			c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
				c.KeepControl()
				for _, tp := range req.(*kmsg.ProduceRequest).Topics {
					for _, p := range tp.Partitions {
						var rb kmsg.RecordBatch
						if err := rb.ReadFrom(p.Records); err == nil {
							mu.Lock()
							seen[int8(rb.Attributes&7)]++
							mu.Unlock()
						}
					}
				}
				return nil, nil, false
			})
			cfg := testConfig(t, c.ListenAddrs())
			cfg.Encoding = logmsg.EncodingRaw
			cfg.Producer.Compression = comp
			exp := run(t, cfg, nopSettings())
			require.NoError(t, exp.consumeLogs(context.Background(), seqLogs(0, 200, 0)))
			requireAllInOrder(t, c, "otlp_logs", 200)
			require.NoError(t, exp.stop())
			mu.Lock()
			defer mu.Unlock()
			require.NotEmpty(t, seen)
			require.Equal(t, map[int8]int{id: seen[id]}, seen, "every batch compressed with %s", comp)
		})
	}
}

func TestKeylessRecordsStickUntilTheirBatchIsReady(t *testing.T) {
	c, obs, cfg := observedRawSetup(t, 6)
	cfg.Batch.Size = 10
	cfg.Batch.MaxWait = time.Hour
	exp := run(t, cfg, nopSettings())
	waitPartitions(t, exp, "otlp_logs", 6)

	// One record per call: a keyless record goes where the previous one
	// went until that batch is ready, then to another partition.
	for i := 0; i < 120; i++ {
		require.NoError(t, exp.consumeLogs(context.Background(), seqLogs(i, 1, 0)))
	}
	waitRecords(t, c, "otlp_logs", 120, 10*time.Second)
	parts := map[int32]bool{}
	for _, b := range seen(obs) {
		require.Equal(t, 10, b.Records, "every batch filled before the partition changes")
		parts[b.Partition] = true
	}
	require.Len(t, seen(obs), 12)
	require.Greater(t, len(parts), 1, "the sticky choice moved on after each batch")
	// Each batch holds ten consecutive records.
	recs := readSeq(t, c, "otlp_logs", 120)
	requireExactlyInOrder(t, recs, 120)
	byPart := map[int32][]int{}
	for _, r := range recs {
		byPart[r.partition] = append(byPart[r.partition], r.seq)
	}
	for p, seqs := range byPart {
		slices.Sort(seqs)
		for i := 0; i < len(seqs); i += 10 {
			require.Equal(t, seqs[i]+9, seqs[i+9], "partition %d: batch from seq %d is not consecutive", p, seqs[i])
		}
	}
	require.NoError(t, exp.stop())
}

func TestThroughTheFactory(t *testing.T) {
	c := newCluster(t, 2, "otlp_logs")
	cfg := testConfig(t, c.ListenAddrs())
	cfg.Encoding = logmsg.EncodingRaw
	ctx := context.Background()
	exp, err := NewFactory().CreateLogs(ctx, nopSettings(), cfg)
	require.NoError(t, err)
	require.NoError(t, exp.Start(ctx, componenttest.NewNopHost()))
	require.NoError(t, exp.ConsumeLogs(ctx, seqLogs(0, 50, 0)))
	require.NoError(t, exp.Shutdown(ctx))
	require.EqualValues(t, 50, totalRecords(c, "otlp_logs"), "sent by shutdown at the latest")
	requireExactlyOnce(t, readSeq(t, c, "otlp_logs", 50), 50)
}

func TestRecordsReachKafkaRaw(t *testing.T) {
	c := newCluster(t, 6, "otlp_logs")
	cfg := testConfig(t, c.ListenAddrs())
	cfg.Encoding = logmsg.EncodingRaw
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
