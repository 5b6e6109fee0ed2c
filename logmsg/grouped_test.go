package logmsg

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// keyedLogs has two resources; the first has two scopes. Records carry
// user (the key), topic and h (a headers_from value) attributes.
func keyedLogs() plog.Logs {
	ld := plog.NewLogs()
	add := func(sl plog.ScopeLogs, body, user, topic, h string) {
		lr := sl.LogRecords().AppendEmpty()
		lr.Body().SetStr(body)
		if user != "" {
			lr.Attributes().PutStr("user", user)
		}
		if topic != "" {
			lr.Attributes().PutStr("topic", topic)
		}
		if h != "" {
			lr.Attributes().PutStr("h", h)
		}
		lr.SetTimestamp(pcommon.NewTimestampFromTime(t0.Add(time.Duration(sl.LogRecords().Len()) * time.Second)))
	}
	rl := ld.ResourceLogs().AppendEmpty()
	rl.SetSchemaUrl("https://opentelemetry.io/schemas/1.30.0")
	rl.Resource().Attributes().PutStr("service.name", "checkout")
	s1 := rl.ScopeLogs().AppendEmpty()
	s1.Scope().SetName("s1")
	s1.SetSchemaUrl("scope-schema")
	add(s1, "r0", "u1", "", "")
	add(s1, "r1", "u2", "", "")
	add(s1, "r2", "u1", "", "")
	add(s1, "r3", "", "", "")   // keyless
	add(s1, "r4", "u1", "", "") // with r0, r2
	add(s1, "r5", "u1", "other", "")
	add(s1, "r6", "u1", "", "x")
	add(s1, "r7", "u1", "", "y")
	add(s1, "r8", "u1", "", "x") // with r6
	s2 := rl.ScopeLogs().AppendEmpty()
	s2.Scope().SetName("s2")
	add(s2, "r9", "u1", "", "")
	rl2 := ld.ResourceLogs().AppendEmpty()
	rl2.Resource().Attributes().PutStr("service.name", "cart")
	s3 := rl2.ScopeLogs().AppendEmpty()
	s3.Scope().SetName("s1")
	add(s3, "r10", "u1", "", "")
	return ld
}

func groupedBuilder(t *testing.T, opts Options) *Builder {
	t.Helper()
	if opts.Topic == "" {
		opts.Topic = "logs"
	}
	opts.MessagePer = MessagePerKey
	b, err := NewBuilder(opts, nopTelemetry())
	require.NoError(t, err)
	return b
}

// decodeBodies decodes a grouped value and returns its records' bodies; it
// checks the message holds one resource and one scope.
func decodeBodies(t *testing.T, enc string, v []byte) (plog.Logs, []string) {
	t.Helper()
	var ld plog.Logs
	var err error
	if enc == EncodingOTLPJSON {
		ld, err = (&plog.JSONUnmarshaler{}).UnmarshalLogs(v)
	} else {
		ld, err = (&plog.ProtoUnmarshaler{}).UnmarshalLogs(v)
	}
	require.NoError(t, err)
	require.Equal(t, 1, ld.ResourceLogs().Len())
	require.Equal(t, 1, ld.ResourceLogs().At(0).ScopeLogs().Len())
	var bodies []string
	lrs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	for i := range lrs.Len() {
		bodies = append(bodies, lrs.At(i).Body().AsString())
	}
	return ld, bodies
}

