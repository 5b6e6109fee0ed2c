//go:build e2e

package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kafkabatcher/kafkabatcherexporter/testbench/realkafka"
	"github.com/twmb/franz-go/pkg/kgo"
)

// secure is the shared 1-node cluster with SASL, SSL and ACLs.
func secure(t *testing.T) *realkafka.Cluster {
	return sharedCluster(t, realkafka.Options{Nodes: 1, Security: true})
}

// ledger accounts for every record a test sends: in Kafka (once, or with
// duplicates), in the dead-letter file, or refused to the OTLP client.
type ledger struct {
	t       *testing.T
	sent    map[int]bool
	refused map[int]bool
	lastErr error // last refusal, for the log
	// crashed: the collector was killed with a request in flight, so
	// records refused to the client may be in Kafka anyway.
	crashed bool
	// ambiguous are the records whose fate was unknown at a crash (of
	// the brokers or of the collector): sent to Kafka, no answer, and the
	// process holding their producer id gone before it could resend them.
	// Replayed by another process, under another producer id, each may
	// be in Kafka twice even with idempotence; settle counts their
	// duplicates apart (crashDuplicates).
	ambiguous map[int]bool
}

func newLedger(t *testing.T) *ledger {
	return &ledger{t: t, sent: map[int]bool{}, refused: map[int]bool{}}
}

// send exports records from..to-1 in requests of per records; a refused
// request's records count as refused (a request is accepted all or
// nothing). It returns how many requests were refused.
func (l *ledger) send(s *sender, from, to, per int) int {
	l.t.Helper()
	refusals := 0
	for lo := from; lo < to; lo += per {
		hi := min(lo+per, to)
		err := s.export(lo, hi, nil)
		for seq := lo; seq < hi; seq++ {
			l.sent[seq] = true
			if err != nil {
				l.refused[seq] = true
			} else {
				delete(l.refused, seq) // accepted on a retry
			}
		}
		if err != nil {
			refusals++
			if refusals == 1 { // the first of this call
				l.t.Logf("export of records %d..%d refused: %v", lo, hi-1, err)
			}
			l.lastErr = err
		}
	}
	return refusals
}

// add records seqs as sent, refused or accepted.
func (l *ledger) add(seqs []int, refused bool) {
	for _, seq := range seqs {
		l.sent[seq] = true
		if refused {
			l.refused[seq] = true
		}
	}
}

// accepted returns the sequence numbers sent and not refused, in order.
func (l *ledger) accepted() []int {
	var out []int
	for seq := range l.sent {
		if !l.refused[seq] {
			out = append(out, seq)
		}
	}
	sortInts(out)
	return out
}

// tally is the account of a test's records.
type tally struct {
	sent, arrived, duplicates, deadletter, refused int
	// missing: sent, accepted, and neither in Kafka nor dead-lettered.
	missing int
	// crashDuplicates are the duplicates (of duplicates) of records the
	// ledger marks ambiguous.
	crashDuplicates int
	// outOfOrder counts first copies that overtook an earlier record of
	// their partition; orderBreaks counts every record, repeats included,
	// whose sequence number does not rise above the one before it at its
	// partition's offsets (-1: not checked). Set by env.account.
	outOfOrder, orderBreaks int
}

func (c tally) String() string {
	return "sent=" + strconv.Itoa(c.sent) + " arrived=" + strconv.Itoa(c.arrived) +
		" duplicates=" + strconv.Itoa(c.duplicates) + " deadletter=" + strconv.Itoa(c.deadletter) +
		" refused=" + strconv.Itoa(c.refused)
}

// ledgerLine is the account as one line for scripts (make e2e-stress reads
// it): "ledger: sent=N in_kafka=N duplicates=N out_of_order=N lost=N ...".
// in_kafka counts distinct records, duplicates the extra copies, lost the
// accepted records found nowhere.
func (c tally) ledgerLine() string {
	return fmt.Sprintf("ledger: sent=%d in_kafka=%d duplicates=%d out_of_order=%d lost=%d deadletter=%d refused=%d crash_duplicates=%d order_breaks=%d",
		c.sent, c.arrived, c.duplicates, c.outOfOrder, c.missing, c.deadletter, c.refused, c.crashDuplicates, c.orderBreaks)
}

