package realkafka

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Admin returns an admin client on the cluster's PLAINTEXT listeners (a
// super user with Options.Security). Close it when done.
func (c *Cluster) Admin() (*kadm.Client, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Bootstrap()...), kgo.RequestTimeoutOverhead(5*time.Second))
	if err != nil {
		return nil, err
	}
	return kadm.NewClient(cl), nil
}

// WaitReady polls until every running node answers Metadata listing every
// running broker and a controller, or limit passes.
func (c *Cluster) WaitReady(ctx context.Context, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for {
		err := c.answerMetadata(ctx)
		if err == nil {
			return nil
		}
		for _, n := range c.nodes {
			if n.exited() {
				return fmt.Errorf("realkafka: node %d exited while starting (see %s): %v", n.ID, n.logPath, err)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("realkafka: cluster not ready after %s: %v", limit, err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// answerMetadata returns nil when every running node lists every running
// broker and a controller.
func (c *Cluster) answerMetadata(ctx context.Context) error {
	var running []*Node
	for _, n := range c.nodes {
		if n.Running() {
			running = append(running, n)
		}
	}
	for _, n := range running {
		if err := n.answersMetadata(ctx, len(running)); err != nil {
			return err
		}
	}
	return nil
}

func (n *Node) answersMetadata(ctx context.Context, brokers int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(n.clientAddr), kgo.DialTimeout(time.Second), kgo.RequestRetries(0))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	m, err := kadm.NewClient(cl).BrokerMetadata(ctx)
	if err != nil {
		return fmt.Errorf("node %d: %w", n.ID, err)
	}
	if len(m.Brokers) < brokers || m.Controller < 0 {
		return fmt.Errorf("node %d: metadata lists %d of %d brokers, controller %d", n.ID, len(m.Brokers), brokers, m.Controller)
	}
	return nil
}

// CreateTopic creates a topic with the given partitions, the cluster's
// node count as replication factor and configs (e.g. "min.insync.replicas":
// "2"), and waits until every partition has a leader.
func (c *Cluster) CreateTopic(ctx context.Context, name string, partitions int32, configs map[string]string) error {
	adm, err := c.Admin()
	if err != nil {
		return err
	}
	defer adm.Close()
	cfg := map[string]*string{}
	for k, v := range configs {
		cfg[k] = &v
	}
	res, err := adm.CreateTopic(ctx, partitions, int16(len(c.nodes)), cfg, name)
	if err == nil {
		err = res.Err
	}
	if err != nil {
		return fmt.Errorf("realkafka: create topic %s: %w", name, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		md, err := adm.Metadata(ctx, name)
		if err == nil {
			td := md.Topics[name]
			ok := td.Err == nil && len(td.Partitions) == int(partitions)
			for _, p := range td.Partitions {
				ok = ok && p.Leader >= 0 && p.Err == nil
			}
			if ok {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("realkafka: topic %s: partitions without a leader after 30s (%v)", name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Leader returns the node ID leading topic/partition now.
func (c *Cluster) Leader(ctx context.Context, topic string, partition int32) (int, error) {
	adm, err := c.Admin()
	if err != nil {
		return 0, err
	}
	defer adm.Close()
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		return 0, err
	}
	p, ok := md.Topics[topic].Partitions[partition]
	if !ok || p.Leader < 0 {
		return 0, fmt.Errorf("realkafka: %s/%d has no leader", topic, partition)
	}
	return int(p.Leader), nil
}

// PartitionState is who holds a partition now: its leader, its replicas
// (in assignment order) and its in-sync replicas, as node IDs.
type PartitionState struct {
	Leader        int
	Replicas, ISR []int
}

// Partition returns topic/partition's leader, replicas and ISR as the
// cluster's metadata has them now.
func (c *Cluster) Partition(ctx context.Context, topic string, partition int32) (PartitionState, error) {
	adm, err := c.Admin()
	if err != nil {
		return PartitionState{}, err
	}
	defer adm.Close()
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		return PartitionState{}, err
	}
	p, ok := md.Topics[topic].Partitions[partition]
	if !ok {
		return PartitionState{}, fmt.Errorf("realkafka: %s/%d not in the metadata", topic, partition)
	}
	if p.Err != nil {
		return PartitionState{}, fmt.Errorf("realkafka: %s/%d: %w", topic, partition, p.Err)
	}
	s := PartitionState{Leader: int(p.Leader)}
	for _, id := range p.Replicas {
		s.Replicas = append(s.Replicas, int(id))
	}
	for _, id := range p.ISR {
		s.ISR = append(s.ISR, int(id))
	}
	return s, nil
}
