package producer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/kafkabatcher/kafkabatcherexporter/internal/kfaketest"
	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// tokens is a TokenSource handing out tok-1, tok-2, ... (a new one per
// call) or failing with err.
type tokens struct {
	n   atomic.Int64
	mu  sync.Mutex
	err error
}

func (s *tokens) Token(context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return "", s.err
	}
	return fmt.Sprintf("tok-%d", s.n.Add(1)), nil
}

func (s *tokens) String() string { return "the test's tokens" }

// oauthCluster is a kfake cluster taking OAUTHBEARER logins whose tokens
// check accepts, with sessions of reauthMs (0: no re-authentication).
func oauthCluster(t *testing.T, reauthMs int, check func(node int32, token string) error) (*kfake.Cluster, *kfaketest.OAuthBearer) {
	o := kfaketest.NewOAuthBearer([]string{SASLPlain}, check)
	opts := append(o.Options(), kfake.NumBrokers(1), kfake.SeedTopics(2, "t"), kfake.Superuser(SASLPlain, "reader", "r"))
	if reauthMs > 0 {
		opts = append(opts, kfake.BrokerConfigs(map[string]string{"connections.max.reauth.ms": fmt.Sprint(reauthMs)}))
	}
	c := newCluster(t, opts...)
	o.Install(c)
	return c, o
}

// TestOAuthBearerTokensAtEveryLogin: every login, re-authentications
// included, presents a token from the source; records keep flowing.
func TestOAuthBearerTokensAtEveryLogin(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	c, o := oauthCluster(t, 150, func(_ int32, token string) error {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, token)
		return nil
	})
	src := &tokens{}
	p := newProducer(t, Config{Brokers: c.ListenAddrs(), SASL: SASLConfig{Mechanism: SASLOAuthBearer, TokenSource: src}})
	var want []message.Message
	deadline := time.Now().Add(20 * time.Second)
	for round := 0; o.Logins() < 6 || round < 10; round++ {
		if time.Now().After(deadline) {
			t.Fatalf("%d logins", o.Logins())
		}
		b := batchOf("t", 0, fmt.Sprintf("r%d", round), 10, 20)
		want = append(want, b.Messages...)
		produceOK(t, p, b)
	}
	got := consume(t, len(want), "t", kgo.SeedBrokers(c.ListenAddrs()...), kgo.SASL(plainAuth("reader", "r")))
	assertRecords(t, got[0], want)
	mu.Lock()
	defer mu.Unlock()
	for i, tok := range seen {
		if tok != fmt.Sprintf("tok-%d", i+1) {
			t.Fatalf("login %d presented %q, want tok-%d (all: %v)", i, tok, i+1, seen)
		}
	}
	if int(src.n.Load()) != len(seen) {
		t.Fatalf("source gave %d tokens, broker saw %d logins", src.n.Load(), len(seen))
	}
}

// TestOAuthBearerNoToken: a source that cannot give a token is an
// authentication error naming the source, for Refresh and Produce, and
// the batch comes back whole.
func TestOAuthBearerNoToken(t *testing.T) {
	c, _ := oauthCluster(t, 0, nil)
	src := &tokens{err: errors.New("token endpoint answered 401 Unauthorized")}
	p := newProducer(t, Config{Brokers: c.ListenAddrs(), SASL: SASLConfig{Mechanism: SASLOAuthBearer, TokenSource: src}})
	err := p.Refresh(context.Background(), "t")
	assertAuth(t, err, "the token from the test's tokens: token endpoint answered 401")
	res := p.Produce(context.Background(), []*message.Batch{batchOf("t", 0, "x", 3, 10)})[0]
	assertAuth(t, res.Err, "401")
	if len(res.Remaining) != 3 {
		t.Fatalf("remaining %d, want the whole batch", len(res.Remaining))
	}
}

// TestOAuthBearerTokenRefused: the broker refusing the token is an
// authentication error naming the source and the broker's reason.
func TestOAuthBearerTokenRefused(t *testing.T) {
	c, _ := oauthCluster(t, 0, func(int32, string) error { return errors.New("token expired") })
	p := newProducer(t, Config{Brokers: c.ListenAddrs(), SASL: SASLConfig{Mechanism: SASLOAuthBearer, TokenSource: &tokens{}}})
	assertAuth(t, p.Refresh(context.Background(), "t"), "the token from the test's tokens")
	assertAuth(t, p.Refresh(context.Background(), "t"), "token expired")
}

func assertAuth(t *testing.T, err error, want string) {
	t.Helper()
	t.Logf("error: %v", err)
	if !errors.Is(err, ErrAuthentication) {
		t.Fatalf("err = %v, want ErrAuthentication", err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not contain %q", err, want)
	}
}

func plainAuth(user, pass string) sasl.Mechanism {
	return plain.Auth{User: user, Pass: pass}.AsMechanism()
}
