package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/kafkabatcher/kafkabatcherexporter/internal/kfaketest"
)

// oauthBearer makes the cluster take SASL OAUTHBEARER logins
// (kfaketest.OAuthBearer, which kfake itself lacks) and writes each
// login's token to a log. Tokens are not verified, only recorded; tests
// check them from the token log.
type oauthBearer struct {
	*kfaketest.OAuthBearer

	mu  sync.Mutex
	log io.WriteCloser // nil: tokens are not written
}

// newOAuthBearer returns the OAUTHBEARER logins of a cluster whose -user
// logins are users; with logPath set, each login's token is appended to
// that file.
func newOAuthBearer(users []saslUser, logPath string) (*oauthBearer, error) {
	o := &oauthBearer{}
	var others []string
	for _, u := range users {
		others = append(others, u.mechanism)
	}
	if logPath != "" {
		f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("-oauthbearer-log: %w", err)
		}
		o.log = f
	}
	o.OAuthBearer = kfaketest.NewOAuthBearer(others, func(node int32, token string) error {
		return o.record(node, token, time.Now())
	})
	return o, nil
}

// options are the cluster options the logins need.
func (o *oauthBearer) options() []kfake.Opt { return o.Options() }

// install adds the control functions to c; they stay for its life.
func (o *oauthBearer) install(c *kfake.Cluster) { o.Install(c) }

// record writes a login's line to the token log: the time (RFC 3339,
// UTC), the broker's node id and the token. A login whose line cannot be
// written is refused.
func (o *oauthBearer) record(node int32, token string, now time.Time) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.log == nil {
		return nil
	}
	if _, err := fmt.Fprintf(o.log, "%s %d %s\n", now.UTC().Format(time.RFC3339Nano), node, token); err != nil {
		return fmt.Errorf("-oauthbearer-log: %w", err)
	}
	return nil
}

// loginCount is how many OAUTHBEARER logins were taken.
func (o *oauthBearer) loginCount() int { return o.Logins() }

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
