package kafkabatcherexporter

import (
	"net/url"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"

	"github.com/kafkabatcher/kafkabatcherexporter/internal/metadata"
	"github.com/kafkabatcher/kafkabatcherexporter/producer"
)

// validAuth is a complete auth section for mech.
func validAuth(mech string) AuthConfig {
	switch mech {
	case producer.SASLOAuthBearer:
		return AuthConfig{SASL: SASLConfig{Mechanism: mech, OAuthBearer: OAuthBearerConfig{TokenFile: "/run/token"}}}
	case producer.SASLGSSAPI:
		return AuthConfig{SASL: SASLConfig{Mechanism: mech},
			Kerberos: &KerberosConfig{Realm: "EXAMPLE.COM", Username: "agent", UseKeyTab: true, KeyTabPath: "/etc/agent.keytab"}}
	case mechanismAWSMSKIAM:
		return AuthConfig{SASL: SASLConfig{Mechanism: mech, AWSMSK: AWSMSKConfig{Region: "eu-west-1"}}}
	}
	return AuthConfig{SASL: SASLConfig{Mechanism: mech, Username: "u", Password: "p"}}
}

// invalidAuthCases are testdata/invalid/auth/NAME.yaml and the error
// each gives; none may echo a secret (do-not-echo-me).
var invalidAuthCases = map[string]invalidCase{
	"gssapi_without_kerberos": {want: `auth.kerberos: required with auth.sasl.mechanism GSSAPI, got none`},
	"kerberos_with_plain":     {want: `auth.kerberos: set, but auth.sasl.mechanism is PLAIN: leave the mechanism empty or GSSAPI`},
	"kerberos_incomplete": {want: "auth.kerberos.username: required with mechanism GSSAPI, got \"\"\n" +
		"auth.kerberos.realm: required with mechanism GSSAPI, got \"\"\n" +
		`auth.kerberos.keytab_file: required with mechanism GSSAPI unless a password is set, got ""`},
	"kerberos_keytab_and_password":       {want: `auth.kerberos.password: set with use_keytab true: the keytab is used; remove one`},
	"kerberos_keytab_without_use_keytab": {want: `auth.kerberos.keytab_file: set with use_keytab false: set use_keytab true to log in with it`},
	"msk_without_region":                 {want: `auth.sasl.aws_msk.region: required with mechanism AWS_MSK_IAM_OAUTHBEARER, got ""`},
	"msk_session_name_without_role":      {want: `auth.sasl.aws_msk.role_session_name: set without role_arn`},
	"msk_keys_with_plain":                {want: `auth.sasl.aws_msk: set, but auth.sasl.mechanism is "PLAIN" (want AWS_MSK_IAM_OAUTHBEARER)`},
	"oauth_no_source": {want: `auth.sasl.oauthbearer: want exactly one of token_url (client credentials), token_file or ` +
		`auth.sasl.oauthbearer_token_source with mechanism OAUTHBEARER, got 0`},
	"oauth_two_sources": {want: `auth.sasl.oauthbearer: want exactly one of token_url (client credentials), token_file or ` +
		`auth.sasl.oauthbearer_token_source with mechanism OAUTHBEARER, got 2`},
	"oauth_incomplete_client": {want: "auth.sasl.oauthbearer.token_url: want an http(s) URL, got \"idp.example.com/token\"\n" +
		"auth.sasl.oauthbearer.client_id: required with token_url, got \"\"\n" +
		"auth.sasl.oauthbearer: want one of client_secret or client_secret_file with token_url"},
	"oauth_secret_and_secret_file":      {want: `auth.sasl.oauthbearer: want one of client_secret or client_secret_file with token_url`},
	"oauth_keys_with_plain":             {want: `auth.sasl.oauthbearer: set, but auth.sasl.mechanism is "PLAIN" (want OAUTHBEARER)`},
	"oauth_with_password":               {want: `auth.sasl.username and password: set, but mechanism OAUTHBEARER does not use them`},
	"oauth_client_keys_with_token_file": {want: `auth.sasl.oauthbearer: client_id, client_secret, scopes and endpoint_params need token_url`},
}