func TestGroupedByResourceScopeKeyTopicAndHeaders(t *testing.T) {
	for _, enc := range GroupEncodings() {
		t.Run(enc, func(t *testing.T) {
			b := groupedBuilder(t, Options{
				Encoding: enc, KeyFrom: []string{"attributes.user"},
				TopicFrom: "attributes.topic", HeadersFrom: []string{"attributes.h"},
			})
			msgs, err := b.Append(context.Background(), nil, keyedLogs(), t0)
			require.NoError(t, err)
			type want struct {
				bodies []string
				key    string // "-": keyless
				topic  string
				header string // "-": none
				scope  string
				svc    string
			}
			wants := []want{
				{[]string{"r0", "r2", "r4"}, "u1", "logs", "-", "s1", "checkout"},
				{[]string{"r1"}, "u2", "logs", "-", "s1", "checkout"},
				{[]string{"r3"}, "-", "logs", "-", "s1", "checkout"},
				{[]string{"r5"}, "u1", "other", "-", "s1", "checkout"},
				{[]string{"r6", "r8"}, "u1", "logs", "x", "s1", "checkout"},
				{[]string{"r7"}, "u1", "logs", "y", "s1", "checkout"},
				{[]string{"r9"}, "u1", "logs", "-", "s2", "checkout"},
				{[]string{"r10"}, "u1", "logs", "-", "s1", "cart"},
			}
			require.Len(t, msgs, len(wants))
			for i, w := range wants {
				m := msgs[i]
				ld, bodies := decodeBodies(t, enc, m.Value)
				assert.Equal(t, w.bodies, bodies, "message %d", i)
				if w.key == "-" {
					assert.Nil(t, m.Key, "message %d keyless", i)
				} else {
					assert.Equal(t, w.key, string(m.Key), "message %d", i)
				}
				assert.Equal(t, w.topic, m.Topic, "message %d", i)
				if w.header == "-" {
					assert.Empty(t, m.Headers, "message %d", i)
				} else {
					assert.Equal(t, []message.Header{{Key: "attributes.h", Value: []byte(w.header)}}, m.Headers, "message %d", i)
				}
				rl := ld.ResourceLogs().At(0)
				svc, _ := rl.Resource().Attributes().Get("service.name")
				assert.Equal(t, w.svc, svc.Str(), "message %d", i)
				assert.Equal(t, w.scope, rl.ScopeLogs().At(0).Scope().Name(), "message %d", i)
				assert.Equal(t, message.SignalLogs, m.Signal)
			}
			// Schema URLs travel with the resource and scope.
			ld, _ := decodeBodies(t, enc, msgs[0].Value)
			assert.Equal(t, "https://opentelemetry.io/schemas/1.30.0", ld.ResourceLogs().At(0).SchemaUrl())
			assert.Equal(t, "scope-schema", ld.ResourceLogs().At(0).ScopeLogs().At(0).SchemaUrl())
		})
	}
}

// expectedGroups is the model of grouping: the per-record builder gives
// each record's topic, key and headers; records of one resource, scope and
// those are one message, made by copying them into a LogsData.
func expectedGroups(t *testing.T, ld plog.Logs, opts Options) []plog.Logs {
	t.Helper()
	opts.MessagePer = MessagePerRecord
	per, err := NewBuilder(opts, nopTelemetry())
	require.NoError(t, err)
	single, err := per.Append(context.Background(), nil, ld, t0)
	require.NoError(t, err)
	index := map[string]int{}
	var out []plog.Logs
	n := 0
	for i := range ld.ResourceLogs().Len() {
		rl := ld.ResourceLogs().At(i)
		for j := range rl.ScopeLogs().Len() {
			sl := rl.ScopeLogs().At(j)
			for k := range sl.LogRecords().Len() {
				m := single[n]
				n++
				id := fmt.Sprintf("%d/%d/%q/%v/%q", i, j, m.Topic, m.Key == nil, m.Key)
				for _, h := range m.Headers {
					id += fmt.Sprintf("/%q=%q", h.Key, h.Value)
				}
				g, ok := index[id]
				if !ok {
					g = len(out)
					index[id] = g
					grp := plog.NewLogs()
					grl := grp.ResourceLogs().AppendEmpty()
					rl.Resource().CopyTo(grl.Resource())
					grl.SetSchemaUrl(rl.SchemaUrl())
					gsl := grl.ScopeLogs().AppendEmpty()
					sl.Scope().CopyTo(gsl.Scope())
					gsl.SetSchemaUrl(sl.SchemaUrl())
					out = append(out, grp)
				}
				sl.LogRecords().At(k).CopyTo(out[g].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().AppendEmpty())
			}
		}
	}
	return out
}

