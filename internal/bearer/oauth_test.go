package bearer

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// tokenServer is an OAuth 2 token endpoint for the client-credentials
// grant: client "agent" with the secret in secret, tokens "tok-<n>" that
// live lifetime.
type tokenServer struct {
	*httptest.Server
	lifetime time.Duration

	mu     sync.Mutex
	secret string
	issued int
	forms  []url.Values
}

func newTokenServer(t *testing.T, secret string, lifetime time.Duration) *tokenServer {
	ts := &tokenServer{secret: secret, lifetime: lifetime}
	ts.Server = httptest.NewServer(http.HandlerFunc(ts.serve))
	t.Cleanup(ts.Close)
	return ts
}

func (ts *tokenServer) serve(w http.ResponseWriter, r *http.Request) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if err := r.ParseForm(); err != nil || r.Form.Get("grant_type") != "client_credentials" {
		http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.Form.Get("client_id"), r.Form.Get("client_secret")
	}
	if id != "agent" || secret != ts.secret {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":"invalid_client","error_description":"bad client credentials"}`)
		return
	}
	ts.issued++
	ts.forms = append(ts.forms, r.Form)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"access_token": fmt.Sprintf("tok-%d", ts.issued),
		"token_type":   "Bearer",
		"expires_in":   int(ts.lifetime / time.Second),
	})
}

func (ts *tokenServer) count() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.issued
}

func TestClientCredentialsReusesATokenForHalfItsLifetime(t *testing.T) {
	ts := newTokenServer(t, "s3cret", 30*time.Second)
	// oauth2 computes the expiry from the wall clock; the cache judges it
	// against its own clock, which starts at the wall clock's now.
	clk := &fakeClock{t: time.Now()}
	src := NewClientCredentials(ClientCredentialsConfig{
		TokenURL: ts.URL, ClientID: "agent", ClientSecret: "s3cret",
		Scopes: []string{"kafka"}, EndpointParams: url.Values{"audience": {"cluster-1"}}, Now: clk.now,
	})
	ctx := context.Background()
	for i, step := range []struct {
		advance time.Duration
		want    string
	}{
		{0, "tok-1"},
		{10 * time.Second, "tok-1"},
		{4 * time.Second, "tok-1"},  // 14 s: more than half left
		{2 * time.Second, "tok-2"},  // 16 s: less than half left
		{14 * time.Second, "tok-2"}, // 14 s into tok-2
		{2 * time.Second, "tok-3"},
	} {
		clk.advance(step.advance)
		got, err := src.Token(ctx)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if got != step.want {
			t.Fatalf("step %d: token %q, want %q", i, got, step.want)
		}
	}
	if n := ts.count(); n != 3 {
		t.Fatalf("endpoint issued %d tokens, want 3", n)
	}
	f := ts.forms[0]
	if f.Get("scope") != "kafka" || f.Get("audience") != "cluster-1" {
		t.Fatalf("token request form %v lacks scope or endpoint_params", f)
	}
}

func TestClientCredentialsSecretFileIsReadAtEveryFetch(t *testing.T) {
	ts := newTokenServer(t, "old", 0) // no expires_in: fetched at every login
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, []byte("old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := NewClientCredentials(ClientCredentialsConfig{TokenURL: ts.URL, ClientID: "agent", ClientSecretFile: path})
	if _, err := src.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Rotated on both sides.
	ts.mu.Lock()
	ts.secret = "new"
	ts.mu.Unlock()
	if err := os.WriteFile(path, []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	if tok, err := src.Token(context.Background()); err != nil || tok != "tok-2" {
		t.Fatalf("after rotation: %q, %v; want tok-2", tok, err)
	}
}

func TestClientCredentialsWrongSecretSaysWhatTheEndpointAnswered(t *testing.T) {
	ts := newTokenServer(t, "s3cret", time.Minute)
	src := NewClientCredentials(ClientCredentialsConfig{TokenURL: ts.URL + "/token", ClientID: "agent", ClientSecret: "wrong"})
	_, err := src.Token(context.Background())
	if err == nil {
		t.Fatal("no error with a wrong secret")
	}
	for _, want := range []string{"401", "invalid_client"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Errorf("error %q shows the secret", err)
	}
	name := src.(fmt.Stringer).String()
	if want := fmt.Sprintf("token endpoint %s/token (client_id %q)", ts.URL, "agent"); name != want {
		t.Errorf("source named %q, want %q", name, want)
	}
}

func TestFileIsReadAtEveryLogin(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	src := NewFile(path)
	if _, err := src.Token(context.Background()); err == nil {
		t.Fatal("no error for a missing file")
	}
	for _, tok := range []string{"first", "second"} {
		if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if got, err := src.Token(context.Background()); err != nil || got != tok {
			t.Fatalf("Token = %q, %v; want %q", got, err, tok)
		}
	}
	if err := os.WriteFile(path, []byte(" \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Token(context.Background()); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("empty file: %v", err)
	}
}
