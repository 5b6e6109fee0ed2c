package logmsg

import (
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// everyFieldLogs has records using every LogRecord field and every value
// type, nested, empty and at their extremes.
func everyFieldLogs() plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "svc")
	rl.Resource().SetDroppedAttributesCount(3)
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName("scope")
	sl.Scope().SetVersion("1")
	sl.Scope().SetDroppedAttributesCount(2)

	lr := sl.LogRecords().AppendEmpty()
	lr.SetTimestamp(1)
	lr.SetObservedTimestamp(math.MaxUint64)
	lr.SetSeverityNumber(plog.SeverityNumber(-1)) // ten-byte varint
	lr.SetSeverityText("WARN")
	lr.SetEventName("ev")
	lr.SetDroppedAttributesCount(1 << 20)
	lr.SetFlags(plog.DefaultLogRecordFlags.WithIsSampled(true))
	lr.SetTraceID(pcommon.TraceID{1, 2, 3})
	lr.SetSpanID(pcommon.SpanID{9})
	body := lr.Body().SetEmptyMap()
	body.PutStr("", "empty key")
	body.PutEmpty("empty")
	body.PutEmptyMap("empty map")
	body.PutEmptySlice("empty slice")
	body.PutEmptyBytes("empty bytes")
	body.PutEmptyBytes("bytes").FromRaw([]byte{0, 1, 2})
	body.PutInt("neg", math.MinInt64)
	body.PutInt("zero", 0)
	body.PutDouble("nan", math.NaN())
	body.PutDouble("negzero", math.Copysign(0, -1))
	body.PutBool("false", false)
	s := body.PutEmptySlice("slice")
	s.AppendEmpty()
	s.AppendEmpty().SetStr(strings.Repeat("s", 200))
	s.AppendEmpty().SetEmptySlice().AppendEmpty().SetEmptyMap().PutBool("deep", true)
	a := lr.Attributes()
	a.PutStr("long", strings.Repeat("v", 70000)) // three-byte lengths
	a.PutEmptyMap("m").PutEmptyMap("n").PutInt("o", 1)
	a.PutDouble("d", -1.5)

	sl.LogRecords().AppendEmpty() // empty record
	sl.LogRecords().AppendEmpty().Body().SetEmptyBytes()
	sl.LogRecords().AppendEmpty().Body().SetInt(-7)
	return ld
}

// TestRecordBytesArePdatas: every record's size and bytes are pdata's,
// for every field and value type, without the fallback.
func TestRecordBytesArePdatas(t *testing.T) {
	b, e := spliceBuilder(t)
	assertProtoIdentical(t, everyFieldLogs(), b)
	assert.Nil(t, e.slow, "every record written, no fallback")

	for i, r := range records(everyFieldLogs()) {
		lr := r.lr
		// pdata's own bytes of the record, found in its LogsData.
		ld, err := (&plog.ProtoMarshaler{}).MarshalLogs(single(r))
		require.NoError(t, err)
		var rls, sls, lrs []span
		_, err = splitChildren(ld, span{0, len(ld)}, 1, false, &rls)
		require.NoError(t, err)
		_, err = splitChildren(ld, rls[0], 2, true, &sls)
		require.NoError(t, err)
		_, err = splitChildren(ld, sls[0], 2, true, &lrs)
		require.NoError(t, err)
		want := ld[lrs[0].off:lrs[0].end]

		size := recordSize(lr)
		require.Equal(t, (&plog.ProtoMarshaler{}).LogRecordSize(lr), size, "record %d", i)
		got := appendLogRecord([]byte("prefix"), lr)
		assert.Equal(t, "prefix", string(got[:6]))
		assert.Equal(t, want, got[6:], "record %d", i)
	}
}

// TestLogRecordFieldsKnown fails when pdata's LogRecord or Value gain
// something appendLogRecord does not write: it reads the record through
// these methods and value types only.
func TestLogRecordFieldsKnown(t *testing.T) {
	known := []string{"Attributes", "Body", "CopyTo", "DroppedAttributesCount", "EventName", "Flags",
		"MoveTo", "ObservedTimestamp", "SetDroppedAttributesCount", "SetEventName", "SetFlags",
		"SetObservedTimestamp", "SetSeverityNumber", "SetSeverityText", "SetSpanID", "SetTimestamp",
		"SetTraceID", "SeverityNumber", "SeverityText", "SpanID", "Timestamp", "TraceID"}
	typ := reflect.TypeFor[plog.LogRecord]()
	var got []string
	for i := range typ.NumMethod() {
		got = append(got, typ.Method(i).Name)
	}
	assert.ElementsMatch(t, known, got, "plog.LogRecord's methods changed: update appendLogRecord")
	assert.Equal(t, "Bytes", pcommon.ValueTypeBytes.String())
	assert.Empty(t, (pcommon.ValueTypeBytes + 1).String(), "a value type after Bytes: update appendValue")
}
