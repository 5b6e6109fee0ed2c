package main

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// mechOAuthBearer is the SASL mechanism of RFC 7628 (KIP-255).
const mechOAuthBearer = "OAUTHBEARER"

// oauthBearer makes a kfake cluster accept SASL OAUTHBEARER logins, which
// kfake itself does not know. Control functions, which see requests but
// not their connections, check each login on its own: a handshake for
// OAUTHBEARER goes on to kfake as one for PLAIN, and an authenticate whose
// bytes are a well-formed OAUTHBEARER initial response is logged and goes
// on to kfake as the PLAIN login of a user only this broker knows. kfake
// keeps the connection's SASL state as for any PLAIN login: requests
// before the login are refused, the SaslAuthenticate answer carries the
// session lifetime (connections.max.reauth.ms) and a handshake on an
// authenticated connection re-authenticates (KIP-368). The token is not
// verified, only recorded; tests check it from the token log.
type oauthBearer struct {
	user, pass string   // the stand-in PLAIN login, random
	mechanisms []string // what handshakes may ask for: OAUTHBEARER and the -user mechanisms

	mu     sync.Mutex
	log    io.WriteCloser // nil: tokens are not written
	logins int
}

// newOAuthBearer returns the OAUTHBEARER logins of a cluster whose -user
// logins are users; with logPath set, each login's token is appended to
// that file.
func newOAuthBearer(users []saslUser, logPath string) (*oauthBearer, error) {
	o := &oauthBearer{user: "oauthbearer-" + rand.Text(), pass: rand.Text(), mechanisms: []string{mechOAuthBearer}}
	for _, u := range users {
		if !slices.Contains(o.mechanisms, u.mechanism) {
			o.mechanisms = append(o.mechanisms, u.mechanism)
		}
	}
	if logPath != "" {
		f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("-oauthbearer-log: %w", err)
		}
		o.log = f
	}
	return o, nil
}

// options are the cluster options the logins need.
func (o *oauthBearer) options() []kfake.Opt {
	return []kfake.Opt{kfake.EnableSASL(), kfake.Superuser("PLAIN", o.user, o.pass)}
}

// install adds the control functions to c; they stay for its life.
func (o *oauthBearer) install(c *kfake.Cluster) {
	c.ControlKey(int16(kmsg.SASLHandshake), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		return o.handshake(req.(*kmsg.SASLHandshakeRequest))
	})
	c.ControlKey(int16(kmsg.SASLAuthenticate), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		return o.authenticate(req.(*kmsg.SASLAuthenticateRequest), c.CurrentNode(), time.Now())
	})
}

// handshake refuses mechanisms the broker does not offer, naming those it
// does, and hands the others to kfake, OAUTHBEARER as PLAIN.
func (o *oauthBearer) handshake(req *kmsg.SASLHandshakeRequest) (kmsg.Response, error, bool) {
	if !slices.Contains(o.mechanisms, req.Mechanism) {
		resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		resp.SupportedMechanisms = o.mechanisms
		return resp, nil, true
	}
	if req.Mechanism == mechOAuthBearer {
		req.Mechanism = "PLAIN"
	}
	return nil, nil, false
}

// authenticate takes an OAUTHBEARER initial response: a malformed one is
// refused, a well-formed one is recorded and handed to kfake as the
// stand-in PLAIN login. Other bytes (PLAIN, SCRAM) are kfake's.
func (o *oauthBearer) authenticate(req *kmsg.SASLAuthenticateRequest, node int32, now time.Time) (kmsg.Response, error, bool) {
	if !isOAuthBearerResponse(req.SASLAuthBytes) {
		return nil, nil, false
	}
	token, err := parseOAuthBearerResponse(req.SASLAuthBytes)
	if err != nil {
		resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		msg := "OAUTHBEARER: " + err.Error()
		resp.ErrorMessage = &msg
		return resp, nil, true
	}
	if err := o.record(node, token, now); err != nil {
		return nil, err, true // closes the connection; kfake logs why
	}
	req.SASLAuthBytes = []byte("\x00" + o.user + "\x00" + o.pass)
	return nil, nil, false
}

// record counts a login and writes its line to the token log: the time
// (RFC 3339, UTC), the broker's node id and the token.
func (o *oauthBearer) record(node int32, token string, now time.Time) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.logins++
	if o.log == nil {
		return nil
	}
	if _, err := fmt.Fprintf(o.log, "%s %d %s\n", now.UTC().Format(time.RFC3339Nano), node, token); err != nil {
		return fmt.Errorf("-oauthbearer-log: %w", err)
	}
	return nil
}

// loginCount is how many OAUTHBEARER logins were taken.
func (o *oauthBearer) loginCount() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.logins
}

// close closes the token log.
func (o *oauthBearer) close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.log == nil {
		return nil
	}
	err := o.log.Close()
	o.log = nil
	return err
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

// parseOAuthBearerResponse returns the bearer token of an OAUTHBEARER
// initial response (RFC 7628 section 3.1):
//
//	gs2-header %x01 *(key "=" value %x01) %x01
//
// with the key "auth" holding "Bearer <token>".
func parseOAuthBearerResponse(msg []byte) (string, error) {
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
