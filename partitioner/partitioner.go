// Package partitioner chooses the Kafka partition of a record from its key
// and the topic's partition count.
//
// Keyed records (key != nil, an empty key included, as in the Java client and
// sarama) are hashed by the hash strategies:
//
//   - murmur2: the Java client's default, toPositive(murmur2(key)) % n
//   - fnv1a: sarama's NewHashPartitioner, |int32(fnv1a32(key)) % n|
//   - md5: Kaffe's, (sum of the 16 MD5 digest bytes) % n
//
// Keyless records (key == nil) under murmur2, fnv1a, md5 and sticky keep one
// partition per topic until a batch of that partition is ready (BatchReady),
// then move to another one, like the Java client's sticky partitioner. The
// next one is chosen at random among the least loaded (Load: batches queued
// or in flight), so keyless records go where a batch can be sent at once,
// as with the Java client's adaptive partitioning (KIP-794). random picks a
// partition per record and round_robin rotates per record.
//
// random, sticky and round_robin ignore keys: choosing them says the operator
// wants an even spread rather than key affinity (as sarama's random and
// round-robin and Java's RoundRobinPartitioner do).
package partitioner

import (
	"crypto/md5"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// Strategy names accepted by New.
const (
	Murmur2    = "murmur2"
	FNV1a      = "fnv1a"
	MD5        = "md5"
	Random     = "random"
	Sticky     = "sticky"
	RoundRobin = "round_robin"
)

// Strategies lists the accepted strategy names.
func Strategies() []string {
	return []string{Murmur2, FNV1a, MD5, Random, Sticky, RoundRobin}
}

// ErrUnknownStrategy is returned by New for a name not in Strategies.
var ErrUnknownStrategy = errors.New("unknown partitioning strategy")

// Partitioner picks partitions. Implementations are safe for concurrent use.
type Partitioner interface {
	// Partition returns the partition in [0, numPartitions) for a record of
	// topic with key (nil: keyless). numPartitions must be > 0; otherwise
	// the result is -1.
	Partition(topic string, key []byte, numPartitions int32) int32
	// BatchReady tells the partitioner that a batch of topic/partition was
	// made ready: a sticky keyless choice on that partition moves on.
	BatchReady(tp message.TopicPartition)
}

// Load reports how loaded a partition is: the batches queued for it or in
// flight. It must not call back into the partitioner.
type Load func(topic string, partition int32) int

// scanLimit is the most partitions a sticky move compares; above it two
// random candidates are compared (the power of two choices).
const scanLimit = 64

// New returns the partitioner for strategy. seed drives every random choice,
// so equal seeds give equal sequences of choices for equal calls and loads.
// load may be nil: every partition counts as equally loaded.
func New(strategy string, seed int64, load Load) (Partitioner, error) {
	r := &rng{r: rand.New(rand.NewPCG(uint64(seed), 0x6b61666b61626174))}
	switch strategy {
	case Murmur2:
		return &hashed{hash: murmur2Partition, sticky: newSticky(r, load)}, nil
	case FNV1a:
		return &hashed{hash: fnv1aPartition, sticky: newSticky(r, load)}, nil
	case MD5:
		return &hashed{hash: md5Partition, sticky: newSticky(r, load)}, nil
	case Sticky:
		return &stickyOnly{sticky: newSticky(r, load)}, nil
	case Random:
		return &random{r: r}, nil
	case RoundRobin:
		return &roundRobin{topics: map[string]*atomic.Uint32{}}, nil
	}
	return nil, fmt.Errorf("%w %q (want one of %v)", ErrUnknownStrategy, strategy, Strategies())
}

// Murmur2Hash is the Java client's Utils.murmur2 (seed 0x9747b28c) of data, as
// the signed value Java returns.
func Murmur2Hash(data []byte) int32 {
	const (
		seed = 0x9747b28c
		m    = 0x5bd1e995
		r    = 24
	)
	n := len(data)
	h := uint32(seed) ^ uint32(n)
	i := 0
	for ; i+4 <= n; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	switch n - i {
	case 3:
		h ^= uint32(data[i+2]) << 16
		fallthrough
	case 2:
		h ^= uint32(data[i+1]) << 8
		fallthrough
	case 1:
		h ^= uint32(data[i])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int32(h)
}

func murmur2Partition(key []byte, n int32) int32 {
	return (Murmur2Hash(key) & 0x7fffffff) % n
}

func fnv1aPartition(key []byte, n int32) int32 {
	h := uint32(2166136261) // FNV-1a 32-bit offset basis
	for _, b := range key {
		h ^= uint32(b)
		h *= 16777619
	}
	p := int32(h) % n
	if p < 0 {
		p = -p
	}
	return p
}

func md5Partition(key []byte, n int32) int32 {
	sum := md5.Sum(key)
	total := 0
	for _, b := range sum {
		total += int(b)
	}
	return int32(total % int(n))
}

// rng is a seeded source shared by one partitioner's goroutines.
type rng struct {
	mu sync.Mutex
	r  *rand.Rand
}

func (g *rng) intN(n int32) int32 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.r.Int32N(n)
}

// sticky holds the keyless partition of each topic. A record reads it
// without a lock (the last topic's entry, then its current partition, are
// atomic loads); choosing a new one takes mu.
type sticky struct {
	r      *rng
	load   Load // nil: all equal
	last   atomic.Pointer[stickyTopic]
	mu     sync.Mutex
	topics map[string]*stickyTopic // guarded by mu
	cands  []int32                 // scratch of pick, guarded by mu
}

type stickyTopic struct {
	name    string
	current atomic.Int32 // -1: choose at the next keyless record
	avoid   int32        // the partition just left, not chosen again when n > 1; guarded by mu
}

func newSticky(r *rng, load Load) *sticky {
	return &sticky{r: r, load: load, topics: map[string]*stickyTopic{}}
}

func (s *sticky) partition(topic string, n int32) int32 {
	if t := s.last.Load(); t != nil && t.name == topic {
		if c := t.current.Load(); c >= 0 && c < n {
			return c
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.topics[topic]
	if t == nil {
		t = &stickyTopic{name: topic, avoid: -1}
		t.current.Store(-1)
		s.topics[topic] = t
	}
	s.last.Store(t)
	c := t.current.Load()
	if c < 0 || c >= n {
		c = s.pick(topic, n, t.avoid)
		t.current.Store(c)
	}
	return c
}

// pick chooses uniformly among the least loaded partitions of [0, n),
// skipping avoid when another is possible. Called with s.mu held.
func (s *sticky) pick(topic string, n, avoid int32) int32 {
	if avoid >= n || n == 1 {
		avoid = -1
	}
	if s.load == nil {
		return s.other(n, avoid)
	}
	if n > scanLimit {
		a, b := s.other(n, avoid), s.other(n, avoid)
		if s.load(topic, b) < s.load(topic, a) {
			return b
		}
		return a
	}
	least := -1
	s.cands = s.cands[:0]
	for p := range n {
		if p == avoid {
			continue
		}
		switch l := s.load(topic, p); {
		case least < 0 || l < least:
			least = l
			s.cands = append(s.cands[:0], p)
		case l == least:
			s.cands = append(s.cands, p)
		}
	}
	return s.cands[s.r.intN(int32(len(s.cands)))]
}

// other chooses uniformly in [0, n) but avoid (-1: none).
func (s *sticky) other(n, avoid int32) int32 {
	if avoid < 0 {
		return s.r.intN(n)
	}
	p := s.r.intN(n - 1)
	if p >= avoid {
		p++
	}
	return p
}

func (s *sticky) batchReady(topic string, partition int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.topics[topic]; t != nil && t.current.Load() == partition {
		t.current.Store(-1)
		t.avoid = partition
	}
}

type hashed struct {
	hash   func(key []byte, n int32) int32
	sticky *sticky
}

func (h *hashed) Partition(topic string, key []byte, n int32) int32 {
	if n <= 0 {
		return -1
	}
	if key == nil {
		return h.sticky.partition(topic, n)
	}
	return h.hash(key, n)
}

func (h *hashed) BatchReady(tp message.TopicPartition) { h.sticky.batchReady(tp.Topic, tp.Partition) }

type stickyOnly struct{ sticky *sticky }

func (s *stickyOnly) Partition(topic string, _ []byte, n int32) int32 {
	if n <= 0 {
		return -1
	}
	return s.sticky.partition(topic, n)
}

func (s *stickyOnly) BatchReady(tp message.TopicPartition) {
	s.sticky.batchReady(tp.Topic, tp.Partition)
}

type random struct{ r *rng }

func (r *random) Partition(_ string, _ []byte, n int32) int32 {
	if n <= 0 {
		return -1
	}
	return r.r.intN(n)
}

func (*random) BatchReady(message.TopicPartition) {}

type roundRobin struct {
	mu     sync.RWMutex
	topics map[string]*atomic.Uint32
}

func (rr *roundRobin) Partition(topic string, _ []byte, n int32) int32 {
	if n <= 0 {
		return -1
	}
	rr.mu.RLock()
	c := rr.topics[topic]
	rr.mu.RUnlock()
	if c == nil {
		rr.mu.Lock()
		if c = rr.topics[topic]; c == nil {
			c = new(atomic.Uint32)
			rr.topics[topic] = c
		}
		rr.mu.Unlock()
	}
	return int32((c.Add(1) - 1) % uint32(n))
}

func (*roundRobin) BatchReady(message.TopicPartition) {}
