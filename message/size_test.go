package message

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// kafkaBatchLen encodes msgs with franz-go's kmsg, an independent
// implementation of the v2 record batch format.
func kafkaBatchLen(msgs []Message) int {
	first := msgs[0].Timestamp
	var records []byte
	for i, m := range msgs {
		r := kmsg.NewRecord()
		r.TimestampDelta64 = m.Timestamp.UnixMilli() - first.UnixMilli()
		r.OffsetDelta = int32(i)
		r.Key, r.Value = m.Key, m.Value
		for _, h := range m.Headers {
			r.Headers = append(r.Headers, kmsg.Header{Key: h.Key, Value: h.Value})
		}
		// The first encoding measures the body; the second writes the real length.
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		r.Length = int32(len(r.AppendTo(nil)) - varlongLen(int64(r.Length)))
		records = r.AppendTo(records)
	}
	b := kmsg.NewRecordBatch()
	b.Magic = 2
	b.NumRecords = int32(len(msgs))
	b.Records = records
	return len(b.AppendTo(nil))
}

func TestBatchSizeMatchesWireFormat(t *testing.T) {
	base := time.UnixMilli(1_700_000_000_000)
	cases := map[string][]Message{
		"one keyless": {{Value: []byte("hello"), Timestamp: base}},
		"key and headers": {{
			Key: []byte("k"), Value: []byte("v"), Timestamp: base,
			Headers: []Header{{Key: "attributes.a", Value: []byte("x")}, {Key: "h", Value: nil}},
		}},
		"empty value": {{Value: []byte{}, Timestamp: base}},
		"large value": {{Value: []byte(strings.Repeat("x", 70000)), Timestamp: base}},
		"timestamps before and after first": {
			{Value: []byte("a"), Timestamp: base},
			{Value: []byte("b"), Timestamp: base.Add(-48 * time.Hour)},
			{Value: []byte("c"), Timestamp: base.Add(365 * 24 * time.Hour)},
		},
	}
	many := make([]Message, 300)
	for i := range many {
		many[i] = Message{Key: []byte(strings.Repeat("k", i%20)), Value: []byte(strings.Repeat("v", i)), Timestamp: base.Add(time.Duration(i) * time.Millisecond)}
	}
	cases["300 records"] = many

	for name, msgs := range cases {
		t.Run(name, func(t *testing.T) {
			if got, want := BatchSize(msgs), kafkaBatchLen(msgs); got != want {
				t.Fatalf("BatchSize = %d, wire = %d", got, want)
			}
		})
	}
}

func TestFlushReasonString(t *testing.T) {
	want := []string{"unknown", "size", "bytes", "max_wait", "min_delay", "trigger", "shutdown", "memory", "call", "unknown"}
	for i, w := range want {
		if got := FlushReason(i).String(); got != w {
			t.Errorf("FlushReason(%d) = %q, want %q", i, got, w)
		}
	}
}

func TestRecordSizeAtMatchesRecordSize(t *testing.T) {
	base := time.UnixMilli(1_700_000_000_000)
	offsets := []int{0, 1, 63, 64, 8191, 8192, 1 << 20}
	deltas := []time.Duration{0, time.Millisecond, 63 * time.Millisecond, 64 * time.Millisecond, -64 * time.Millisecond, -65 * time.Millisecond, time.Hour, -48 * time.Hour, 100 * 365 * 24 * time.Hour}
	for _, vlen := range []int{0, 1, 50, 56, 57, 58, 100, 120, 121, 122, 8180, 8183, 8184, 8185, 8186, 8190, 16400, 70000} {
		for _, hdrs := range [][]Header{nil, {{Key: "k", Value: []byte("v")}}} {
			m := Message{Value: make([]byte, vlen), Headers: hdrs, Timestamp: base}
			alone := RecordSize(&m, 0, m.Timestamp)
			for _, off := range offsets {
				for _, d := range deltas {
					first := base.Add(-d)
					if got, want := RecordSizeAt(alone, &m, off, first), RecordSize(&m, off, first); got != want {
						t.Fatalf("value %d, offset %d, delta %v: RecordSizeAt = %d, RecordSize = %d", vlen, off, d, got, want)
					}
				}
			}
		}
	}
}
