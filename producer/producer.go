// Package producer is the exporter's Kafka side: it keeps partition counts
// and leaders from Kafka metadata and sends ready batches, each as one v2
// record batch to its partition's leader, classifying and retrying errors.
//
// It uses sarama's Client for metadata and connections and sarama's
// Broker for produce requests, not sarama's AsyncProducer or SyncProducer:
// those re-batch records by their own rules, which would break the
// exporter's batch bounds.
//
// Start never waits for Kafka: a Producer can be created and started while
// no broker is reachable; Produce then fails fast with ErrUnavailable and
// succeeds once a broker answers.
//
// Produce returns one Result per batch. Records Kafka refuses for good
// (too large, invalid) are in Result.Rejected and do not hold back the
// rest of their batch. A batch that cannot be delivered has Result.Err set
// and its unacknowledged records, in order, in Result.Remaining:
// errors.Is(err, ErrUnavailable) means no broker answered or retriable
// errors (leader moved, not enough replicas, timeouts) used every attempt;
// ErrAuthentication means the SASL login was refused. A refused connection
// fails the batch at once, without waiting for Timeout or further attempts.
package producer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/zap"
)

// Sentinel errors callers branch on with errors.Is.
var (
	// ErrUnavailable: Kafka could not take the batch now (no broker
	// reachable, or retriable errors used every attempt). Retry later.
	ErrUnavailable = errors.New("kafka unavailable")
	// ErrAuthentication: the brokers refused the SASL credentials.
	ErrAuthentication = errors.New("kafka authentication failed")
	// ErrClosed: the Producer was closed.
	ErrClosed = errors.New("producer closed")
)

// Producer produces ready batches to Kafka and caches partition counts.
// All methods are safe for concurrent use.
type Producer struct {
	st     *settings
	logger *zap.Logger
	client sarama.Client

	// parts maps topic -> partition count; the map is never modified after
	// it is stored, so readers need no lock.
	parts atomic.Pointer[map[string]int32]
	// leaders maps topic -> leader broker id per partition (-1: none) as
	// of the last refresh; replaced, never modified.
	leaders atomic.Pointer[map[string][]int32]

	mu        sync.Mutex // guards tracked, listeners and replacing parts
	tracked   map[string]struct{}
	listeners []func(topic string, n int32)

	refreshMu sync.Mutex // one metadata refresh at a time

	records recordPool // record arrays of sent batches, reused

	startOnce sync.Once
	closeOnce sync.Once
	closing   chan struct{}
	wg        sync.WaitGroup // background goroutines, stopped by Close
}

// New validates cfg and returns a Producer. It does not contact Kafka.
func New(cfg Config, logger *zap.Logger) (*Producer, error) {
	st, err := compile(cfg)
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	// With Metadata.Full off, NewClient only records the seed brokers.
	client, err := sarama.NewClient(st.cfg.Brokers, st.sarama)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	p := &Producer{
		st:      st,
		logger:  logger,
		client:  client,
		tracked: make(map[string]struct{}),
		closing: make(chan struct{}),
	}
	empty := map[string]int32{}
	p.parts.Store(&empty)
	return p, nil
}

// Start begins refreshing the metadata of every known topic each
// RefreshInterval. It returns at once; Close stops the loop.
func (p *Producer) Start() {
	p.startOnce.Do(func() { p.goTracked(p.refreshLoop) })
}

// goTracked runs fn in a goroutine that Close waits for, unless the
// Producer is closed; it reports whether fn was started.
func (p *Producer) goTracked(fn func()) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed() {
		return false
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		fn()
	}()
	return true
}

func (p *Producer) refreshLoop() {
	t := time.NewTicker(p.st.cfg.RefreshInterval)
	defer t.Stop()
	for {
		select {
		case <-p.closing:
			return
		case <-t.C:
			if err := p.refresh(p.trackedTopics()); err != nil {
				p.logger.Warn("kafka metadata refresh failed", zap.Error(err))
			}
		}
	}
}

// closeWait bounds how long Close waits for background work. sarama's
// connection handshake and metadata calls cannot be interrupted: against a
// broker that accepts connections and never answers they end only at the
// read timeout.
const closeWait = time.Second