// assertGroupedIdentical checks each grouped value is byte for byte what
// the pdata marshaler writes for the model's LogsData.
func assertGroupedIdentical(t *testing.T, ld plog.Logs, opts Options) {
	t.Helper()
	opts.Topic = "logs"
	want := expectedGroups(t, ld, opts)
	b := groupedBuilder(t, opts)
	msgs, err := b.Append(context.Background(), nil, ld, t0)
	require.NoError(t, err)
	require.Len(t, msgs, len(want))
	for i, m := range msgs {
		var exp []byte
		if opts.Encoding == EncodingOTLPJSON {
			exp, err = (&plog.JSONMarshaler{}).MarshalLogs(want[i])
		} else {
			exp, err = (&plog.ProtoMarshaler{}).MarshalLogs(want[i])
		}
		require.NoError(t, err)
		require.Equal(t, exp, m.Value, "message %d", i)
	}
}

func TestGroupedValueIsWhatPdataWrites(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, enc := range GroupEncodings() {
		for _, keys := range [][]string{nil, {"attributes.a"}, {"resource.a", "attributes.b"}} {
			t.Run(fmt.Sprintf("%s/%v", enc, keys), func(t *testing.T) {
				opts := Options{Encoding: enc, KeyFrom: keys}
				assertGroupedIdentical(t, testLogs(), opts)
				assertGroupedIdentical(t, edgeLogs(), opts)
				assertGroupedIdentical(t, keyedLogs(), Options{Encoding: enc, KeyFrom: []string{"attributes.user"},
					TopicFrom: "attributes.topic", HeadersFrom: []string{"attributes.h"}})
				for range 50 {
					assertGroupedIdentical(t, randomLogs(r), opts)
				}
			})
		}
	}
}

// TestGroupedProtoFallback: with wire bytes the splicer does not
// understand, grouped values are still right (copied and marshaled).
func TestGroupedProtoFallback(t *testing.T) {
	b := groupedBuilder(t, Options{KeyFrom: []string{"attributes.user"}})
	e := newOTLPProtoEncoder().(*protoEncoder)
	e.marshalAll = func(ld plog.Logs) ([]byte, error) { return nil, errors.New("boom") }
	b.scratch.New = func() any { return &scratch{enc: e} }
	got, err := b.Append(context.Background(), nil, keyedLogs(), t0)
	require.NoError(t, err)
	assert.NotNil(t, e.slow, "fallback used")

	want, err := groupedBuilder(t, Options{KeyFrom: []string{"attributes.user"}}).Append(context.Background(), nil, keyedLogs(), t0)
	require.NoError(t, err)
	require.Len(t, got, len(want))
	for i := range want {
		assert.Equal(t, want[i].Value, got[i].Value, "message %d", i)
	}
}

func TestGroupedTimestampIsFirstRecords(t *testing.T) {
	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	add := func(key string, ts, observed time.Time) {
		lr := lrs.AppendEmpty()
		lr.Attributes().PutStr("k", key)
		if !ts.IsZero() {
			lr.SetTimestamp(pcommon.NewTimestampFromTime(ts))
		}
		if !observed.IsZero() {
			lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(observed))
		}
	}
	now := t0.Add(time.Hour)
	add("time", t0, t0.Add(time.Minute))
	add("time", t0.Add(time.Second), time.Time{})
	add("observed", time.Time{}, t0.Add(time.Minute))
	add("observed", t0, time.Time{})
	add("none", time.Time{}, time.Time{})
	add("none", t0, t0)
	msgs, err := groupedBuilder(t, Options{KeyFrom: []string{"attributes.k"}}).Append(context.Background(), nil, ld, now)
	require.NoError(t, err)
	require.Len(t, msgs, 3)
	assert.True(t, msgs[0].Timestamp.Equal(t0))
	assert.True(t, msgs[1].Timestamp.Equal(t0.Add(time.Minute)))
	assert.True(t, msgs[2].Timestamp.Equal(now))
}

