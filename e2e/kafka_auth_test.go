//go:build e2e

package e2e

import (
	"crypto/rand"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kafkabatcher/kafkabatcherexporter/testbench/realkafka"
)

// OAUTHBEARER and GSSAPI on the shared secure cluster: its OAUTH listener
// verifies RS256 JWTs of the bench's OIDC server (tokens live 30 s, the
// listener re-authenticates connections every 10 s), its KERBEROS listener
// takes tickets of the bench's MIT KDC. Records are read back through the
// PLAINTEXT listener (a super user).

// oauthConfig is the suite's config on the OAUTHBEARER listener, getting
// tokens from the OIDC server by the client-credentials grant as the
// bench's registered client, with secret.
func (e *env) oauthConfig(c *realkafka.Cluster, topic, secret string) *cfg {
	conf := e.kafkaConfig(c, topic)
	conf.set("brokers", c.OAuthBootstrap())
	conf.set("auth.sasl", map[string]any{
		"mechanism": "OAUTHBEARER",
		"oauthbearer": map[string]any{
			"token_url":     c.OIDC().TokenURL(),
			"client_id":     realkafka.OAuthClientID,
			"client_secret": secret,
		},
	})
	return conf
}

// TestRealKafkaOAuthBearerTokenFile logs in with a token a platform keeps
// in a file (auth.sasl.oauthbearer.token_file), read at every login: the
// first token lets records through; replaced by one the broker refuses
// (not a JWT), the listener's next re-authentication fails and records go
// to disk; a good token written to the file drains
// them, without a restart. Every record arrives once, in order.
func TestRealKafkaOAuthBearerTokenFile(t *testing.T) {
	c := secure(t)
	e := newEnv(t)
	name := newTopic(t, c, 3, nil)
	tokenFile := e.path("kafka-token")
	writeToken := func(tok string) {
		t.Helper()
		if err := os.WriteFile(tokenFile, []byte(tok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tok, err := c.OIDC().Token(realkafka.OAuthClientID, "")
	if err != nil {
		t.Fatal(err)
	}
	writeToken(tok)
	conf := e.kafkaConfig(c, name)
	conf.set("brokers", c.OAuthBootstrap())
	conf.set("auth.sasl", map[string]any{"mechanism": "OAUTHBEARER", "oauthbearer": map[string]any{"token_file": tokenFile}})
	conf.set("temp_storage.retry_interval", "1s")
	l := newLedger(t)
	col := e.startCollector(conf)
	s := dial(t, col.otlp, 30, secPad)
	l.send(s, 0, 1000, 100)
	recs := newTopicConsumer(t, c.Bootstrap(), name).read(seqRange(0, 1000), time.Minute, 0)
	checkExactlyOnce(t, recs, seqRange(0, 1000))

	// A token the broker refuses: garbage in the file. Records flow until
	// a connection's session (10 s) ends, then spill.
	writeToken("not-a-jwt")
	deadline := time.Now().Add(time.Minute)
	sent := 1000
	for findLine(e.path("collector.log"), "kafka did not take a batch") == "" {
		if time.Now().After(deadline) {
			t.Fatalf("no batch spilled within a minute of a bad token (sent %d)", sent)
		}
		l.send(s, sent, sent+100, 100)
		sent += 100
		time.Sleep(200 * time.Millisecond)
	}
	requireLogLines(t, e.path("collector.log"), []string{"kafka did not take a batch", "authentication", "token file " + tokenFile})

	// A good token again: the backlog drains without a restart.
	tok, err = c.OIDC().Token(realkafka.OAuthClientID, "")
	if err != nil {
		t.Fatal(err)
	}
	writeToken(tok)
	recs = l.readBack(c.Bootstrap(), name)
	col.stop()
	tl := l.settle(recs, conf.storage())
	t.Logf("OAUTHBEARER token file: sent %d, arrived %d, refused %d, duplicates %d", tl.sent, tl.arrived, tl.refused, tl.duplicates)
	if tl.duplicates > 0 {
		t.Errorf("%d duplicates", tl.duplicates)
	}
}

// kerberosConfig is the suite's config on the GSSAPI listener with the
// given auth.kerberos settings besides service_name, realm and config_file.
func (e *env) kerberosConfig(c *realkafka.Cluster, topic string, kerberos map[string]any) *cfg {
	conf := e.kafkaConfig(c, topic)
	conf.set("brokers", c.KerberosBootstrap())
	k := map[string]any{
		"service_name": realkafka.KerberosServiceName,
		"realm":        c.KDC().Realm(),
		"config_file":  c.KDC().Krb5Conf(),
	}
	for key, v := range kerberos {
		k[key] = v
	}
	conf.set("auth.kerberos", k)
	return conf
}

// reauthLine is the broker's debug line for each re-authentication of a
// connection (KIP-368), on every SASL listener.
const reauthLine = "Beginning re-authentication"

// TestRealKafkaOAuthBearer produces 50,000 records over about two minutes
// (100 every 240 ms) through the OAUTHBEARER listener while tokens expire
// every 30 s and the broker makes connections re-authenticate every 10 s:
// every record arrives once and in order, the OIDC server issued fresh
// tokens along the way, the broker logged re-authentications, and nothing
// was spilled to disk.
func TestRealKafkaOAuthBearer(t *testing.T) {
	c := secure(t)
	e := newEnv(t)
	name := newTopic(t, c, 3, nil)
	conf := e.oauthConfig(c, name, realkafka.OAuthClientSecret)
	log := e.path("collector.log")
	l := newLedger(t)
	issued0 := c.OIDC().Issued()
	reauth0, err := c.CountLogLines(reauthLine)
	if err != nil {
		t.Fatal(err)
	}

	col := e.startCollector(conf)
	s := dial(t, col.otlp, 30, secPad)
	const n, per, every = 50_000, 100, 240 * time.Millisecond
	start := time.Now()
	for i, from := 0, 0; from < n; i, from = i+1, from+per {
		l.send(s, from, from+per, per)
		time.Sleep(time.Until(start.Add(time.Duration(i+1) * every)))
	}
	sendTime := time.Since(start)
	recs := newTopicConsumer(t, c.Bootstrap(), name).read(l.accepted(), time.Minute, 2*time.Second)
	checkExactlyOnce(t, recs, seqRange(0, n))
	checkOrder(t, recs)
	stored := storedSeqs(t, conf.storage(), secPad)
	col.stop()
	tl := l.settle(recs, conf.storage())
	t.Logf("OAUTHBEARER: sent %d records in %s, %d arrived, %d refused, %d duplicates",
		tl.sent, sendTime.Round(100*time.Millisecond), tl.arrived, tl.refused, tl.duplicates)

	tokens := c.OIDC().Issued() - issued0
	reauth1, err := c.CountLogLines(reauthLine)
	if err != nil {
		t.Fatal(err)
	}
	reauths := reauth1 - reauth0
	t.Logf("OAUTHBEARER: the OIDC server issued %d tokens (lifetime %s); the broker logged %d re-authentications (connections.max.reauth.ms %d)",
		tokens, realkafka.OAuthTokenLifetime, reauths, realkafka.OAuthReauth.Milliseconds())
	// Two minutes of 30 s tokens: at least one token per lifetime.
	if want := int64(sendTime / realkafka.OAuthTokenLifetime); tokens < want {
		t.Errorf("the OIDC server issued %d tokens in %s, want at least %d (tokens live %s: they must be refreshed)",
			tokens, sendTime.Round(time.Second), want, realkafka.OAuthTokenLifetime)
	}
	if want := int(sendTime / realkafka.OAuthReauth / 2); reauths < want {
		t.Errorf("the broker logged %d re-authentications in %s, want at least %d (sessions end every %s)",
			reauths, sendTime.Round(time.Second), want, realkafka.OAuthReauth)
	}
	if len(stored) > 0 {
		t.Errorf("%d records were written to the temp storage: nothing should spill", len(stored))
	}
	if line := findLine(log, "kafka did not take a batch"); line != "" {
		t.Errorf("a batch was not taken: %s", line)
	}
}

// TestRealKafkaOAuthBearerWrongSecret: with a wrong client secret the
// token endpoint refuses the client; with the topic's partitions known
// the records are accepted and go to disk, and the log says a batch was
// not taken because OAUTHBEARER authentication failed, naming the token
// endpoint and its answer (invalid_client). Restarted with the right
// secret, every record is delivered once.
func TestRealKafkaOAuthBearerWrongSecret(t *testing.T) {
	c := secure(t)
	e := newEnv(t)
	name := newTopic(t, c, 3, nil)
	good := e.oauthConfig(c, name, realkafka.OAuthClientSecret)
	bad := e.oauthConfig(c, name, "not-the-secret")
	log := e.path("collector.log")
	tokenURL := c.OIDC().TokenURL()
	l := newLedger(t)

	// A good run learns the topic.
	col, _ := e.sendAndRead(t, c, good, l, name, 0, 500, secPad, 0)
	col.stop()

	// The secret is wrong: records spill; the log names the token
	// endpoint and says authentication.
	refused0 := c.OIDC().Refused()
	col = e.startCollector(bad)
	l.sendStored(dial(t, col.otlp, 30, secPad), 1000, 3000, good.storage(), "wrong client secret")
	requireLogLines(t, log, []string{"kafka did not take a batch", "authentication", "OAUTHBEARER", tokenURL, "invalid_client"})
	if r := c.OIDC().Refused() - refused0; r == 0 {
		t.Errorf("the token endpoint refused no request")
	} else {
		t.Logf("the token endpoint refused %d requests", r)
	}
	col.stop()

	// The right secret, restarted: every record delivered once.
	col = e.startCollector(good)
	recs := l.readBack(c.Bootstrap(), name)
	col.stop()
	tl := l.settle(recs, good.storage())
	if tl.duplicates > 0 {
		t.Errorf("%d duplicates: no send was in flight at a restart", tl.duplicates)
	}
	t.Logf("OAUTHBEARER wrong secret: sent %d, arrived %d, refused %d, duplicates %d", tl.sent, tl.arrived, tl.refused, tl.duplicates)
}

// TestRealKafkaKerberos produces 10,000 records through the GSSAPI
// listener as alice, with a keytab and with a password: each arrives once
// and in order.
func TestRealKafkaKerberos(t *testing.T) {
	c := secure(t)
	for _, tc := range []struct {
		name     string
		kerberos map[string]any
		mech     string // auth.sasl.mechanism; "" leaves it to auth.kerberos
	}{
		{"keytab", map[string]any{"use_keytab": true, "username": realkafka.KerberosUser, "keytab_file": c.KerberosKeytab()}, ""},
		{"password", map[string]any{"use_keytab": false, "username": realkafka.KerberosUser, "password": realkafka.Users[realkafka.KerberosUser]}, "GSSAPI"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			name := newTopic(t, c, 3, nil)
			conf := e.kerberosConfig(c, name, tc.kerberos)
			if tc.mech != "" {
				conf.set("auth.sasl.mechanism", tc.mech)
			}
			tl := e.deliverOnce(t, c, conf, name, 10_000, secPad)
			t.Logf("GSSAPI %s: sent %d, arrived %d, refused %d, duplicates %d", tc.name, tl.sent, tl.arrived, tl.refused, tl.duplicates)
		})
	}
}

// TestRealKafkaKerberosRefused: a keytab of another principal, a keytab
// whose key was replaced since (an old kvno) and a principal the KDC does
// not know cannot log in; on a first start (no partition counts known)
// requests are refused to the client, and the refusal or the log names
// Kerberos, the principal and the cause (no key for it in the keytab, the
// KDC's PREAUTH_FAILED, CLIENT_NOT_FOUND). No record is lost: each is refused or on
// disk.
func TestRealKafkaKerberosRefused(t *testing.T) {
	c := secure(t)
	k := c.KDC()
	// Principals of their own: the cluster's KDC outlives a run (-count).
	suffix := strings.ToLower(rand.Text()[:8])
	mallory, dave := "mallory-"+suffix, "dave-"+suffix
	other, err := k.AddKeytabPrincipal(mallory)
	if err != nil {
		t.Fatal(err)
	}
	stale, err := k.AddKeytabPrincipal(dave)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Keytab(dave); err != nil { // a new key: stale holds the old one
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, principal string
		kerberos        map[string]any
		cause           string // what gokrb5 or the KDC says
	}{
		{"other_principals_keytab", realkafka.KerberosUser,
			map[string]any{"use_keytab": true, "username": realkafka.KerberosUser, "keytab_file": other}, "matching key not found in keytab"},
		{"old_kvno", dave, map[string]any{"use_keytab": true, "username": dave, "keytab_file": stale}, "PREAUTH_FAILED"},
		{"unknown_principal", "nobody", map[string]any{"use_keytab": false, "username": "nobody", "password": "x"}, "CLIENT_NOT_FOUND"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			name := newTopic(t, c, 3, nil)
			conf := e.kerberosConfig(c, name, tc.kerberos)
			log := e.path("collector.log")
			col := e.startCollector(conf)
			s := dial(t, col.otlp, 30, secPad)
			l := newLedger(t)
			refusals := l.send(s, 0, 500, 100)
			principal := tc.principal + "@" + k.Realm()
			named := func(text string) bool {
				low := strings.ToLower(text)
				return strings.Contains(low, "kerberos") && strings.Contains(text, principal) && strings.Contains(text, tc.cause)
			}
			switch {
			case l.lastErr != nil && named(l.lastErr.Error()):
				t.Logf("refusal: %v", l.lastErr)
			default:
				if line := waitLog(log, 20*time.Second, "kerberos", principal, tc.cause); line != "" {
					t.Logf("log: %s", line)
				} else {
					t.Errorf("neither the refusal (%v) nor a log line names Kerberos, %s and %q", l.lastErr, principal, tc.cause)
				}
			}
			if refusals != 5 {
				t.Errorf("first start, %s: %d of 5 requests refused, want all", tc.name, refusals)
			}
			if acc := l.accepted(); len(acc) > 0 {
				requireStored(t, conf.storage(), secPad, acc, "accepted while refused by Kerberos")
			}
			recs := newTopicConsumer(t, c.Bootstrap(), name).read(nil, 2*time.Second, 0)
			if len(recs) > 0 {
				t.Errorf("%d records in Kafka without a login", len(recs))
			}
			col.stop()
			t.Logf("GSSAPI refused (%s): sent %d, refused %d, accepted and on disk %d, in Kafka %d",
				tc.name, len(l.sent), len(l.refused), len(l.accepted()), len(recs))
		})
	}
}