// settle accounts for every record sent, given what was read from Kafka
// and the dead-letter file under storage; it fails the test for a record
// in none of them (or refused and yet in Kafka), logs duplicates and the
// one-line summary, and returns the tally.
func (l *ledger) settle(recs []rec, storage string) tally {
	l.t.Helper()
	inKafka := map[int]int{}
	for _, r := range recs {
		inKafka[r.seq]++
	}
	dead := deadLetterSeqs(l.t, storage)
	c := tally{sent: len(l.sent)}
	var missing, refusedArrived, dups, extra []int
	for seq := range inKafka {
		if !l.sent[seq] {
			extra = append(extra, seq)
		}
	}
	for seq := range l.sent {
		n := inKafka[seq]
		switch {
		case n > 0:
			c.arrived++
			if n > 1 {
				c.duplicates += n - 1
				dups = append(dups, seq)
				if l.ambiguous[seq] {
					c.crashDuplicates += n - 1
				}
			}
			if l.refused[seq] {
				refusedArrived = append(refusedArrived, seq)
			}
		case dead[seq]:
			c.deadletter++
		case l.refused[seq]:
			c.refused++
		default:
			missing = append(missing, seq)
		}
	}
	if len(dups) > 0 {
		sortInts(dups)
		l.t.Logf("%d records arrived more than once (at-least-once); first: %v", len(dups), head(dups))
	}
	c.missing = len(missing)
	if len(missing) > 0 {
		sortInts(missing)
		l.t.Errorf("%d records unaccounted for (not in Kafka, not dead-lettered, not refused): %s", len(missing), ranges(missing))
	}
	if len(refusedArrived) > 0 && l.crashed {
		sortInts(refusedArrived)
		l.t.Logf("%d records refused to the client (in flight at the kill) are in Kafka: %s", len(refusedArrived), ranges(refusedArrived))
	} else if len(refusedArrived) > 0 {
		sortInts(refusedArrived)
		l.t.Errorf("%d records were refused to the client and are in Kafka anyway: %s", len(refusedArrived), ranges(refusedArrived))
	}
	if len(extra) > 0 {
		sortInts(extra)
		l.t.Errorf("%d records in Kafka that were never sent: %v", len(extra), head(extra))
	}
	l.t.Log(c.String())
	return c
}

// deadLetterSeqs returns the sequence numbers of the records in the
// dead-letter files under storage.
func deadLetterSeqs(t *testing.T, storage string) map[int]bool {
	t.Helper()
	out := map[int]bool{}
	files, _ := filepath.Glob(filepath.Join(storage, "deadletter", "*.jsonl"))
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			var line struct {
				Value []byte `json:"value"`
			}
			if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
				t.Errorf("%s: %v", f, err)
				continue
			}
			if seq, err := strconv.Atoi(string(line.Value[:max(0, strings.IndexByte(string(line.Value), '|'))])); err == nil {
				out[seq] = true
			}
		}
		fh.Close()
	}
	return out
}

// storedSeqs returns the sequence numbers of the records in the temp
// storage's segment files under storage (replayed entries included until
// their segment is deleted). Values are stored as is, after a varint
// length, so "<seq>|" followed by pad x's is found verbatim.
func storedSeqs(t *testing.T, storage string, pad int) map[int]bool {
	t.Helper()
	re := regexp.MustCompile(`(?:^|[^0-9])([0-9]+)\|x{` + strconv.Itoa(pad) + `}`)
	out := map[int]bool{}
	_ = filepath.WalkDir(filepath.Join(storage, "queue"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasPrefix(d.Name(), "segment-") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Errorf("read %s: %v", p, err)
			return nil
		}
		for _, m := range re.FindAllSubmatch(b, -1) {
			if seq, err := strconv.Atoi(string(m[1])); err == nil {
				out[seq] = true
			}
		}
		return nil
	})
	return out
}

