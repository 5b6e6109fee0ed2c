//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkabatcher/kafkabatcherexporter/testbench/realkafka"
)

// TestRealKafkaProtocolVersions produces to Kafka 4.4 with every
// protocol_version from 2.1.0 (the oldest protocol Kafka 4 speaks, KIP-896)
// to 4.0.0: every record arrives once, in order per partition.
func TestRealKafkaProtocolVersions(t *testing.T) {
	c := secure(t)
	logAPIVersions(t, c.Bootstrap())
	for _, v := range []string{"2.1.0", "2.8.0", "3.9.0", "4.0.0"} {
		t.Run(v, func(t *testing.T) {
			e := newEnv(t)
			name := newTopic(t, c, 3, nil)
			conf := e.kafkaConfig(c, name)
			conf.set("protocol_version", v)
			e.deliverOnce(t, c, conf, name, 3000, 20)
		})
	}
}

// TestRealKafkaProtocolBelow21 sets protocol_version below 2.1.0, the
// protocol KIP-896 makes Kafka 4's baseline. The exporter only sends
// ApiVersions, Metadata (v4 to v6 for these versions), SaslHandshake v1,
// SaslAuthenticate and Produce v3 to v6, all of which Kafka 4.4 still
// serves (it removed Produce v0-v2, which the exporter never sends, and
// Fetch v0-v3, which it never uses). So these versions are not refused:
// every record arrives once, in order, and nothing is logged as an error
// (over SASL/SCRAM from 1.0.0, so the login is covered too). Real Kafka
// showed that SASL below 1.0.0 failed every connection with only "client
// has run out of available brokers": it is now a validation error.
// Should a broker refuse a request version, the exporter's error names
// protocol_version (unit-tested with kfake in producer).
func TestRealKafkaProtocolBelow21(t *testing.T) {
	c := secure(t)
	for _, v := range []string{"2.0.0", "1.0.0", "0.11.0.0"} {
		t.Run(v, func(t *testing.T) {
			e := newEnv(t)
			name := newTopic(t, c, 3, nil)
			// Over SASL from 1.0.0: the handshake (ApiVersions,
			// SaslHandshake v1, SaslAuthenticate) is part of what an old
			// version sends. sarama has no SaslHandshake v1 below 1.0.0, so
			// 0.11.0.0 with SASL is a validation error (below).
			conf := e.kafkaConfig(c, name)
			if v != "0.11.0.0" {
				conf = e.saslConfig(c, name, "SCRAM-SHA-256", "alice", realkafka.Users["alice"])
			}
			conf.set("protocol_version", v)
			e.deliverOnce(t, c, conf, name, 1000, 20)
			if line := findLine(e.path("collector.log"), "\terror\t"); line != "" {
				t.Errorf("protocol_version %s: the collector logged an error: %s", v, line)
			}
			if line := findLine(e.path("collector.log"), "kafka did not take a batch"); line != "" {
				t.Errorf("protocol_version %s: a batch was not taken: %s", v, line)
			}
		})
	}
	t.Run("0.11.0.0_sasl", func(t *testing.T) {
		e := newEnv(t)
		conf := e.saslConfig(c, "e2e", "PLAIN", "alice", realkafka.Users["alice"])
		conf.set("protocol_version", "0.11.0.0")
		code, out := validate(t, e.writeConfig("collector.yaml", conf))
		if code == 0 || !strings.Contains(out, "SASL needs protocol_version >= 1.0.0") {
			t.Errorf("validate exit %d, want an error naming protocol_version and 1.0.0:\n%s", code, out)
		}
	})
}

// logAPIVersions logs the Produce, Fetch and Metadata version ranges the
// broker advertises: what KIP-896 left in Kafka 4.4.
func logAPIVersions(t *testing.T, seeds []string) {
	t.Helper()
	adm, err := adminFor(seeds)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, adm)
	if err != nil {
		t.Fatalf("ApiVersions: %v", err)
	}
	var parts []string
	for _, k := range resp.ApiKeys {
		switch k.ApiKey {
		case 0, 1, 3, 17, 18, 36:
			parts = append(parts, kmsg.NameForKey(k.ApiKey)+" v"+itoa(int(k.MinVersion))+"-v"+itoa(int(k.MaxVersion)))
		}
	}
	t.Logf("Kafka 4.4 advertises: %s", strings.Join(parts, ", "))
}
