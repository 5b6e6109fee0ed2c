package kafkabatcherexporter

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"golang.org/x/oauth2"

	"github.com/kafkabatcher/kafkabatcherexporter/internal/kfaketest"
	"github.com/kafkabatcher/kafkabatcherexporter/internal/metadatatest"
	"github.com/kafkabatcher/kafkabatcherexporter/logmsg"
)

// oauthCluster is a broker with topic otlp_logs taking OAUTHBEARER logins
// whose token is *good, with sessions of 100 ms (KIP-368), so every
// connection logs in again several times a second; tests read with the
// PLAIN login reader:r.
func oauthCluster(t *testing.T, good *atomic.Value) *kfake.Cluster {
	o := kfaketest.NewOAuthBearer([]string{"PLAIN"}, func(_ int32, token string) error {
		if token != good.Load().(string) {
			return errors.New("invalid token")
		}
		return nil
	})
	opts := append(o.Options(), kfake.Superuser("PLAIN", "reader", "r"), kfake.BrokerConfigs(map[string]string{"connections.max.reauth.ms": "100"}))
	c := newCluster(t, 3, "otlp_logs", opts...)
	o.Install(c)
	return c
}

// TestOAuthBearerTokenFileRefusedThenRenewed: a token the brokers stop
// taking (found at a re-authentication) sends the records to disk, with
// the failure logged as authentication naming the token file; once the
// platform writes a good token to the file, the backlog is delivered
// without a restart, each record once, in order.
func TestOAuthBearerTokenFileRefusedThenRenewed(t *testing.T) {
	var good atomic.Value
	good.Store("token-1")
	c := oauthCluster(t, &good)
	tokenFile := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("token-1\n"), 0o600))
	cfg := testConfig(t, c.ListenAddrs())
	cfg.Encoding = logmsg.EncodingRaw
	cfg.TempStorage.RetryInterval = 50 * time.Millisecond
	cfg.Auth = AuthConfig{SASL: SASLConfig{Mechanism: "OAUTHBEARER", OAuthBearer: OAuthBearerConfig{TokenFile: tokenFile}}}
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	set, logs := logged(metadatatest.NewSettings(tt))
	exp := run(t, cfg, set)
	waitPartitions(t, exp, "otlp_logs", 3)
	require.NoError(t, exp.consumeLogs(context.Background(), seqLogs(0, 100, 3)))
	waitRecords(t, c, "otlp_logs", 100, 10*time.Second)

	// The brokers now want token-2; the file still holds token-1. Records
	// flow until a connection's session ends and its login is refused.
	good.Store("token-2")
	sent := 100
	waitFor(t, 10*time.Second, func() bool {
		require.NoError(t, exp.consumeLogs(context.Background(), seqLogs(sent, 10, 3)))
		sent += 10
		return counter(t, tt, "otelcol_kafkabatcher_records_spilled") > 0
	}, "no records spilled")
	inKafka := totalRecords(c, "otlp_logs")
	t.Logf("%d records sent, %d in Kafka before the login was refused", sent, inKafka)
	notTaken := logs.FilterMessage("kafka did not take a batch").All()
	require.NotEmpty(t, notTaken)
	err := notTaken[0].ContextMap()["error"]
	require.Contains(t, err, "kafka authentication failed")
	require.Contains(t, err, "token file "+tokenFile)
	t.Logf("logged: %s", err)
	require.Less(t, inKafka, int64(sent))

	require.NoError(t, os.WriteFile(tokenFile, []byte("token-2\n"), 0o600))
	waitFor(t, 10*time.Second, func() bool { return exp.store.Len() == 0 }, "backlog replayed")
	requireAllInOrder(t, c, "otlp_logs", sent, kgo.SASL(plain.Auth{User: "reader", Pass: "r"}.AsMechanism()))
	require.NoError(t, exp.stop())
}

// tokenExtension is an extension giving OAuth tokens, as contrib's
// oauth2client does.
type tokenExtension struct {
	component.StartFunc
	component.ShutdownFunc
	token string
}

func (e tokenExtension) Token(context.Context) (*oauth2.Token, error) {
	return &oauth2.Token{AccessToken: e.token}, nil
}

// TestOAuthBearerTokenSourceExtension: contrib's oauthbearer_token_source
// names an extension whose tokens are presented; a missing extension, or
// one without tokens, fails start naming it.
func TestOAuthBearerTokenSourceExtension(t *testing.T) {
	var good atomic.Value
	good.Store("from-the-extension")
	c := oauthCluster(t, &good)
	cfg := testConfig(t, c.ListenAddrs())
	cfg.Encoding = logmsg.EncodingRaw
	id := component.MustNewID("oauth2client")
	cfg.Auth = AuthConfig{SASL: SASLConfig{Mechanism: "OAUTHBEARER", OAuthBearerTokenSource: id}}

	host := extensionsHost{id: tokenExtension{token: "from-the-extension"}}
	exp := runOn(t, host, cfg, nopSettings())
	require.NoError(t, exp.consumeLogs(context.Background(), seqLogs(0, 50, 3)))
	waitRecords(t, c, "otlp_logs", 50, 10*time.Second)
	require.NoError(t, exp.stop())

	for name, host := range map[string]component.Host{
		"extension oauth2client is not configured":   componenttest.NewNopHost(),
		"extension oauth2client does not give OAuth": extensionsHost{id: struct{ component.Component }{}},
	} {
		e, err := newExporter(cfg, nopSettings())
		require.NoError(t, err)
		err = e.start(context.Background(), host)
		require.ErrorContains(t, err, "auth.sasl.oauthbearer_token_source: "+name)
	}
}

// extensionsHost is a host with these extensions.
type extensionsHost map[component.ID]component.Component

func (h extensionsHost) GetExtensions() map[component.ID]component.Component { return h }
