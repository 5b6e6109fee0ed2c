package logmsg

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// benchLogs is a typical agent batch: one resource, one scope, n records
// with a string body, six attributes and trace context.
func benchLogs(n int) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	ra := rl.Resource().Attributes()
	ra.PutStr("service.name", "checkout")
	ra.PutStr("service.version", "1.4.2")
	ra.PutStr("host.name", "ip-10-0-3-17.ec2.internal")
	ra.PutStr("k8s.pod.name", "checkout-7d9f8b6c5-x2x4z")
	ra.PutStr("k8s.namespace.name", "shop")
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName("io.example.checkout")
	sl.Scope().SetVersion("1.4.2")
	ts := time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)
	for i := range n {
		lr := sl.LogRecords().AppendEmpty()
		lr.SetTimestamp(pcommon.NewTimestampFromTime(ts.Add(time.Duration(i) * time.Millisecond)))
		lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(ts.Add(time.Duration(i)*time.Millisecond + 50)))
		lr.SetSeverityNumber(plog.SeverityNumberInfo)
		lr.SetSeverityText("INFO")
		lr.Body().SetStr(fmt.Sprintf("order %d placed by user %d: 3 items, total 42.50 EUR, payment authorised", i, i%97))
		a := lr.Attributes()
		a.PutStr("user.id", fmt.Sprintf("u-%d", i%97))
		a.PutStr("http.route", "/api/orders")
		a.PutStr("http.method", "POST")
		a.PutInt("http.status_code", 201)
		a.PutDouble("duration_ms", 12.75)
		a.PutBool("cache.hit", i%2 == 0)
		lr.SetTraceID(pcommon.TraceID{byte(i), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
		lr.SetSpanID(pcommon.SpanID{byte(i), 1, 2, 3, 4, 5, 6, 7})
		lr.SetFlags(1)
	}
	return ld
}

func BenchmarkAppend(b *testing.B) {
	const n = 100
	ld := benchLogs(n)
	for _, enc := range []string{EncodingOTLPProto, EncodingOTLPJSON, EncodingJSON, EncodingRaw} {
		for _, variant := range []struct {
			name string
			opts Options
		}{
			{"plain", Options{}},
			{"key+header", Options{KeyFrom: []string{"attributes.user.id"}, HeadersFrom: []string{"resource.service.name"}}},
			{"flush_when", Options{FlushWhen: []string{`severity_number >= SEVERITY_NUMBER_ERROR`, `IsMatch(body, "panic.*")`}}},
		} {
			b.Run(enc+"/"+variant.name, func(b *testing.B) {
				opts := variant.opts
				opts.Topic, opts.Encoding = "logs", enc
				bld, err := NewBuilder(opts, nopTelemetry())
				if err != nil {
					b.Fatal(err)
				}
				dst := make([]message.Message, 0, n)
				now := time.Now()
				ctx := context.Background()
				var bytes int
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					dst, err = bld.Append(ctx, dst[:0], ld, now)
					if err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				for _, m := range dst {
					bytes += len(m.Value)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
				b.ReportMetric(float64(bytes)/n, "value-B/record")
			})
		}
	}
}

// BenchmarkOTLPCopyPerRecord measures the simple way protoEncoder replaces:
// copy each record into a one-record LogsData and marshal it.
func BenchmarkOTLPCopyPerRecord(b *testing.B) {
	const n = 100
	ld := benchLogs(n)
	for _, tc := range []struct {
		name string
		enc  func() encoder
	}{
		{EncodingOTLPProto, func() encoder { m := &plog.ProtoMarshaler{}; return newOTLPEncoder(m.MarshalLogs) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			bld, err := NewBuilder(Options{Topic: "logs", Encoding: tc.name}, nopTelemetry())
			if err != nil {
				b.Fatal(err)
			}
			bld.scratch.New = func() any { return &scratch{enc: tc.enc()} }
			dst := make([]message.Message, 0, n)
			now := time.Now()
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if dst, err = bld.Append(context.Background(), dst[:0], ld, now); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
		})
	}
}

// BenchmarkAppendGrouped compares message_per record and key on one call of
// 100 records over 10 keys (attribute tenant): the cost per log record, and
// how many records a message holds.
func BenchmarkAppendGrouped(b *testing.B) {
	const n, keys = 100, 10
	ld := benchLogs(n)
	lrs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	for i := range lrs.Len() {
		lrs.At(i).Attributes().PutStr("tenant", fmt.Sprintf("tenant-%d", i%keys))
	}
	for _, enc := range []string{EncodingOTLPProto, EncodingOTLPJSON} {
		for _, per := range MessagePers() {
			b.Run(enc+"/"+per, func(b *testing.B) {
				bld, err := NewBuilder(Options{
					Topic: "logs", Encoding: enc, MessagePer: per,
					KeyFrom: []string{"attributes.tenant"}, MaxMessageBytes: 1_000_000,
				}, nopTelemetry())
				if err != nil {
					b.Fatal(err)
				}
				dst := make([]message.Message, 0, n)
				now := time.Now()
				ctx := context.Background()
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					if dst, err = bld.Append(ctx, dst[:0], ld, now); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				var bytes int
				for _, m := range dst {
					bytes += len(m.Value)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
				b.ReportMetric(float64(n)/float64(len(dst)), "records/msg")
				b.ReportMetric(float64(bytes)/n, "value-B/record")
			})
		}
	}
}
