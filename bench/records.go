package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/kafkabatcher/kafkabatcherexporter/logmsg"
)

// distinctRequests is how many different plog.Logs a run cycles through:
// enough that values differ, few enough that building them is not measured.
const distinctRequests = 32

// shape is a kind of log record the benchmark sends.
type shape struct {
	Name     string // short name used in flags and tables
	BodySize int    // bytes of the string body
}

var shapes = []shape{
	{Name: "200B", BodySize: 200},
	{Name: "2KiB", BodySize: 2048},
}

func shapeByName(name string) (shape, error) {
	for _, s := range shapes {
		if s.Name == name {
			return s, nil
		}
	}
	return shape{}, fmt.Errorf("unknown shape %q", name)
}

// makeRequests builds distinctRequests read-only plog.Logs of perCall
// records each: one resource (service.name, host.name), one scope, records
// with a body of s.BodySize printable bytes and 5 attributes. With keys > 0
// every record also has a client.id attribute, one of keys values, and
// there are enough requests that every value occurs. The same seed gives
// the same records in every child.
func makeRequests(s shape, perCall, keys int) []plog.Logs {
	rng := rand.New(rand.NewPCG(1, 2))
	n := distinctRequests
	var keyOrder []int
	if keys > 0 {
		n = max(n, (keys+perCall-1)/perCall)
		keyOrder = rng.Perm(n * perCall)
	}
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:;-_/"
	body := make([]byte, s.BodySize)
	reqs := make([]plog.Logs, n)
	for r := range reqs {
		ld := plog.NewLogs()
		rl := ld.ResourceLogs().AppendEmpty()
		rl.Resource().Attributes().PutStr("service.name", "bench-service")
		rl.Resource().Attributes().PutStr("host.name", "bench-host-01")
		sl := rl.ScopeLogs().AppendEmpty()
		sl.Scope().SetName("bench")
		sl.Scope().SetVersion("1.0.0")
		recs := sl.LogRecords()
		recs.EnsureCapacity(perCall)
		for i := range perCall {
			for j := range body {
				body[j] = alphabet[rng.IntN(len(alphabet))]
			}
			lr := recs.AppendEmpty()
			ts := base.Add(time.Duration(r*perCall+i) * time.Millisecond)
			lr.SetTimestamp(pcommon.NewTimestampFromTime(ts))
			lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(ts))
			lr.SetSeverityNumber(plog.SeverityNumberInfo)
			lr.SetSeverityText("INFO")
			lr.Body().SetStr(string(body))
			a := lr.Attributes()
			a.EnsureCapacity(6)
			a.PutStr("http.method", "GET")
			a.PutStr("http.route", "/api/v1/items/{id}")
			a.PutInt("http.status_code", 200)
			a.PutStr("user.id", fmt.Sprintf("user-%06d", rng.IntN(1_000_000)))
			a.PutDouble("duration_ms", float64(rng.IntN(100_000))/100)
			if keys > 0 {
				a.PutStr(keyAttribute, fmt.Sprintf("client-%05d", keyOrder[r*perCall+i]%keys))
			}
		}
		ld.MarkReadOnly()
		reqs[r] = ld
	}
	return reqs
}

// encodeValues returns, per request, the message values this exporter
// writes for its records in encoding enc (one value per record), so the raw
// clients send byte for byte what the exporter sends.
func encodeValues(reqs []plog.Logs, enc string) ([][][]byte, error) {
	b, err := logmsg.NewBuilder(logmsg.Options{Encoding: enc, Topic: "t"}, componenttest.NewNopTelemetrySettings())
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", enc, err)
	}
	out := make([][][]byte, len(reqs))
	for i, ld := range reqs {
		msgs, err := b.Append(context.Background(), nil, ld, time.Now())
		if err != nil {
			return nil, fmt.Errorf("encode request %d: %w", i, err)
		}
		vals := make([][]byte, len(msgs))
		for j, m := range msgs {
			vals[j] = m.Value
		}
		out[i] = vals
	}
	return out, nil
}

// splitRequests returns one read-only plog.Logs per record of reqs, with
// the record's resource and scope.
func splitRequests(reqs []plog.Logs) []plog.Logs {
	var out []plog.Logs
	for _, ld := range reqs {
		rls := ld.ResourceLogs()
		for i := range rls.Len() {
			rl := rls.At(i)
			for j := range rl.ScopeLogs().Len() {
				sl := rl.ScopeLogs().At(j)
				for k := range sl.LogRecords().Len() {
					one := plog.NewLogs()
					orl := one.ResourceLogs().AppendEmpty()
					rl.Resource().CopyTo(orl.Resource())
					osl := orl.ScopeLogs().AppendEmpty()
					sl.Scope().CopyTo(osl.Scope())
					sl.LogRecords().At(k).CopyTo(osl.LogRecords().AppendEmpty())
					one.MarkReadOnly()
					out = append(out, one)
				}
			}
		}
	}
	return out
}
