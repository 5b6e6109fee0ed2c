//go:build e2e

package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/kafkabatcher/kafkabatcherexporter/testbench/realkafka"
)

// The security part of the real-Kafka suite, on the shared 1-node cluster
// with a SASL_PLAINTEXT listener (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), an
// SSL listener and the StandardAuthorizer. Records are read back through
// the PLAINTEXT listener (a super user).

const secPad = 40 // body padding: storedSeqs finds "<seq>|" and secPad x's

// saslConfig is the suite's config on the SASL listener as user.
func (e *env) saslConfig(c *realkafka.Cluster, topic, mech, user, pass string) *cfg {
	conf := e.kafkaConfig(c, topic)
	conf.set("brokers", c.SASLBootstrap())
	conf.set("auth.sasl", map[string]any{"mechanism": mech, "username": user, "password": pass})
	return conf
}

// TestRealKafkaSecuritySASL produces as alice with each SASL mechanism
// against Kafka's own SASL implementation: every record arrives once.
func TestRealKafkaSecuritySASL(t *testing.T) {
	c := secure(t)
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			e := newEnv(t)
			name := newTopic(t, c, 3, nil)
			conf := e.saslConfig(c, name, mech, "alice", realkafka.Users["alice"])
			e.deliverOnce(t, c, conf, name, 2000, secPad)
		})
	}
}

// TestRealKafkaSASLOverTLS produces through the SASL_SSL listener, the
// shape of the managed services' endpoints: PLAIN (Confluent Cloud's API
// keys), SCRAM-SHA-512 (AWS MSK's SCRAM) and PLAIN as Azure Event Hubs
// takes it, the user the literal $ConnectionString and the password a
// connection string from the environment, both through the collector's
// own config expansion. Every record arrives once, in order.
func TestRealKafkaSASLOverTLS(t *testing.T) {
	c := secure(t)
	for _, tc := range []struct {
		name, mech, user, pass string
	}{
		{"PLAIN", "PLAIN", "alice", realkafka.Users["alice"]},
		{"SCRAM-SHA-512", "SCRAM-SHA-512", "alice", realkafka.Users["alice"]},
		{"EventHubsConnectionString", "PLAIN", realkafka.EventHubsUser, "${env:EVENTHUBS_CONNECTION_STRING}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("EVENTHUBS_CONNECTION_STRING", realkafka.EventHubsConnectionString)
			e := newEnv(t)
			name := newTopic(t, c, 3, nil)
			conf := e.kafkaConfig(c, name)
			conf.set("brokers", c.SASLSSLBootstrap())
			conf.set("tls", map[string]any{"ca_file": c.CAFile()})
			conf.set("auth.sasl", map[string]any{"mechanism": tc.mech, "username": tc.user, "password": tc.pass})
			tl := e.deliverOnce(t, c, conf, name, 2000, secPad)
			t.Logf("%s over TLS as %s: %d records sent, %d arrived", tc.mech, tc.user, tl.sent, tl.arrived)
		})
	}
}

