package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/kafkabatcher/kafkabatcherexporter/cmd/devbroker/topicdump"
)

// dumpConfig is what the dump command reads and how.
type dumpConfig struct {
	addr     string
	topic    string
	batches  int
	watch    bool
	wait     int
	timeout  time.Duration
	interval time.Duration
	user     string
}

func runDump(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("devbroker dump", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: devbroker dump [flags]\n\n"+
			"Reads a topic from a running broker with raw Fetch requests and shows its record\n"+
			"batches as the broker stored them: records and batches per partition, and each\n"+
			"batch's records and bytes (a histogram when a partition has many).\n\nflags:\n")
		fs.PrintDefaults()
	}
	cfg := dumpConfig{}
	fs.StringVar(&cfg.addr, "addr", defaultAddr, "broker `host:port` (comma-separated for several)")
	fs.StringVar(&cfg.topic, "topic", defaultTopic, "topic to read")
	fs.IntVar(&cfg.batches, "batches", 20, "list at most this many batches per partition, one per line; more give a histogram")
	fs.BoolVar(&cfg.watch, "watch", false, "print a progress line whenever the topic grows, until Ctrl-C")
	fs.IntVar(&cfg.wait, "wait", 0, "wait until the topic holds at least `N` records, print the report; exit 1 if -timeout passes first")
	fs.DurationVar(&cfg.timeout, "timeout", 60*time.Second, "how long -wait waits")
	fs.DurationVar(&cfg.interval, "interval", time.Second, "how often -watch and -wait read the topic")
	fs.StringVar(&cfg.user, "user", "", "SASL credentials `MECHANISM:NAME:PASSWORD` when the broker requires them")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "devbroker dump: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if cfg.interval <= 0 {
		fmt.Fprintln(stderr, "devbroker dump: -interval must be positive")
		return 2
	}
	opts := []kgo.Opt{kgo.SeedBrokers(strings.Split(cfg.addr, ",")...)}
	if cfg.user != "" {
		mech, err := saslMechanism(cfg.user)
		if err != nil {
			fmt.Fprintf(stderr, "devbroker dump: %v\n", err)
			return 2
		}
		opts = append(opts, kgo.SASL(mech))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		fmt.Fprintf(stderr, "devbroker dump: %v\n", err)
		return 1
	}
	defer cl.Close()
	r := topicdump.NewReader(cl, cfg.topic)
	format := topicdump.FormatOptions{MaxBatchLines: cfg.batches}

	switch {
	case cfg.wait > 0:
		return waitFor(ctx, r, cfg, format, stdout, stderr)
	case cfg.watch:
		return watch(ctx, r, cfg, stdout, stderr)
	}
	t, err := poll(ctx, r, cfg.interval*5)
	if err != nil {
		fmt.Fprintf(stderr, "devbroker dump: %v\n", err)
		return 1
	}
	if err := topicdump.Format(stdout, t, format); err != nil {
		return 1
	}
	return 0
}

// poll reads the topic once, giving up after limit.
func poll(ctx context.Context, r *topicdump.Reader, limit time.Duration) (topicdump.Topic, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	return r.Poll(ctx)
}

// pollEvery reads the topic every interval and hands each reading to
// seen, until seen says done (true) or ctx ends (false). A read error is
// reported once, not every interval, and the reading retried.
func pollEvery(ctx context.Context, r *topicdump.Reader, interval time.Duration, stderr io.Writer, seen func(topicdump.Topic) bool) bool {
	var lastErr string
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		t, err := poll(ctx, r, interval*5)
		switch {
		case ctx.Err() != nil:
		case err != nil:
			if err.Error() != lastErr {
				fmt.Fprintf(stderr, "devbroker dump: %v (retrying)\n", err)
				lastErr = err.Error()
			}
		default:
			lastErr = ""
			if seen(t) {
				return true
			}
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
}

// watch prints a progress line each time the topic grows, until ctx ends.
// The full report is a plain dump: scripts run it once the producers stopped.
func watch(ctx context.Context, r *topicdump.Reader, cfg dumpConfig, stdout, stderr io.Writer) int {
	var last topicdump.Topic
	first := true
	pollEvery(ctx, r, cfg.interval, stderr, func(t topicdump.Topic) bool {
		if first || t.Records() != last.Records() || t.DataBatches() != last.DataBatches() {
			fmt.Fprintln(stdout, topicdump.Progress(last, t, time.Now()))
			first = false
		}
		last = t
		return false
	})
	return 0
}

// waitFor reads the topic until it holds cfg.wait records or cfg.timeout
// passes, printing progress, then prints the report.
func waitFor(ctx context.Context, r *topicdump.Reader, cfg dumpConfig, format topicdump.FormatOptions, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	var last topicdump.Topic
	reached := pollEvery(ctx, r, cfg.interval, stderr, func(t topicdump.Topic) bool {
		if t.Records() != last.Records() {
			fmt.Fprintln(stdout, topicdump.Progress(last, t, time.Now()))
		}
		last = t
		return t.Records() >= cfg.wait
	})
	fmt.Fprintln(stdout)
	if err := topicdump.Format(stdout, last, format); err != nil {
		return 1
	}
	if !reached {
		fmt.Fprintf(stdout, "MISSING: %d of %d expected records reached %s within %s\n",
			last.Records(), cfg.wait, cfg.topic, cfg.timeout)
		return 1
	}
	fmt.Fprintf(stdout, "OK: %d of %d expected records reached %s\n", last.Records(), cfg.wait, cfg.topic)
	return 0
}

// saslMechanism reads MECHANISM:NAME:PASSWORD.
func saslMechanism(s string) (sasl.Mechanism, error) {
	var u userFlag
	if err := u.Set(s); err != nil {
		return nil, err
	}
	switch user := u[0]; user.mechanism {
	case "PLAIN":
		return plain.Auth{User: user.name, Pass: user.password}.AsMechanism(), nil
	case "SCRAM-SHA-256":
		return scram.Auth{User: user.name, Pass: user.password}.AsSha256Mechanism(), nil
	default:
		return scram.Auth{User: user.name, Pass: user.password}.AsSha512Mechanism(), nil
	}
}
