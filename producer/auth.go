package producer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"github.com/jcmturner/gokrb5/v8/krberror"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/xdg-go/scram"
)

// SASL mechanisms accepted in SASLConfig.Mechanism; the empty one means no
// SASL.
const (
	SASLNone        = ""
	SASLPlain       = "PLAIN"
	SASLSCRAMSHA256 = "SCRAM-SHA-256"
	SASLSCRAMSHA512 = "SCRAM-SHA-512"
	SASLOAuthBearer = "OAUTHBEARER"
	SASLGSSAPI      = "GSSAPI"
)

// SASLMechanisms lists the accepted SASL mechanisms (SASLNone aside).
func SASLMechanisms() []string {
	return []string{SASLPlain, SASLSCRAMSHA256, SASLSCRAMSHA512, SASLOAuthBearer, SASLGSSAPI}
}

// SASLConfig enables SASL authentication when Mechanism is set.
type SASLConfig struct {
	Mechanism string // one of SASLMechanisms, or SASLNone
	// Username and Password are the PLAIN and SCRAM login.
	Username string
	Password string
	// TokenSource gives the OAUTHBEARER token of each login; required with
	// SASLOAuthBearer (New checks it, Validate does not: a host validates
	// its configuration before it builds the source).
	TokenSource TokenSource
	// Kerberos is the GSSAPI login.
	Kerberos KerberosConfig
}

// TokenSource gives the token for one SASL OAUTHBEARER login. It is asked
// at every login, re-authentications included. A source that is also a
// fmt.Stringer is named by errors about its tokens.
type TokenSource interface {
	Token(ctx context.Context) (string, error)
}

// KerberosConfig is a GSSAPI login: a principal Username@Realm with a
// keytab (KeytabFile set) or a password.
type KerberosConfig struct {
	// ServiceName is the primary of the brokers' principal (default
	// "kafka"): tickets are asked for ServiceName/<broker host>.
	ServiceName string
	Realm       string
	Username    string
	Password    string
	KeytabFile  string
	// ConfigFile is the krb5.conf to read (default /etc/krb5.conf).
	ConfigFile string
	// DisableFAST turns off PA-FX-FAST negotiation, for KDCs that reject it.
	DisableFAST bool
}

// Kerberos defaults applied by New.
const (
	DefaultKerberosServiceName = "kafka"
	DefaultKerberosConfigFile  = "/etc/krb5.conf"
)

// withDefaults returns s with zero Kerberos fields set to their defaults
// when the mechanism is GSSAPI.
func (s SASLConfig) withDefaults() SASLConfig {
	if s.Mechanism != SASLGSSAPI {
		return s
	}
	if s.Kerberos.ServiceName == "" {
		s.Kerberos.ServiceName = DefaultKerberosServiceName
	}
	if s.Kerberos.ConfigFile == "" {
		s.Kerberos.ConfigFile = DefaultKerberosConfigFile
	}
	return s
}

// principal is the Kerberos principal of the login, user@REALM.
func (k KerberosConfig) principal() string { return k.Username + "@" + k.Realm }

// login names the credentials of s for error messages: the user, the
// token source or the Kerberos principal and its keytab.
func (s SASLConfig) login() string {
	switch s.Mechanism {
	case SASLOAuthBearer:
		if src, ok := s.TokenSource.(fmt.Stringer); ok {
			return "the token from " + src.String()
		}
		return "the OAUTHBEARER token"
	case SASLGSSAPI:
		k := s.Kerberos
		if k.KeytabFile != "" {
			return fmt.Sprintf("Kerberos principal %q (keytab %s, %s)", k.principal(), k.KeytabFile, k.ConfigFile)
		}
		return fmt.Sprintf("Kerberos principal %q (password, %s)", k.principal(), k.ConfigFile)
	}
	return fmt.Sprintf("user %q", s.Username)
}

