package bearer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// ClientCredentialsConfig configures tokens from an OAuth 2 token endpoint
// by the client-credentials grant (RFC 6749 section 4.4).
type ClientCredentialsConfig struct {
	TokenURL     string
	ClientID     string
	ClientSecret string
	// ClientSecretFile, when set, holds the secret instead; it is read at
	// every fetch, so a rotated secret is picked up.
	ClientSecretFile string
	Scopes           []string
	EndpointParams   url.Values
	// HTTPClient makes the token requests (nil: http.DefaultClient).
	HTTPClient *http.Client
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// NewClientCredentials returns a Source that fetches tokens from
// cfg.TokenURL and reuses each until half of its lifetime is left: a
// broker ends a session when its token expires, so a fresh login should
// present a token with time to spare. A token without expires_in is
// fetched again at every login.
func NewClientCredentials(cfg ClientCredentialsConfig) Source {
	s := &clientCredentials{cfg: cfg}
	s.cache.now = cfg.Now
	return s
}

type clientCredentials struct {
	cfg   ClientCredentialsConfig
	cache cache
}

// String names the source in errors: the endpoint and the client.
func (s *clientCredentials) String() string {
	return fmt.Sprintf("token endpoint %s (client_id %q)", s.cfg.TokenURL, s.cfg.ClientID)
}

// Token returns the cached token or fetches a new one.
func (s *clientCredentials) Token(ctx context.Context) (string, error) {
	return s.cache.get(ctx, s.fetch)
}

func (s *clientCredentials) fetch(ctx context.Context) (string, time.Duration, error) {
	secret := s.cfg.ClientSecret
	if s.cfg.ClientSecretFile != "" {
		b, err := os.ReadFile(s.cfg.ClientSecretFile)
		if err != nil {
			return "", 0, fmt.Errorf("client secret: %w", err)
		}
		secret = strings.TrimSpace(string(b))
	}
	cc := clientcredentials.Config{
		ClientID:       s.cfg.ClientID,
		ClientSecret:   secret,
		TokenURL:       s.cfg.TokenURL,
		Scopes:         s.cfg.Scopes,
		EndpointParams: s.cfg.EndpointParams,
	}
	if s.cfg.HTTPClient != nil {
		ctx = context.WithValue(ctx, oauth2.HTTPClient, s.cfg.HTTPClient)
	}
	tok, err := cc.Token(ctx)
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil {
			// The endpoint's own words (invalid_client, ...) say what to fix.
			return "", 0, fmt.Errorf("token endpoint answered %s: %w", re.Response.Status, err)
		}
		return "", 0, err
	}
	lifetime := time.Duration(tok.ExpiresIn) * time.Second
	if lifetime <= 0 && !tok.Expiry.IsZero() {
		lifetime = time.Until(tok.Expiry)
	}
	return tok.AccessToken, lifetime, nil
}

// NewFile returns a Source that reads the token from path at every login:
// platforms that mount a token (Kubernetes projected service account
// tokens, sidecars) keep the file current.
func NewFile(path string) Source { return file(path) }

type file string

// String names the source in errors.
func (f file) String() string { return "token file " + string(f) }

// Token reads the file; surrounding white space is not part of the token.
func (f file) Token(context.Context) (string, error) {
	b, err := os.ReadFile(string(f))
	if err != nil {
		return "", err
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", errors.New("the file is empty")
	}
	return tok, nil
}

// cache holds one token and hands it out until half of its lifetime, as
// of when it was fetched, is left.
type cache struct {
	now func() time.Time

	mu    sync.Mutex
	token string
	until time.Time // zero: not reused
}

// get returns the cached token while it is fresh, else one from fetch;
// concurrent logins wait for one fetch. fetch returns a token and its
// lifetime (0 or less: unknown, fetched again at the next login).
func (c *cache) get(ctx context.Context, fetch func(context.Context) (string, time.Duration, error)) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock()
	if c.token != "" && now.Before(c.until) {
		return c.token, nil
	}
	tok, lifetime, err := fetch(ctx)
	if err != nil {
		return "", err
	}
	if tok == "" {
		return "", errors.New("the token is empty")
	}
	c.token, c.until = tok, time.Time{}
	if lifetime > 0 {
		c.until = now.Add(lifetime / 2)
	}
	return tok, nil
}

func (c *cache) clock() time.Time {
	if c.now != nil {
		return c.now()
	}
	return time.Now()
}
