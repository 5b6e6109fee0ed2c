package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// topicSpec is a topic to create at start and its partition count.
type topicSpec struct {
	name       string
	partitions int32
}

func (t topicSpec) String() string { return fmt.Sprintf("%s:%d", t.name, t.partitions) }

// parseTopicSpec reads "name:partitions"; a bare name gets defaultPartitions.
func parseTopicSpec(s string) (topicSpec, error) {
	name, count, hasCount := strings.Cut(s, ":")
	if name == "" {
		return topicSpec{}, fmt.Errorf("topic %q: empty name", s)
	}
	if !hasCount {
		return topicSpec{name: name, partitions: defaultPartitions}, nil
	}
	n, err := strconv.ParseInt(count, 10, 32)
	if err != nil || n < 1 {
		return topicSpec{}, fmt.Errorf("topic %q: partition count must be a positive integer", s)
	}
	return topicSpec{name: name, partitions: int32(n)}, nil
}

// topicsFlag is a repeatable -topic flag; the first use replaces the default.
type topicsFlag struct {
	specs []topicSpec
	set   bool
}

var _ flag.Value = (*topicsFlag)(nil)

func (f *topicsFlag) String() string {
	if f == nil {
		return ""
	}
	parts := make([]string, len(f.specs))
	for i, s := range f.specs {
		parts[i] = s.String()
	}
	return strings.Join(parts, ",")
}

func (f *topicsFlag) Set(s string) error {
	spec, err := parseTopicSpec(s)
	if err != nil {
		return err
	}
	if !f.set {
		f.specs, f.set = nil, true
	}
	f.specs = append(f.specs, spec)
	return nil
}

// userFlag is a repeatable -user MECHANISM:NAME:PASSWORD flag.
type userFlag []saslUser

type saslUser struct{ mechanism, name, password string }

func (f *userFlag) String() string { return fmt.Sprintf("%d users", len(*f)) }

func (f *userFlag) Set(s string) error {
	parts := strings.SplitN(s, ":", 3)
	if len(parts) != 3 || parts[1] == "" || parts[2] == "" {
		return fmt.Errorf("user %q: want MECHANISM:NAME:PASSWORD", s)
	}
	mech := strings.ToUpper(parts[0])
	switch mech {
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
	default:
		return fmt.Errorf("user %q: mechanism must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", s)
	}
	*f = append(*f, saslUser{mechanism: mech, name: parts[1], password: parts[2]})
	return nil
}

// brokerConfig is what the broker command starts.
type brokerConfig struct {
	addr      string // host:port of the first broker; the others take the next ports
	advertise string // host (or host:port) given to clients in metadata; empty: the listen host
	brokers   int
	topics    []topicSpec
	users     []saslUser
	// oauthBearer, when set, takes SASL OAUTHBEARER logins.
	oauthBearer *oauthBearer
	// sessionLifetime, when positive, is the SASL session lifetime
	// clients are told (KIP-368 connections.max.reauth.ms).
	sessionLifetime time.Duration
	// accepted, when set, counts the connections the brokers accept.
	accepted *atomic.Int64
}