// TestRealKafkaSecurityTLS produces through the SSL listener with the
// broker's CA, then with a CA that did not sign the broker's certificate:
// on a first start (no partition counts known) requests are refused with
// an error naming the certificate; after a run that learnt the topic, the
// wrong CA spills records to disk, logged as a certificate problem, and a
// restart with the right CA delivers them once.
func TestRealKafkaSecurityTLS(t *testing.T) {
	c := secure(t)
	e := newEnv(t)
	name := newTopic(t, c, 3, nil)
	wrongCA := writeSelfSignedCA(t, e.path("wrong-ca.pem"))
	good := e.kafkaConfig(c, name)
	good.set("brokers", c.SSLBootstrap())
	good.set("tls", map[string]any{"ca_file": c.CAFile()})
	bad := e.kafkaConfig(c, name)
	bad.set("brokers", c.SSLBootstrap())
	bad.set("tls", map[string]any{"ca_file": wrongCA})
	bad.set("temp_storage.directory", good.storage())
	log := e.path("collector.log")
	l := newLedger(t)

	// 1. First start ever, wrong CA: the topic's partitions cannot be
	// learnt, so requests are refused (the client keeps them).
	col := e.startCollector(bad)
	s := dial(t, col.otlp, 30, secPad)
	if refusals := l.send(s, 0, 200, 100); refusals != 2 {
		t.Errorf("first start with a wrong CA: %d of 2 requests refused, want 2", refusals)
	}
	if l.lastErr != nil && !strings.Contains(l.lastErr.Error(), "certificate") {
		t.Errorf("refusal does not name the certificate: %v", l.lastErr)
	}
	if line := waitLog(log, 10*time.Second, "certificate"); line == "" {
		t.Errorf("no log line names the certificate")
	} else {
		t.Logf("log: %s", line)
	}
	col.stop()

	// 2. The right CA: delivered.
	col, _ = e.sendAndRead(t, c, good, l, name, 1000, 2000, secPad, 0)
	col.stop()

	// 3. The broker's certificate "changed" (a wrong CA): records accepted,
	// spilled to disk, logged as a certificate problem.
	col = e.startCollector(bad)
	l.sendStored(dial(t, col.otlp, 30, secPad), 2000, 3000, good.storage(), "wrong CA")
	if line := findLine(log, "kafka did not take a batch", "certificate", "tls.ca_file"); line == "" {
		t.Errorf("no log line says a batch was not taken because of the certificate")
	} else {
		t.Logf("log: %s", line)
	}
	col.stop()

	// 4. The right CA again: the spilled records are replayed.
	col = e.startCollector(good)
	recs := l.readBack(c.Bootstrap(), name)
	l.settle(recs, good.storage())
}

// TestRealKafkaSecurityWrongPassword: a wrong SASL password is logged as
// an authentication problem naming the mechanism and user; with the
// topic's partitions known the records go to disk, and after the password
// is fixed and the collector restarted every record is delivered once.
func TestRealKafkaSecurityWrongPassword(t *testing.T) {
	c := secure(t)
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			e := newEnv(t)
			name := newTopic(t, c, 3, nil)
			good := e.saslConfig(c, name, mech, "alice", realkafka.Users["alice"])
			bad := e.saslConfig(c, name, mech, "alice", "not-the-password")
			log := e.path("collector.log")
			l := newLedger(t)

			// First start ever, wrong password: refused to the client,
			// saying authentication.
			col := e.startCollector(bad)
			s := dial(t, col.otlp, 30, secPad)
			l.send(s, 0, 100, 100)
			if l.lastErr == nil {
				t.Errorf("first start with a wrong password: the request was accepted without partition counts")
			} else if !strings.Contains(l.lastErr.Error(), "authentication") {
				t.Errorf("refusal does not say authentication: %v", l.lastErr)
			}
			col.stop()

			// A good run learns the topic.
			col, _ = e.sendAndRead(t, c, good, l, name, 1000, 1500, secPad, 0)
			col.stop()

			// The password changes: records spill, the log says
			// authentication, mechanism and user.
			col = e.startCollector(bad)
			s = dial(t, col.otlp, 30, secPad)
			l.send(s, 2000, 4000, 100)
			want := seqRange(2000, 4000)
			requireStored(t, good.storage(), secPad, want, "wrong password")
			requireLogLines(t, log,
				[]string{"kafka did not take a batch", "authentication", mech, "alice"},
				[]string{"status", "authentication", mech, "alice"})
			col.stop()

			// Fixed and restarted: every record delivered once.
			col = e.startCollector(good)
			recs := l.readBack(c.Bootstrap(), name)
			tl := l.settle(recs, good.storage())
			if tl.duplicates > 0 {
				t.Errorf("%d duplicates: no send was in flight at a restart", tl.duplicates)
			}
		})
	}
}