// waitStored polls until the temp storage holds every record of want, or
// limit passes; it returns how many it holds.
func waitStored(t *testing.T, storage string, pad int, want []int, limit time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		got := storedSeqs(t, storage, pad)
		n := 0
		for _, s := range want {
			if got[s] {
				n++
			}
		}
		if n == len(want) || time.Now().After(deadline) {
			return n
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// sendAndRead starts a collector on conf, sends records from..to-1 (body
// padding pad) into l in requests of 100, and reads the accepted ones back
// from topic on c, reading settle longer for duplicates.
func (e *env) sendAndRead(t *testing.T, c *realkafka.Cluster, conf *cfg, l *ledger, topic string, from, to, pad int, settle time.Duration) (*collector, []rec) {
	t.Helper()
	col := e.startCollector(conf)
	l.send(dial(t, col.otlp, 30, pad), from, to, 100)
	return col, newTopicConsumer(t, c.Bootstrap(), topic).read(l.accepted(), time.Minute, settle)
}

// deliverOnce runs a collector on conf, sends records 0..n-1 (bodies
// padded to pad), checks that each arrives once and in order, stops the
// collector and settles the ledger.
func (e *env) deliverOnce(t *testing.T, c *realkafka.Cluster, conf *cfg, topic string, n, pad int) tally {
	t.Helper()
	l := newLedger(t)
	col, recs := e.sendAndRead(t, c, conf, l, topic, 0, n, pad, time.Second)
	checkExactlyOnce(t, recs, seqRange(0, n))
	checkOrder(t, recs)
	col.stop()
	return l.settle(recs, conf.storage())
}

// readBack reads every accepted record back from topic on the cluster
// at seeds (within a minute, then 2 s of quiet) and checks that each
// partition's records come in the order sent.
func (l *ledger) readBack(seeds []string, topic string) []rec {
	l.t.Helper()
	recs := newTopicConsumer(l.t, seeds, topic).read(l.accepted(), time.Minute, 2*time.Second)
	checkOrder(l.t, recs)
	return recs
}

// sendStored sends records from..to-1 through s and requires each one
// accepted (the partition counts are known, nothing is refused) and, within
// 20 s, in the temp storage under storage; what says why they should be.
func (l *ledger) sendStored(s *sender, from, to int, storage, what string) {
	l.t.Helper()
	l.send(s, from, to, 100)
	want := seqRange(from, to)
	for _, seq := range want {
		if l.refused[seq] {
			l.t.Fatalf("record %d refused with the partition counts known: %v", seq, l.lastErr)
		}
	}
	requireStored(l.t, storage, secPad, want, what)
}

// requireStored checks that every record of want is in the temp storage
// under storage within 20 s; what says why they should be there.
func requireStored(t *testing.T, storage string, pad int, want []int, what string) {
	t.Helper()
	if got := waitStored(t, storage, pad, want, 20*time.Second); got != len(want) {
		t.Errorf("%s: %d of %d records on disk", what, got, len(want))
	} else {
		t.Logf("%s: all %d records on disk", what, got)
	}
}

// requireLogLines checks that, within 5 s, the log at path has a line
// holding every part of each set.
func requireLogLines(t *testing.T, path string, sets ...[]string) {
	t.Helper()
	for _, parts := range sets {
		if line := waitLog(path, 5*time.Second, parts...); line == "" {
			t.Errorf("no log line holds %q", parts)
		} else {
			t.Logf("log: %s", line)
		}
	}
}

// waitLog polls the file until it holds a line with every one of parts,
// or limit passes; it returns the line ("" when none).
func waitLog(path string, limit time.Duration, parts ...string) string {
	deadline := time.Now().Add(limit)
	for {
		if line := findLine(path, parts...); line != "" || time.Now().After(deadline) {
			return line
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// findLine returns the first line of the file holding every one of parts
// (case-insensitive), or "".
func findLine(path string, parts ...string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		low := strings.ToLower(line)
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(low, strings.ToLower(p))
		}
		if ok {
			return line
		}
	}
	return ""
}

func sortInts(s []int) { slices.Sort(s) }

// storage returns the temp storage directory of c.
func (c *cfg) storage() string {
	return c.exp["temp_storage"].(map[string]any)["directory"].(string)
}

// adminFor is a franz-go client on seeds (PLAINTEXT, a super user on the
// secure cluster) for raw requests.
func adminFor(seeds []string) (*kgo.Client, error) {
	return kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.RequestTimeoutOverhead(5*time.Second))
}

func itoa(n int) string { return strconv.Itoa(n) }
