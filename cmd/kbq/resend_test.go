package main

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func newKfake(t *testing.T, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// readTopic returns the values in topic, counted, and their partitions,
// reading until n records arrived or a second passed without more.
func readTopic(t *testing.T, brokers []string, topic string, n int) (map[string]int, map[string]int32) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	counts, parts := map[string]int{}, map[string]int32{}
	got := 0
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			counts[string(r.Value)]++
			parts[string(r.Value)] = r.Partition
			got++
		})
		if got >= n && fs.NumRecords() == 0 {
			break
		}
	}
	return counts, parts
}

func createTopic(t *testing.T, brokers []string, topic string, partitions int32) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, partitions, 1
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("create topic %s: %v %v", topic, err, resp)
	}
}

// TestResendUnknownTopicAfterItIsCreated: dead letters of a topic that
// does not exist stay, with Kafka's reason, while those of a topic that
// exists go; once the topic is created a second resend sends every one
// exactly once and empties the file.
func TestResendUnknownTopicAfterItIsCreated(t *testing.T) {
	c := newKfake(t, kfake.SeedTopics(2, "logs"))
	brokers := strings.Join(c.ListenAddrs(), ",")
	dir := t.TempDir()
	writeDeadLetters(t, dir, deadLetters("late", 3, "unknown_topic", 30)...)
	writeDeadLetters(t, dir, deadLetters("logs", 2, "message_too_large", 5)...)

	code, out, errOut := kbq(t, "resend", dir, "--brokers", brokers, "--records", "8", "--timeout", "3s")
	if code != exitFound {
		t.Fatalf("resend with the topic missing: exit %d, want %d\n%s%s", code, exitFound, out, errOut)
	}
	mustContain(t, "resend", out, "resent 5 of 35", "30 lines left", "late/0: 10 records: UNKNOWN_TOPIC_OR_PARTITION: the topic does not exist")
	if n := deadLetterLines(t, dir); n != 30 {
		t.Errorf("%d lines left, want the 30 of topic late", n)
	}
	logs, _ := readTopic(t, c.ListenAddrs(), "logs", 5)
	for i := range 5 {
		if v := fmt.Sprintf("logs-%d", i); logs[v] != 1 {
			t.Errorf("%s arrived %d times", v, logs[v])
		}
	}

	createTopic(t, c.ListenAddrs(), "late", 3)
	code, out, errOut = kbq(t, "resend", dir, "--brokers", brokers, "--records", "8")
	if code != exitOK {
		t.Fatalf("resend after the topic was created: exit %d\n%s%s", code, out, errOut)
	}
	mustContain(t, "resend", out, "resent 30 of 30 dead-letter records in 4 rounds; all acknowledged")
	if n := deadLetterLines(t, dir); n != 0 {
		t.Errorf("%d lines left after everything was acknowledged", n)
	}
	late, parts := readTopic(t, c.ListenAddrs(), "late", 30)
	for i := range 30 {
		v := fmt.Sprintf("late-%d", i)
		if late[v] != 1 || parts[v] != int32(i%3) {
			t.Errorf("%s arrived %d times, on partition %d (rejected from %d)", v, late[v], parts[v], i%3)
		}
	}
	if code, out, _ := kbq(t, "resend", dir, "--brokers", brokers); code != exitOK || !strings.Contains(out, "no dead letters") {
		t.Errorf("resend of an empty file: exit %d: %s", code, out)
	}
}

// TestResendRepartition: records rejected from partitions the topic no
// longer has go to partitions of its current count, by key.
func TestResendRepartition(t *testing.T) {
	c := newKfake(t, kfake.SeedTopics(2, "shrunk"))
	dir := t.TempDir()
	writeDeadLetters(t, dir, deadLetters("shrunk", 8, "partition_gone", 16)...)
	code, out, errOut := kbq(t, "resend", dir, "--brokers", c.ListenAddrs()[0], "--repartition")
	if code != exitOK {
		t.Fatalf("resend --repartition: exit %d\n%s%s", code, out, errOut)
	}
	got, _ := readTopic(t, c.ListenAddrs(), "shrunk", 16)
	if len(got) != 16 {
		t.Errorf("%d of 16 records arrived", len(got))
	}
}

// TestResendKilledHalfwayLosesNothing: a resend killed (SIGKILL) while its
// third round is in flight, then run again, leaves every record in Kafka;
// only records of that round may arrive twice.
func TestResendKilledHalfwayLosesNothing(t *testing.T) {
	const n, per = 50, 10
	c := newKfake(t, kfake.SeedTopics(1, "logs"))
	dir := t.TempDir()
	writeDeadLetters(t, dir, deadLetters("logs", 1, "message_too_large", n)...)

	reached, release := make(chan struct{}), make(chan struct{})
	seen, blocked := 0, false
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if !blocked && seen >= 2*per { // rounds run one after another: this is the third
			blocked = true
			close(reached)
			c.SleepControl(func() { <-release })
		}
		for _, tp := range req.(*kmsg.ProduceRequest).Topics {
			for _, p := range tp.Partitions {
				var rb kmsg.RecordBatch
				if err := rb.ReadFrom(p.Records); err == nil {
					seen += int(rb.NumRecords)
				}
			}
		}
		return nil, nil, false
	})

	cmd := kbqProcess(t, "resend", dir, "--brokers", c.ListenAddrs()[0], "--records", fmt.Sprint(per))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-reached:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("the third round never reached the broker")
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	left := deadLetterLines(t, dir)
	close(release) // the killed round's request now completes (or not): at most its records twice
	if left != n-2*per {
		t.Errorf("after the kill %d lines left, want %d (two rounds acknowledged and removed)", left, n-2*per)
	}

	code, out, errOut := kbq(t, "resend", dir, "--brokers", c.ListenAddrs()[0], "--records", fmt.Sprint(per))
	if code != exitOK {
		t.Fatalf("second resend: exit %d\n%s%s", code, out, errOut)
	}
	if left := deadLetterLines(t, dir); left != 0 {
		t.Errorf("%d lines left after the second resend", left)
	}
	got, _ := readTopic(t, c.ListenAddrs(), "logs", n)
	dups := 0
	for i := range n {
		v := fmt.Sprintf("logs-%d", i)
		switch {
		case got[v] == 0:
			t.Errorf("%s lost", v)
		case got[v] > 1 && (i < 2*per || i >= 3*per):
			t.Errorf("%s arrived %d times; only the round in flight at the kill (%d..%d) may repeat", v, got[v], 2*per, 3*per-1)
		case got[v] > 1:
			dups += got[v] - 1
		}
	}
	t.Logf("resend killed in round 3 and run again: %d records, %d duplicates (at most %d)", n, dups, per)
}