func TestInvalidAuthConfigs(t *testing.T) {
	checkInvalidConfigs(t, filepath.Join("testdata", "invalid", "auth"), invalidAuthCases)
}

// TestAuthConfigs: contrib's auth sections and ours decode, validate, and
// give the producer the login they say.
func TestAuthConfigs(t *testing.T) {
	tests := map[string]struct {
		auth AuthConfig
		sasl producer.SASLConfig
	}{
		"msk": {
			auth: AuthConfig{SASL: SASLConfig{Mechanism: "AWS_MSK_IAM_OAUTHBEARER", AWSMSK: AWSMSKConfig{Region: "eu-west-1"}}},
			sasl: producer.SASLConfig{Mechanism: producer.SASLOAuthBearer},
		},
		"msk_role": {
			auth: AuthConfig{SASL: SASLConfig{Mechanism: "AWS_MSK_IAM_OAUTHBEARER", AWSMSK: AWSMSKConfig{
				Region: "us-east-1", RoleARN: "arn:aws:iam::123456789012:role/agent", RoleSessionName: "host-1"}}},
			sasl: producer.SASLConfig{Mechanism: producer.SASLOAuthBearer},
		},
		"oidc": {
			auth: AuthConfig{SASL: SASLConfig{Mechanism: "OAUTHBEARER", OAuthBearer: OAuthBearerConfig{
				TokenURL: "https://idp.example.com/oauth2/token", ClientID: "agent",
				ClientSecretFile: "/run/secrets/client-secret", Scopes: []string{"kafka.write"},
				EndpointParams: url.Values{"audience": {"kafka"}}}}},
			sasl: producer.SASLConfig{Mechanism: producer.SASLOAuthBearer},
		},
		"token_file": {
			auth: AuthConfig{SASL: SASLConfig{Mechanism: "OAUTHBEARER", OAuthBearer: OAuthBearerConfig{TokenFile: "/var/run/secrets/kafka/token"}}},
			sasl: producer.SASLConfig{Mechanism: producer.SASLOAuthBearer},
		},
		"extension": {
			auth: AuthConfig{SASL: SASLConfig{Mechanism: "OAUTHBEARER", OAuthBearerTokenSource: component.MustNewID("oauth2client")}},
			sasl: producer.SASLConfig{Mechanism: producer.SASLOAuthBearer},
		},
		"kerberos": {
			auth: AuthConfig{Kerberos: &KerberosConfig{ServiceName: "kafka", Realm: "EXAMPLE.COM", UseKeyTab: true, Username: "agent",
				KeyTabPath: "/etc/security/agent.keytab", ConfigPath: "/etc/krb5.conf", DisableFAST: true}},
			sasl: producer.SASLConfig{Mechanism: producer.SASLGSSAPI, Kerberos: producer.KerberosConfig{ServiceName: "kafka",
				Realm: "EXAMPLE.COM", Username: "agent", KeytabFile: "/etc/security/agent.keytab", ConfigFile: "/etc/krb5.conf", DisableFAST: true}},
		},
		"kerberos_password": {
			auth: AuthConfig{SASL: SASLConfig{Mechanism: "GSSAPI"}, Kerberos: &KerberosConfig{Realm: "EXAMPLE.COM", Username: "agent", Password: "s3cret"}},
			sasl: producer.SASLConfig{Mechanism: producer.SASLGSSAPI, Kerberos: producer.KerberosConfig{
				Realm: "EXAMPLE.COM", Username: "agent", Password: "s3cret"}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg, err := loadConfig(t, filepath.Join("testdata", "auth.yaml"), component.MustNewIDWithName(metadata.Type.String(), name))
			require.NoError(t, err)
			require.NoError(t, confmap.Validate(cfg))
			assert.Equal(t, tc.auth, cfg.Auth)
			assert.Equal(t, tc.sasl, cfg.Auth.producerSASL())
		})
	}
}
