package kfaketest

import (
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// MechOAuthBearer is the SASL mechanism of RFC 7628 (KIP-255).
const MechOAuthBearer = "OAUTHBEARER"

// OAuthBearer makes a kfake cluster accept SASL OAUTHBEARER logins, which
// kfake itself does not know. Control functions, which see requests but
// not their connections, check each login on its own: a handshake for
// OAUTHBEARER goes on to kfake as one for PLAIN, and an authenticate whose
// bytes are a well-formed OAUTHBEARER initial response is given to the
// check function and, if it accepts the token, goes on to kfake as the
// PLAIN login of a user only this broker knows. kfake keeps the
// connection's SASL state as for any PLAIN login: requests before the
// login are refused, the SaslAuthenticate answer carries the session
// lifetime (connections.max.reauth.ms) and a handshake on an authenticated
// connection re-authenticates (KIP-368).
type OAuthBearer struct {
	user, pass string   // the stand-in PLAIN login, random
	mechanisms []string // what handshakes may ask for
	check      func(node int32, token string) error

	mu     sync.Mutex
	logins int
}

// NewOAuthBearer returns the OAUTHBEARER logins of a cluster that also
// offers the mechanisms others (its kfake.Superuser logins). check sees
// each token with the node that took it; an error refuses the login
// (SASL_AUTHENTICATION_FAILED with the error's text). A nil check takes
// every well-formed token.
func NewOAuthBearer(others []string, check func(node int32, token string) error) *OAuthBearer {
	o := &OAuthBearer{user: "oauthbearer-" + rand.Text(), pass: rand.Text(), mechanisms: []string{MechOAuthBearer}, check: check}
	for _, m := range others {
		if !slices.Contains(o.mechanisms, m) {
			o.mechanisms = append(o.mechanisms, m)
		}
	}
	return o
}

// Options are the cluster options the logins need.
func (o *OAuthBearer) Options() []kfake.Opt {
	return []kfake.Opt{kfake.EnableSASL(), kfake.Superuser("PLAIN", o.user, o.pass)}
}

// Install adds the control functions to c; they stay for its life.
func (o *OAuthBearer) Install(c *kfake.Cluster) {
	c.ControlKey(int16(kmsg.SASLHandshake), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		return o.handshake(req.(*kmsg.SASLHandshakeRequest))
	})
	c.ControlKey(int16(kmsg.SASLAuthenticate), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		return o.authenticate(req.(*kmsg.SASLAuthenticateRequest), c.CurrentNode())
	})
}

// handshake refuses mechanisms the broker does not offer, naming those it
// does, and hands the others to kfake, OAUTHBEARER as PLAIN.
func (o *OAuthBearer) handshake(req *kmsg.SASLHandshakeRequest) (kmsg.Response, error, bool) {
	if !slices.Contains(o.mechanisms, req.Mechanism) {
		resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		resp.SupportedMechanisms = o.mechanisms
		return resp, nil, true
	}
	if req.Mechanism == MechOAuthBearer {
		req.Mechanism = "PLAIN"
	}
	return nil, nil, false
}

// authenticate takes an OAUTHBEARER initial response: a malformed one, or
// one check refuses, is refused; a good one is counted and handed to kfake
// as the stand-in PLAIN login. Other bytes (PLAIN, SCRAM) are kfake's.
func (o *OAuthBearer) authenticate(req *kmsg.SASLAuthenticateRequest, node int32) (kmsg.Response, error, bool) {
	if !isOAuthBearerResponse(req.SASLAuthBytes) {
		return nil, nil, false
	}
	token, err := ParseOAuthBearerResponse(req.SASLAuthBytes)
	if err == nil && o.check != nil {
		err = o.check(node, token)
	}
	if err != nil {
		resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		msg := "OAUTHBEARER: " + err.Error()
		resp.ErrorMessage = &msg
		return resp, nil, true
	}
	o.mu.Lock()
	o.logins++
	o.mu.Unlock()
	req.SASLAuthBytes = []byte("\x00" + o.user + "\x00" + o.pass)
	return nil, nil, false
}

// Logins is how many OAUTHBEARER logins were taken.
func (o *OAuthBearer) Logins() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.logins
}

// splitGS2 splits a SASL message after its GS2 header (RFC 5801):
// gs2-cb-flag "," [authzid] ",". ok is false when there is none.
func splitGS2(msg []byte) (rest []byte, ok bool) {
	flag, after, ok := strings.Cut(string(msg), ",")
	if !ok || !(flag == "n" || flag == "y" || strings.HasPrefix(flag, "p=")) {
		return nil, false
	}
	authz, after, ok := strings.Cut(after, ",")
	if !ok || (authz != "" && !strings.HasPrefix(authz, "a=")) {
		return nil, false
	}
	return []byte(after), true
}

// isOAuthBearerResponse reports whether msg looks like an OAUTHBEARER
// initial response: a GS2 header and then the key-value separator \x01 (a
// SCRAM client-first message has "n=" there; PLAIN has no GS2 header).
func isOAuthBearerResponse(msg []byte) bool {
	rest, ok := splitGS2(msg)
	return ok && len(rest) > 0 && rest[0] == 0x01
}

// ParseOAuthBearerResponse returns the bearer token of an OAUTHBEARER
// initial response (RFC 7628 section 3.1):
//
//	gs2-header %x01 *(key "=" value %x01) %x01
//
// with the key "auth" holding "Bearer <token>".
func ParseOAuthBearerResponse(msg []byte) (string, error) {
	rest, ok := splitGS2(msg)
	if !ok {
		return "", errors.New("no GS2 header")
	}
	s := string(rest)
	if !strings.HasPrefix(s, "\x01") || !strings.HasSuffix(s, "\x01\x01") || len(s) < 3 {
		return "", errors.New("key-value pairs not framed by \\x01 ... \\x01\\x01")
	}
	var auth string
	var hasAuth bool
	for _, kv := range strings.Split(s[1:len(s)-2], "\x01") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return "", fmt.Errorf("key-value pair %q has no key", kv)
		}
		if k == "auth" {
			if hasAuth {
				return "", errors.New("auth given twice")
			}
			auth, hasAuth = v, true
		}
	}
	if !hasAuth {
		return "", errors.New("no auth key")
	}
	scheme, token, _ := strings.Cut(auth, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", fmt.Errorf("auth scheme %q is not Bearer", scheme)
	}
	if !isB64Token(token) {
		return "", errors.New("the bearer token is empty or not a b64token (RFC 6750)")
	}
	return token, nil
}

// isB64Token reports whether s is an RFC 6750 b64token:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isB64Token(s string) bool {
	body := strings.TrimRight(s, "=")
	if body == "" {
		return false
	}
	for _, r := range body {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', strings.ContainsRune("-._~+/", r):
		default:
			return false
		}
	}
	return true
}