// Close stops the refresh loop and closes all broker connections. A
// Produce or Refresh running concurrently fails with ErrClosed or a
// connection error. It waits at most closeWait; a metadata call still
// stuck on a silent broker then ends by itself at its read timeout.
func (p *Producer) Close() error {
	var err error
	p.closeOnce.Do(func() {
		p.mu.Lock() // no goTracked between closing and Wait
		close(p.closing)
		p.mu.Unlock()
		done := make(chan error, 1)
		go func() {
			cerr := p.client.Close()
			p.wg.Wait()
			done <- cerr
		}()
		select {
		case err = <-done:
		case <-time.After(closeWait):
			p.logger.Warn("kafka client still waiting on a broker that does not answer; closing without it",
				zap.Duration("read_timeout", p.st.sarama.Net.ReadTimeout))
		}
	})
	return err
}

func (p *Producer) closed() bool {
	select {
	case <-p.closing:
		return true
	default:
		return false
	}
}

// Partitions returns the cached partition count of topic and whether the
// topic is known. It never contacts Kafka and does not allocate.
func (p *Producer) Partitions(topic string) (int32, bool) {
	n, ok := (*p.parts.Load())[topic]
	return n, ok
}

// OnPartitionsChanged registers fn, called after a refresh finds a topic
// for the first time or with a different partition count. Calls come from
// the goroutine that ran the refresh, one at a time; fn must not block.
func (p *Producer) OnPartitionsChanged(fn func(topic string, n int32)) {
	p.mu.Lock()
	p.listeners = append(p.listeners, fn)
	p.mu.Unlock()
}

// Refresh fetches the metadata of topics now (of every known topic when
// none is given) and updates the partition cache. The topics are refreshed
// by the background loop from then on, except those Kafka says do not
// exist. It fails quickly when no broker
// accepts connections; ctx bounds the wait.
func (p *Producer) Refresh(ctx context.Context, topics ...string) error {
	if p.closed() {
		return ErrClosed
	}
	if len(topics) == 0 {
		topics = p.trackedTopics()
	} else {
		p.mu.Lock()
		for _, t := range topics {
			p.tracked[t] = struct{}{}
		}
		p.mu.Unlock()
	}
	if len(topics) == 0 {
		return nil
	}
	return p.refreshCtx(ctx, topics)
}

// refreshCtx runs refresh in the background and waits for it or ctx:
// sarama's metadata calls take no context.
func (p *Producer) refreshCtx(ctx context.Context, topics []string) error {
	done := make(chan error, 1)
	if !p.goTracked(func() { done <- p.refresh(topics) }) {
		return ErrClosed
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("refresh metadata: %w", ctx.Err())
	case <-p.closing:
		return ErrClosed
	}
}

func (p *Producer) trackedTopics() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	topics := make([]string, 0, len(p.tracked))
	for t := range p.tracked {
		topics = append(topics, t)
	}
	return topics
}

// refresh updates sarama's metadata (leaders) and the partition cache for
// topics. It returns an error when the cluster could not be asked or a
// topic has no partitions; topics it could read are updated either way.
func (p *Producer) refresh(topics []string) error {
	p.refreshMu.Lock()
	defer p.refreshMu.Unlock()
	if p.closed() {
		// Refreshes queued behind one stuck on a silent broker end here.
		return ErrClosed
	}
	if len(topics) == 0 {
		return nil
	}
	err := p.client.RefreshMetadata(topics...)
	if err != nil {
		var kerr sarama.KError
		if !errors.As(err, &kerr) || errors.Is(err, sarama.ErrSASLAuthenticationFailed) {
			// Not a topic-level error: nothing was learned.
			return p.metadataError(err)
		}
	}
	counts := make(map[string]int32, len(topics))
	var errs []error
	for _, t := range topics {
		// A topic with metadata is answered from sarama's cache; an unknown
		// one is asked once more and reported.
		ids, perr := p.client.Partitions(t)
		if perr != nil || len(ids) == 0 {
			if perr == nil {
				perr = sarama.ErrUnknownTopicOrPartition
			}
			if errors.Is(perr, sarama.ErrUnknownTopicOrPartition) {
				// Not refreshed in the background any more: a record naming
				// it asks again.
				p.mu.Lock()
				delete(p.tracked, t)
				p.mu.Unlock()
			}
			if errors.Is(perr, sarama.ErrTopicAuthorizationFailed) {
				perr = p.explain(t, "Describe", perr)
			}
			errs = append(errs, fmt.Errorf("topic %s: %w", t, p.metadataError(perr)))
			continue
		}
		counts[t] = int32(len(ids))
	}
	p.updateLeaders(counts)
	p.updateCounts(counts)
	if len(errs) > 0 {
		return fmt.Errorf("refresh metadata: %w", errors.Join(errs...))
	}
	return nil
}

