package producer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/zap"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// refreshLoop refreshes the metadata of every tracked topic each
// RefreshInterval until Close. A failure is a warning when refreshes start
// failing and a debug line while they keep failing, so an outage of hours
// does not log a warning every interval; the recovery is logged once.
func (p *Producer) refreshLoop() {
	t := time.NewTicker(p.st.cfg.RefreshInterval)
	defer t.Stop()
	failed := 0
	for {
		select {
		case <-p.closing:
			return
		case <-t.C:
			err := p.refresh(p.trackedTopics())
			switch {
			case err != nil && failed == 0:
				p.logger.Warn("kafka metadata refresh failed", zap.Error(err))
			case err != nil:
				p.logger.Debug("kafka metadata refresh failed again", zap.Int("failures", failed+1), zap.Error(err))
			case failed > 0:
				p.logger.Info("kafka metadata refresh works again", zap.Int("failures", failed))
			}
			if err != nil {
				failed++
			} else {
				failed = 0
			}
		}
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
		if !errors.As(err, &kerr) || isCredentialError(err) {
			// Not a topic-level error: nothing was learned.
			return fmt.Errorf("refresh metadata: %w", p.metadataError(err))
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
				perr = ErrUnknownTopic
			}
			if errors.Is(perr, ErrUnknownTopic) {
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
	p.initIdentity()
	if len(errs) > 0 {
		return fmt.Errorf("refresh metadata: %w", errors.Join(errs...))
	}
	return nil
}

// metadataError wraps err with the sentinel callers branch on; refresh
// adds the "refresh metadata" prefix, once.
func (p *Producer) metadataError(err error) error {
	switch {
	case errors.Is(err, sarama.ErrClosedClient):
		return ErrClosed
	case isCredentialError(err):
		return p.authError(err)
	case classify(err) == actReconnect:
		return p.unavailable(err)
	}
	return err
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
func (p *Producer) Leader(tp message.TopicPartition) int32 {
	m := p.leaders.Load()
	if m == nil {
		return -1
	}
	ids := (*m)[tp.Topic]
	if tp.Partition < 0 || int(tp.Partition) >= len(ids) {
		return -1
	}
	return ids[tp.Partition]
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
