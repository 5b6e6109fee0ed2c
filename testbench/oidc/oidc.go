// Package oidc is a small OAuth 2 / OpenID Connect token server for tests:
// it issues RS256-signed JWTs by the client-credentials grant and serves the
// key that verifies them as a JWKS, on 127.0.0.1 over plain HTTP. Kafka's
// OAUTHBEARER validator (OAuthBearerValidatorCallbackHandler) checks the
// tokens against that JWKS; clients fetch them from the token endpoint.
package oidc

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	// TokenPath is where the token endpoint is served.
	TokenPath = "/token"
	// JWKSPath is where the JWKS (the public signing key) is served.
	JWKSPath = "/jwks"
	// keyID names the one signing key in the JWKS and in every token's header.
	keyID = "kafkabatcher-test-key"
)

// Options says how the server issues tokens.
type Options struct {
	// Lifetime is how long a token is valid (its exp is issue time plus
	// Lifetime); default 30 s.
	Lifetime time.Duration
	// Audience, when set, is the aud claim of every token unless the request
	// asks for another (form field audience).
	Audience string
}

// Server is a running token server. Close stops it.
type Server struct {
	opts    Options
	key     *rsa.PrivateKey
	ln      net.Listener
	srv     *http.Server
	url     string // http://127.0.0.1:port
	issued  atomic.Int64
	refused atomic.Int64

	mu      sync.Mutex
	clients map[string]string // client id to secret
}

// Start generates an RSA key and serves the token endpoint and the JWKS on
// a free loopback port.
func Start(opts Options) (*Server, error) {
	if opts.Lifetime <= 0 {
		opts.Lifetime = 30 * time.Second
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("oidc: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("oidc: %w", err)
	}
	s := &Server{opts: opts, key: key, ln: ln, url: "http://" + ln.Addr().String(), clients: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc(TokenPath, s.token)
	mux.HandleFunc(JWKSPath, s.jwks)
	mux.HandleFunc("/.well-known/openid-configuration", s.discovery)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// Close stops the server.
func (s *Server) Close() { _ = s.srv.Close() }

// Issuer is the iss claim of every token: the server's base URL.
func (s *Server) Issuer() string { return s.url }

// TokenURL is the token endpoint (client-credentials grant, POST).
func (s *Server) TokenURL() string { return s.url + TokenPath }

// JWKSURL is where the signing key is served as a JWKS.
func (s *Server) JWKSURL() string { return s.url + JWKSPath }

// Lifetime is how long each token is valid.
func (s *Server) Lifetime() time.Duration { return s.opts.Lifetime }

// AddClient registers (or re-registers with a new secret) a client that may
// get tokens; its tokens' sub is id.
func (s *Server) AddClient(id, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clients[id] = secret
}

// Issued counts the tokens issued so far.
func (s *Server) Issued() int64 { return s.issued.Load() }

// Refused counts the token requests refused so far (unknown client, wrong
// secret, bad grant).
func (s *Server) Refused() int64 { return s.refused.Load() }

// Token issues a token for a registered client directly (not over HTTP),
// with the given scope (may be empty); it counts as issued.
func (s *Server) Token(clientID string, scope string) (string, error) {
	s.mu.Lock()
	_, ok := s.clients[clientID]
	s.mu.Unlock()
	if !ok {
		return "", fmt.Errorf("oidc: unknown client %q", clientID)
	}
	return s.sign(clientID, scope, s.opts.Audience, time.Now())
}

func (s *Server) sign(sub, scope, aud string, now time.Time) (string, error) {
	claims := jwt.MapClaims{
		"iss": s.url,
		"sub": sub,
		"iat": now.Unix(),
		"nbf": now.Add(-time.Minute).Unix(),
		"exp": now.Add(s.opts.Lifetime).Unix(),
		"jti": randomID(),
	}
	if scope != "" {
		claims["scope"] = scope
	}
	if aud != "" {
		claims["aud"] = aud
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = keyID
	out, err := tok.SignedString(s.key)
	if err != nil {
		return "", fmt.Errorf("oidc: sign: %w", err)
	}
	s.issued.Add(1)
	return out, nil
}

// token serves the client-credentials grant. The client authenticates by
// HTTP basic auth (client_secret_basic) or by the form fields client_id and
// client_secret (client_secret_post).
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		oauthError(w, http.StatusMethodNotAllowed, "invalid_request", "POST only")
		return
	}
	if err := r.ParseForm(); err != nil {
		s.refused.Add(1)
		oauthError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	if gt := r.PostForm.Get("grant_type"); gt != "client_credentials" {
		s.refused.Add(1)
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", fmt.Sprintf("grant_type %q, want client_credentials", gt))
		return
	}
	id, secret, basic := r.BasicAuth()
	if basic {
		// RFC 6749 2.3.1: basic credentials are form-urlencoded first.
		id, secret = unescape(id), unescape(secret)
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	s.mu.Lock()
	want, ok := s.clients[id]
	s.mu.Unlock()
	if !ok || subtle.ConstantTimeCompare([]byte(want), []byte(secret)) != 1 {
		s.refused.Add(1)
		if basic {
			w.Header().Set("WWW-Authenticate", `Basic realm="kafkabatcher-test"`)
		}
		oauthError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}
	aud := s.opts.Audience
	if a := r.PostForm.Get("audience"); a != "" {
		aud = a
	}
	tok, err := s.sign(id, r.PostForm.Get("scope"), aud, time.Now())
	if err != nil {
		oauthError(w, http.StatusInternalServerError, "server_error", err.Error())
		return
	}
	resp := map[string]any{
		"access_token": tok,
		"token_type":   "Bearer",
		"expires_in":   int(s.opts.Lifetime / time.Second),
	}
	if sc := r.PostForm.Get("scope"); sc != "" {
		resp["scope"] = sc
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, resp)
}

// jwks serves the public key as a JSON Web Key Set (RFC 7517).
func (s *Server) jwks(w http.ResponseWriter, _ *http.Request) {
	pub := s.key.PublicKey
	writeJSON(w, http.StatusOK, map[string]any{"keys": []map[string]string{{
		"kty": "RSA",
		"use": "sig",
		"alg": "RS256",
		"kid": keyID,
		"n":   base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e":   base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
	}}})
}

// discovery serves the OpenID Connect discovery document, for clients that
// look the endpoints up.
func (s *Server) discovery(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                s.url,
		"token_endpoint":                        s.TokenURL(),
		"jwks_uri":                              s.JWKSURL(),
		"grant_types_supported":                 []string{"client_credentials"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
	})
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func unescape(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}

func randomID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