// clusterOptions turns cfg into kfake options. kfake itself listens on
// 127.0.0.1; the listen function moves it to the configured host, and the
// listener reports the advertised host so metadata points clients there.
func clusterOptions(cfg brokerConfig) ([]kfake.Opt, error) {
	host, portStr, err := net.SplitHostPort(cfg.addr)
	if err != nil {
		return nil, fmt.Errorf("-addr %q: %w", cfg.addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("-addr %q: bad port", cfg.addr)
	}
	if cfg.brokers < 1 {
		return nil, fmt.Errorf("-brokers must be at least 1, got %d", cfg.brokers)
	}
	if port != 0 && port+cfg.brokers-1 > 65535 {
		return nil, fmt.Errorf("-addr %q: no room for %d brokers above port %d", cfg.addr, cfg.brokers, port)
	}
	if len(cfg.topics) == 0 {
		return nil, errors.New("at least one -topic is needed")
	}
	// With a port, -advertise names the first broker's address as clients
	// see it (a proxy in front); broker i is advertised at that port + i.
	advertise, shift := cfg.advertise, 0
	if h, p, err := net.SplitHostPort(cfg.advertise); err == nil {
		ap, err := strconv.Atoi(p)
		if err != nil || ap <= 0 || ap+cfg.brokers-1 > 65535 {
			return nil, fmt.Errorf("-advertise %q: bad port", cfg.advertise)
		}
		if port == 0 {
			return nil, fmt.Errorf("-advertise %q: a port needs a fixed -addr port", cfg.advertise)
		}
		advertise, shift = h, ap-port
	}
	advertise = advertiseHost(host, advertise)

	ports := make([]int, cfg.brokers)
	for i := range ports {
		if port != 0 {
			ports[i] = port + i
		}
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(cfg.brokers),
		kfake.Ports(ports...),
		kfake.ListenFn(func(network, address string) (net.Listener, error) {
			_, p, err := net.SplitHostPort(address)
			if err != nil {
				return nil, err
			}
			ln, err := net.Listen(network, net.JoinHostPort(host, p))
			if err != nil {
				return nil, err
			}
			return advertisedListener{Listener: ln, host: advertise, shift: shift, accepted: cfg.accepted}, nil
		}),
	}
	for _, t := range cfg.topics {
		opts = append(opts, kfake.SeedTopics(t.partitions, t.name))
	}
	if len(cfg.users) > 0 {
		opts = append(opts, kfake.EnableSASL())
		for _, u := range cfg.users {
			opts = append(opts, kfake.Superuser(u.mechanism, u.name, u.password))
		}
	}
	if cfg.oauthBearer != nil {
		opts = append(opts, cfg.oauthBearer.options()...)
	}
	switch {
	case cfg.sessionLifetime < 0:
		return nil, fmt.Errorf("-sasl-session-lifetime %s: negative", cfg.sessionLifetime)
	case cfg.sessionLifetime > 0 && len(cfg.users) == 0 && cfg.oauthBearer == nil:
		return nil, errors.New("-sasl-session-lifetime needs SASL: -user or -oauthbearer")
	case cfg.sessionLifetime > 0 && cfg.sessionLifetime < time.Millisecond:
		return nil, fmt.Errorf("-sasl-session-lifetime %s: less than a millisecond", cfg.sessionLifetime)
	case cfg.sessionLifetime > 0:
		ms := strconv.FormatInt(cfg.sessionLifetime.Milliseconds(), 10)
		opts = append(opts, kfake.BrokerConfigs(map[string]string{"connections.max.reauth.ms": ms}))
	}
	return opts, nil
}

// advertiseHost is the host clients are told to dial: the -advertise flag,
// else the listen host, except that a wildcard is no address to dial.
func advertiseHost(listenHost, advertise string) string {
	if advertise != "" {
		return advertise
	}
	if ip := net.ParseIP(listenHost); listenHost == "" || (ip != nil && ip.IsUnspecified()) {
		return "127.0.0.1"
	}
	return listenHost
}

// advertisedListener reports host, with the real port plus shift, as its
// address: kfake puts a listener's address in metadata responses. It
// counts the connections it accepts in accepted, when set.
type advertisedListener struct {
	net.Listener
	host     string
	shift    int
	accepted *atomic.Int64
}

func (l advertisedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil && l.accepted != nil {
		l.accepted.Add(1)
	}
	return c, err
}

func (l advertisedListener) Addr() net.Addr {
	_, port, _ := net.SplitHostPort(l.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	return hostPort(net.JoinHostPort(l.host, strconv.Itoa(p+l.shift)))
}

type hostPort string

func (h hostPort) Network() string { return "tcp" }
func (h hostPort) String() string  { return string(h) }
