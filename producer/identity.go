package producer

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/zap"
)

// identity is a producer id and epoch from InitProducerId. gen numbers
// the identities the Producer obtained, from 1; a partition uses each at
// most once from sequence number 0.
type identity struct {
	gen   uint64
	id    int64
	epoch int16
}

// idState is the Producer's current identity and the InitProducerId call
// in progress, if any. Guarded by Producer.idMu.
type idState struct {
	cur     identity
	waiting chan struct{} // closed when the call in progress ends; nil: none
	err     error         // the last call's error, when it failed
	changes int64         // identities obtained
}

// initIdentity asks, in the background, for a first identity unless the
// Producer has one or asks already. A metadata refresh that reached Kafka
// calls it, so the first batches find an identity ready without Start
// waiting for Kafka, and the request does not race the first connection.
func (p *Producer) initIdentity() {
	if !p.st.idempotent {
		return
	}
	p.idMu.Lock()
	defer p.idMu.Unlock()
	if p.ids.cur.gen == 0 {
		p.startIDCallLocked()
	}
}

// startIDCallLocked starts an InitProducerId call unless one runs.
func (p *Producer) startIDCallLocked() {
	if p.ids.waiting != nil {
		return
	}
	done := make(chan struct{})
	p.ids.waiting = done
	if !p.goTracked(func() { p.fetchIdentity(done) }) {
		p.ids.waiting, p.ids.err = nil, ErrClosed
		close(done)
	}
}

// identity returns an identity newer than stale (the one a partition can
// no longer use, 0 for none), asking Kafka for one when the current
// identity is not newer. ctx bounds the wait.
func (p *Producer) identity(ctx context.Context, stale uint64) (identity, error) {
	for tries := 0; ; tries++ {
		p.idMu.Lock()
		if p.ids.cur.gen > stale {
			id := p.ids.cur
			p.idMu.Unlock()
			return id, nil
		}
		if tries > 0 && p.ids.waiting == nil {
			err := p.ids.err
			p.idMu.Unlock()
			return identity{}, err
		}
		p.startIDCallLocked()
		wait := p.ids.waiting
		p.idMu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return identity{}, ctx.Err()
		case <-p.closing:
			return identity{}, ErrClosed
		}
	}
}

// fetchIdentity runs one InitProducerId exchange, retrying retriable
// Kafka errors, and publishes the result.
func (p *Producer) fetchIdentity(done chan struct{}) {
	id, epoch, err := p.initProducerID()
	p.idMu.Lock()
	defer func() {
		p.ids.waiting = nil
		p.idMu.Unlock()
		close(done)
	}()
	p.ids.err = err
	if err != nil {
		p.logger.Warn("kafka producer id request failed", zap.Error(err))
		return
	}
	p.ids.cur = identity{gen: p.ids.cur.gen + 1, id: id, epoch: epoch}
	p.ids.changes++
	p.logger.Debug("kafka producer id", zap.Int64("producer_id", id), zap.Int16("producer_epoch", epoch))
}

// initProducerID asks the least loaded broker for a new producer id and
// epoch (a non-transactional producer: no transactional id).
func (p *Producer) initProducerID() (int64, int16, error) {
	var last error
	for attempt := 1; attempt <= p.st.cfg.MaxAttempts; attempt++ {
		if p.closed() {
			return 0, 0, ErrClosed
		}
		if attempt > 1 {
			t := time.NewTimer(p.backoff(attempt - 1))
			select {
			case <-t.C:
			case <-p.closing:
				t.Stop()
				return 0, 0, ErrClosed
			}
		}
		broker := p.client.LeastLoadedBroker()
		if broker == nil {
			return 0, 0, fmt.Errorf("init producer id: %w", ErrClosed)
		}
		req := &sarama.InitProducerIDRequest{
			Version:            initProducerIDVersion(p.st.sarama.Version),
			TransactionTimeout: time.Duration(math.MaxInt32) * time.Millisecond,
			ProducerID:         -1,
			ProducerEpoch:      -1,
		}
		resp, err := broker.InitProducerID(req)
		if err != nil {
			_ = broker.Close() // the next call reconnects
			if werr := p.metadataError(err); !errors.Is(werr, ErrUnavailable) || isDialError(err) || attempt == p.st.cfg.MaxAttempts {
				return 0, 0, fmt.Errorf("init producer id: %w", werr)
			}
			last = err
			continue
		}
		switch {
		case errors.Is(resp.Err, sarama.ErrNoError):
			return resp.ProducerID, resp.ProducerEpoch, nil
		case errors.Is(resp.Err, sarama.ErrClusterAuthorizationFailed):
			principal, grant := p.principal()
			return 0, 0, fmt.Errorf("init producer id: %w: %s may not produce idempotently: it needs the Write ACL on the topics "+
				"it produces to (IDEMPOTENT_WRITE on the cluster before Kafka 2.8; grant it: kafka-acls.sh --add %s --operation Write --topic TOPIC): %w",
				ErrAuthorization, principal, grant, resp.Err)
		}
		last = resp.Err // coordinator loading, not available, ...
	}
	return 0, 0, fmt.Errorf("init producer id: %w", p.unavailable(last))
}

// initProducerIDVersion is the InitProducerId version the protocol
// version allows.
func initProducerIDVersion(v sarama.KafkaVersion) int16 {
	switch {
	case v.IsAtLeast(sarama.V2_7_0_0):
		return 4
	case v.IsAtLeast(sarama.V2_5_0_0):
		return 3
	case v.IsAtLeast(sarama.V2_4_0_0):
		return 2
	case v.IsAtLeast(sarama.V2_0_0_0):
		return 1
	}
	return 0
}

// ProducerIDChanges returns how many producer ids the Producer obtained.
func (p *Producer) ProducerIDChanges() int64 {
	p.idMu.Lock()
	defer p.idMu.Unlock()
	return p.ids.changes
}
