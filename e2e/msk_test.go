//go:build e2e

package e2e

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
)

// The AWS MSK IAM test's credentials and region: static keys in the
// collector's environment, nothing else of the machine's AWS setup.
const (
	mskRegion    = "eu-west-1"
	mskAccessKey = "AKIAE2EKAFKABATCHER"
	mskSecretKey = "e2e-secret-access-key"
	mskLifetime  = 3 * time.Second // the devbroker's SASL session lifetime
)

// mskLogin is one OAUTHBEARER login the devbroker logged: when, and the
// presigned request its token encodes.
type mskLogin struct {
	at      time.Time
	token   string
	url     *url.URL
	query   url.Values
	date    time.Time     // X-Amz-Date
	expires time.Duration // X-Amz-Expires
}

// isolateAWSEnv gives the processes the test starts the static MSK
// credentials and nothing else: no profile, no role, no shared files (empty
// ones instead), no instance metadata.
func isolateAWSEnv(e *env) {
	e.t.Helper()
	for _, name := range []string{"aws-config", "aws-credentials"} {
		if err := os.WriteFile(e.path(name), nil, 0o600); err != nil {
			e.t.Fatal(err)
		}
	}
	for _, k := range []string{
		"AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME",
		"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
		"AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_STS", "AWS_REGION", "AWS_DEFAULT_REGION",
	} {
		e.t.Setenv(k, "")
	}
	e.t.Setenv("AWS_ACCESS_KEY_ID", mskAccessKey)
	e.t.Setenv("AWS_SECRET_ACCESS_KEY", mskSecretKey)
	e.t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	e.t.Setenv("AWS_CONFIG_FILE", e.path("aws-config"))
	e.t.Setenv("AWS_SHARED_CREDENTIALS_FILE", e.path("aws-credentials"))
}

// startOAuthBearerBroker runs the devbroker on 127.0.0.1:port with topic e2e
// of the given partitions, requiring SASL: OAUTHBEARER logins, written to
// tokenLog, with sessions of lifetime; and the PLAIN user reader (password
// reader) for the test's own consumer.
func (e *env) startOAuthBearerBroker(port, partitions int, tokenLog string, lifetime time.Duration) *broker {
	e.t.Helper()
	addr := loopback(port)
	log := e.path("devbroker.log")
	e.addShown(log)
	p := e.start("devbroker", log, binaries.devbroker, "-addr", addr, "-topic", fmt.Sprintf("%s:%d", topic, partitions),
		"-oauthbearer-log", tokenLog, "-sasl-session-lifetime", lifetime.String(), "-user", "PLAIN:reader:reader")
	waitListening(e.t, p, addr, brokerReady)
	return &broker{proc: p, addr: addr}
}

// connectCounter counts a client's connections to brokers.
type connectCounter struct{ n atomic.Int64 }

func (c *connectCounter) OnBrokerConnect(_ kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err == nil {
		c.n.Add(1)
	}
}

// newReaderConsumer reads the test topic from the start as the PLAIN user
// reader; conns counts its connections.
func newReaderConsumer(t *testing.T, brokerAddr string, conns *connectCounter) *consumer {
	t.Helper()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokerAddr),
		kgo.WithHooks(conns),
		kgo.SASL(plain.Auth{User: "reader", Pass: "reader"}.AsMechanism()),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &consumer{t: t, cl: cl}
}

