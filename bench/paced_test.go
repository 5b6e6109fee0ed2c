package main

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/kafkabatcher/kafkabatcherexporter/logmsg"
)

// A received request carries the call's stamp in every body, and the stamps
// read back from what the exporters write: ours in both encodings (one
// value per record) and a whole request as contrib's otlp_proto writes it.
func TestStampedRequestsReadBack(t *testing.T) {
	sh, err := shapeByName("200B")
	if err != nil {
		t.Fatal(err)
	}
	reqs := makeRequests(sh, 10, 0)
	s, err := newStampedRequests(reqs)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Unix(0, 1_780_000_000_123_456_789)
	ld, err := s.receive(3, at)
	if err != nil {
		t.Fatal(err)
	}
	count := func(v []byte) int {
		n := 0
		stamps(v, func(got time.Time) {
			if !got.Equal(at) {
				t.Errorf("stamp %v, want %v", got, at)
			}
			n++
		})
		return n
	}
	for _, enc := range []string{"raw", "otlp_proto"} {
		b, err := logmsg.NewBuilder(logmsg.Options{Encoding: enc, Topic: "t"}, componenttest.NewNopTelemetrySettings())
		if err != nil {
			t.Fatal(err)
		}
		msgs, err := b.Append(context.Background(), nil, ld, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, m := range msgs {
			n += count(m.Value)
		}
		if n != 10 {
			t.Errorf("%s: %d stamps in 10 records", enc, n)
		}
	}
	var m plog.ProtoMarshaler
	whole, err := m.MarshalLogs(ld)
	if err != nil {
		t.Fatal(err)
	}
	if n := count(whole); n != 10 {
		t.Errorf("one message of the request: %d stamps, want 10", n)
	}
	if n := count([]byte(`"` + ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Body().Str() + `"`)); n != 1 {
		t.Errorf("a JSON-quoted body: %d stamps, want 1", n)
	}
	// The warm-up's request is not stamped.
	plain, err := s.receive(3, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if whole, _ = m.MarshalLogs(plain); count(whole) != 0 {
		t.Error("an unstamped request has stamps")
	}
}

func TestPacedRecords(t *testing.T) {
	if got := pacedRecords(20_000, 5, 100); got != 100_000 {
		t.Errorf("pacedRecords(20000, 5, 100) = %d", got)
	}
	if got := pacedRecords(150, 0.5, 100); got != 100 {
		t.Errorf("pacedRecords(150, 0.5, 100) = %d, want one call", got)
	}
}
