package topicdump

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ErrUnknownTopic means the broker does not have the topic.
var ErrUnknownTopic = errors.New("unknown topic")

// maxFetchRounds bounds the fetches of one partition in one Poll, so a topic
// that grows faster than it is read cannot keep Poll going forever.
const maxFetchRounds = 1000

// Reader reads a topic's record batches with raw Fetch requests, so it sees
// the batches as the broker stored them. Each Poll reads what arrived since
// the previous one. A Reader is not safe for concurrent use.
type Reader struct {
	cl    *kgo.Client
	topic string
	parts map[int32]*Partition
}

// NewReader returns a Reader of topic through cl. cl stays the caller's.
func NewReader(cl *kgo.Client, topic string) *Reader {
	return &Reader{cl: cl, topic: topic, parts: map[int32]*Partition{}}
}

type partitionLeader struct {
	id     int32
	leader int32
	epoch  int32
}

// Poll fetches the batches that arrived since the last Poll and returns all
// batches read so far.
func (r *Reader) Poll(ctx context.Context) (Topic, error) {
	topicID, leaders, err := r.metadata(ctx)
	if err != nil {
		return Topic{}, err
	}
	for _, pl := range leaders {
		if _, ok := r.parts[pl.id]; !ok {
			r.parts[pl.id] = &Partition{ID: pl.id}
		}
		if err := r.readPartition(ctx, topicID, pl); err != nil {
			return Topic{}, err
		}
	}
	return r.snapshot(), nil
}

func (r *Reader) metadata(ctx context.Context) ([16]byte, []partitionLeader, error) {
	req := kmsg.NewPtrMetadataRequest()
	t := kmsg.NewMetadataRequestTopic()
	t.Topic = kmsg.StringPtr(r.topic)
	req.Topics = append(req.Topics, t)
	resp, err := req.RequestWith(ctx, r.cl)
	if err != nil {
		return [16]byte{}, nil, fmt.Errorf("metadata for %s: %w", r.topic, err)
	}
	for _, rt := range resp.Topics {
		if rt.Topic == nil || *rt.Topic != r.topic {
			continue
		}
		if err := kerr.ErrorForCode(rt.ErrorCode); err != nil {
			if errors.Is(err, kerr.UnknownTopicOrPartition) {
				return [16]byte{}, nil, fmt.Errorf("metadata for %s: %w", r.topic, ErrUnknownTopic)
			}
			return [16]byte{}, nil, fmt.Errorf("metadata for %s: %w", r.topic, err)
		}
		out := make([]partitionLeader, 0, len(rt.Partitions))
		for _, p := range rt.Partitions {
			out = append(out, partitionLeader{id: p.Partition, leader: p.Leader, epoch: p.LeaderEpoch})
		}
		return rt.TopicID, out, nil
	}
	return [16]byte{}, nil, fmt.Errorf("metadata for %s: %w", r.topic, ErrUnknownTopic)
}

// readPartition fetches from the partition's next offset until it reaches
// the high watermark.
func (r *Reader) readPartition(ctx context.Context, topicID [16]byte, pl partitionLeader) error {
	part := r.parts[pl.id]
	for range maxFetchRounds {
		next := nextOffset(part)
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID = -1
		req.MaxWaitMillis = 0
		req.MinBytes = 1
		req.MaxBytes = 16 << 20
		req.SessionEpoch = -1 // no fetch session
		ft := kmsg.NewFetchRequestTopic()
		ft.Topic = r.topic
		ft.TopicID = topicID
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.Partition = pl.id
		fp.CurrentLeaderEpoch = pl.epoch
		fp.FetchOffset = next
		fp.PartitionMaxBytes = 16 << 20
		ft.Partitions = append(ft.Partitions, fp)
		req.Topics = append(req.Topics, ft)

		kresp, err := r.cl.Broker(int(pl.leader)).Request(ctx, req)
		if err != nil {
			return fmt.Errorf("fetch %s/%d at %d: %w", r.topic, pl.id, next, err)
		}
		resp := kresp.(*kmsg.FetchResponse)
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			return fmt.Errorf("fetch %s/%d at %d: %w", r.topic, pl.id, next, err)
		}
		batches, hwm, err := partitionBatches(resp, pl.id)
		if err != nil {
			return fmt.Errorf("fetch %s/%d at %d: %w", r.topic, pl.id, next, err)
		}
		part.HighWatermark = hwm
		for _, b := range batches {
			if b.LastOffset >= next { // a fetch may start inside a batch read before
				part.Batches = append(part.Batches, b)
			}
		}
		if nextOffset(part) >= hwm || len(batches) == 0 {
			return nil
		}
	}
	return nil
}

// partitionBatches finds the partition in a fetch response and parses its
// batches.
func partitionBatches(resp *kmsg.FetchResponse, partition int32) ([]Batch, int64, error) {
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if p.Partition != partition {
				continue
			}
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return nil, 0, err
			}
			bs, err := ParseBatches(p.RecordBatches)
			return bs, p.HighWatermark, err
		}
	}
	return nil, 0, fmt.Errorf("partition %d missing from fetch response", partition)
}

func nextOffset(p *Partition) int64 {
	if len(p.Batches) == 0 {
		return 0
	}
	return p.Batches[len(p.Batches)-1].LastOffset + 1
}

// snapshot copies what was read, partitions in ID order.
func (r *Reader) snapshot() Topic {
	t := Topic{Name: r.topic, Partitions: make([]Partition, 0, len(r.parts))}
	for _, p := range r.parts {
		cp := *p
		cp.Batches = slices.Clone(p.Batches)
		t.Partitions = append(t.Partitions, cp)
	}
	slices.SortFunc(t.Partitions, func(a, b Partition) int { return int(a.ID) - int(b.ID) })
	return t
}
