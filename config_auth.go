package kafkabatcherexporter

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configtls"
	"golang.org/x/oauth2"

	"github.com/kafkabatcher/kafkabatcherexporter/internal/bearer"
	"github.com/kafkabatcher/kafkabatcherexporter/producer"
)

// AuthConfig holds broker authentication. Its keys are those of contrib's
// configkafka where the concept is the same, so a contrib auth section
// works unchanged.
type AuthConfig struct {
	SASL SASLConfig `mapstructure:"sasl"`
	// Kerberos, when present, is a SASL GSSAPI login (auth.sasl.mechanism
	// empty or GSSAPI).
	Kerberos *KerberosConfig `mapstructure:"kerberos"`
}

// SASL mechanisms the exporter accepts besides the producer's: MSK IAM is
// OAUTHBEARER with a token signed for AWS.
const mechanismAWSMSKIAM = "AWS_MSK_IAM_OAUTHBEARER"

// saslMechanisms lists the accepted auth.sasl.mechanism values.
func saslMechanisms() []string {
	return append(producer.SASLMechanisms(), mechanismAWSMSKIAM)
}

// SASLConfig is SASL authentication; an empty Mechanism means none (or
// GSSAPI when auth.kerberos is present).
type SASLConfig struct {
	// Mechanism is one of saslMechanisms, or "".
	Mechanism string              `mapstructure:"mechanism"`
	Username  string              `mapstructure:"username"`
	Password  configopaque.String `mapstructure:"password"`
	// AWSMSK configures AWS_MSK_IAM_OAUTHBEARER.
	AWSMSK AWSMSKConfig `mapstructure:"aws_msk"`
	// OAuthBearer configures where OAUTHBEARER tokens come from: a token
	// endpoint or a file.
	OAuthBearer OAuthBearerConfig `mapstructure:"oauthbearer"`
	// OAuthBearerTokenSource names an extension that gives the tokens
	// instead (contrib's key; e.g. oauth2client).
	OAuthBearerTokenSource component.ID `mapstructure:"oauthbearer_token_source,omitempty"`
}

// AWSMSKConfig configures AWS MSK IAM tokens. Credentials come from the
// default AWS chain (environment, shared files, web identity, container
// or instance role) or from Profile; with RoleARN, those assume the role.
type AWSMSKConfig struct {
	Region          string `mapstructure:"region"`
	RoleARN         string `mapstructure:"role_arn"`
	RoleSessionName string `mapstructure:"role_session_name"`
	Profile         string `mapstructure:"profile"`
}

// OAuthBearerConfig is the OAuth 2 client-credentials flow (TokenURL set)
// or a token file (TokenFile set). The keys are those of contrib's
// oauth2client extension.
type OAuthBearerConfig struct {
	TokenURL         string              `mapstructure:"token_url"`
	ClientID         string              `mapstructure:"client_id"`
	ClientSecret     configopaque.String `mapstructure:"client_secret"`
	ClientSecretFile string              `mapstructure:"client_secret_file"`
	Scopes           []string            `mapstructure:"scopes"`
	EndpointParams   url.Values          `mapstructure:"endpoint_params"`
	// TLS is for the token endpoint (https): a private CA, a client
	// certificate.
	TLS       configtls.ClientConfig `mapstructure:"tls"`
	TokenFile string                 `mapstructure:"token_file"`
}

// KerberosConfig is a GSSAPI login, with contrib's auth.kerberos keys.
type KerberosConfig struct {
	ServiceName string              `mapstructure:"service_name"`
	Realm       string              `mapstructure:"realm"`
	UseKeyTab   bool                `mapstructure:"use_keytab"`
	Username    string              `mapstructure:"username"`
	Password    configopaque.String `mapstructure:"password"`
	ConfigPath  string              `mapstructure:"config_file"`
	KeyTabPath  string              `mapstructure:"keytab_file"`
	DisableFAST bool                `mapstructure:"disable_fast_negotiation"`
}

// mechanism is the SASL mechanism in effect: GSSAPI when only
// auth.kerberos says so.
func (a *AuthConfig) mechanism() string {
	if a.SASL.Mechanism == "" && a.Kerberos != nil {
		return producer.SASLGSSAPI
	}
	return a.SASL.Mechanism
}

