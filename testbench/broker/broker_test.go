package broker

import (
	"testing"
	"time"
)

func TestParseSpecReadsKindAndLatencyBack(t *testing.T) {
	for _, name := range []string{"devbroker", "devbroker+2ms", "kafka-1", "kafka-1+2ms", "kafka-3", "kafka-3+15ms"} {
		s, err := ParseSpec(name)
		if err != nil {
			t.Fatalf("ParseSpec(%q): %v", name, err)
		}
		if s.Name() != name {
			t.Errorf("ParseSpec(%q).Name() = %q", name, s.Name())
		}
	}
	s, _ := ParseSpec("kafka-3+2ms")
	if s.Kind != Kafka3 || s.Latency != 2*time.Millisecond {
		t.Errorf("kafka-3+2ms = %+v", s)
	}
}

func TestParseSpecRejectsUnknownKindsAndLatencies(t *testing.T) {
	for _, name := range []string{"", "kafka-2", "devbroker+", "devbroker+2", "devbroker+0ms", "devbroker+-1ms", "kafka-1+2s"} {
		if _, err := ParseSpec(name); err == nil {
			t.Errorf("ParseSpec(%q) accepted", name)
		}
	}
}
