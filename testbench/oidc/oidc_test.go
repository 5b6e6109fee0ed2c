package oidc

import (
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestTokensAreIssuedToBasicAndPostClientsAndVerifyAgainstTheJWKS(t *testing.T) {
	s, err := Start(Options{Lifetime: 30 * time.Second, Audience: "kafka"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.AddClient("svc", "s3cret/+&")
	key := fetchKey(t, s.JWKSURL())

	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"produce"}}
	basic, _ := http.NewRequest(http.MethodPost, s.TokenURL(), strings.NewReader(form.Encode()))
	basic.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	basic.SetBasicAuth(url.QueryEscape("svc"), url.QueryEscape("s3cret/+&"))
	post := url.Values{"grant_type": {"client_credentials"}, "client_id": {"svc"}, "client_secret": {"s3cret/+&"}}
	postReq, _ := http.NewRequest(http.MethodPost, s.TokenURL(), strings.NewReader(post.Encode()))
	postReq.Header.Set("Content-Type", "application/x-www-form-urlencoded")

	for name, req := range map[string]*http.Request{"basic": basic, "post": postReq} {
		status, body := do(t, req)
		if status != http.StatusOK {
			t.Fatalf("%s: status %d: %v", name, status, body)
		}
		tok, err := jwt.Parse(body["access_token"].(string), func(*jwt.Token) (any, error) { return key, nil },
			jwt.WithValidMethods([]string{"RS256"}), jwt.WithIssuer(s.Issuer()), jwt.WithAudience("kafka"), jwt.WithExpirationRequired())
		if err != nil {
			t.Fatalf("%s: token does not verify: %v", name, err)
		}
		claims := tok.Claims.(jwt.MapClaims)
		if claims["sub"] != "svc" {
			t.Errorf("%s: sub %v", name, claims["sub"])
		}
		exp, _ := claims.GetExpirationTime()
		if d := time.Until(exp.Time); d < 25*time.Second || d > 31*time.Second {
			t.Errorf("%s: expires in %s, want about 30s", name, d)
		}
	}
	if s.Issued() != 2 {
		t.Errorf("Issued() = %d, want 2", s.Issued())
	}
}

func TestAWrongSecretIsInvalidClient(t *testing.T) {
	s, err := Start(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.AddClient("svc", "right")
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"svc"}, "client_secret": {"wrong"}}
	req, _ := http.NewRequest(http.MethodPost, s.TokenURL(), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	status, body := do(t, req)
	if status != http.StatusUnauthorized || body["error"] != "invalid_client" {
		t.Errorf("wrong secret: %d %v, want 401 invalid_client", status, body)
	}
	if s.Issued() != 0 || s.Refused() != 1 {
		t.Errorf("issued %d refused %d, want 0 and 1", s.Issued(), s.Refused())
	}
}

func do(t *testing.T, req *http.Request) (int, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

func fetchKey(t *testing.T, jwksURL string) *rsa.PublicKey {
	t.Helper()
	resp, err := http.Get(jwksURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []struct{ Kty, Alg, Kid, N, E string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 1 || set.Keys[0].Kty != "RSA" || set.Keys[0].Alg != "RS256" {
		t.Fatalf("jwks: %+v", set)
	}
	n, _ := base64.RawURLEncoding.DecodeString(set.Keys[0].N)
	e, _ := base64.RawURLEncoding.DecodeString(set.Keys[0].E)
	return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
}