// TestRealKafkaSecurityACL: bob may describe the topic but not write to
// it (TOPIC_AUTHORIZATION_FAILED). Records spill to disk and are retried;
// the log and the status name the topic, the principal and the Write ACL.
// Once Write is granted, everything spilled is replayed, once and in
// order per partition, without a restart. Without even Describe, the
// topic's partitions cannot be learnt and requests are refused to the
// client with an error that names the Describe ACL.
func TestRealKafkaSecurityACL(t *testing.T) {
	c := secure(t)
	adm, err := c.Admin()
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	grant := func(t *testing.T, name string, ops ...kadm.ACLOperation) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		b := kadm.NewACLs().Allow("User:bob").AllowHosts("*").Topics(name).
			Operations(ops...).ResourcePatternType(kadm.ACLPatternLiteral)
		res, err := adm.CreateACLs(ctx, b)
		if err != nil {
			t.Fatalf("create ACLs: %v", err)
		}
		for _, r := range res {
			if r.Err != nil {
				t.Fatalf("create ACL %v: %v", r, r.Err)
			}
		}
		t.Logf("granted User:bob %v on topic %s", ops, name)
	}

	t.Run("describe_only", func(t *testing.T) {
		e := newEnv(t)
		name := newTopic(t, c, 3, nil)
		grant(t, name, kadm.OpDescribe)
		conf := e.saslConfig(c, name, "SCRAM-SHA-256", "bob", realkafka.Users["bob"])
		log := e.path("collector.log")
		col := e.startCollector(conf)
		s := dial(t, col.otlp, 30, secPad)
		l := newLedger(t)
		l.send(s, 0, 2000, 100)
		if len(l.refused) > 0 {
			t.Errorf("%d records refused; with Describe the exporter knows the partitions and must spill: %v", len(l.refused), l.lastErr)
		}
		want := l.accepted()
		requireStored(t, conf.storage(), secPad, want, "no Write ACL")
		requireLogLines(t, log,
			[]string{"kafka did not take a batch", "Write", name, "User:bob"},
			[]string{"status", "Write", name, "User:bob"})
		// More records while the backlog waits: they queue behind it.
		l.send(s, 2000, 2500, 100)
		grant(t, name, kadm.OpWrite)
		start := time.Now()
		recs := newTopicConsumer(t, c.Bootstrap(), name).read(l.accepted(), time.Minute, 2*time.Second)
		t.Logf("replayed within %s of the grant", time.Since(start).Round(100*time.Millisecond))
		checkExactlyOnce(t, recs, l.accepted())
		checkOrder(t, recs)
		if line := waitLog(log, 5*time.Second, "exporter status: OK"); line == "" {
			t.Errorf("no log line says the status is OK again")
		}
		col.stop()
		l.settle(recs, conf.storage())
	})

	t.Run("no_acl", func(t *testing.T) {
		e := newEnv(t)
		name := newTopic(t, c, 3, nil)
		conf := e.saslConfig(c, name, "SCRAM-SHA-256", "bob", realkafka.Users["bob"])
		col := e.startCollector(conf)
		s := dial(t, col.otlp, 30, secPad)
		l := newLedger(t)
		if refusals := l.send(s, 0, 500, 100); refusals != 5 {
			t.Errorf("no ACL: %d of 5 requests refused, want all", refusals)
		}
		if l.lastErr != nil && !(strings.Contains(l.lastErr.Error(), "Describe") && strings.Contains(l.lastErr.Error(), name)) {
			t.Errorf("refusal does not name the Describe ACL on %s: %v", name, l.lastErr)
		}
		if dead := deadLetterSeqs(t, conf.storage()); len(dead) > 0 {
			t.Errorf("%d records dead-lettered: a topic bob may not see is not a topic that does not exist", len(dead))
		}
		t.Logf("before the grant: %d of 500 records refused to the client", len(l.refused))
		grant(t, name, kadm.OpDescribe, kadm.OpWrite)
		// The client retries what was refused, as an OTLP client does.
		deadline := time.Now().Add(30 * time.Second)
		for len(l.refused) > 0 && time.Now().Before(deadline) {
			var seqs []int
			for seq := range l.refused {
				seqs = append(seqs, seq)
			}
			sortInts(seqs)
			l.send(s, seqs[0], seqs[0]+100, 100)
			if len(l.refused) > 0 {
				time.Sleep(500 * time.Millisecond)
			}
		}
		l.send(s, 500, 1000, 100)
		recs := l.readBack(c.Bootstrap(), name)
		col.stop()
		l.settle(recs, conf.storage())
	})
}

// writeSelfSignedCA writes a self-signed CA certificate (PEM) that signed
// nothing the broker has, and returns its path.
func writeSelfSignedCA(t *testing.T, path string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "not the broker's CA", Organization: []string{"kafkabatcher e2e"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
