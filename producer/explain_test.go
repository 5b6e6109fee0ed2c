package producer

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// Real Kafka answers a produce without the Write ACL with
// TOPIC_AUTHORIZATION_FAILED; the error names the principal, the
// operation and the topic, and is not a retriable ErrUnavailable.
func TestProduceWithoutWriteACLNamesIt(t *testing.T) {
	c := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "t"),
		kfake.EnableSASL(), kfake.Superuser(SASLPlain, "bob", "pw"))
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		return errorResponse(req.(*kmsg.ProduceRequest), kerr.TopicAuthorizationFailed.Code, nil), nil, true
	})
	p := newProducer(t, Config{Brokers: c.ListenAddrs(),
		SASL: SASLConfig{Mechanism: SASLPlain, Username: "bob", Password: "pw"}})
	res := p.Produce(context.Background(), []*message.Batch{batchOf("t", 0, "x", 3, 10)})[0]
	t.Logf("error: %v", res.Err)
	if !errors.Is(res.Err, ErrAuthorization) || !errors.Is(res.Err, sarama.ErrTopicAuthorizationFailed) {
		t.Fatalf("err = %v, want ErrAuthorization wrapping TOPIC_AUTHORIZATION_FAILED", res.Err)
	}
	if errors.Is(res.Err, ErrUnavailable) {
		t.Fatalf("err %v also claims ErrUnavailable", res.Err)
	}
	for _, want := range []string{"User:bob", "Write ACL", `topic "t"`} {
		if !strings.Contains(res.Err.Error(), want) {
			t.Errorf("error %q lacks %q", res.Err, want)
		}
	}
	if res.Attempts != 1 || len(res.Remaining) != 3 {
		t.Fatalf("attempts %d remaining %d: the batch fails at once, whole", res.Attempts, len(res.Remaining))
	}
}

// Without Describe, Metadata answers TOPIC_AUTHORIZATION_FAILED for the
// topic: Refresh says the Describe ACL is missing (not "unknown topic").
func TestRefreshWithoutDescribeACLNamesIt(t *testing.T) {
	c := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	c.ControlKey(int16(kmsg.Metadata), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		r := req.(*kmsg.MetadataRequest)
		resp := r.ResponseKind().(*kmsg.MetadataResponse)
		host, port, _ := net.SplitHostPort(c.ListenAddrs()[0])
		b := kmsg.NewMetadataResponseBroker()
		b.NodeID, b.Host = 0, host
		n, _ := strconv.Atoi(port)
		b.Port = int32(n)
		resp.Brokers = append(resp.Brokers, b)
		resp.ControllerID = 0
		for _, rt := range r.Topics {
			mt := kmsg.NewMetadataResponseTopic()
			mt.Topic = rt.Topic
			mt.ErrorCode = kerr.TopicAuthorizationFailed.Code
			resp.Topics = append(resp.Topics, mt)
		}
		return resp, nil, true
	})
	p := newProducer(t, Config{Brokers: c.ListenAddrs()})
	err := p.Refresh(context.Background(), "t")
	t.Logf("error: %v", err)
	if !errors.Is(err, ErrAuthorization) || errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
		t.Fatalf("err = %v, want ErrAuthorization and not unknown topic", err)
	}
	if !strings.Contains(err.Error(), "Describe ACL") || !strings.Contains(err.Error(), "User:ANONYMOUS") {
		t.Fatalf("error %q does not name the Describe ACL and the principal", err)
	}
}

// A broker that refuses the request version (UNSUPPORTED_VERSION) gets an
// error naming protocol_version and what to set.
func TestProduceUnsupportedVersionNamesProtocolVersion(t *testing.T) {
	c := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		return errorResponse(req.(*kmsg.ProduceRequest), kerr.UnsupportedVersion.Code, nil), nil, true
	})
	p := newProducer(t, Config{Brokers: c.ListenAddrs(), Version: "2.0.0"})
	res := p.Produce(context.Background(), []*message.Batch{batchOf("t", 0, "x", 1, 10)})[0]
	t.Logf("error: %v", res.Err)
	if res.Err == nil || !strings.Contains(res.Err.Error(), "protocol_version 2.0.0") ||
		!strings.Contains(res.Err.Error(), "at least 2.1.0") {
		t.Fatalf("err = %v, want one naming protocol_version and what to set", res.Err)
	}
}

// A broker certificate the configured CAs do not trust: the error says to
// check tls.ca_file, fast and without retries.
func TestTLSUntrustedNamesCAFile(t *testing.T) {
	serverCfg, _ := testTLS(t)
	c := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "t"), kfake.TLS(serverCfg))
	p := newProducer(t, Config{Brokers: c.ListenAddrs(),
		TLS: &tls.Config{RootCAs: x509.NewCertPool(), MinVersion: tls.VersionTLS12}})
	res := p.Produce(context.Background(), []*message.Batch{batchOf("t", 0, "x", 1, 1)})[0]
	t.Logf("error: %v", res.Err)
	if !errors.Is(res.Err, ErrUnavailable) || !strings.Contains(res.Err.Error(), "check tls.ca_file") {
		t.Fatalf("err = %v, want ErrUnavailable saying to check tls.ca_file", res.Err)
	}
	err := p.Refresh(context.Background(), "t")
	if err == nil || !strings.Contains(err.Error(), "check tls.ca_file") {
		t.Fatalf("Refresh: %v, want a hint at tls.ca_file", err)
	}
}
