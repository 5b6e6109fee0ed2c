package main

import (
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
	"github.com/kafkabatcher/kafkabatcherexporter/tempstorage"
)

// TestCatShowsSequence: a stored batch with a sequence shows it on each of
// its records, with the record's own sequence number (wrapping past
// MaxInt32); a batch without one shows none.
func TestCatShowsSequence(t *testing.T) {
	dir := t.TempDir()
	s, err := tempstorage.OpenStore(dir, tempstorage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	numbered := batch("otlp_logs", 0, "n", 3, now.Add(-time.Minute))
	numbered.Seq = &message.Sequence{ProducerID: 4711, ProducerEpoch: 3, BaseSequence: math.MaxInt32 - 1,
		Counts: []int32{2, 1}, Unsure: true}
	for _, b := range []message.Batch{numbered, batch("otlp_logs", 0, "plain", 1, now)} {
		if err := s.Append(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	lines := catQueue(t, dir, 4)
	want := catSequence{ProducerID: 4711, ProducerEpoch: 3, BaseSequence: math.MaxInt32 - 1, RecordBatches: []int32{2, 1}, Unsure: true}
	for i, wantNo := range []int32{math.MaxInt32 - 1, math.MaxInt32, 0} {
		var r catRecord
		if err := json.Unmarshal([]byte(lines[i]), &r); err != nil {
			t.Fatal(err)
		}
		if r.Sequence == nil || r.Sequence.ProducerID != want.ProducerID || r.Sequence.ProducerEpoch != want.ProducerEpoch ||
			r.Sequence.BaseSequence != want.BaseSequence || !slices.Equal(r.Sequence.RecordBatches, want.RecordBatches) ||
			r.Sequence.Unsure != want.Unsure || r.SequenceNumber == nil || *r.SequenceNumber != wantNo {
			t.Errorf("record %d: %s, want sequence %+v, number %d", i, lines[i], want, wantNo)
		}
	}
	mustContain(t, "cat", lines[0], `"sequence":{"producer_id":4711,"producer_epoch":3,"base_sequence":2147483646,`+
		`"record_batches":[2,1],"unsure":true},"sequence_number":2147483646`)
	if strings.Contains(lines[3], "sequence") {
		t.Errorf("a batch without a sequence shows one: %s", lines[3])
	}
}

// TestCheckReportsNewerFormat: entries a newer build wrote are reported,
// not taken for damage repair could fix; repair refuses them and leaves
// them.
func TestCheckReportsNewerFormat(t *testing.T) {
	dir := t.TempDir()
	writeQueue(t, dir)
	seg := lastSegment(t, dir, "audit", 0)
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	b[2] = 3 // the version byte of the only entry
	crc := crc32.Update(0, crc32.MakeTable(crc32.Castagnoli), b[:8])
	crc = crc32.Update(crc, crc32.MakeTable(crc32.Castagnoli), b[12:])
	binary.LittleEndian.PutUint32(b[8:12], crc)
	if err := os.WriteFile(seg, b, 0o600); err != nil {
		t.Fatal(err)
	}

	code, out, _ := kbq(t, "check", dir)
	if code != exitFound {
		t.Fatalf("check: exit %d, want %d:\n%s", code, exitFound, out)
	}
	mustContain(t, "check", out, "newer_format: queue/audit/0/segment-", "unsupported entry version 3",
		"use the version that wrote them")
	if strings.Contains(out, "damage found") {
		t.Errorf("check offers repair for entries of a newer format:\n%s", out)
	}
	code, out, errOut := kbq(t, "repair", dir)
	if code != exitFailure || !strings.Contains(errOut, "newer build") {
		t.Fatalf("repair: exit %d, want %d with the refusal:\n%s%s", code, exitFailure, out, errOut)
	}
	after, err := os.ReadFile(seg)
	if err != nil || string(after) != string(b) {
		t.Fatalf("repair changed the segment (%v)", err)
	}
}

// TestCatShowsHeadProgress: the oldest batch of a partition whose replay
// failed part-way shows the records that got through as done, and the
// others with the sequence that replay left; check knows the file and
// reports the progress without calling it damage.
func TestCatShowsHeadProgress(t *testing.T) {
	dir := t.TempDir()
	s, err := tempstorage.OpenStore(dir, tempstorage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	head := batch("otlp_logs", 0, "h", 4, now.Add(-time.Minute))
	head.Seq = &message.Sequence{ProducerID: 1, BaseSequence: 0, Counts: []int32{4}}
	for _, b := range []message.Batch{head, batch("otlp_logs", 0, "next", 1, now)} {
		if err := s.Append(b); err != nil {
			t.Fatal(err)
		}
	}
	left := &message.Sequence{ProducerID: 9, ProducerEpoch: 1, BaseSequence: 100, Counts: []int32{2}, Unsure: true}
	if err := s.SetHead(message.TopicPartition{Topic: "otlp_logs"}, []bool{true, false, true, false}, left); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	lines := catQueue(t, dir, 5)
	for i, wantNo := range []int32{-1, 100, -1, 101} {
		var r catRecord
		if err := json.Unmarshal([]byte(lines[i]), &r); err != nil {
			t.Fatal(err)
		}
		if wantNo < 0 {
			if !r.Done || r.Sequence != nil || r.SequenceNumber != nil {
				t.Errorf("record %d: %s, want done without a sequence", i, lines[i])
			}
			continue
		}
		if r.Done || r.Sequence == nil || r.Sequence.ProducerID != 9 || !r.Sequence.Unsure ||
			r.SequenceNumber == nil || *r.SequenceNumber != wantNo {
			t.Errorf("record %d: %s, want producer 9 unsure, number %d", i, lines[i], wantNo)
		}
	}
	if strings.Contains(lines[4], "done") || strings.Contains(lines[4], "sequence") {
		t.Errorf("the next batch shows progress: %s", lines[4])
	}

	code, out, _ := kbq(t, "check", dir)
	if code != exitOK {
		t.Fatalf("check: exit %d, want %d:\n%s", code, exitOK, out)
	}
	mustContain(t, "check", out, "replay progress (not damage): otlp_logs/0: 2 records of the oldest batch", "no damage")
	if strings.Contains(out, "not the store's") {
		t.Errorf("check calls the head progress unknown:\n%s", out)
	}
	code, out, _ = kbq(t, "ls", dir, "--json")
	if code != exitOK || !strings.Contains(out, `"records": 3`) {
		t.Errorf("ls: exit %d, want 3 records left to replay:\n%s", code, out)
	}
}

// catQueue runs kbq cat on dir's queue and returns its lines, failing t
// unless it exits 0 with want lines.
func catQueue(t *testing.T, dir string, want int) []string {
	t.Helper()
	code, out, errOut := kbq(t, "cat", dir, "--source", "queue")
	if code != exitOK {
		t.Fatalf("cat: exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != want {
		t.Fatalf("cat: %d lines, want %d:\n%s", len(lines), want, out)
	}
	return lines
}
