package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
	"github.com/kafkabatcher/kafkabatcherexporter/tempstorage"
)

// The test binary is also kbq (KBQ_MAIN=1, arguments after the test
// flags' "--") and a collector stand-in that holds a store open
// (KBQ_HOLD=DIR: it opens the store, prints "ready" and waits for stdin to
// close).
func TestMain(m *testing.M) {
	if os.Getenv("KBQ_MAIN") == "1" {
		args := os.Args[1:]
		for i, a := range args {
			if a == "--" {
				args = args[i+1:]
				break
			}
		}
		os.Exit(run(context.Background(), args, os.Stdout, os.Stderr, time.Now))
	}
	if dir := os.Getenv("KBQ_HOLD"); dir != "" {
		s, err := tempstorage.OpenStore(dir, tempstorage.Options{})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Println("ready")
		_, _ = io.Copy(io.Discard, os.Stdin)
		_ = s.Close()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// now is the clock of the tests' kbq runs.
var now = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// kbq runs the command in process and returns its exit code and output.
func kbq(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb, func() time.Time { return now })
	return code, out.String(), errb.String()
}

// kbqProcess starts kbq as a child process.
func kbqProcess(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^$", "--"}, args...)...)
	cmd.Env = append(os.Environ(), "KBQ_MAIN=1")
	return cmd
}

// holdStore starts a process that holds dir open as a collector does and
// returns its pid; the test's cleanup ends it.
func holdStore(t *testing.T, dir string) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "KBQ_HOLD="+dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("store holder: %q, %v", line, err)
	}
	return cmd.Process.Pid
}

// batch builds a stored batch of topic/partition with values
// "<name>-<i>", stamped from ts on, one second apart.
func batch(topic string, partition int32, name string, n int, ts time.Time) message.Batch {
	msgs := make([]message.Message, n)
	for i := range msgs {
		msgs[i] = message.Message{
			Topic: topic, Partition: partition,
			Key:       []byte(fmt.Sprintf("k%d", i)),
			Value:     []byte(fmt.Sprintf("%s-%d", name, i)),
			Timestamp: ts.Add(time.Duration(i) * time.Second),
		}
	}
	return message.Batch{Topic: topic, Partition: partition, Messages: msgs, Bytes: message.BatchSize(msgs), Reason: message.ReasonMaxWait}
}

// writeQueue stores, as the exporter does through tempstorage: otlp_logs/0
// four batches, two per segment (the first acknowledged: replayed), otlp_logs/1 one batch
// with a binary value, a nil key and headers, audit/0 one batch.
func writeQueue(t *testing.T, dir string) {
	t.Helper()
	s, err := tempstorage.OpenStore(dir, tempstorage.Options{SegmentBytes: 300})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if err := s.Append(batch("otlp_logs", 0, fmt.Sprintf("p0b%d", i), 4, now.Add(-time.Duration(30-i)*time.Minute))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Ack(message.TopicPartition{Topic: "otlp_logs", Partition: 0}); err != nil {
		t.Fatal(err)
	}
	b := batch("otlp_logs", 1, "p1", 2, now.Add(-5*time.Minute))
	b.Messages[0].Value = []byte{0xff, 0x00, 0x01}
	b.Messages[1].Key = nil
	b.Messages[1].Headers = []message.Header{{Key: "host", Value: []byte("web-1")}, {Key: "bin", Value: []byte{0xfe}}}
	b.Bytes = message.BatchSize(b.Messages)
	if err := s.Append(b); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(batch("audit", 0, "a", 1, now.Add(-90*time.Second))); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// writeDeadLetters writes dead-letter lines as tempstorage.DeadLetter
// does, with fixed times (the golden output holds the file's size).
func writeDeadLetters(t *testing.T, dir string, recs ...tempstorage.DeadLetterRecord) {
	t.Helper()
	path := filepath.Join(dir, "deadletter", "deadletter.jsonl")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	for _, r := range recs {
		if r.Time.IsZero() {
			r.Time = now.Add(-time.Hour)
		}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(append(b, '\n')); err != nil {
			t.Fatal(err)
		}
	}
}

// deadLetters builds n dead letters of topic over partitions partitions,
// values "<topic>-<i>".
func deadLetters(topic string, partitions int32, reason string, n int) []tempstorage.DeadLetterRecord {
	out := make([]tempstorage.DeadLetterRecord, n)
	for i := range out {
		out[i] = tempstorage.DeadLetterRecord{
			Topic: topic, Partition: int32(i) % partitions, Reason: reason,
			Timestamp: now.Add(-2 * time.Hour).Add(time.Duration(i) * time.Millisecond),
			Key:       []byte(fmt.Sprintf("k%d", i)),
			Value:     []byte(fmt.Sprintf("%s-%d", topic, i)),
			Headers:   []tempstorage.DeadLetterHeader{{Key: "n", Value: []byte(fmt.Sprint(i))}},
		}
	}
	return out
}

// deadLetterLines returns the lines left in the dead-letter files.
func deadLetterLines(t *testing.T, dir string) int {
	t.Helper()
	files, err := tempstorage.ReadDeadLetters(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range files {
		n += len(f.Lines)
	}
	return n
}

// corruptEntry flips a bit inside entry k (from 0) of the first segment of
// the queue of topic/partition, as a bad disk would.
func corruptEntry(t *testing.T, dir, topic string, partition int32, k int) {
	t.Helper()
	seg := firstSegment(t, dir, topic, partition)
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	off := 0
	for range k {
		off += 12 + int(binary.LittleEndian.Uint32(b[off+4:]))
	}
	b[off+20] ^= 0x04
	if err := os.WriteFile(seg, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func firstSegment(t *testing.T, dir, topic string, partition int32) string {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(dir, "queue", tempstorage.EscapeName(topic), fmt.Sprint(partition), "segment-*.log"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("no segment for %s/%d: %v", topic, partition, err)
	}
	return segs[0]
}

func lastSegment(t *testing.T, dir, topic string, partition int32) string {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(dir, "queue", tempstorage.EscapeName(topic), fmt.Sprint(partition), "segment-*.log"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("no segment for %s/%d: %v", topic, partition, err)
	}
	return segs[len(segs)-1]
}

// appendGarbage leaves half an entry at the end of a segment: a write
// interrupted by a crash.
func appendGarbage(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(b, b[:20]...), 0o600); err != nil {
		t.Fatal(err)
	}
}

func mustContain(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, got)
		}
	}
}