// readMSKLogins reads the devbroker's token log and decodes each token as
// an MSK IAM token: a presigned request, base64 raw-URL-encoded.
func readMSKLogins(t *testing.T, path string) []mskLogin {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("token log: %v", err)
	}
	defer f.Close()
	var out []mskLogin
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 3 {
			t.Fatalf("token log line %q: want time, node, token", sc.Text())
		}
		at, err := time.Parse(time.RFC3339Nano, fields[0])
		if err != nil {
			t.Fatalf("token log line %q: %v", sc.Text(), err)
		}
		l := mskLogin{at: at, token: fields[2]}
		raw, err := base64.RawURLEncoding.DecodeString(l.token)
		if err != nil {
			t.Fatalf("login at %s: token %.40q... is not base64 raw-URL-encoded: %v", at, l.token, err)
		}
		if l.url, err = url.Parse(string(raw)); err != nil {
			t.Fatalf("login at %s: token is no URL: %v", at, err)
		}
		l.query = l.url.Query()
		if l.date, err = time.Parse("20060102T150405Z", l.query.Get("X-Amz-Date")); err != nil {
			t.Fatalf("login at %s: X-Amz-Date: %v", at, err)
		}
		secs, err := strconv.Atoi(l.query.Get("X-Amz-Expires"))
		if err != nil {
			t.Fatalf("login at %s: X-Amz-Expires: %v", at, err)
		}
		l.expires = time.Duration(secs) * time.Second
		out = append(out, l)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("token log: %v", err)
	}
	return out
}

// checkMSKLogin checks that l presented a kafka-cluster:Connect request
// for region, signed with accessKey, within the token's validity.
func checkMSKLogin(t *testing.T, l mskLogin, region, accessKey string) {
	t.Helper()
	q := l.query
	where := fmt.Sprintf("login at %s", l.at.Format(time.RFC3339Nano))
	if l.url.Scheme != "https" || l.url.Host != "kafka."+region+".amazonaws.com" {
		t.Errorf("%s: token is for %s://%s, want https://kafka.%s.amazonaws.com", where, l.url.Scheme, l.url.Host, region)
	}
	if got := q.Get("Action"); got != "kafka-cluster:Connect" {
		t.Errorf("%s: Action %q, want kafka-cluster:Connect", where, got)
	}
	cred := q.Get("X-Amz-Credential")
	if !strings.HasPrefix(cred, accessKey+"/") || !strings.HasSuffix(cred, "/"+region+"/kafka-cluster/aws4_request") {
		t.Errorf("%s: X-Amz-Credential %q, want %s/<day>/%s/kafka-cluster/aws4_request", where, cred, accessKey, region)
	}
	if q.Get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256" || len(q.Get("X-Amz-Signature")) != 64 {
		t.Errorf("%s: not SigV4-signed: algorithm %q, signature %q", where, q.Get("X-Amz-Algorithm"), q.Get("X-Amz-Signature"))
	}
	if !strings.HasPrefix(q.Get("User-Agent"), "aws-msk-iam-sasl-signer-go/") {
		t.Errorf("%s: User-Agent %q", where, q.Get("User-Agent"))
	}
	if q.Get("X-Amz-Security-Token") != "" {
		t.Errorf("%s: a session token, but the credentials were long-term keys", where)
	}
	// X-Amz-Date is in whole seconds: the signing was at or after it.
	if l.at.Before(l.date) || !l.at.Before(l.date.Add(l.expires)) {
		t.Errorf("%s: token signed at %s for %s: presented outside its validity", where, l.date.Format(time.RFC3339), l.expires)
	}
}