func TestGroupedFlushWhenMarksTheMessage(t *testing.T) {
	ld := keyedLogs()
	ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(2).SetSeverityNumber(plog.SeverityNumberError) // r2, user u1
	msgs, err := groupedBuilder(t, Options{
		KeyFrom: []string{"attributes.user"}, FlushWhen: []string{"severity_number >= SEVERITY_NUMBER_ERROR"},
	}).Append(context.Background(), nil, ld, t0)
	require.NoError(t, err)
	var triggered [][]string
	for _, m := range msgs {
		if m.Trigger {
			_, bodies := decodeBodies(t, EncodingOTLPProto, m.Value)
			triggered = append(triggered, bodies)
		}
	}
	// Without topic_from and headers_from, u1's records of scope s1 are one message.
	assert.Equal(t, [][]string{{"r0", "r2", "r4", "r5", "r6", "r7", "r8"}}, triggered)
}

// bigLogs is n records of one key, each with a body of pad bytes.
func bigLogs(n, pad int) plog.Logs {
	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	for i := range n {
		lr := lrs.AppendEmpty()
		lr.Body().SetStr(fmt.Sprintf("%03d%s", i, strings.Repeat("x", pad)))
		lr.Attributes().PutStr("k", "same")
	}
	return ld
}

func TestGroupedOversizeSplitInOrder(t *testing.T) {
	const maxBytes = 4000
	msgs, err := groupedBuilder(t, Options{KeyFrom: []string{"attributes.k"}, MaxMessageBytes: maxBytes}).
		Append(context.Background(), nil, bigLogs(20, 500), t0)
	require.NoError(t, err)
	require.Greater(t, len(msgs), 2)
	var all []string
	for _, m := range msgs {
		assert.Equal(t, "same", string(m.Key))
		assert.LessOrEqual(t, message.BatchHeaderBytes+message.RecordSize(&m, 0, m.Timestamp), maxBytes)
		_, bodies := decodeBodies(t, EncodingOTLPProto, m.Value)
		all = append(all, bodies...)
	}
	require.Len(t, all, 20)
	for i, body := range all {
		assert.True(t, strings.HasPrefix(body, fmt.Sprintf("%03d", i)), "record %d in order", i)
	}

	// A record too large alone stays one message: the exporter rejects it.
	msgs, err = groupedBuilder(t, Options{KeyFrom: []string{"attributes.k"}, MaxMessageBytes: maxBytes}).
		Append(context.Background(), nil, bigLogs(1, 5000), t0)
	require.NoError(t, err)
	require.Len(t, msgs, 1)
}

func TestMessagePerOptionErrors(t *testing.T) {
	for _, enc := range []string{EncodingJSON, EncodingRaw} {
		_, err := NewBuilder(Options{Topic: "t", Encoding: enc, MessagePer: MessagePerKey}, nopTelemetry())
		assert.EqualError(t, err, "message_per: key needs encoding otlp_proto or otlp_json, got "+enc)
	}
	_, err := NewBuilder(Options{Topic: "t", MessagePer: "trace"}, nopTelemetry())
	assert.EqualError(t, err, `message_per: unknown value "trace", want one of record, key`)
	for _, per := range append(MessagePers(), "") {
		_, err := NewBuilder(Options{Topic: "t", MessagePer: per}, nopTelemetry())
		assert.NoError(t, err, per)
	}
}

func TestGroupedEmptyAndConcurrent(t *testing.T) {
	b := groupedBuilder(t, Options{KeyFrom: []string{"attributes.user"}, HeadersFrom: []string{"attributes.h"}})
	msgs, err := b.Append(context.Background(), nil, plog.NewLogs(), t0)
	require.NoError(t, err)
	assert.Empty(t, msgs)

	want, err := b.Append(context.Background(), nil, keyedLogs(), t0)
	require.NoError(t, err)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ld := keyedLogs()
			for range 50 {
				got, err := b.Append(context.Background(), nil, ld, t0)
				if !assert.NoError(t, err) || !assert.Equal(t, len(want), len(got)) {
					return
				}
				for i := range got {
					assert.Equal(t, want[i].Value, got[i].Value)
					assert.Equal(t, want[i].Key, got[i].Key)
					assert.Equal(t, want[i].Headers, got[i].Headers)
				}
			}
		}()
	}
	wg.Wait()
}
