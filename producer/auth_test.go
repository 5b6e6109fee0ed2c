package producer

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

func TestSASL(t *testing.T) {
	mechanisms := map[string]func(user, pass string) sasl.Mechanism{
		SASLPlain: func(u, p string) sasl.Mechanism { return plain.Auth{User: u, Pass: p}.AsMechanism() },
		SASLSCRAMSHA256: func(u, p string) sasl.Mechanism {
			return scram.Auth{User: u, Pass: p}.AsSha256Mechanism()
		},
		SASLSCRAMSHA512: func(u, p string) sasl.Mechanism {
			return scram.Auth{User: u, Pass: p}.AsSha512Mechanism()
		},
	}
	for mech, kgoMech := range mechanisms {
		t.Run(mech, func(t *testing.T) {
			c := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "t"),
				kfake.EnableSASL(), kfake.Superuser(mech, "alice", "s3cret"))

			p := newProducer(t, Config{Brokers: c.ListenAddrs(),
				SASL: SASLConfig{Mechanism: mech, Username: "alice", Password: "s3cret"}})
			if err := p.Refresh(context.Background(), "t"); err != nil {
				t.Fatalf("Refresh: %v", err)
			}
			b := batchOf("t", 0, mech, 20, 30)
			produceOK(t, p, b)
			got := consume(t, 20, "t", kgo.SeedBrokers(c.ListenAddrs()...), kgo.SASL(kgoMech("alice", "s3cret")))
			assertRecords(t, got[0], b.Messages)

			// kfake drops the connection on bad credentials.
			bad := newProducer(t, Config{Brokers: c.ListenAddrs(),
				SASL: SASLConfig{Mechanism: mech, Username: "alice", Password: "wrong"}})
			start := time.Now()
			err := bad.Refresh(context.Background(), "t")
			assertClosedOnLogin(t, err, mech)
			res := bad.Produce(context.Background(), []*message.Batch{batchOf("t", 0, "x", 2, 10)})[0]
			assertClosedOnLogin(t, res.Err, mech)
			if len(res.Remaining) != 2 {
				t.Fatalf("remaining = %d, want the whole batch", len(res.Remaining))
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("failing login took %v", d)
			}
		})
	}
}

func assertClosedOnLogin(t *testing.T, err error, mech string) {
	t.Helper()
	t.Logf("error: %v", err)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "check the SASL "+mech+` credentials of user "alice"`) {
		t.Fatalf("error %q does not point at the credentials", msg)
	}
}

// A real Kafka broker answers bad credentials with SASL_AUTHENTICATION_FAILED
// instead of closing the connection; this control answers the same way.
func TestSASLAuthenticationFailedAnswer(t *testing.T) {
	c := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "t"),
		kfake.EnableSASL(), kfake.Superuser(SASLPlain, "alice", "s3cret"))
	c.ControlKey(int16(kmsg.SASLAuthenticate), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		r := req.(*kmsg.SASLAuthenticateRequest)
		if string(r.SASLAuthBytes) == "\x00alice\x00s3cret" {
			return nil, nil, false
		}
		resp := r.ResponseKind().(*kmsg.SASLAuthenticateResponse)
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		msg := "Authentication failed: Invalid username or password"
		resp.ErrorMessage = &msg
		return resp, nil, true
	})

	good := newProducer(t, Config{Brokers: c.ListenAddrs(),
		SASL: SASLConfig{Mechanism: SASLPlain, Username: "alice", Password: "s3cret"}})
	produceOK(t, good, batchOf("t", 0, "ok", 3, 10))

	bad := newProducer(t, Config{Brokers: c.ListenAddrs(),
		SASL: SASLConfig{Mechanism: SASLPlain, Username: "alice", Password: "wrong"}})
	assertAuthError(t, bad.Refresh(context.Background(), "t"), SASLPlain)
	res := bad.Produce(context.Background(), []*message.Batch{batchOf("t", 0, "x", 2, 10)})[0]
	assertAuthError(t, res.Err, SASLPlain)
	if res.Attempts != 1 || len(res.Remaining) != 2 {
		t.Fatalf("attempts %d remaining %d: an auth failure is not retried", res.Attempts, len(res.Remaining))
	}
	if !strings.Contains(res.Err.Error(), "Invalid username or password") {
		t.Fatalf("error %q lacks the broker's message", res.Err)
	}
}

func assertAuthError(t *testing.T, err error, mech string) {
	t.Helper()
	t.Logf("error: %v", err)
	if !errors.Is(err, ErrAuthentication) || !errors.Is(err, sarama.ErrSASLAuthenticationFailed) {
		t.Fatalf("err = %v, want ErrAuthentication wrapping SASL_AUTHENTICATION_FAILED", err)
	}
	if errors.Is(err, ErrUnavailable) {
		t.Fatalf("auth error %v also claims ErrUnavailable", err)
	}
	if msg := err.Error(); !strings.Contains(msg, mech) || !strings.Contains(msg, `"alice"`) {
		t.Fatalf("error %q does not name mechanism and user", msg)
	}
}

func TestTLS(t *testing.T) {
	serverCfg, rootCAs := testTLS(t)
	c := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "t"), kfake.TLS(serverCfg))

	p := newProducer(t, Config{Brokers: c.ListenAddrs(), TLS: &tls.Config{RootCAs: rootCAs, MinVersion: tls.VersionTLS12}})
	b := batchOf("t", 0, "tls", 10, 30)
	produceOK(t, p, b)
	got := consume(t, 10, "t", kgo.SeedBrokers(c.ListenAddrs()...), kgo.DialTLSConfig(&tls.Config{RootCAs: rootCAs}))
	assertRecords(t, got[0], b.Messages)

	// A client that does not trust the CA is refused, quickly.
	untrusted := newProducer(t, Config{Brokers: c.ListenAddrs(), Timeout: 5 * time.Second,
		TLS: &tls.Config{RootCAs: x509.NewCertPool(), MinVersion: tls.VersionTLS12}})
	start := time.Now()
	res := untrusted.Produce(context.Background(), []*message.Batch{batchOf("t", 0, "x", 1, 1)})[0]
	var unknownAuthority x509.UnknownAuthorityError
	if res.Err == nil || !errors.As(res.Err, &unknownAuthority) {
		t.Fatalf("err = %v, want an unknown-authority TLS error", res.Err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("TLS failure took %v", d)
	}
}

// testTLS makes a CA and a server certificate for 127.0.0.1 signed by it.
func testTLS(t *testing.T) (*tls.Config, *x509.CertPool) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kafkabatcher test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		MinVersion:   tls.VersionTLS12,
	}, pool
}
