package kafkabatcherexporter

import (
	"context"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumererror"

	"github.com/kafkabatcher/kafkabatcherexporter/internal/kfaketest"
)

// statusHost records the status events the exporter reports.
type statusHost struct {
	component.Host
	mu     sync.Mutex
	events []componentstatus.Status
	errs   []error // each event's error
}

func newStatusHost() *statusHost { return &statusHost{Host: componenttest.NewNopHost()} }

func (h *statusHost) Report(e *componentstatus.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, e.Status())
	h.errs = append(h.errs, e.Err())
}

// lastErr returns the error of the last event.
func (h *statusHost) lastErr() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.errs) == 0 {
		return nil
	}
	return h.errs[len(h.errs)-1]
}

func (h *statusHost) statuses() []componentstatus.Status {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]componentstatus.Status(nil), h.events...)
}

func (h *statusHost) last() componentstatus.Status {
	s := h.statuses()
	if len(s) == 0 {
		return componentstatus.StatusNone
	}
	return s[len(s)-1]
}

func TestStatusIsRecoverableDuringOutageAndOKAfter(t *testing.T) {
	port := kfaketest.FreePort(t)
	c1 := clusterOnPort(t, port, 6)
	cfg := outageConfig(t, port)
	host := newStatusHost()
	exp := runOn(t, host, cfg, nopSettings())
	waitPartitions(t, exp, outageTopic, 6)
	sendSeq(t, exp, 0, 200)
	waitRecords(t, c1, outageTopic, 200, 10*time.Second)
	require.Empty(t, host.statuses(), "healthy from the start: nothing to report")

	c1.Close()
	sendSeq(t, exp, 200, 200)
	waitFor(t, 10*time.Second, func() bool { return host.last() == componentstatus.StatusRecoverableError },
		"recoverable error reported: %v", host.statuses())

	c2 := clusterOnPort(t, port, 6)
	waitRecords(t, c2, outageTopic, 200, 20*time.Second)
	waitFor(t, 10*time.Second, func() bool { return host.last() == componentstatus.StatusOK },
		"OK reported once Kafka takes batches: %v", host.statuses())
	// Kafka coming back may flap (a partition answers before another), so
	// the check is one report per change: never the same status twice in a
	// row, the error first, OK last.
	got := host.statuses()
	require.Equal(t, componentstatus.StatusRecoverableError, got[0], "%v", got)
	require.Equal(t, componentstatus.StatusOK, got[len(got)-1], "%v", got)
	for i := 1; i < len(got); i++ {
		require.NotEqual(t, got[i-1], got[i], "one report per change: %v", got)
	}
	require.NoError(t, exp.stop())
}

func TestStartDoesNotWaitForKafka(t *testing.T) {
	port := kfaketest.FreePort(t) // nothing listens here yet
	cfg := outageConfig(t, port)
	host := newStatusHost()
	start := time.Now()
	exp := runOn(t, host, cfg, nopSettings())
	require.Less(t, time.Since(start), 3*time.Second, "start returned without Kafka")
	waitFor(t, 10*time.Second, func() bool { return host.last() == componentstatus.StatusRecoverableError },
		"recoverable error reported: %v", host.statuses())

	// No partition count is known (first run, no cache): the call fails,
	// retryably, instead of guessing a partition.
	err := exp.consumeLogs(context.Background(), seqLogs(0, 10, 32))
	require.Error(t, err)
	require.False(t, consumererror.IsPermanent(err), "must be retryable: %v", err)
	require.Contains(t, err.Error(), strconv.Quote(outageTopic))

	// Kafka appears: the next call learns the topic and its records arrive.
	c := clusterOnPort(t, port, 6)
	waitFor(t, 10*time.Second, func() bool {
		return exp.consumeLogs(context.Background(), seqLogs(0, 10, 32)) == nil
	}, "records accepted once Kafka is up")
	requireAllInOrder(t, c, outageTopic, 10)
	waitFor(t, 10*time.Second, func() bool { return host.last() == componentstatus.StatusOK },
		"OK after the first batch: %v", host.statuses())
	require.NoError(t, exp.stop())
}

// hungBroker accepts connections and never answers; closed by cleanup.
// accepted reports how many connections it took.
func hungBroker(t *testing.T) (addr string, accepted func() int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		if err := ln.Close(); err != nil {
			t.Errorf("close hung broker: %v", err)
		}
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close() // server end of a fake broker: nothing to act on if it fails
		}
	})
	return ln.Addr().String(), func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(conns)
	}
}

// A broker that takes connections and never answers: Shutdown, called
// while start's metadata lookup waits, reports no status afterwards and
// keeps to its context.
func TestShutdownWithHungBrokerIsBounded(t *testing.T) {
	addr, accepted := hungBroker(t)
	cfg := testConfig(t, []string{addr})
	// sarama's read timeout is then 6 s: a shutdown waiting for it takes
	// that long or more (18 s before the fix); a bounded one about 1.5 s.
	cfg.Producer.Timeout = 3 * time.Second
	host := newStatusHost()
	exp := runOn(t, host, cfg, nopSettings())
	// start's lookup has connected and waits for an answer.
	waitFor(t, 900*time.Millisecond, func() bool { return accepted() > 0 }, "the lookup connected")

	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	require.NoError(t, exp.shutdown(ctx))
	took := time.Since(start)
	_ = exp.stop()
	require.Empty(t, host.statuses(), "no status reported by a lookup stopped by shutdown")
	require.Less(t, took, 4*time.Second, "shutdown outlived its context (500ms) and the producer's close wait (1s)")
}
