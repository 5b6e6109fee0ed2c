package realkafka

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kafkabatcher/kafkabatcherexporter/testbench/kdc"
	"github.com/kafkabatcher/kafkabatcherexporter/testbench/oidc"
)

// The OAUTHBEARER and GSSAPI listeners of a Security cluster, and the test
// servers behind them: an OIDC token server (package oidc) whose JWKS the
// brokers verify tokens with, and an MIT KDC (package kdc) with the
// brokers' service principal.

const (
	// OAuthClientID is the OIDC client registered at start; its tokens' sub,
	// and so its Kafka principal User:<id>, is a super user.
	OAuthClientID = "kafkabatcher"
	// OAuthClientSecret is OAuthClientID's secret.
	OAuthClientSecret = "kafkabatcher-oauth-secret"
	// OAuthAudience is the aud claim of the OIDC server's tokens unless a
	// client asks for another, and the audience the brokers expect (Kafka
	// 4.4's validator refuses to start without one).
	OAuthAudience = "kafkabatcher-kafka"
	// OAuthTokenLifetime is how long the OIDC server's tokens live.
	OAuthTokenLifetime = 30 * time.Second
	// OAuthReauth is the OAUTHBEARER listener's connections.max.reauth.ms: a
	// client re-authenticates its connections at least this often.
	OAuthReauth = 10 * time.Second
	// KerberosUser is the Kerberos principal made at start (User:alice, a
	// super user), with the password Users["alice"] and a keytab
	// (Cluster.KerberosKeytab) holding the same keys.
	KerberosUser = "alice"
	// KerberosServiceName is the brokers' service name: their principal is
	// kafka/localhost@<realm>.
	KerberosServiceName = "kafka"
)

// auth is what a Security cluster runs for its OAUTH and KERBEROS listeners.
type auth struct {
	oidc          *oidc.Server
	kdc           *kdc.KDC
	serviceKeytab string // kafka/localhost's keytab, for the brokers
	userKeytab    string // KerberosUser's keytab
}

// startAuth starts the OIDC server and the KDC and makes the principals.
func (c *Cluster) startAuth(ctx context.Context) error {
	start := time.Now()
	s, err := oidc.Start(oidc.Options{Lifetime: OAuthTokenLifetime, Audience: OAuthAudience})
	if err != nil {
		return fmt.Errorf("realkafka: %w", err)
	}
	s.AddClient(OAuthClientID, OAuthClientSecret)
	c.auth.oidc = s
	k, err := kdc.Start(ctx, kdc.Options{Dir: filepath.Join(c.opts.Dir, "kdc")})
	if err != nil {
		return fmt.Errorf("realkafka: %w", err)
	}
	c.auth.kdc = k
	if c.auth.serviceKeytab, err = k.AddKeytabPrincipal(KerberosServiceName + "/localhost"); err != nil {
		return fmt.Errorf("realkafka: %w", err)
	}
	if err := k.AddPasswordPrincipal(KerberosUser, Users[KerberosUser]); err != nil {
		return fmt.Errorf("realkafka: %w", err)
	}
	if c.auth.userKeytab, err = k.ExportKeytab(KerberosUser); err != nil {
		return fmt.Errorf("realkafka: %w", err)
	}
	fmt.Fprintf(c.opts.Log, "realkafka: OIDC server at %s and KDC (realm %s) at %s ready in %s\n",
		s.Issuer(), k.Realm(), k.Addr(), time.Since(start).Round(time.Millisecond))
	return nil
}

func (c *Cluster) stopAuth() {
	if c.auth.kdc != nil {
		c.auth.kdc.Close()
	}
	if c.auth.oidc != nil {
		c.auth.oidc.Close()
	}
}

