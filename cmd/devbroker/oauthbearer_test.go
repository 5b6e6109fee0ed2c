package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// tokenLogin is one line of the -oauthbearer-log file.
type tokenLogin struct {
	at    time.Time
	node  int32
	token string
}

func readTokenLog(t *testing.T, path string) []tokenLogin {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var out []tokenLogin
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		require.Len(t, fields, 3, "time, node, token: %q", sc.Text())
		at, err := time.Parse(time.RFC3339Nano, fields[0])
		require.NoError(t, err)
		node, err := strconv.ParseInt(fields[1], 10, 32)
		require.NoError(t, err)
		out = append(out, tokenLogin{at: at, node: int32(node), token: fields[2]})
	}
	require.NoError(t, sc.Err())
	return out
}

// numberedTokens hands out token-1, token-2, ... one per login.
type numberedTokens struct {
	mu sync.Mutex
	n  int
}

func (s *numberedTokens) next() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	return fmt.Sprintf("token-%d", s.n)
}

func TestBrokerOAuthBearerLogsEveryLoginAndReauthentication(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "tokens")
	start := time.Now()
	addrs, log, stop := stoppableBroker(t, "-addr", "127.0.0.1:0", "-oauthbearer-log", logPath, "-sasl-session-lifetime", "500ms")
	assert.Contains(t, log.String(), "SASL with OAUTHBEARER, sessions of 500ms")

	tokens := &numberedTokens{}
	cl := producer(t, addrs, kgo.SASL(oauth.Oauth(func(context.Context) (oauth.Auth, error) {
		return oauth.Auth{Token: tokens.next(), Extensions: map[string]string{"logicalCluster": "lkc-1"}}, nil
	})))
	// Each produce after the session's 85-95% re-authenticates first.
	produce(t, cl, defaultTopic, 0, 1)
	for range 3 {
		time.Sleep(600 * time.Millisecond)
		produce(t, cl, defaultTopic, 0, 1)
	}
	cl.Close()

	logins := readTokenLog(t, logPath)
	t.Logf("%d logins", len(logins))
	require.GreaterOrEqual(t, len(logins), 4, "a login and at least one re-authentication per session")
	seen := map[string]bool{}
	for _, l := range logins {
		assert.Equal(t, int32(0), l.node)
		assert.WithinRange(t, l.at, start, time.Now())
		assert.True(t, strings.HasPrefix(l.token, "token-"), l.token)
		assert.False(t, seen[l.token], "each login's own token: %s", l.token)
		seen[l.token] = true
	}
	code, out, errOut := dump(t, "-addr", addrs[0], "-user", "PLAIN:x:y")
	assert.Equal(t, 1, code, "a PLAIN login is refused: only OAUTHBEARER is offered: %s", out)
	assert.NotEmpty(t, errOut)

	require.Equal(t, 0, stop())
	assert.Regexp(t, fmt.Sprintf(`stopping: %d OAUTHBEARER logins on \d+ connections`, len(logins)), log.String())
}

func TestBrokerOAuthBearerReauthenticatesSarama(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "tokens")
	addrs, log, stop := stoppableBroker(t, "-addr", "127.0.0.1:0", "-oauthbearer-log", logPath, "-sasl-session-lifetime", "400ms")

	conf := sarama.NewConfig()
	conf.Version = sarama.V3_0_0_0
	conf.Producer.Return.Successes = true
	conf.Net.SASL.Enable = true
	conf.Net.SASL.Mechanism = sarama.SASLTypeOAuth
	conf.Net.SASL.Version = sarama.SASLHandshakeV1
	tokens := &numberedTokens{}
	conf.Net.SASL.TokenProvider = saramaTokens{tokens}
	p, err := sarama.NewSyncProducer(addrs, conf)
	require.NoError(t, err)
	for i := range 6 {
		_, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: defaultTopic, Partition: 0, Value: sarama.StringEncoder(strconv.Itoa(i))})
		require.NoError(t, err, "send %d: %s", i, log.String())
		time.Sleep(250 * time.Millisecond)
	}
	require.NoError(t, p.Close())

	logins := readTokenLog(t, logPath)
	// sarama logs in on the seed connection (metadata) and on the
	// leader's, then again on a connection's next request after 85-95% of
	// its 400ms session: over 1.5s of sends, at least two re-logins.
	assert.GreaterOrEqual(t, len(logins), 4, "%v", logins)
	var presented, given []string
	for i, l := range logins {
		presented = append(presented, l.token)
		given = append(given, fmt.Sprintf("token-%d", i+1))
	}
	assert.ElementsMatch(t, given, presented, "each login presented the token it asked the provider for")
	assert.Equal(t, len(logins), tokens.n)

	// More logins than connections: sarama logged in again on a connection
	// it had, through a new handshake (kfake allows it on a session with a
	// lifetime).
	require.Equal(t, 0, stop())
	m := regexp.MustCompile(`stopping: (\d+) OAUTHBEARER logins on (\d+) connections`).FindStringSubmatch(log.String())
	require.NotNil(t, m, log.String())
	conns, _ := strconv.Atoi(m[2])
	t.Logf("%s logins on %d connections", m[1], conns)
	assert.GreaterOrEqual(t, len(logins)-conns, 2, "re-authentications")
}

type saramaTokens struct{ src *numberedTokens }

func (s saramaTokens) Token() (*sarama.AccessToken, error) {
	return &sarama.AccessToken{Token: s.src.next()}, nil
}

// metadataErr is the error of one metadata request by a new client with
// opts, each try bounded.
func metadataErr(t *testing.T, addrs []string, opts ...kgo.Opt) error {
	t.Helper()
	cl := producer(t, addrs, append([]kgo.Opt{kgo.RequestRetries(0), kgo.RetryTimeout(time.Second)}, opts...)...)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err := cl.Request(ctx, kmsg.NewPtrMetadataRequest())
	return err
}

func TestBrokerOAuthBearerRefusesWhatItDoesNotOffer(t *testing.T) {
	addrs, log := startBroker(t, "-addr", "127.0.0.1:0", "-oauthbearer", "-user", "PLAIN:alice:secret")
	assert.Contains(t, log.String(), "SASL with 1 users and OAUTHBEARER")

	assert.NoError(t, metadataErr(t, addrs, kgo.SASL(oauth.Auth{Token: "abc.DEF-_~+/=="}.AsMechanism())))
	assert.NoError(t, metadataErr(t, addrs, kgo.SASL(plain.Auth{User: "alice", Pass: "secret"}.AsMechanism())), "-user logins still work")

	assert.Error(t, metadataErr(t, addrs), "no login, no metadata")
	err := metadataErr(t, addrs, kgo.SASL(scram.Auth{User: "alice", Pass: "secret"}.AsSha512Mechanism()))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "UNSUPPORTED_SASL_MECHANISM")
	err = metadataErr(t, addrs, kgo.SASL(oauth.Auth{Token: "two words"}.AsMechanism()))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "OAUTHBEARER: the bearer token is empty or not a b64token")
	assert.NoError(t, metadataErr(t, addrs, kgo.SASL(plain.Auth{User: "alice", Pass: "secret"}.AsMechanism())), "-user logins still work")
}
