package realkafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/client"
	"github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/kerberos"
	"github.com/twmb/franz-go/pkg/sasl/oauth"

	"github.com/kafkabatcher/kafkabatcherexporter/testbench/kdc"
	"github.com/kafkabatcher/kafkabatcherexporter/testbench/oidc"
)

// The bench's own check of the Security cluster's OAUTHBEARER and GSSAPI
// listeners, with franz-go as the client: the principals the bench makes
// can produce, a wrong secret, a forged token, a stale keytab and an
// unknown principal cannot. It starts a real 1-node cluster (about half a
// minute on two cores); without java, mvn or the KDC tools it skips, as the
// unit suite's other tool-bound tests do (make deps installs them).

var secure struct {
	once    sync.Once
	c       *Cluster
	err     error
	skip    bool
	elapsed time.Duration
}

func secureCluster(t *testing.T) *Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a real Kafka cluster")
	}
	secure.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		cache, err := CacheDir()
		if err != nil {
			secure.err = err
			return
		}
		dist, err := Fetch(ctx, cache, os.Stderr)
		if err != nil {
			secure.err, secure.skip = err, errors.Is(err, ErrMissingTool)
			return
		}
		if _, err := kdc.Tool("krb5kdc"); err != nil {
			secure.err, secure.skip = err, true
			return
		}
		dir, err := os.MkdirTemp("", "realkafka-auth-")
		if err != nil {
			secure.err = err
			return
		}
		start := time.Now()
		secure.c, secure.err = Start(ctx, dist, Options{Nodes: 1, Dir: dir, Security: true, Log: os.Stderr})
		secure.elapsed = time.Since(start)
	})
	if secure.skip {
		t.Skip(secure.err)
	}
	if secure.err != nil {
		t.Fatal(secure.err)
	}
	t.Logf("secure cluster started in %s", secure.elapsed.Round(time.Millisecond))
	return secure.c
}

func TestMain(m *testing.M) {
	code := m.Run()
	if secure.c != nil {
		secure.c.Close()
		if code == 0 {
			os.RemoveAll(secure.c.opts.Dir)
		} else {
			fmt.Fprintf(os.Stderr, "realkafka: the secure cluster's files are kept in %s\n", secure.c.opts.Dir)
		}
	}
	os.Exit(code)
}

const authTopic = "auth-check"

var topicOnce sync.Once

// produce produces one record with a client on seeds authenticating with
// mech, and returns the error.
func produce(t *testing.T, c *Cluster, seeds []string, mech sasl.Mechanism) error {
	return produceWithin(t, c, seeds, mech, 30*time.Second)
}

// refused produces as produce does, giving up after 5 s: for clients that
// are to be refused.
func refused(t *testing.T, c *Cluster, seeds []string, mech sasl.Mechanism) error {
	return produceWithin(t, c, seeds, mech, 5*time.Second)
}

func produceWithin(t *testing.T, c *Cluster, seeds []string, mech sasl.Mechanism, limit time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var terr error
	topicOnce.Do(func() { terr = c.CreateTopic(ctx, authTopic, 1, nil) })
	if terr != nil {
		t.Fatal(terr)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.SASL(mech), kgo.RequestRetries(1),
		kgo.RecordDeliveryTimeout(limit), kgo.RetryTimeout(limit))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	return cl.ProduceSync(ctx, &kgo.Record{Topic: authTopic, Value: []byte(t.Name())}).FirstErr()
}

// fetchToken gets a token from the OIDC server by the client-credentials
// grant.
func fetchToken(tokenURL, id, secret string) (string, error) {
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}
	resp, err := http.PostForm(tokenURL, form)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("token endpoint: %d %s", resp.StatusCode, body.Error)
	}
	return body.AccessToken, nil
}

