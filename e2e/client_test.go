//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// exportTimeout bounds one OTLP export call.
const exportTimeout = 30 * time.Second

// sender sends numbered log records to a collector over OTLP gRPC.
type sender struct {
	t      *testing.T
	conn   *grpc.ClientConn
	client plogotlp.GRPCClient
	keys   int // records are keyed k0..k(keys-1) by sequence number
	pad    int // body padding, to give records some size
}

// dial connects to a collector's OTLP gRPC endpoint; the connection is
// closed when the test ends.
func dial(t *testing.T, endpoint string, keys, pad int) *sender {
	t.Helper()
	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc client for %s: %v", endpoint, err)
	}
	t.Cleanup(func() { conn.Close() })
	return &sender{t: t, conn: conn, client: plogotlp.NewGRPCClient(conn), keys: keys, pad: pad}
}

// body is the record's value under raw encoding: "<seq>|<padding>".
func (s *sender) body(seq int) string {
	return strconv.Itoa(seq) + "|" + strings.Repeat("x", s.pad)
}

func (s *sender) key(seq int) string { return "k" + strconv.Itoa(seq%s.keys) }

// logs builds records from..to-1; big, when set, replaces a record's body.
func (s *sender) logs(from, to int, big map[int]string) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "e2e")
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName("kafkabatcher-e2e")
	recs := sl.LogRecords()
	recs.EnsureCapacity(to - from)
	now := pcommon.NewTimestampFromTime(time.Now())
	for seq := from; seq < to; seq++ {
		r := recs.AppendEmpty()
		r.SetTimestamp(now)
		r.SetSeverityText("INFO")
		r.Attributes().PutStr("key", s.key(seq))
		r.Attributes().PutInt("seq", int64(seq))
		if b, ok := big[seq]; ok {
			r.Body().SetStr(b)
		} else {
			r.Body().SetStr(s.body(seq))
		}
	}
	return ld
}

// export sends records from..to-1 in one request and returns the
// collector's answer.
func (s *sender) export(from, to int, big map[int]string) error {
	ctx, cancel := context.WithTimeout(context.Background(), exportTimeout)
	defer cancel()
	_, err := s.client.Export(ctx, plogotlp.NewExportRequestFromLogs(s.logs(from, to, big)))
	return err
}

// sendAll sends from..to-1 in requests of per records, failing the test on
// the first refused request.
func (s *sender) sendAll(from, to, per int) {
	s.t.Helper()
	for lo := from; lo < to; lo += per {
		hi := min(lo+per, to)
		if err := s.export(lo, hi, nil); err != nil {
			s.t.Fatalf("export of records %d..%d refused: %v", lo, hi-1, err)
		}
	}
}

// rec is a record read back from Kafka.
type rec struct {
	seq       int
	key       string
	partition int32
	offset    int64
	bytes     int
}

// consumer reads the test topic from the start.
type consumer struct {
	t  *testing.T
	cl *kgo.Client
}

func newConsumer(t *testing.T, brokerAddr string) *consumer {
	t.Helper()
	return newTopicConsumer(t, []string{brokerAddr}, topic)
}

// newTopicConsumer reads topic name from the start, through seeds.
func newTopicConsumer(t *testing.T, seeds []string, name string) *consumer {
	t.Helper()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(seeds...),
		kgo.ConsumeTopics(name),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond),
		kgo.FetchMaxPartitionBytes(16<<20),
		kgo.FetchMaxBytes(64<<20),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &consumer{t: t, cl: cl}
}

