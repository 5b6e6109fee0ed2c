// Package producer is the exporter's Kafka side: it keeps partition counts
// and leaders from Kafka metadata and sends ready batches, each as one v2
// record batch to its partition's leader, classifying and retrying errors.
//
// It uses sarama's Client for metadata and connections and sarama's
// Broker for produce requests, not sarama's AsyncProducer or SyncProducer:
// those re-batch records by their own rules, which would break the
// exporter's batch bounds.
//
// With idempotence (Config.Idempotent, the default with AcksAll) every
// record batch carries the producer id and epoch from InitProducerId and
// its partition's sequence number, up to Config.MaxInFlight batches of a
// partition are in flight at once, and a batch sent again after a
// timeout or a lost connection is one the broker recognizes: it is never
// written twice. seqwindow.go holds the rules, identity.go the producer id.
//
// Start never waits for Kafka: a Producer can be created and started while
// no broker is reachable; Produce then fails fast with ErrUnavailable and
// succeeds once a broker answers.
//
// Produce returns one message.Outcome per batch. Records Kafka refuses for
// good (too large, invalid) are in Outcome.Rejected and do not hold back the
// rest of their batch. A batch that cannot be delivered has Outcome.Err set
// and its unacknowledged records, in order, in Outcome.Remaining:
// errors.Is(err, ErrUnavailable) means no broker answered or retriable
// errors (leader moved, not enough replicas, timeouts) used every attempt;
// ErrAuthentication means the SASL login was refused. A refused connection
// fails the batch at once, without waiting for Timeout or further attempts.
package producer

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/zap"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
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

	winMu   sync.Mutex // guards windows
	windows map[message.TopicPartition]*partWindow

	idMu sync.Mutex // guards ids
	ids  idState

	inFlight atomic.Int64                       // record batches in flight
	resends  [resendProducerID + 1]atomic.Int64 // by reason
	// possibleDups counts records renumbered after a send that may have
	// been written.
	possibleDups atomic.Int64

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
		windows: make(map[message.TopicPartition]*partWindow),
		closing: make(chan struct{}),
	}
	empty := map[string]int32{}
	p.parts.Store(&empty)
	return p, nil
}

// Start begins refreshing the metadata of every known topic each
// RefreshInterval. It returns at once; Close stops the loop. With
// idempotence, the first refresh that reaches Kafka also asks for a
// producer id, in the background.
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