// validate returns the problems of s; cfgVersion is Config.Version, version
// its parsed form (versionErr the parse error).
func (s SASLConfig) validate(cfgVersion string, version sarama.KafkaVersion, versionErr error) []error {
	var errs []error
	add := func(f Field, format string, args ...any) { errs = append(errs, configError(f, -1, format, args...)) }
	switch s.Mechanism {
	case SASLNone:
		if s.Username != "" || s.Password != "" {
			add(FieldSASLMechanism, "required when username or password is set (want %s, %s or %s), got %q",
				SASLPlain, SASLSCRAMSHA256, SASLSCRAMSHA512, s.Mechanism)
		}
		return errs
	case SASLPlain, SASLSCRAMSHA256, SASLSCRAMSHA512:
		if s.Username == "" {
			add(FieldSASLUsername, "required with mechanism %s, got %q", s.Mechanism, s.Username)
		}
		if s.Password == "" {
			// The password itself is never printed.
			add(FieldSASLPassword, "required with mechanism %s, got none", s.Mechanism)
		}
	case SASLOAuthBearer:
	case SASLGSSAPI:
		k := s.Kerberos
		if k.Username == "" {
			add(FieldKerberosUsername, "required with mechanism %s, got %q", s.Mechanism, k.Username)
		}
		if k.Realm == "" {
			add(FieldKerberosRealm, "required with mechanism %s, got %q", s.Mechanism, k.Realm)
		}
		if k.KeytabFile == "" && k.Password == "" {
			add(FieldKerberosKeytabFile, "required with mechanism %s unless a password is set, got %q", s.Mechanism, k.KeytabFile)
		}
		if k.KeytabFile != "" && k.Password != "" {
			add(FieldKerberosPassword, "set, with a keytab file too: use one of them")
		}
	default:
		add(FieldSASLMechanism, "unknown mechanism %q (want %s)", s.Mechanism, strings.Join(SASLMechanisms(), ", "))
		return errs
	}
	// sarama speaks SaslHandshake v1 / SaslAuthenticate only from 1.0.0
	// and would otherwise fail every connection without saying why.
	if versionErr == nil && !version.IsAtLeast(sarama.V1_0_0_0) {
		add(FieldSASLMechanism, "SASL needs %s >= 1.0.0, got %s %q", FieldVersion, FieldVersion, cfgVersion)
	}
	return errs
}

// configureSASL sets up sc for s, a validated SASLConfig with defaults;
// timeout bounds fetching a token.
func configureSASL(sc *sarama.Config, s SASLConfig, timeout time.Duration) error {
	if s.Mechanism == SASLNone {
		return nil
	}
	sc.Net.SASL.Enable = true
	sc.Net.SASL.Handshake = true
	sc.Net.SASL.Version = sarama.SASLHandshakeV1
	switch s.Mechanism {
	case SASLPlain:
		sc.Net.SASL.Mechanism = sarama.SASLTypePlaintext
	case SASLSCRAMSHA256:
		sc.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA256
		sc.Net.SASL.SCRAMClientGeneratorFunc = newSCRAMClient(scram.SHA256)
	case SASLSCRAMSHA512:
		sc.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA512
		sc.Net.SASL.SCRAMClientGeneratorFunc = newSCRAMClient(scram.SHA512)
	case SASLOAuthBearer:
		if s.TokenSource == nil {
			return errors.New("SASL OAUTHBEARER needs a token source")
		}
		sc.Net.SASL.Mechanism = sarama.SASLTypeOAuth
		sc.Net.SASL.TokenProvider = tokenProvider{src: s.TokenSource, login: s.login(), timeout: timeout}
		return nil
	case SASLGSSAPI:
		k := s.Kerberos
		sc.Net.SASL.Mechanism = sarama.SASLTypeGSSAPI
		g := &sc.Net.SASL.GSSAPI
		g.ServiceName = k.ServiceName
		g.Realm = k.Realm
		g.Username = k.Username
		g.KerberosConfigPath = k.ConfigFile
		g.DisablePAFXFAST = k.DisableFAST
		if k.KeytabFile != "" {
			g.AuthType = sarama.KRB5_KEYTAB_AUTH
			g.KeyTabPath = k.KeytabFile
		} else {
			g.AuthType = sarama.KRB5_USER_AUTH
			g.Password = k.Password
		}
		return nil
	}
	sc.Net.SASL.User = s.Username
	sc.Net.SASL.Password = s.Password
	return nil
}

// tokenProvider hands a TokenSource's tokens to sarama's OAUTHBEARER login.
type tokenProvider struct {
	src     TokenSource
	login   string
	timeout time.Duration
}

// Token gets a token within the producer's timeout; sarama gives no
// context.
func (t tokenProvider) Token() (*sarama.AccessToken, error) {
	ctx, cancel := context.WithTimeout(context.Background(), t.timeout)
	defer cancel()
	tok, err := t.src.Token(ctx)
	if err != nil {
		return nil, &CredentialError{Login: t.login, Err: err}
	}
	return &sarama.AccessToken{Token: tok}, nil
}

// CredentialError means the exporter could not present its credentials:
// no OAUTHBEARER token could be had, or the Kerberos KDC refused the
// principal. Produce and Refresh wrap it with ErrAuthentication.
type CredentialError struct {
	Login string // what was presented, as SASLConfig names it
	Err   error
}

func (e *CredentialError) Error() string { return e.Login + ": " + e.Err.Error() }

func (e *CredentialError) Unwrap() error { return e.Err }

// isCredentialError reports whether err says the login was refused or
// could not be attempted (a token or a Kerberos ticket could not be had).
func isCredentialError(err error) bool {
	var ce *CredentialError
	var krbErr krberror.Krberror
	var kdcErr messages.KRBError
	return errors.Is(err, sarama.ErrSASLAuthenticationFailed) || errors.As(err, &ce) ||
		errors.As(err, &krbErr) || errors.As(err, &kdcErr)
}
