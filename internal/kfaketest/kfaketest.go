// Package kfaketest holds the kfake helpers that the unit tests of several
// packages share: a cluster on a chosen port, a log of the record batches
// produce requests carry, and SASL OAUTHBEARER logins. Only tests and the
// devbroker import it.
package kfaketest

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return port
}

// OnPort starts a one-broker cluster with opts listening on 127.0.0.1:port,
// for tests that stop a broker and start another where it was. The port
// may still be held briefly by a cluster just closed, so binding is retried
// for up to ten seconds. The test's cleanup closes the cluster.
func OnPort(t testing.TB, port int, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	opts = append([]kfake.Opt{kfake.NumBrokers(1), kfake.Ports(port)}, opts...)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := kfake.NewCluster(opts...)
		if err == nil {
			t.Cleanup(c.Close)
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster on port %d: %v", port, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Batch is one record batch seen in a produce request.
type Batch struct {
	Topic     string
	Partition int32
	Records   int
	Bytes     int   // the v2 record batch as sent, header included
	Codec     int16 // the compression bits of its attributes
}

// ProduceLog holds the record batches of every produce request a cluster
// received, request by request. It is safe for concurrent use.
type ProduceLog struct {
	mu       sync.Mutex
	requests [][]Batch
}

// ObserveProduce logs every record batch of every produce request c
// receives, without changing how c answers: its control function never
// handles a request, so kfake keeps it and answers each one itself. A
// record batch that does not decode fails the test.
func ObserveProduce(t testing.TB, c *kfake.Cluster) *ProduceLog {
	l := &ProduceLog{}
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		pr := req.(*kmsg.ProduceRequest)
		var seen []Batch
		for _, tp := range pr.Topics {
			for _, p := range tp.Partitions {
				for rest := p.Records; len(rest) > 0; {
					var rb kmsg.RecordBatch
					if err := rb.ReadFrom(rest); err != nil {
						t.Errorf("produce request to %s/%d: unreadable record batch: %v", tp.Topic, p.Partition, err)
						break
					}
					n := 12 + int(rb.Length) // FirstOffset and Length precede what Length counts
					seen = append(seen, Batch{tp.Topic, p.Partition, int(rb.NumRecords), n, rb.Attributes & 0x7})
					rest = rest[n:]
				}
			}
		}
		l.mu.Lock()
		l.requests = append(l.requests, seen)
		l.mu.Unlock()
		return nil, nil, false
	})
	return l
}

// Requests returns the batches of each produce request received so far.
func (l *ProduceLog) Requests() [][]Batch {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([][]Batch, len(l.requests))
	for i, r := range l.requests {
		out[i] = append([]Batch(nil), r...)
	}
	return out
}

// Batches returns every batch received so far, in arrival order.
func (l *ProduceLog) Batches() []Batch {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Batch
	for _, r := range l.requests {
		out = append(out, r...)
	}
	return out
}