// authProps are the server.properties lines of the OAUTH and KERBEROS
// listeners.
func (c *Cluster) authProps() []string {
	const l = "listener.name.oauth.oauthbearer."
	const g = "listener.name.kerberos.gssapi."
	service := KerberosServiceName + "/localhost@" + c.auth.kdc.Realm()
	return []string{
		"listener.name.oauth.sasl.enabled.mechanisms=OAUTHBEARER",
		l + "sasl.server.callback.handler.class=org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler",
		l + "sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required ;",
		l + "sasl.oauthbearer.jwks.endpoint.url=" + c.auth.oidc.JWKSURL(),
		l + "sasl.oauthbearer.expected.issuer=" + c.auth.oidc.Issuer(),
		l + "sasl.oauthbearer.expected.audience=" + OAuthAudience,
		fmt.Sprintf("%sconnections.max.reauth.ms=%d", l, OAuthReauth.Milliseconds()),
		"listener.name.kerberos.sasl.enabled.mechanisms=GSSAPI",
		g + "sasl.kerberos.service.name=" + KerberosServiceName,
		fmt.Sprintf(`%ssasl.jaas.config=com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true storeKey=true keyTab="%s" principal="%s";`,
			g, c.auth.serviceKeytab, service),
		"sasl.kerberos.service.name=" + KerberosServiceName,
	}
}

// authJVMArgs are the broker JVM's system properties the listeners need:
// the JWKS URL allowed to the OAuth code, and the KDC's krb5.conf.
func (c *Cluster) authJVMArgs() []string {
	if c.auth.oidc == nil {
		return nil
	}
	return []string{
		"-Dorg.apache.kafka.sasl.oauthbearer.allowed.urls=" + c.auth.oidc.JWKSURL(),
		"-Djava.security.krb5.conf=" + c.auth.kdc.Krb5Conf(),
		"-Djavax.security.auth.useSubjectCredsOnly=false",
	}
}

// authSuperUsers are the listeners' principals that are super users.
func authSuperUsers() []string {
	return []string{"User:" + OAuthClientID, "User:" + KerberosUser}
}

// OAuthBootstrap returns the OAUTHBEARER (SASL_PLAINTEXT) addresses
// (Options.Security). Tokens must be signed by OIDC's key, with its issuer.
func (c *Cluster) OAuthBootstrap() []string {
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.oauthAddr
	}
	return out
}

// KerberosBootstrap returns the GSSAPI (SASL_PLAINTEXT) addresses
// (Options.Security): localhost:<port>, the host of the brokers' service
// principal kafka/localhost.
func (c *Cluster) KerberosBootstrap() []string {
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.krbAdvertised
	}
	return out
}

// OIDC returns the token server whose tokens the OAUTHBEARER listener
// accepts (Options.Security): TokenURL, Issuer, AddClient, Issued. The
// client OAuthClientID / OAuthClientSecret is registered and a super user;
// a client added later needs ACLs for its principal User:<id>.
func (c *Cluster) OIDC() *oidc.Server { return c.auth.oidc }

// KDC returns the Kerberos KDC of the GSSAPI listener (Options.Security):
// Realm, Krb5Conf, and principals made at test time (AddKeytabPrincipal,
// AddPasswordPrincipal; they need ACLs for User:<name>). KerberosUser exists
// with the password Users[KerberosUser] and the keytab KerberosKeytab.
func (c *Cluster) KDC() *kdc.KDC { return c.auth.kdc }

// KerberosKeytab returns the keytab of KerberosUser (Options.Security).
func (c *Cluster) KerberosKeytab() string { return c.auth.userKeytab }

// CountLogLines counts the lines of every node's log that contain each of
// parts, e.g. the brokers' re-authentications.
func (c *Cluster) CountLogLines(parts ...string) (int, error) {
	total := 0
	for _, n := range c.nodes {
		k, err := countLines(n.logPath, parts)
		if err != nil {
			return 0, err
		}
		total += k
	}
	return total, nil
}

func containsAll(line string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(line, p) {
			return false
		}
	}
	return true
}

func countLines(path string, parts []string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	k := 0
	for sc.Scan() {
		if containsAll(sc.Text(), parts) {
			k++
		}
	}
	return k, sc.Err()
}

// reauthLog turns on the SASL server authenticator's debug lines of a
// Security cluster: "Beginning re-authentication" and "Authentication
// complete; session max lifetime ...", one per (re-)authentication.
const reauthLog = `logger.saslserver.name = org.apache.kafka.common.security.authenticator.SaslServerAuthenticator
logger.saslserver.level = debug
`
