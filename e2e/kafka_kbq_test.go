//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kafkabatcher/kafkabatcherexporter/testbench/realkafka"
)

var kbqBin struct {
	once sync.Once
	path string
	err  error
}

// kbqPath returns the kbq binary: KBQ_BIN (make e2e sets it), else one
// built into a temp dir.
func kbqPath(t *testing.T) string {
	t.Helper()
	kbqBin.once.Do(func() {
		if p := os.Getenv("KBQ_BIN"); p != "" {
			kbqBin.path = p
			return
		}
		dir, err := os.MkdirTemp("", "kbq")
		if err != nil {
			kbqBin.err = err
			return
		}
		kbqBin.path = filepath.Join(dir, "kbq")
		cmd := exec.Command("go", "build", "-o", kbqBin.path, "./cmd/kbq")
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			kbqBin.err = fmt.Errorf("go build ./cmd/kbq: %v\n%s", err, out)
		}
	})
	if kbqBin.err != nil {
		t.Fatal(kbqBin.err)
	}
	return kbqBin.path
}

// runKbq runs kbq and returns its exit code and output.
func runKbq(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(kbqPath(t), args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String()
	}
	if err != nil {
		t.Fatalf("kbq %v: %v", args, err)
	}
	return 0, out.String()
}

// writeSeqDeadLetters appends dead letters with values "<seq>|..." for
// topic (partition seq % partitions) to dir/deadletter/deadletter.jsonl,
// in the exporter's line format.
func writeSeqDeadLetters(t *testing.T, dir, topic string, partitions int32, from, to int) {
	t.Helper()
	path := filepath.Join(dir, "deadletter", "deadletter.jsonl")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type header struct {
		Key   string `json:"key"`
		Value []byte `json:"value"`
	}
	for i := from; i < to; i++ {
		line, err := json.Marshal(struct {
			deadLetter
			Time      time.Time `json:"time"`
			Timestamp time.Time `json:"timestamp"`
			Headers   []header  `json:"headers"`
		}{
			deadLetter: deadLetter{
				Topic: topic, Partition: int32(i) % partitions, Reason: "unknown_topic",
				Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("%d|dead letter %d", i, i)),
			},
			Time: time.Now(), Timestamp: time.Now().Add(-time.Hour),
			Headers: []header{{Key: "seq", Value: []byte(fmt.Sprint(i))}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(append(line, '\n')); err != nil {
			t.Fatal(err)
		}
	}
}

// deadLetterCount counts the lines of the dead-letter files.
func deadLetterCount(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	for _, name := range []string{"deadletter.1.jsonl", "deadletter.jsonl"} {
		n += len(readDeadLetters(t, filepath.Join(dir, "deadletter", name)))
	}
	return n
}

// TestKbqResendRealKafka: against Kafka 4.4, dead letters of a topic that
// does not exist stay in the file with Kafka's reason while those of an
// existing topic go; once the topic is created every one arrives exactly
// once, on the partition it was rejected from, and the file is empty. A
// resend killed (SIGKILL) after its first rounds and run again loses
// nothing and repeats at most the round in flight.
func TestKbqResendRealKafka(t *testing.T) {
	c := sharedCluster(t, realkafka.Options{Nodes: 1})
	seeds := c.Bootstrap()
	brokers := strings.Join(seeds, ",")
	existing := newTopic(t, c, 2, nil)
	late := fmt.Sprintf("kbq-late-%d-%d", time.Now().UnixNano(), topicSeq.Add(1))
	dir := t.TempDir()
	writeSeqDeadLetters(t, dir, late, 3, 0, 60)
	writeSeqDeadLetters(t, dir, existing, 2, 1000, 1010)

	code, out := runKbq(t, "resend", dir, "--brokers", brokers, "--records", "25")
	if code != 1 || !strings.Contains(out, "resent 10 of 70") || !strings.Contains(out, "UNKNOWN_TOPIC_OR_PARTITION") {
		t.Fatalf("resend with topic %s missing: exit %d\n%s", late, code, out)
	}
	if n := deadLetterCount(t, dir); n != 60 {
		t.Errorf("%d lines left, want the 60 of the missing topic", n)
	}
	checkExactlyOnce(t, newTopicConsumer(t, seeds, existing).read(seqRange(1000, 1010), 30*time.Second, time.Second), seqRange(1000, 1010))

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.CreateTopic(ctx, late, 3, nil); err != nil {
		t.Fatal(err)
	}
	code, out = runKbq(t, "resend", dir, "--brokers", brokers, "--records", "25")
	if code != 0 || !strings.Contains(out, "resent 60 of 60") {
		t.Fatalf("resend after creating %s: exit %d\n%s", late, code, out)
	}
	if n := deadLetterCount(t, dir); n != 0 {
		t.Errorf("%d lines left after every record was acknowledged", n)
	}
	recs := newTopicConsumer(t, seeds, late).read(seqRange(0, 60), 30*time.Second, time.Second)
	checkExactlyOnce(t, recs, seqRange(0, 60))
	for _, r := range recs {
		if r.partition != int32(r.seq%3) {
			t.Errorf("record %d on partition %d, rejected from %d", r.seq, r.partition, r.seq%3)
		}
	}
	t.Logf("resend: 10 of 70 with %s missing, then 60 of 60 once created", late)

	// Killed halfway: many small rounds, SIGKILL once the file has shrunk.
	const n, per = 3000, 100
	killed := newTopic(t, c, 1, nil)
	dir2 := t.TempDir()
	writeSeqDeadLetters(t, dir2, killed, 1, 0, n)
	cmd := exec.Command(kbqPath(t), "resend", dir2, "--brokers", brokers, "--records", fmt.Sprint(per))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for deadLetterCount(t, dir2) == n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	left := deadLetterCount(t, dir2)
	if left == n || left == 0 {
		t.Fatalf("the kill came at %d of %d lines left: not halfway", left, n)
	}
	code, out = runKbq(t, "resend", dir2, "--brokers", brokers, "--records", fmt.Sprint(per))
	if code != 0 {
		t.Fatalf("second resend: exit %d\n%s", code, out)
	}
	if got := deadLetterCount(t, dir2); got != 0 {
		t.Errorf("%d lines left after the second resend", got)
	}
	recs = newTopicConsumer(t, seeds, killed).read(seqRange(0, n), time.Minute, 2*time.Second)
	count := map[int]int{}
	for _, r := range recs {
		count[r.seq]++
	}
	dups, first, last := 0, n, -1
	for s := range n {
		if count[s] == 0 {
			t.Errorf("record %d lost", s)
		}
		if count[s] > 1 {
			dups += count[s] - 1
			first, last = min(first, s), max(last, s)
		}
	}
	if dups > per || last-first >= per {
		t.Errorf("%d duplicates over records %d..%d; at most one round of %d may repeat", dups, first, last, per)
	}
	t.Logf("resend killed with %d of %d lines left, run again: %d records read, %d duplicates (at most %d)", left, n, len(recs), dups, per)
}