// metadataError wraps err with the sentinel callers branch on.
func (p *Producer) metadataError(err error) error {
	switch {
	case errors.Is(err, sarama.ErrClosedClient):
		return ErrClosed
	case errors.Is(err, sarama.ErrSASLAuthenticationFailed):
		return p.authError(err)
	case classify(err) == actReconnect:
		return fmt.Errorf("refresh metadata: %w", p.unavailable(err))
	}
	return err
}

// unavailable wraps err, a connection or retriable error, with
// ErrUnavailable. Some brokers close the connection on bad SASL credentials
// instead of answering SASL_AUTHENTICATION_FAILED; with SASL on, a closed
// connection says so, naming the login to check.
func (p *Producer) unavailable(err error) error {
	s := p.st.cfg.SASL
	if s.Mechanism != "" && !isDialError(err) &&
		(errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)) {
		return fmt.Errorf("%w: %w (the broker closed the connection: check the SASL %s credentials of user %q)",
			ErrUnavailable, err, s.Mechanism, s.Username)
	}
	return fmt.Errorf("%w: %w%s", ErrUnavailable, err, tlsHint(err))
}

func (p *Producer) authError(err error) error {
	s := p.st.cfg.SASL
	return fmt.Errorf("%w (mechanism %s, user %q): %w", ErrAuthentication, s.Mechanism, s.Username, err)
}

// updateLeaders stores the leaders sarama's metadata cache holds for the
// partitions of the topics in counts.
func (p *Producer) updateLeaders(counts map[string]int32) {
	old := p.leaders.Load()
	next := make(map[string][]int32, len(counts))
	if old != nil {
		for t, ids := range *old {
			next[t] = ids
		}
	}
	for t, n := range counts {
		ids := make([]int32, n)
		for i := range ids {
			ids[i] = -1
		}
		// Only partitions with a leader: Leader would ask Kafka for the rest.
		writable, _ := p.client.WritablePartitions(t) // cached after the refresh
		for _, part := range writable {
			if b, err := p.client.Leader(t, part); err == nil && part < n {
				ids[part] = b.ID()
			}
		}
		next[t] = ids
	}
	p.leaders.Store(&next)
}

// Leader returns the id of the broker that led the partition at the last
// metadata refresh, or -1 when it is not known. It never contacts Kafka.
func (p *Producer) Leader(topic string, partition int32) int32 {
	m := p.leaders.Load()
	if m == nil {
		return -1
	}
	ids := (*m)[topic]
	if partition < 0 || int(partition) >= len(ids) {
		return -1
	}
	return ids[partition]
}

// updateCounts stores the new counts and tells the listeners what changed.
func (p *Producer) updateCounts(counts map[string]int32) {
	type change struct {
		topic string
		n     int32
	}
	var changes []change
	p.mu.Lock()
	old := *p.parts.Load()
	for t, n := range counts {
		if o, ok := old[t]; !ok || o != n {
			changes = append(changes, change{t, n})
		}
	}
	if len(changes) > 0 {
		next := make(map[string]int32, len(old)+len(changes))
		for t, n := range old {
			next[t] = n
		}
		for _, c := range changes {
			next[c.topic] = c.n
			p.tracked[c.topic] = struct{}{}
		}
		p.parts.Store(&next)
	}
	listeners := p.listeners
	p.mu.Unlock()

	for _, c := range changes {
		p.logger.Info("kafka partitions changed", zap.String("topic", c.topic), zap.Int32("partitions", c.n))
		for _, fn := range listeners {
			fn(c.topic, c.n)
		}
	}
}