// read polls until the records read so far hold every sequence number in
// want, or limit passes; then it reads a little longer (settle) so extra
// records and duplicates show too. It returns everything read, by
// partition and offset.
func (c *consumer) read(want []int, limit, settle time.Duration) []rec {
	c.t.Helper()
	need := map[int]bool{}
	for _, s := range want {
		need[s] = true
	}
	var out []rec
	deadline := time.Now().Add(limit)
	var settleEnd time.Time
	for {
		now := time.Now()
		if !settleEnd.IsZero() && now.After(settleEnd) || now.After(deadline) {
			break
		}
		end := deadline
		if !settleEnd.IsZero() {
			end = settleEnd
		}
		ctx, cancel := context.WithDeadline(context.Background(), end)
		fs := c.cl.PollFetches(ctx)
		cancel()
		fs.EachError(func(t string, p int32, err error) {
			if ctx.Err() == nil {
				c.t.Logf("fetch %s/%d: %v", t, p, err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			seq, err := strconv.Atoi(string(r.Value[:max(0, strings.IndexByte(string(r.Value), '|'))]))
			if err != nil {
				c.t.Errorf("record %d/%d: value %.40q has no sequence number", r.Partition, r.Offset, r.Value)
				return
			}
			out = append(out, rec{seq: seq, key: string(r.Key), partition: r.Partition, offset: r.Offset, bytes: len(r.Value)})
			delete(need, seq)
		})
		if len(need) == 0 && settleEnd.IsZero() {
			settleEnd = time.Now().Add(settle)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].partition != out[j].partition {
			return out[i].partition < out[j].partition
		}
		return out[i].offset < out[j].offset
	})
	return out
}

// seqRange is from..to-1.
func seqRange(from, to int) []int {
	s := make([]int, 0, to-from)
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}

// checkExactlyOnce checks that recs hold every sequence number of want once
// and nothing else. No test of the suite has a send in flight at a crash,
// so at-least-once allows no duplicate here.
func checkExactlyOnce(t *testing.T, recs []rec, want []int) {
	t.Helper()
	missing, dups, extra := countSeqs(recs, want)
	reportMissingAndDups(t, missing, dups, len(want))
	if len(extra) > 0 {
		t.Errorf("%d records that were not expected; first: %v", len(extra), head(extra))
	}
	if t.Failed() {
		return
	}
	t.Logf("all %d records delivered once", len(want))
}

// countSeqs returns the sequence numbers of want missing from recs, those in
// recs more than once, and those in recs but not in want.
func countSeqs(recs []rec, want []int) (missing, dups, extra []int) {
	wanted := map[int]bool{}
	for _, s := range want {
		wanted[s] = true
	}
	count := map[int]int{}
	for _, r := range recs {
		count[r.seq]++
		switch {
		case !wanted[r.seq]:
			if count[r.seq] == 1 {
				extra = append(extra, r.seq)
			} else if count[r.seq] == 2 {
				dups = append(dups, r.seq)
			}
		case count[r.seq] == 2:
			dups = append(dups, r.seq)
		}
	}
	for _, s := range want {
		if count[s] == 0 {
			missing = append(missing, s)
		}
	}
	return missing, dups, extra
}

// reportMissingAndDups fails t for records missing (of want) and
// delivered more than once.
func reportMissingAndDups(t *testing.T, missing, dups []int, want int) {
	t.Helper()
	if len(missing) > 0 {
		t.Errorf("%d of %d records missing; first: %v (ranges %s)", len(missing), want, head(missing), ranges(missing))
	}
	if len(dups) > 0 {
		t.Errorf("%d records delivered more than once; first: %v (ranges %s)", len(dups), head(dups), ranges(dups))
	}
}

// checkOrder checks that, per partition in offset order, sequence numbers
// rise (they were accepted in that order) and that every key stays on one
// partition. It returns the number of order violations (each a failure).
func checkOrder(t *testing.T, recs []rec) int {
	t.Helper()
	return orderCheck(t, recs, false)
}

// checkFirstCopiesInOrder is checkOrder for at-least-once delivery: a
// record seen before (a resent batch) is passed over, so only a record that
// overtook an earlier one fails. It returns the number of such records.
func checkFirstCopiesInOrder(t *testing.T, recs []rec) int {
	t.Helper()
	return orderCheck(t, recs, true)
}

// orderCheck fails t for every record whose sequence number does not rise
// above the one before it on its partition (skipRepeats: records seen
// before are passed over) and for a key on two partitions; it returns the
// number of order violations.
func orderCheck(t *testing.T, recs []rec, skipRepeats bool) int {
	t.Helper()
	return orderCheckSkipping(t, recs, func(int) bool { return skipRepeats })
}

// orderCheckSkipping is orderCheck passing over the repeats of the records
// skip says may repeat.
func orderCheckSkipping(t *testing.T, recs []rec, skip func(seq int) bool) int {
	t.Helper()
	skipped := 0
	last := map[int32]rec{}
	keyPart := map[string]int32{}
	seen := map[int]bool{}
	bad := 0
	for _, r := range recs {
		if p, ok := keyPart[r.key]; ok && p != r.partition {
			t.Errorf("key %q on partitions %d and %d", r.key, p, r.partition)
		}
		keyPart[r.key] = r.partition
		if seen[r.seq] && skip(r.seq) {
			skipped++
			continue
		}
		seen[r.seq] = true
		if prev, ok := last[r.partition]; ok && r.seq <= prev.seq {
			bad++
			if bad <= 10 {
				t.Errorf("partition %d out of order: offset %d holds record %d after offset %d with record %d",
					r.partition, r.offset, r.seq, prev.offset, prev.seq)
			}
		}
		last[r.partition] = r
	}
	if bad > 10 {
		t.Errorf("... %d order violations in all", bad)
	}
	parts := make([]int32, 0, len(last))
	for p := range last {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	t.Logf("order checked on partitions %v: %d violations, %d repeats passed over", parts, bad, skipped)
	return bad
}

func head(s []int) []int { return s[:min(len(s), 10)] }

// ranges renders sorted numbers as "a-b,c", at most a few ranges.
func ranges(s []int) string {
	s = slices.Clone(s)
	slices.Sort(s)
	var parts []string
	for i := 0; i < len(s); {
		j := i
		for j+1 < len(s) && s[j+1] == s[j]+1 {
			j++
		}
		if i == j {
			parts = append(parts, strconv.Itoa(s[i]))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", s[i], s[j]))
		}
		i = j + 1
		if len(parts) == 8 && i < len(s) {
			parts = append(parts, "...")
			break
		}
	}
	return strings.Join(parts, ",")
}
