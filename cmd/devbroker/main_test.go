package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"go.uber.org/goleak"

	"github.com/kafkabatcher/kafkabatcherexporter/cmd/devbroker/internal/kafkatest"
	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/rcrowley/go-metrics.(*meterArbiter).tick"),
		goleak.IgnoreTopFunction("github.com/twmb/franz-go/pkg/kfake.(*group).manage"),
	)
}

// syncBuffer is a bytes.Buffer safe for the broker goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startBroker runs the broker command until the test ends and returns its
// addresses and its log; the broker must stop cleanly.
func startBroker(t *testing.T, args ...string) ([]string, *syncBuffer) {
	t.Helper()
	addrs, log, stop := stoppableBroker(t, args...)
	t.Cleanup(func() {
		code := make(chan int, 1)
		go func() { code <- stop() }()
		select {
		case c := <-code:
			assert.Equal(t, 0, c, "clean stop")
		case <-time.After(10 * time.Second):
			t.Error("broker did not stop")
		}
	})
	return addrs, log
}

// stoppableBroker runs the broker command until stop, which returns its
// exit code.
func stoppableBroker(t *testing.T, args ...string) ([]string, *syncBuffer, func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log := &syncBuffer{}
	readyc := make(chan []string, 1)
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, args, log, log, func(addrs []string) { readyc <- addrs })
	}()
	select {
	case addrs := <-readyc:
		return addrs, log, func() int { cancel(); return <-done }
	case code := <-done:
		cancel()
		t.Fatalf("broker exited with %d: %s", code, log.String())
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("broker not ready")
	}
	return nil, nil, nil
}

// produce sends one record batch per entry of sizes to partition p and
// returns each batch's exact size as the exporter computes it.
func produce(t *testing.T, cl *kgo.Client, topic string, p int32, sizes ...int) []int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ts := time.UnixMilli(1_700_000_000_000)
	var out []int
	for _, n := range sizes {
		msgs := make([]message.Message, n)
		for i := range msgs {
			msgs[i] = message.Message{Value: []byte(fmt.Sprintf("log line %d of %d", i, n)), Timestamp: ts}
		}
		_, err := kafkatest.Produce(ctx, cl, topic, p, msgs)
		require.NoError(t, err)
		out = append(out, message.BatchSize(msgs))
	}
	return out
}

func producer(t *testing.T, addrs []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addrs...)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	return cl
}

func dump(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, append([]string{"dump"}, args...), &stdout, &stderr, nil)
	return code, stdout.String(), stderr.String()
}

func TestBrokerAndDumpShowTheBatchesProduced(t *testing.T) {
	addrs, log := startBroker(t, "-addr", "127.0.0.1:0", "-topic", "otlp_logs:3", "-topic", "other")
	require.Len(t, addrs, 1)
	assert.Contains(t, log.String(), "ready on "+addrs[0]+", topics otlp_logs:3,other:6")

	cl := producer(t, addrs)
	sizes0 := produce(t, cl, "otlp_logs", 0, 4, 2)
	sizes2 := produce(t, cl, "otlp_logs", 2, 7)
	produce(t, cl, "other", 5, 1)

	code, out, errOut := dump(t, "-addr", addrs[0], "-topic", "otlp_logs")
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, fmt.Sprintf(""+
		"topic otlp_logs: 13 records in 3 batches, %[1]d bytes (%[2]s), 3 partitions\n"+
		"  partition 0: 6 records in 2 batches, %[3]d bytes\n"+
		"    offset 0: 4 records, %[4]d bytes\n"+
		"    offset 4: 2 records, %[5]d bytes\n"+
		"  partition 1: empty\n"+
		"  partition 2: 7 records in 1 batches, %[6]d bytes\n"+
		"    offset 0: 7 records, %[6]d bytes\n",
		sizes0[0]+sizes0[1]+sizes2[0], humanSize(sizes0[0]+sizes0[1]+sizes2[0]),
		sizes0[0]+sizes0[1], sizes0[0], sizes0[1], sizes2[0]), out)

	code, out, _ = dump(t, "-addr", addrs[0], "-topic", "other", "-batches", "0")
	require.Equal(t, 0, code)
	assert.Contains(t, out, "topic other: 1 records in 1 batches")
	assert.Contains(t, out, "  partition 5: 1 records in 1 batches")
	assert.Contains(t, out, "    1                1\n", "a histogram when batches are not listed")
}

func humanSize(n int) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	return fmt.Sprintf("%.1f KiB", float64(n)/1024)
}

func TestBrokerStopSaysWhatTopicsHoldAndFreesThePort(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	log := &syncBuffer{}
	readyc := make(chan []string, 1)
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-topic", "t:2"}, log, log, func(a []string) { readyc <- a })
	}()
	addrs := <-readyc
	produce(t, producer(t, addrs), "t", 1, 3)

	cancel() // what SIGINT/SIGTERM do through signal.NotifyContext
	require.Equal(t, 0, <-done)
	assert.Contains(t, log.String(), "stopping: t holds 3 records (p0=0 p1=3)")
	assert.Contains(t, log.String(), "stopped")

	ln, err := net.Listen("tcp", addrs[0])
	require.NoError(t, err, "the port is free after stop")
	require.NoError(t, ln.Close())
}

