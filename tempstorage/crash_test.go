package tempstorage

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

const (
	crashDirEnv   = "TEMPSTORAGE_CRASH_DIR"
	crashStartEnv = "TEMPSTORAGE_CRASH_START"
)

// crashOptions are the child's options: fsync batch, small segments so
// kills also land around segment rotation.
func crashOptions() Options { return Options{Fsync: FsyncBatch, SegmentBytes: 96 << 10} }

// crashBatch is entry seq as the child appends it: sizes vary up to ~30 KiB.
func crashBatch(seq int) message.Batch {
	return seqBatch("t", int32(seq%3), seq, 1+seq%3, 100+(seq*7919)%10000)
}

// TestHelperProcess is the child of TestCrashKeepsAcknowledgedAppends: it
// appends entries from $TEMPSTORAGE_CRASH_START on and prints each sequence
// number once Append returned, until it is killed.
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("child process of TestCrashKeepsAcknowledgedAppends")
	}
	start, err := strconv.Atoi(os.Getenv(crashStartEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, "bad start:", err)
		os.Exit(2)
	}
	q, err := openAlone(dir, crashOptions())
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	for seq := start; ; seq++ {
		if err := q.Append(crashBatch(seq)); err != nil {
			fmt.Fprintln(os.Stderr, "append:", err)
			os.Exit(3)
		}
		fmt.Fprintf(os.Stdout, "%d\n", seq) // unbuffered: one write per acknowledged entry
	}
}

// TestCrashKeepsAcknowledgedAppends SIGKILLs an appending child at random
// moments, again and again. After each kill the queue must hold every entry
// the child acknowledged, in order, with at most one more (an Append that
// completed but was not printed), and no corruption. Between rounds the
// parent replays a random part so checkpoints and segment deletes are in play.
func TestCrashKeepsAcknowledgedAppends(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	dir := t.TempDir()
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	head, next := 0, 0 // first unreplayed seq, next seq to append
	torn, extra := 0, 0
	const rounds = 25
	for round := range rounds {
		lastAcked := crashRound(t, dir, next, rng)

		log, logs := observed()
		opts := crashOptions()
		opts.Logger = log
		q := mustOpen(t, dir, opts)
		torn += logs.FilterMessage("temp storage: truncating interrupted write at the end of the queue").Len()
		got := contents(t, q)
		if q.Corrupt() != 0 {
			t.Fatalf("round %d: %d corrupt entries after SIGKILL", round, q.Corrupt())
		}
		acked := seqRange(head, lastAcked+1)
		if !slices.Equal(got, acked) && !slices.Equal(got, append(acked, lastAcked+1)) {
			t.Fatalf("round %d: queue holds %s, child acknowledged %d..%d", round, summary(got), head, lastAcked)
		}
		if len(got) > len(acked) {
			extra++
		}
		next = head + len(got)
		// Replay a random part of the backlog.
		for range rng.IntN(len(got) + 1) {
			b, ok, err := q.Peek()
			if err != nil || !ok || seqOf(t, b) != head {
				t.Fatalf("round %d: replay: ok=%v err=%v", round, ok, err)
			}
			if err := q.Ack(); err != nil {
				t.Fatal(err)
			}
			head++
		}
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d rounds, %d entries appended, %d replayed; %d torn tails cut, %d unprinted appends kept", rounds, next, head, torn, extra)
}

// crashRound runs one child from seq start, kills it with SIGKILL after a
// random number of acknowledged appends or a random time, and returns the
// last sequence number it acknowledged.
func crashRound(t *testing.T, dir string, start int, rng *rand.Rand) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashStartEnv+"="+strconv.Itoa(start))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killAfter := 1 + rng.IntN(120)
	var timer *time.Timer
	if rng.IntN(2) == 0 { // kill at a random time instead, even before the first append
		timer = time.AfterFunc(time.Duration(rng.IntN(150))*time.Millisecond, func() { _ = cmd.Process.Kill() })
		killAfter = -1
	}
	last, n := start-1, 0
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		seq, err := strconv.Atoi(sc.Text())
		if err != nil || seq != last+1 {
			t.Fatalf("child printed %q after %d", sc.Text(), last)
		}
		last = seq
		if n++; n == killAfter {
			_ = cmd.Process.Kill() // checked below: Wait must report SIGKILL
		}
	}
	if timer != nil {
		timer.Stop()
	}
	_ = cmd.Process.Kill() // in case the child stopped printing for another reason; fails if it already died
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die by signal: %v; stderr: %s", err, stderr.String())
	}
	return last
}

// summary shows a long sequence by its ends and gaps.
func summary(s []int) string {
	if len(s) == 0 {
		return "nothing"
	}
	var b strings.Builder
	from := s[0]
	for i := 1; i <= len(s); i++ {
		if i < len(s) && s[i] == s[i-1]+1 {
			continue
		}
		fmt.Fprintf(&b, "%d..%d ", from, s[i-1])
		if i < len(s) {
			from = s[i]
		}
	}
	return strings.TrimSpace(b.String())
}
