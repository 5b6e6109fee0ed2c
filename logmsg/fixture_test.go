package logmsg

import (
	"time"

	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

var (
	t0       = time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.UTC)
	traceID1 = pcommon.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	spanID1  = pcommon.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}
)

// testLogs builds logs with two resources, several scopes and records
// covering every field and body type.
func testLogs() plog.Logs {
	ld := plog.NewLogs()

	rl := ld.ResourceLogs().AppendEmpty()
	rl.SetSchemaUrl("https://opentelemetry.io/schemas/1.30.0")
	rl.Resource().Attributes().PutStr("service.name", "checkout")
	rl.Resource().Attributes().PutStr("host.name", "node-1")
	rl.Resource().Attributes().PutInt("pid", 4242)
	rl.Resource().SetDroppedAttributesCount(2)

	sl := rl.ScopeLogs().AppendEmpty()
	sl.SetSchemaUrl("https://opentelemetry.io/schemas/1.29.0")
	sl.Scope().SetName("io.example.checkout")
	sl.Scope().SetVersion("1.2.3")
	sl.Scope().Attributes().PutStr("team", "payments")

	lr := sl.LogRecords().AppendEmpty()
	lr.SetTimestamp(pcommon.NewTimestampFromTime(t0))
	lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(t0.Add(time.Millisecond)))
	lr.SetSeverityNumber(plog.SeverityNumberInfo)
	lr.SetSeverityText("INFO")
	lr.SetEventName("order.placed")
	lr.Body().SetStr("order placed: \"42\" <ok> ünïcode\n")
	lr.Attributes().PutStr("user", "alice")
	lr.Attributes().PutInt("items", 3)
	lr.Attributes().PutDouble("amount", 12.5)
	lr.Attributes().PutBool("paid", true)
	lr.Attributes().PutEmptyBytes("blob").FromRaw([]byte{0, 1, 2, 0xff})
	m := lr.Attributes().PutEmptyMap("cart")
	m.PutStr("sku", "A-1")
	m.PutInt("qty", 2)
	s := lr.Attributes().PutEmptySlice("tags")
	s.AppendEmpty().SetStr("x")
	s.AppendEmpty().SetInt(7)
	lr.SetTraceID(traceID1)
	lr.SetSpanID(spanID1)
	lr.SetFlags(plog.DefaultLogRecordFlags.WithIsSampled(true))
	lr.SetDroppedAttributesCount(1)

	lr = sl.LogRecords().AppendEmpty()
	lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(t0.Add(time.Second)))
	lr.SetSeverityNumber(plog.SeverityNumberError)
	lr.SetSeverityText("ERROR")
	body := lr.Body().SetEmptyMap()
	body.PutStr("msg", "payment failed")
	body.PutInt("code", 402)
	body.PutEmptyMap("nested").PutBool("retry", false)
	lr.Attributes().PutStr("user", "bob")

	sl2 := rl.ScopeLogs().AppendEmpty()
	sl2.Scope().SetName("other")
	lr = sl2.LogRecords().AppendEmpty()
	lr.Body().SetInt(-17)

	rl2 := ld.ResourceLogs().AppendEmpty()
	rl2.Resource().Attributes().PutStr("service.name", "cart")
	sl3 := rl2.ScopeLogs().AppendEmpty()
	lr = sl3.LogRecords().AppendEmpty()
	lr.Body().SetEmptySlice().AppendEmpty().SetDouble(1.5)
	lr = sl3.LogRecords().AppendEmpty() // all empty
	_ = lr
	lr = sl3.LogRecords().AppendEmpty()
	lr.Body().SetEmptyBytes().FromRaw([]byte("raw\x00bytes"))
	lr.SetSeverityNumber(plog.SeverityNumberFatal)
	return ld
}

// recordRef is one record of a plog.Logs with its resource and scope.
type recordRef struct {
	rl plog.ResourceLogs
	sl plog.ScopeLogs
	lr plog.LogRecord
	md client.Metadata // of the request, for metadata.NAME
}

// withMetadata returns r as sent with client metadata key = values.
func withMetadata(r recordRef, key string, values ...string) recordRef {
	r.md = client.NewMetadata(map[string][]string{key: values})
	return r
}

func records(ld plog.Logs) []recordRef {
	var out []recordRef
	for i := 0; i < ld.ResourceLogs().Len(); i++ {
		rl := ld.ResourceLogs().At(i)
		for j := 0; j < rl.ScopeLogs().Len(); j++ {
			sl := rl.ScopeLogs().At(j)
			for k := 0; k < sl.LogRecords().Len(); k++ {
				out = append(out, recordRef{rl: rl, sl: sl, lr: sl.LogRecords().At(k)})
			}
		}
	}
	return out
}

// single is the LogsData holding only r, its resource and scope.
func single(r recordRef) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	r.rl.Resource().CopyTo(rl.Resource())
	rl.SetSchemaUrl(r.rl.SchemaUrl())
	sl := rl.ScopeLogs().AppendEmpty()
	r.sl.Scope().CopyTo(sl.Scope())
	sl.SetSchemaUrl(r.sl.SchemaUrl())
	r.lr.CopyTo(sl.LogRecords().AppendEmpty())
	return ld
}