// producerSASL is the producer's SASL part of the configuration, without
// the token source (built at start). An unknown mechanism is left out:
// validateAuth names it.
func (a *AuthConfig) producerSASL() producer.SASLConfig {
	s := producer.SASLConfig{Mechanism: a.mechanism()}
	switch s.Mechanism {
	case producer.SASLNone, producer.SASLPlain, producer.SASLSCRAMSHA256, producer.SASLSCRAMSHA512:
		s.Username, s.Password = a.SASL.Username, string(a.SASL.Password)
	case mechanismAWSMSKIAM:
		s.Mechanism = producer.SASLOAuthBearer
	case producer.SASLOAuthBearer:
	case producer.SASLGSSAPI:
		k := a.Kerberos
		if k == nil {
			return producer.SASLConfig{} // validateAuth asks for auth.kerberos
		}
		s.Kerberos = producer.KerberosConfig{
			ServiceName: k.ServiceName,
			Realm:       k.Realm,
			Username:    k.Username,
			ConfigFile:  k.ConfigPath,
			DisableFAST: k.DisableFAST,
		}
		// A keytab_file without use_keytab (validateAuth names it) is not
		// also a missing password.
		if k.UseKeyTab || k.Password == "" {
			s.Kerberos.KeytabFile = k.KeyTabPath
		} else {
			s.Kerberos.Password = string(k.Password)
		}
	default:
		return producer.SASLConfig{}
	}
	return s
}

// authKeys are the keys of the producer's authentication settings.
var authKeys = map[producer.Field]string{
	producer.FieldSASLMechanism:      "auth.sasl.mechanism",
	producer.FieldSASLUsername:       "auth.sasl.username",
	producer.FieldSASLPassword:       "auth.sasl.password",
	producer.FieldKerberosUsername:   "auth.kerberos.username",
	producer.FieldKerberosRealm:      "auth.kerberos.realm",
	producer.FieldKerberosPassword:   "auth.kerberos.password",
	producer.FieldKerberosKeytabFile: "auth.kerberos.keytab_file",
}

// validateAuth checks what the producer does not see: the mechanism's
// name, and where OAUTHBEARER tokens come from.
func (a *AuthConfig) validateAuth(p *problems) {
	s := &a.SASL
	mech := a.mechanism()
	if !slices.Contains(saslMechanisms(), mech) && mech != "" {
		p.add("auth.sasl.mechanism: unknown mechanism %q (want %s)", mech, strings.Join(saslMechanisms(), ", "))
		return
	}
	switch {
	case mech == producer.SASLGSSAPI && a.Kerberos == nil:
		p.add("auth.kerberos: required with auth.sasl.mechanism GSSAPI, got none")
	case mech != producer.SASLGSSAPI && a.Kerberos != nil:
		p.add("auth.kerberos: set, but auth.sasl.mechanism is %s: leave the mechanism empty or GSSAPI", mech)
	case a.Kerberos != nil && a.Kerberos.UseKeyTab && a.Kerberos.Password != "":
		p.add("auth.kerberos.password: set with use_keytab true: the keytab is used; remove one")
	case a.Kerberos != nil && !a.Kerberos.UseKeyTab && a.Kerberos.KeyTabPath != "":
		p.add("auth.kerberos.keytab_file: set with use_keytab false: set use_keytab true to log in with it")
	}
	switch mech {
	case producer.SASLOAuthBearer, mechanismAWSMSKIAM, producer.SASLGSSAPI:
		if s.Username != "" || s.Password != "" {
			p.add("auth.sasl.username and password: set, but mechanism %s does not use them", mech)
		}
	}
	if mech != mechanismAWSMSKIAM && s.AWSMSK != (AWSMSKConfig{}) {
		p.add("auth.sasl.aws_msk: set, but auth.sasl.mechanism is %q (want %s)", mech, mechanismAWSMSKIAM)
	}
	oauth := s.OAuthBearer.set() || s.OAuthBearerTokenSource != (component.ID{})
	if mech != producer.SASLOAuthBearer && oauth {
		p.add("auth.sasl.oauthbearer: set, but auth.sasl.mechanism is %q (want %s)", mech, producer.SASLOAuthBearer)
	}
	switch mech {
	case mechanismAWSMSKIAM:
		m := s.AWSMSK
		if m.Region == "" {
			p.add("auth.sasl.aws_msk.region: required with mechanism %s, got %q", mech, m.Region)
		}
		if m.RoleSessionName != "" && m.RoleARN == "" {
			p.add("auth.sasl.aws_msk.role_session_name: set without role_arn")
		}
	case producer.SASLOAuthBearer:
		s.OAuthBearer.validate(p, s.OAuthBearerTokenSource)
	}
}

