// Command devbroker is a local Kafka-protocol broker (franz-go's kfake,
// in memory) for the demo, the end-to-end tests and the benchmarks, and a
// client that shows what a topic holds and how it was batched.
//
//	devbroker [-addr 127.0.0.1:9092] [-topic otlp_logs:6]... [-brokers 1] [-user PLAIN:name:pass]...
//	          [-oauthbearer] [-oauthbearer-log FILE] [-sasl-session-lifetime 3s]
//	devbroker dump [-addr 127.0.0.1:9092] [-topic otlp_logs] [-batches 20] [-watch] [-wait N -timeout 60s]
//
// The broker prints one line when it is ready and stops on SIGINT or SIGTERM.
// Data lives in memory and is gone when it stops.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

const (
	defaultAddr       = "127.0.0.1:9092"
	defaultTopic      = "otlp_logs"
	defaultPartitions = 6
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil)
	stop()
	os.Exit(code)
}

// run is the whole command; ready, when not nil, gets the broker's
// addresses once it listens (tests use it).
func run(ctx context.Context, args []string, stdout, stderr io.Writer, ready func([]string)) int {
	if len(args) > 0 && args[0] == "dump" {
		return runDump(ctx, args[1:], stdout, stderr)
	}
	return runBroker(ctx, args, stderr, ready)
}

func runBroker(ctx context.Context, args []string, stderr io.Writer, ready func([]string)) int {
	fs := flag.NewFlagSet("devbroker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: devbroker [flags]        run a local in-memory Kafka broker\n"+
			"       devbroker dump [flags]   show what a topic holds (run 'devbroker dump -h')\n\nflags:\n")
		fs.PrintDefaults()
	}
	cfg := brokerConfig{accepted: new(atomic.Int64)}
	topics := &topicsFlag{specs: []topicSpec{{name: defaultTopic, partitions: defaultPartitions}}}
	var users userFlag
	fs.StringVar(&cfg.addr, "addr", defaultAddr, "listen address `host:port` of the first broker; more brokers take the next ports; port 0 picks free ports")
	fs.StringVar(&cfg.advertise, "advertise", "", "`host` (or host:port, for a proxy in front; broker i gets port+i) that clients are told to connect to (default: the listen host, or 127.0.0.1 for a wildcard)")
	fs.IntVar(&cfg.brokers, "brokers", 1, "number of brokers")
	fs.Var(topics, "topic", "topic to create as `name:partitions` (repeatable; the first use replaces the default)")
	fs.Var(&users, "user", "require SASL and accept this `MECHANISM:NAME:PASSWORD` (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512; repeatable)")
	oauth := fs.Bool("oauthbearer", false, "require SASL and accept OAUTHBEARER logins with any well-formed bearer token (besides the -user logins)")
	oauthLog := fs.String("oauthbearer-log", "", "append each OAUTHBEARER login to `file`, one line each: time (RFC 3339, UTC), broker node id, token (implies -oauthbearer)")
	fs.DurationVar(&cfg.sessionLifetime, "sasl-session-lifetime", 0, "SASL session lifetime told to clients at login: they log in again on the same connection before it ends (KIP-368); 0: no limit")
	logLevel := fs.String("log-level", "none", "kfake's own log `level`: none, error, warn, info, debug")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "devbroker: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	cfg.topics = topics.specs
	cfg.users = users
	level, err := parseLogLevel(*logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "devbroker: %v\n", err)
		return 2
	}
	if *oauth || *oauthLog != "" {
		if cfg.oauthBearer, err = newOAuthBearer(cfg.users, *oauthLog); err != nil {
			fmt.Fprintf(stderr, "devbroker: %v\n", err)
			return 2
		}
		defer cfg.oauthBearer.close()
	}
	opts, err := clusterOptions(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "devbroker: %v\n", err)
		return 2
	}
	logger := log.New(stderr, "devbroker: ", log.LstdFlags)
	opts = append(opts, kfake.WithLogger(kfake.BasicLogger(stderr, level)))

	c, err := kfake.NewCluster(opts...)
	if err != nil {
		logger.Printf("cannot start: %v", err)
		return 1
	}
	if cfg.oauthBearer != nil {
		cfg.oauthBearer.install(c)
	}
	addrs := c.ListenAddrs()
	logger.Printf("ready on %s, topics %s%s (stop with Ctrl-C)", strings.Join(addrs, ","), topics, saslSummary(cfg))
	if ready != nil {
		ready(addrs)
	}

	<-ctx.Done()
	for _, t := range cfg.topics {
		logger.Printf("stopping: %s", topicTotals(c, t.name))
	}
	if cfg.oauthBearer != nil {
		logger.Printf("stopping: %d OAUTHBEARER logins on %d connections", cfg.oauthBearer.loginCount(), cfg.accepted.Load())
	}
	c.Close()
	if cfg.oauthBearer != nil {
		if err := cfg.oauthBearer.close(); err != nil {
			logger.Printf("-oauthbearer-log: %v", err)
		}
	}
	logger.Printf("stopped")
	return 0
}

// saslSummary describes the broker's SASL logins for the ready line.
func saslSummary(cfg brokerConfig) string {
	var parts []string
	if len(cfg.users) > 0 {
		parts = append(parts, fmt.Sprintf("%d users", len(cfg.users)))
	}
	if cfg.oauthBearer != nil {
		parts = append(parts, "OAUTHBEARER")
	}
	if len(parts) == 0 {
		return ""
	}
	s := ", SASL with " + strings.Join(parts, " and ")
	if cfg.sessionLifetime > 0 {
		s += fmt.Sprintf(", sessions of %s", cfg.sessionLifetime)
	}
	return s
}

// topicTotals says how many records each partition of topic holds.
func topicTotals(c *kfake.Cluster, topic string) string {
	var total int64
	var parts []string
	for _, p := range c.PartitionInfos(topic) {
		n := p.HighWatermark - p.LogStartOffset
		total += n
		parts = append(parts, fmt.Sprintf("p%d=%d", p.Partition, n))
	}
	return fmt.Sprintf("%s holds %d records (%s)", topic, total, strings.Join(parts, " "))
}

func parseLogLevel(s string) (kfake.LogLevel, error) {
	switch strings.ToLower(s) {
	case "none":
		return kfake.LogLevelNone, nil
	case "error":
		return kfake.LogLevelError, nil
	case "warn":
		return kfake.LogLevelWarn, nil
	case "info":
		return kfake.LogLevelInfo, nil
	case "debug":
		return kfake.LogLevelDebug, nil
	}
	return 0, fmt.Errorf("-log-level %q: want none, error, warn, info or debug", s)
}
