package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kafkabatcher/kafkabatcherexporter/tempstorage"
)

var update = flag.Bool("update", false, "rewrite testdata/ls.golden.json")

func TestLsJSONGolden(t *testing.T) {
	dir := t.TempDir()
	writeQueue(t, dir)
	writeDeadLetters(t, dir, deadLetters("gone", 1, "unknown_topic", 2)...)
	writeDeadLetters(t, dir, tempstorage.DeadLetterRecord{Topic: "otlp_logs", Reason: "oversize", Truncated: true, ValueBytes: 2 << 20})
	corruptEntry(t, dir, "otlp_logs", 0, 1) // the oldest not yet replayed
	code, out, errOut := kbq(t, "ls", dir, "--json")
	if code != exitOK {
		t.Fatalf("ls --json: exit %d: %s", code, errOut)
	}
	got := strings.ReplaceAll(out, dir, "DIR")
	golden := filepath.Join("testdata", "ls.golden.json")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("ls --json differs from %s (go test -run TestLsJSONGolden -update rewrites it):\n%s", golden, got)
	}
}

func TestLsTable(t *testing.T) {
	dir := t.TempDir()
	writeQueue(t, dir)
	writeDeadLetters(t, dir, deadLetters("gone", 1, "unknown_topic", 3)...)
	code, out, errOut := kbq(t, "ls", dir)
	if code != exitOK {
		t.Fatalf("ls: exit %d: %s", code, errOut)
	}
	mustContain(t, "ls", out, "TOPIC", "otlp_logs", "audit", "29m0s", "1m30s", "unknown_topic", "DEAD-LETTER REASON", "total")
	if strings.Contains(out, "damage") {
		t.Errorf("ls reports damage in a clean store:\n%s", out)
	}
}

func TestCatShowsRecordsAndDeadLetters(t *testing.T) {
	dir := t.TempDir()
	writeQueue(t, dir)
	writeDeadLetters(t, dir, deadLetters("gone", 1, "unknown_topic", 1)...)
	code, out, errOut := kbq(t, "cat", dir)
	if code != exitOK {
		t.Fatalf("cat: exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 1+12+2+1 {
		t.Fatalf("cat: %d lines, want 16 (1 audit, 12 otlp_logs/0, 2 otlp_logs/1, 1 dead letter):\n%s", len(lines), out)
	}
	var recs []catRecord
	for _, l := range lines {
		var r catRecord
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		recs = append(recs, r)
	}
	first := recs[1] // otlp_logs/0: the acknowledged batch is not shown
	if first.Topic != "otlp_logs" || *first.Value != "p0b1-0" || first.Batch != 1 || *first.Key != "k0" || first.FlushReason != "max_wait" {
		t.Errorf("first otlp_logs/0 record: %s", lines[1])
	}
	bin, hdr := recs[13], recs[14]
	if bin.Value != nil || bin.ValueBase64 == nil || *bin.ValueBase64 != "/wAB" {
		t.Errorf("binary value: %s", lines[13])
	}
	if hdr.Key != nil || hdr.KeyBase64 != nil || len(hdr.Headers) != 2 || *hdr.Headers[0].Value != "web-1" || *hdr.Headers[1].ValueBase64 != "/g==" {
		t.Errorf("nil key and headers: %s", lines[14])
	}
	dl := recs[15]
	if dl.Source != "deadletter" || dl.Reason != "unknown_topic" || *dl.Value != "gone-0" || dl.File != "deadletter/deadletter.jsonl" || dl.Line != 1 {
		t.Errorf("dead letter: %s", lines[15])
	}

	code, out, _ = kbq(t, "cat", dir, "--topic", "otlp_logs", "--partition", "1", "--source", "queue")
	if n := strings.Count(out, "\n"); code != exitOK || n != 2 {
		t.Errorf("cat --topic otlp_logs --partition 1: exit %d, %d lines:\n%s", code, n, out)
	}
}

func TestCheckFindsDamageRepairMovesItAside(t *testing.T) {
	dir := t.TempDir()
	writeQueue(t, dir)
	corruptEntry(t, dir, "otlp_logs", 0, 1)
	appendGarbage(t, lastSegment(t, dir, "otlp_logs", 1))
	if err := os.WriteFile(filepath.Join(dir, "queue", "audit", "0", "checkpoint"), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}

	code, out, _ := kbq(t, "check", dir)
	if code != exitFound {
		t.Fatalf("check of a damaged store: exit %d, want %d:\n%s", code, exitFound, out)
	}
	mustContain(t, "check", out, "corrupt: queue/otlp_logs/0/segment-00000000000000000001.log offset", "entry checksum mismatch",
		"torn: queue/otlp_logs/1/segment-", "cut the segment to",
		"checkpoint: queue/audit/0/checkpoint: checkpoint unreadable", "repair: rewrite the checkpoint", "damage found")
	_, before, _ := kbq(t, "ls", dir, "--json")

	code, out, errOut := kbq(t, "repair", dir)
	if code != exitOK {
		t.Fatalf("repair: exit %d:\n%s\n%s", code, out, errOut)
	}
	mustContain(t, "repair", out, "before:", "after:", "repaired")
	mustContain(t, "repair log", errOut, "corrupt entry skipped", "truncating interrupted write", "checkpoint unreadable")

	code, out, _ = kbq(t, "check", dir)
	if code != exitOK {
		t.Fatalf("check after repair: exit %d:\n%s", code, out)
	}
	mustContain(t, "check after repair", out, "kept aside earlier (not damage): 2 ranges", "no damage")
	_, after, _ := kbq(t, "ls", dir, "--json")
	var b, a lsReport
	if err := json.Unmarshal([]byte(before), &b); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(after), &a); err != nil {
		t.Fatal(err)
	}
	// The corrupt batch was already skipped; repair drops nothing else.
	if a.Batches != b.Batches || a.Records != b.Records || len(a.KeptAside) != 2 || len(a.Problems) != 0 {
		t.Errorf("ls before repair %d batches %d records; after %d batches %d records, kept aside %v, problems %v",
			b.Batches, b.Records, a.Batches, a.Records, a.KeptAside, a.Problems)
	}
}