// TestMSKIAMReauthenticatesWithSignedTokens runs the collector with
// auth.sasl.mechanism AWS_MSK_IAM_OAUTHBEARER against a devbroker that
// takes OAUTHBEARER logins with sessions of 3s, sends records for five
// sessions, and checks the devbroker's token log: every login presented an
// MSK IAM token (a presigned kafka-cluster:Connect request for eu-west-1
// signed with the environment's access key) within its validity, the
// collector logged in again on its connections as sessions ended
// (KIP-368), and every record arrived once.
func TestMSKIAMReauthenticatesWithSignedTokens(t *testing.T) {
	const per = 50
	e := newEnv(t)
	isolateAWSEnv(e)
	tokenLog := e.path("oauthbearer-tokens.log")
	b := e.startOAuthBearerBroker(freePort(t), 3, tokenLog, mskLifetime)

	conf := e.newConfig(b.addr)
	conf.set("auth.sasl", map[string]any{
		"mechanism": "AWS_MSK_IAM_OAUTHBEARER",
		"aws_msk":   map[string]any{"region": mskRegion},
	})
	c := e.startCollector(conf)
	s := dial(t, c.otlp, 16, 20)

	start := time.Now()
	n := 0
	for time.Since(start) < 5*mskLifetime {
		s.sendAll(n, n+per, per)
		n += per
		time.Sleep(100 * time.Millisecond)
	}
	sent := time.Since(start)
	readerConns := &connectCounter{}
	reader := newReaderConsumer(t, b.addr, readerConns)
	recs := reader.read(seqRange(0, n), 60*time.Second, time.Second)
	checkExactlyOnce(t, recs, seqRange(0, n))
	reader.cl.Close()

	if !c.stop() {
		t.Error("collector did not stop by itself")
	}
	if !b.stop() {
		t.Error("devbroker did not stop by itself")
	}
	logins := readMSKLogins(t, tokenLog)
	if len(logins) == 0 {
		t.Fatal("no OAUTHBEARER login in the devbroker's token log")
	}
	tokens := map[string]bool{}
	for _, l := range logins {
		checkMSKLogin(t, l, mskRegion, mskAccessKey)
		tokens[l.token] = true
	}

	// The devbroker counts every connection it accepted: the harness's
	// readiness probe (one), the test consumer's (counted by its hook) and
	// the collector's. Each of the collector's logs in when it opens; its
	// logins beyond that are logins again on a connection that had one.
	brokerLog, err := os.ReadFile(e.path("devbroker.log"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`stopping: (\d+) OAUTHBEARER logins on (\d+) connections`).FindSubmatch(brokerLog)
	if m == nil {
		t.Fatal("the devbroker's stop line with its logins and connections is missing")
	}
	brokerLogins, _ := strconv.Atoi(string(m[1]))
	conns, _ := strconv.Atoi(string(m[2]))
	if brokerLogins != len(logins) {
		t.Errorf("the devbroker counted %d logins, its token log holds %d", brokerLogins, len(logins))
	}
	collectorConns := conns - 1 - int(readerConns.n.Load())
	reauths := len(logins) - collectorConns
	// A connection with requests at least every 500ms (batch.max_wait)
	// logs in again on its first request after 85-95% of each session:
	// about five times in five sessions. Three needs no luck.
	if collectorConns < 1 || reauths < 3 {
		t.Errorf("%d logins on the collector's %d connections: %d re-authentications over %s of sessions of %s, want at least 3",
			len(logins), collectorConns, reauths, sent.Round(time.Millisecond), mskLifetime)
	}
	// Logins keep coming while records are sent: sarama logs in again on
	// a connection's first request after 85-95% of its session, so no
	// stretch longer than a session and the request cadence (batch.max_wait
	// 500ms, with slack) goes without one.
	const cadence = time.Second
	last := logins[0].at
	for _, l := range append(logins[1:], mskLogin{at: start.Add(sent)}) {
		if gap := l.at.Sub(last); gap > mskLifetime+cadence {
			t.Errorf("no login from %s to %s after the first send (%s, sessions are %s)",
				last.Sub(start).Round(10*time.Millisecond), l.at.Sub(start).Round(10*time.Millisecond), gap.Round(10*time.Millisecond), mskLifetime)
		}
		last = l.at
	}
	var at []string
	for _, l := range logins {
		at = append(at, l.at.Sub(start).Round(10*time.Millisecond).String())
	}
	t.Logf("logins at %s after the first send", strings.Join(at, ", "))
	t.Logf("%d records sent in %s, %d read back; %d OAUTHBEARER logins on the collector's %d connections: %d re-authentications; %d distinct tokens",
		n, sent.Round(time.Millisecond), len(recs), len(logins), collectorConns, reauths, len(tokens))
}