func TestBrokerSeveralBrokersOnConsecutivePorts(t *testing.T) {
	port := freePorts(t, 3)
	addrs, _ := startBroker(t, "-addr", fmt.Sprintf("127.0.0.1:%d", port), "-brokers", "3", "-topic", "t:6")
	assert.Equal(t, []string{
		fmt.Sprintf("127.0.0.1:%d", port), fmt.Sprintf("127.0.0.1:%d", port+1), fmt.Sprintf("127.0.0.1:%d", port+2),
	}, addrs)

	cl := producer(t, addrs[:1])
	for p := range int32(6) {
		produce(t, cl, "t", p, int(p)+1)
	}
	code, out, errOut := dump(t, "-addr", addrs[2], "-topic", "t")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "topic t: 21 records in 6 batches")
	for p := range 6 {
		assert.Contains(t, out, fmt.Sprintf("  partition %d: %d records in 1 batches", p, p+1))
	}
}

// freePorts finds n consecutive free ports on loopback.
func freePorts(t *testing.T, n int) int {
	t.Helper()
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		base := ln.Addr().(*net.TCPAddr).Port
		require.NoError(t, ln.Close())
		if base+n > 65535 {
			continue
		}
		ok := true
		for i := 1; i < n && ok; i++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+i))
			if err != nil {
				ok = false
				break
			}
			require.NoError(t, l.Close())
		}
		if ok {
			return base
		}
	}
	t.Fatal("no consecutive free ports")
	return 0
}

func TestBrokerPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, ln.Close()) })
	var out bytes.Buffer
	code := run(context.Background(), []string{"-addr", ln.Addr().String()}, &out, &out, nil)
	assert.Equal(t, 1, code)
	assert.Contains(t, out.String(), "cannot start")
	assert.Contains(t, out.String(), "address already in use")
}

func TestBrokerAdvertisedHost(t *testing.T) {
	addrs, _ := startBroker(t, "-addr", "127.0.0.1:0", "-advertise", "localhost")
	require.Len(t, addrs, 1)
	host, _, err := net.SplitHostPort(addrs[0])
	require.NoError(t, err)
	assert.Equal(t, "localhost", host)

	// Clients follow the advertised address and still reach the broker.
	produce(t, producer(t, addrs), defaultTopic, 0, 2)
	code, out, errOut := dump(t, "-addr", addrs[0])
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "topic otlp_logs: 2 records in 1 batches")
	assert.Contains(t, out, "6 partitions", "the default topic has 6 partitions")
}

func TestBrokerSASL(t *testing.T) {
	addrs, log := startBroker(t, "-addr", "127.0.0.1:0", "-user", "PLAIN:alice:secret", "-user", "SCRAM-SHA-256:bob:pw")
	assert.Contains(t, log.String(), "SASL with 2 users")
	produce(t, producer(t, addrs, kgo.SASL(plain.Auth{User: "alice", Pass: "secret"}.AsMechanism())), defaultTopic, 1, 3)

	code, out, errOut := dump(t, "-addr", addrs[0], "-user", "SCRAM-SHA-256:bob:pw")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "topic otlp_logs: 3 records in 1 batches")

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code = run(ctx, []string{"dump", "-addr", addrs[0], "-user", "PLAIN:alice:wrong", "-interval", "100ms"}, &stdout, &stderr, nil)
	assert.Equal(t, 1, code, "wrong password")
	assert.NotEmpty(t, stderr.String())
}

func TestDumpWaitReachesTheCount(t *testing.T) {
	addrs, _ := startBroker(t, "-addr", "127.0.0.1:0")
	cl := producer(t, addrs)
	produce(t, cl, defaultTopic, 0, 5)
	produce(t, cl, defaultTopic, 3, 5)

	code, out, errOut := dump(t, "-addr", addrs[0], "-wait", "10", "-timeout", "10s", "-interval", "50ms")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "topic otlp_logs: 10 records in 2 batches")
	assert.Contains(t, out, "OK: 10 of 10 expected records reached otlp_logs")
}

func TestDumpWaitSeesRecordsArriveLater(t *testing.T) {
	addrs, _ := startBroker(t, "-addr", "127.0.0.1:0")
	cl := producer(t, addrs)
	produce(t, cl, defaultTopic, 0, 2)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"dump", "-addr", addrs[0], "-wait", "5", "-timeout", "20s", "-interval", "20ms"}, out, out, nil)
	}()
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "2 records in 1 batches") }, 10*time.Second, 10*time.Millisecond)
	produce(t, cl, defaultTopic, 4, 3)
	require.Equal(t, 0, <-done)
	assert.Contains(t, out.String(), "(+3 records, +1 batches)")
	assert.Contains(t, out.String(), "OK: 5 of 5 expected records")
}

