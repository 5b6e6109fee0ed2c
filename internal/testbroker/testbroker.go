// Package testbroker runs an in-memory Kafka-protocol broker (kfake) in a
// child process for benchmarks, so the broker's CPU and allocations are not
// counted as the code under test's.
//
// A package using it declares a test that calls ServeIfChild, and its
// benchmarks call Start with that test's name.
package testbroker

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
)

const childEnv = "KAFKABATCHER_TESTBROKER_TOPICS"

// ServeIfChild serves a broker when this process is a child started by
// Start: it prints the broker address and serves until stdin closes.
// Otherwise it skips t.
func ServeIfChild(t *testing.T) {
	spec := os.Getenv(childEnv)
	if spec == "" {
		t.Skip("broker process for benchmarks")
	}
	var opts []kfake.Opt
	for _, topic := range strings.Split(spec, ",") {
		var name string
		var n int32
		if _, err := fmt.Sscanf(strings.Replace(topic, ":", " ", 1), "%s %d", &name, &n); err != nil {
			t.Fatalf("topic %q: %v", topic, err)
		}
		opts = append(opts, kfake.SeedTopics(n, name))
	}
	c, err := kfake.NewCluster(append(opts, kfake.NumBrokers(1))...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Println(c.ListenAddrs()[0])
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// Start runs the test named serveTest (which calls ServeIfChild) in a child
// process with topics ("name:partitions") and returns the broker address.
// The child stops when tb ends.
func Start(tb testing.TB, serveTest string, topics ...string) string {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+serveTest+"$")
	cmd.Env = append(os.Environ(), childEnv+"="+strings.Join(topics, ","))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		tb.Fatalf("broker child: %v", err)
	}
	return strings.TrimSpace(line)
}
