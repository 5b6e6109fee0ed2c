//go:build e2e

package e2e

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mountTmpfs mounts a tmpfs of size at dir for the test, or skips the test
// when it cannot (not root, or mount refused): the unit tests' disk that
// fills up covers those machines.
func mountTmpfs(t *testing.T, dir, size string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("a small tmpfs needs root (uid %d); the full-disk unit tests cover the rest", os.Geteuid())
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("mount -t tmpfs refused (%v: %s); the full-disk unit tests cover this", err, strings.TrimSpace(string(out)))
	}
	// Registered before the collector starts: runs after it stopped.
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
}

// TestFullDiskDrainsAndRefusesAsDiskFull is the full disk: a 2 MiB
// tmpfs as the temp storage, sync delivery, the broker down while 2,000
// records of 2 KB come in. Part are accepted onto disk, the rest refused
// as "disk full". With the broker back and the disk as small as before,
// every accepted record reaches Kafka exactly once, in order per
// partition; records are accepted again, and a restart resends nothing.
func TestFullDiskDrainsAndRefusesAsDiskFull(t *testing.T) {
	const (
		warm = 10   // sent while the broker is up
		end  = 2010 // warm..end-1 are sent while it is down
		per  = 50
	)
	e := newEnv(t)
	mountTmpfs(t, e.path("storage"), "2m")
	port := freePort(t)
	b1 := e.startBroker(port, 3)
	cfg := e.newConfig(b1.addr).
		set("delivery", "sync").
		set("batch.max_wait", "100ms")
	c := e.startCollector(cfg)
	s := dial(t, c.otlp, 24, 2000)
	s.sendAll(0, warm, warm)
	newConsumer(t, b1.addr).read(seqRange(0, warm), 30*time.Second, 0)

	b1.kill() // the devbroker keeps records in memory: b2 starts empty
	var accepted []int
	refused := 0
	var lastErr error
	for lo := warm; lo < end; lo += per {
		if err := s.export(lo, lo+per, nil); err != nil {
			refused += per
			lastErr = err
			continue
		}
		accepted = append(accepted, seqRange(lo, lo+per)...)
	}
	t.Logf("broker down: %d records accepted, %d refused; last refusal: %v", len(accepted), refused, lastErr)
	if refused == 0 {
		t.Fatalf("2,000 records of 2 KB accepted on a 2 MiB disk: %s", dirSummary(e.path("storage")))
	}
	if lastErr == nil || !strings.Contains(lastErr.Error(), "disk full") {
		t.Errorf("refusal does not say disk full: %v", lastErr)
	}
	// What the last refused batch left free goes too: not a byte left,
	// as when another process fills the disk.
	fillUp(t, e.path("storage/filler"))

	b2 := e.startBroker(port, 3)
	recs := newConsumer(t, b2.addr).read(accepted, 60*time.Second, time.Second)
	checkAcceptedOnce(t, recs, accepted)
	checkOrder(t, recs)
	if t.Failed() {
		t.FailNow()
	}

	// The disk is free again: records are accepted, straight to Kafka.
	deadline := time.Now().Add(30 * time.Second)
	next := end
	for {
		err := s.export(next, next+per, nil)
		if err == nil {
			accepted = append(accepted, seqRange(next, next+per)...)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("records still refused 30s after the backlog drained: %v; %s", err, dirSummary(e.path("storage")))
		}
		next += per
		time.Sleep(200 * time.Millisecond)
	}
	next += per

	// A restart on the same disk sends nothing again.
	if !c.stop() {
		t.Fatal("collector did not stop on SIGTERM")
	}
	c2 := e.startCollector(cfg)
	dial(t, c2.otlp, 24, 2000).sendAll(next, next+per, per)
	accepted = append(accepted, seqRange(next, next+per)...)
	recs = newConsumer(t, b2.addr).read(accepted, 60*time.Second, 2*time.Second)
	checkAcceptedOnce(t, recs, accepted)
	checkOrder(t, recs)
	if b, err := os.ReadFile(e.path("collector.log")); err == nil && strings.Contains(string(b), "checkpoint failed") {
		t.Errorf("the collector logged a failed checkpoint write")
	}
}

// fillUp writes path until the file system holding it is full.
func fillUp(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 512)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(filepath.Dir(path), &st); err == nil {
		t.Logf("disk filled up: %d bytes free", st.Bavail*uint64(st.Bsize))
	}
}

// checkAcceptedOnce checks that every accepted record is in recs once and
// that no record is there twice; records of refused requests may be there
// (part of a request can reach the disk before it fills), once.
func checkAcceptedOnce(t *testing.T, recs []rec, accepted []int) {
	t.Helper()
	missing, dups, _ := countSeqs(recs, accepted)
	reportMissingAndDups(t, missing, dups, len(accepted))
	if !t.Failed() {
		t.Logf("all %d accepted records delivered once (%d records read)", len(accepted), len(recs))
	}
}