func TestEveryCommandRefusesALockedDirectory(t *testing.T) {
	dir := t.TempDir()
	writeQueue(t, dir)
	writeDeadLetters(t, dir, deadLetters("gone", 1, "unknown_topic", 1)...)
	pid := holdStore(t, dir)
	for _, args := range [][]string{
		{"ls", dir}, {"cat", dir}, {"check", dir}, {"repair", dir},
		{"resend", dir, "--brokers", "127.0.0.1:1"},
	} {
		code, out, errOut := kbq(t, args...)
		if code != exitFailure || !strings.Contains(errOut, fmt.Sprintf("locked by a running process (pid %d)", pid)) {
			t.Errorf("%v on a directory pid %d holds: exit %d\n%s%s", args, pid, code, out, errOut)
		}
	}
	if n := deadLetterLines(t, dir); n != 1 {
		t.Errorf("the refused resend changed the dead-letter file: %d lines", n)
	}

	cp := filepath.Join(t.TempDir(), "copy")
	if out, err := exec.Command("cp", "-a", dir, cp).CombinedOutput(); err != nil {
		t.Fatalf("cp -a: %v: %s", err, out)
	}
	for _, args := range [][]string{{"ls", cp}, {"cat", cp}, {"check", cp}} {
		if code, out, errOut := kbq(t, args...); code != exitOK {
			t.Errorf("%v on a copy: exit %d\n%s%s", args, code, out, errOut)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{}, {"frobnicate"}, {"ls"}, {"ls", "a", "b"}, {"resend", t.TempDir()}, {"cat", t.TempDir(), "--source", "x"}} {
		if code, _, _ := kbq(t, args...); code != exitFailure {
			t.Errorf("%v: exit %d, want %d", args, code, exitFailure)
		}
	}
	if code, _, _ := kbq(t, "ls", filepath.Join(t.TempDir(), "missing")); code != exitFailure {
		t.Errorf("ls of a missing directory: exit %d", code)
	}
}