func TestOAuthBearerListenerTakesTheOIDCServersTokensOnly(t *testing.T) {
	c := secureCluster(t)
	s := c.OIDC()
	before := s.Issued()
	mech := oauth.Oauth(func(context.Context) (oauth.Auth, error) {
		tok, err := fetchToken(s.TokenURL(), OAuthClientID, OAuthClientSecret)
		return oauth.Auth{Token: tok}, err
	})
	if err := produce(t, c, c.OAuthBootstrap(), mech); err != nil {
		t.Fatalf("produce with a token of the OIDC server: %v", err)
	}
	if s.Issued() == before {
		t.Errorf("no token issued")
	}

	if _, err := fetchToken(s.TokenURL(), OAuthClientID, "wrong"); err == nil || !strings.Contains(err.Error(), "invalid_client") {
		t.Errorf("wrong secret: %v, want invalid_client", err)
	}

	// A token with the right claims signed by another key.
	forger, err := oidc.Start(oidc.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer forger.Close()
	forger.AddClient(OAuthClientID, "x")
	forged, err := forger.Token(OAuthClientID, "")
	if err != nil {
		t.Fatal(err)
	}
	err = refused(t, c, c.OAuthBootstrap(), oauth.Auth{Token: forged}.AsMechanism())
	if err == nil {
		t.Errorf("a token of another server was accepted")
	} else {
		t.Logf("forged token refused: %v", err)
	}
}

// TestOAuthBearerListenerMakesConnectionsReauthenticate: a connection
// kept past OAuthReauth authenticates again (the per-listener
// connections.max.reauth.ms works), which the broker logs.
func TestOAuthBearerListenerMakesConnectionsReauthenticate(t *testing.T) {
	c := secureCluster(t)
	s := c.OIDC()
	mech := oauth.Oauth(func(context.Context) (oauth.Auth, error) {
		tok, err := fetchToken(s.TokenURL(), OAuthClientID, OAuthClientSecret)
		return oauth.Auth{Token: tok}, err
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.CreateTopic(ctx, "reauth-check", 1, nil); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.OAuthBootstrap()...), kgo.SASL(mech))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	before, err := c.CountLogLines("Beginning re-authentication")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(OAuthReauth + 5*time.Second)
	for time.Now().Before(deadline) {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "reauth-check", Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
	}
	after, err := c.CountLogLines("Beginning re-authentication")
	if err != nil {
		t.Fatal(err)
	}
	if after == before {
		t.Errorf("no re-authentication logged in %s of producing (connections.max.reauth.ms %d)", OAuthReauth+5*time.Second, OAuthReauth.Milliseconds())
	}
	t.Logf("%d re-authentications logged", after-before)
}

func TestKerberosListenerTakesKeytabsAndPasswordsOfItsPrincipalsOnly(t *testing.T) {
	c := secureCluster(t)
	k := c.KDC()
	cfg, err := config.Load(k.Krb5Conf())
	if err != nil {
		t.Fatal(err)
	}
	kerb := func(cl *client.Client) sasl.Mechanism {
		return kerberos.Auth{Client: cl, Service: KerberosServiceName}.AsMechanismWithClose()
	}
	kt, err := keytab.Load(c.KerberosKeytab())
	if err != nil {
		t.Fatal(err)
	}
	if err := produce(t, c, c.KerberosBootstrap(), kerb(client.NewWithKeytab(KerberosUser, k.Realm(), kt, cfg, client.DisablePAFXFAST(true)))); err != nil {
		t.Errorf("produce as %s with a keytab: %v", KerberosUser, err)
	}
	if err := produce(t, c, c.KerberosBootstrap(), kerb(client.NewWithPassword(KerberosUser, k.Realm(), Users[KerberosUser], cfg, client.DisablePAFXFAST(true)))); err != nil {
		t.Errorf("produce as %s with a password: %v", KerberosUser, err)
	}

	// A keytab whose key was replaced since.
	old, err := k.AddKeytabPrincipal("dave")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Keytab("dave"); err != nil {
		t.Fatal(err)
	}
	oldKT, err := keytab.Load(old)
	if err != nil {
		t.Fatal(err)
	}
	for name, cl := range map[string]*client.Client{
		"stale keytab":      client.NewWithKeytab("dave", k.Realm(), oldKT, cfg, client.DisablePAFXFAST(true)),
		"unknown principal": client.NewWithPassword("nobody", k.Realm(), "x", cfg, client.DisablePAFXFAST(true)),
		"wrong password":    client.NewWithPassword(KerberosUser, k.Realm(), "not-it", cfg, client.DisablePAFXFAST(true)),
	} {
		err := refused(t, c, c.KerberosBootstrap(), kerb(cl))
		if err == nil {
			t.Errorf("%s: produced", name)
		} else {
			t.Logf("%s refused: %v", name, err)
		}
	}
}
