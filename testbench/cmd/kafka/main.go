// Command kafka runs a real Apache Kafka 4.4 for a person to use: `make
// kafka` starts it on 127.0.0.1:9092 (one combined KRaft node, or three with
// -nodes 3), creates the demo topic, and stops it on Ctrl-C.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/kafkabatcher/kafkabatcherexporter/testbench/realkafka"
)

func main() {
	nodes := flag.Int("nodes", 1, "1 or 3 nodes")
	port := flag.Int("port", 9092, "PLAINTEXT port of node 1 (nodes 2 and 3 take the next ones)")
	dir := flag.String("dir", "_build/kafka", "config, data and logs of the cluster (wiped at start)")
	topic := flag.String("topic", "otlp_logs:6", "topic to create, NAME:PARTITIONS; empty for none")
	security := flag.Bool("security", false, "add the SASL_PLAINTEXT and SSL listeners and the ACL authorizer")
	flag.Parse()
	if err := run(*nodes, *port, *dir, *topic, *security); err != nil {
		fmt.Fprintln(os.Stderr, "kafka:", err)
		os.Exit(1)
	}
}

func run(nodes, port int, dir, topic string, security bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cache, err := realkafka.CacheDir()
	if err != nil {
		return err
	}
	dist, err := realkafka.Fetch(ctx, cache, os.Stderr)
	if err != nil {
		return err
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	ports := make([]int, nodes)
	for i := range ports {
		ports[i] = port + i
	}
	c, err := realkafka.Start(ctx, dist, realkafka.Options{
		Nodes: nodes, Dir: dir, ClientPorts: ports, Security: security, Log: os.Stderr,
	})
	if err != nil {
		return err
	}
	defer c.Close()
	if topic != "" {
		var name string
		var parts int32
		if _, err := fmt.Sscanf(topic, "%s", &name); err != nil {
			return err
		}
		if i := lastColon(topic); i > 0 {
			name = topic[:i]
			if _, err := fmt.Sscanf(topic[i+1:], "%d", &parts); err != nil {
				return fmt.Errorf("-topic %q: want NAME:PARTITIONS", topic)
			}
		} else {
			parts = 6
		}
		if err := c.CreateTopic(ctx, name, parts, nil); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "kafka: topic %s with %d partitions\n", name, parts)
	}
	fmt.Printf("Kafka %s on %v (logs under %s); Ctrl-C stops it\n", realkafka.Version, c.Bootstrap(), dir)
	if security {
		fmt.Printf("SASL_PLAINTEXT on %v, SSL on %v (CA %s), users %v\n",
			c.SASLBootstrap(), c.SSLBootstrap(), c.CAFile(), realkafka.Users)
	}
	<-ctx.Done()
	fmt.Fprintln(os.Stderr, "kafka: stopping")
	return nil
}

func lastColon(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == ':' {
			return i
		}
	}
	return -1
}