func TestDumpWaitTimesOutWhenRecordsAreMissing(t *testing.T) {
	addrs, _ := startBroker(t, "-addr", "127.0.0.1:0")
	produce(t, producer(t, addrs), defaultTopic, 0, 3)

	code, out, _ := dump(t, "-addr", addrs[0], "-wait", "4", "-timeout", "300ms", "-interval", "50ms")
	assert.Equal(t, 1, code)
	assert.Contains(t, out, "topic otlp_logs: 3 records in 1 batches")
	assert.Contains(t, out, "MISSING: 3 of 4 expected records reached otlp_logs within 300ms")
}

func TestDumpWatchPrintsProgress(t *testing.T) {
	addrs, _ := startBroker(t, "-addr", "127.0.0.1:0", "-topic", "w:2")
	cl := producer(t, addrs)
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"dump", "-addr", addrs[0], "-topic", "w", "-watch", "-interval", "20ms"}, out, out, nil)
	}()
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "w: 0 records in 0 batches") }, 10*time.Second, 10*time.Millisecond)
	produce(t, cl, "w", 1, 4)
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "(+4 records, +1 batches) p0=0 p1=4") }, 10*time.Second, 10*time.Millisecond)
	cancel()
	require.Equal(t, 0, <-done)
	assert.Equal(t, 2, strings.Count(out.String(), "(+"),
		"one progress line at start, one when records arrived, none while nothing changed")
}

func TestDumpUnknownTopic(t *testing.T) {
	addrs, _ := startBroker(t, "-addr", "127.0.0.1:0")
	code, _, errOut := dump(t, "-addr", addrs[0], "-topic", "nope")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "unknown topic")
}

func TestFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"-topic", "x:0"},
		{"-topic", ":3"},
		{"-topic", "x:many"},
		{"-brokers", "0"},
		{"-addr", "nohostport"},
		{"-addr", "127.0.0.1:70000"},
		{"-user", "GSSAPI:a:b"},
		{"-user", "PLAIN:a"},
		{"-log-level", "loud"},
		{"-sasl-session-lifetime", "3s"},
		{"-oauthbearer", "-sasl-session-lifetime", "-1s"},
		{"-oauthbearer", "-sasl-session-lifetime", "1us"},
		{"-oauthbearer-log", "/nonexistent/dir/tokens"},
		{"extra"},
		{"dump", "-interval", "0s"},
		{"dump", "-user", "PLAIN"},
		{"dump", "extra"},
	} {
		var out bytes.Buffer
		code := run(context.Background(), args, &out, &out, nil)
		assert.Equal(t, 2, code, "%v: %s", args, out.String())
		assert.NotEmpty(t, out.String(), "%v says why", args)
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"dump", "-h"}} {
		var out bytes.Buffer
		assert.Equal(t, 0, run(context.Background(), args, &out, &out, nil))
		assert.Contains(t, out.String(), "usage: devbroker")
	}
}

func TestParseTopicSpec(t *testing.T) {
	for in, want := range map[string]topicSpec{
		"otlp_logs:6": {name: "otlp_logs", partitions: 6},
		"a:1":         {name: "a", partitions: 1},
		"bare":        {name: "bare", partitions: defaultPartitions},
	} {
		got, err := parseTopicSpec(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
}

func TestAdvertiseHost(t *testing.T) {
	assert.Equal(t, "127.0.0.1", advertiseHost("127.0.0.1", ""))
	assert.Equal(t, "::1", advertiseHost("::1", ""))
	assert.Equal(t, "127.0.0.1", advertiseHost("0.0.0.0", ""), "a wildcard is no address to dial")
	assert.Equal(t, "127.0.0.1", advertiseHost("::", ""))
	assert.Equal(t, "127.0.0.1", advertiseHost("", ""))
	assert.Equal(t, "kafka.local", advertiseHost("0.0.0.0", "kafka.local"))

	shifted := advertisedListener{Listener: fakeListener{addr: "127.0.0.1:9093"}, host: "proxy", shift: 100}
	assert.Equal(t, "proxy:9193", shifted.Addr().String())
	l := advertisedListener{Listener: fakeListener{addr: "0.0.0.0:9092"}, host: "127.0.0.1"}
	assert.Equal(t, "127.0.0.1:9092", l.Addr().String())
	assert.Equal(t, "tcp", l.Addr().Network())
}

type fakeListener struct {
	net.Listener
	addr string
}

func (f fakeListener) Addr() net.Addr { return hostPort(f.addr) }

func TestAdvertisePortNeedsFixedPorts(t *testing.T) {
	topics := []topicSpec{{name: "t", partitions: 1}}
	_, err := clusterOptions(brokerConfig{addr: "127.0.0.1:0", advertise: "127.0.0.1:19092", brokers: 1, topics: topics})
	assert.ErrorContains(t, err, "a port needs a fixed -addr port")
	_, err = clusterOptions(brokerConfig{addr: "127.0.0.1:9092", advertise: "127.0.0.1:x", brokers: 1, topics: topics})
	assert.ErrorContains(t, err, "bad port")
	_, err = clusterOptions(brokerConfig{addr: "127.0.0.1:9092", advertise: "127.0.0.1:19092", brokers: 2, topics: topics})
	assert.NoError(t, err)
}