// set reports whether any key of o is set.
func (o *OAuthBearerConfig) set() bool {
	return o.TokenURL != "" || o.ClientID != "" || o.ClientSecret != "" || o.ClientSecretFile != "" ||
		len(o.Scopes) > 0 || len(o.EndpointParams) > 0 || o.TokenFile != ""
}

// validate checks that exactly one token source is configured, and it in
// full.
func (o *OAuthBearerConfig) validate(p *problems, ext component.ID) {
	sources := 0
	for _, set := range []bool{o.TokenURL != "", o.TokenFile != "", ext != (component.ID{})} {
		if set {
			sources++
		}
	}
	if sources != 1 {
		p.add("auth.sasl.oauthbearer: want exactly one of token_url (client credentials), token_file or auth.sasl.oauthbearer_token_source with mechanism OAUTHBEARER, got %d", sources)
		return
	}
	if o.TokenURL == "" {
		if o.ClientID != "" || o.ClientSecret != "" || o.ClientSecretFile != "" || len(o.Scopes) > 0 || len(o.EndpointParams) > 0 {
			p.add("auth.sasl.oauthbearer: client_id, client_secret, scopes and endpoint_params need token_url")
		}
		return
	}
	if u, err := url.Parse(o.TokenURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		p.add("auth.sasl.oauthbearer.token_url: want an http(s) URL, got %q", o.TokenURL)
	}
	if o.ClientID == "" {
		p.add("auth.sasl.oauthbearer.client_id: required with token_url, got %q", o.ClientID)
	}
	if (o.ClientSecret == "") == (o.ClientSecretFile == "") {
		// The secret itself is never printed.
		p.add("auth.sasl.oauthbearer: want one of client_secret or client_secret_file with token_url")
	}
}

// tokenSource builds where OAUTHBEARER tokens come from, or returns nil
// for other mechanisms. host gives the extension of
// oauthbearer_token_source.
func (a *AuthConfig) tokenSource(ctx context.Context, host component.Host, timeout time.Duration) (producer.TokenSource, error) {
	s := &a.SASL
	switch a.mechanism() {
	case mechanismAWSMSKIAM:
		m := s.AWSMSK
		return bearer.NewMSK(ctx, bearer.MSKConfig{Region: m.Region, RoleARN: m.RoleARN, RoleSessionName: m.RoleSessionName, Profile: m.Profile})
	case producer.SASLOAuthBearer:
	default:
		return nil, nil
	}
	o := &s.OAuthBearer
	switch {
	case s.OAuthBearerTokenSource != (component.ID{}):
		return extensionTokenSource(host, s.OAuthBearerTokenSource)
	case o.TokenFile != "":
		return bearer.NewFile(o.TokenFile), nil
	}
	tc, err := o.TLS.LoadTLSConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("auth.sasl.oauthbearer.tls: %w", err)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tc
	return bearer.NewClientCredentials(bearer.ClientCredentialsConfig{
		TokenURL:         o.TokenURL,
		ClientID:         o.ClientID,
		ClientSecret:     string(o.ClientSecret),
		ClientSecretFile: o.ClientSecretFile,
		Scopes:           o.Scopes,
		EndpointParams:   o.EndpointParams,
		HTTPClient:       &http.Client{Transport: transport, Timeout: timeout},
	}), nil
}

// contextTokenSource is what an extension named by
// oauthbearer_token_source provides (contrib's oauth2client does).
type contextTokenSource interface {
	Token(context.Context) (*oauth2.Token, error)
}

// extensionTokenSource finds the extension id in host.
func extensionTokenSource(host component.Host, id component.ID) (producer.TokenSource, error) {
	ext, ok := host.GetExtensions()[id]
	if !ok {
		return nil, fmt.Errorf("auth.sasl.oauthbearer_token_source: extension %s is not configured", id)
	}
	ts, ok := ext.(contextTokenSource)
	if !ok {
		return nil, fmt.Errorf("auth.sasl.oauthbearer_token_source: extension %s does not give OAuth tokens (no Token(context.Context) method)", id)
	}
	return extensionSource{id: id, ts: ts}, nil
}

// extensionSource adapts an extension's OAuth tokens.
type extensionSource struct {
	id component.ID
	ts contextTokenSource
}

func (e extensionSource) String() string { return "extension " + e.id.String() }

func (e extensionSource) Token(ctx context.Context) (string, error) {
	tok, err := e.ts.Token(ctx)
	if err != nil {
		return "", err
	}
	return tok.AccessToken, nil
}
