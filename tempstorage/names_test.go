package tempstorage

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// TestStraySegmentNamesAreLeftAlone: only the exact name the queue writes
// is a segment. A look-alike next to a real segment is neither replayed
// nor mistaken for it, and one alone does not stop Open; each gets one
// warning naming it and stays where it is.
func TestStraySegmentNamesAreLeftAlone(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries int // queued in segment 1 (and 2) before the stray is added
		strays  []string
	}{
		{"short name beside its segment", 6, []string{"segment-2.log"}},
		{"short name alone", 0, []string{"segment-123.log"}},
		{"other look-alikes", 3, []string{"segment-00000000000000000002.log.bak", "segment-0000000000000000000x.log",
			"segment-000000000000000000002.log", "segment-00000000000000000000.log", "notes.txt"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.entries > 0 {
				q := mustOpen(t, dir, Options{SegmentBytes: 600, Fsync: FsyncNever})
				for i := range tc.entries {
					if err := q.Append(seqBatch("t", 0, i, 1, 150)); err != nil {
						t.Fatal(err)
					}
				}
				closeQueue(t, q)
			}
			for _, s := range tc.strays {
				if err := os.WriteFile(filepath.Join(dir, s), []byte("not a segment"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			log, logs := observed()
			q, err := openAlone(dir, Options{Logger: log})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			for _, s := range tc.strays {
				if n := logs.FilterField(zap.String("file", filepath.Join(dir, s))).Len(); n != 1 {
					t.Errorf("%d warnings naming %s, want 1; logs: %v", n, s, logs.All())
				}
			}
			requireDrained(t, q, seqRange(0, tc.entries))
			if q.Corrupt() != 0 {
				t.Fatalf("Corrupt = %d", q.Corrupt())
			}
			if err := q.Append(seqBatch("t", 0, 100, 1, 10)); err != nil {
				t.Fatal(err)
			}
			closeQueue(t, q)
			for _, s := range tc.strays {
				if b, err := os.ReadFile(filepath.Join(dir, s)); err != nil || string(b) != "not a segment" {
					t.Fatalf("%s not left alone: %q, %v", s, b, err)
				}
			}
		})
	}
}

func TestParseSegmentNameIsExact(t *testing.T) {
	for _, id := range []uint64{1, 2, 99, math.MaxUint64} {
		got, ok := parseSegmentName(segmentName(id))
		if !ok || got != id {
			t.Fatalf("%s: %d, %v", segmentName(id), got, ok)
		}
	}
	for _, name := range []string{"segment-2.log", "segment-123.log", "segment-+0000000000000000002.log",
		"segment-00000000000000000000.log", "segment-99999999999999999999.log", "segment-00000000000000000002.LOG"} {
		if id, ok := parseSegmentName(name); ok {
			t.Fatalf("%s parsed as segment %d", name, id)
		}
	}
}

// TestMissingMiddleSegmentIsLoggedAndCounted: a segment deleted by hand
// between Opens, or while the queue is open, loses its entries; the gap is
// logged with the segment ids and counted like a corrupt entry, and the
// rest is replayed in order.
func TestMissingMiddleSegmentIsLoggedAndCounted(t *testing.T) {
	for _, whileOpen := range []bool{false, true} {
		name := map[bool]string{false: "between opens", true: "while open"}[whileOpen]
		t.Run(name, func(t *testing.T) {
			src, _, segOf := buildSegments(t, 12, 1024)
			ids := slices.Compact(slices.Clone(segOf))
			if len(ids) < 4 {
				t.Fatalf("want 4 segments, got %v", ids)
			}
			victim := ids[1]
			var want []int
			for i, id := range segOf {
				if id != victim {
					want = append(want, i)
				}
			}
			log, logs := observed()
			var q *queue
			if whileOpen {
				q = mustOpen(t, src, Options{Logger: log})
			}
			if err := os.Remove(filepath.Join(src, segmentName(victim))); err != nil {
				t.Fatal(err)
			}
			if !whileOpen {
				q = mustOpen(t, src, Options{Logger: log})
			}
			defer closeQueue(t, q)
			requireDrained(t, q, want)
			if q.Corrupt() != 1 {
				t.Fatalf("Corrupt = %d, want 1 (one missing segment)", q.Corrupt())
			}
			msg := "temp storage: segments missing from the queue; their entries are lost"
			field := zap.Uint64("first_missing", victim)
			if whileOpen {
				msg, field = "temp storage: segment deleted while queued; its entries are lost", zap.Uint64("segment", victim)
			}
			if logs.FilterMessage(msg).FilterField(field).Len() != 1 {
				t.Fatalf("gap not logged with its id; logs: %v", logs.All())
			}
		})
	}
}

// TestMaxEntryBytesBoundsEveryEntry: an entry never takes more than
// MaxEntryBytes of its Kafka batch size and record count, for small and
// large records, long topics and far timestamps.
func TestMaxEntryBytesBoundsEveryEntry(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	stamps := []time.Time{time.Unix(0, 0), baseTime, time.Unix(math.MaxInt64/2, 999_999_999), time.Unix(-1<<40, 1)}
	for range 2000 {
		topic := strings.Repeat("t", 1+rng.IntN(249))
		n := 1 + rng.IntN(50)
		msgs := make([]message.Message, n)
		for i := range msgs {
			m := &msgs[i]
			if rng.IntN(2) == 0 {
				m.Key = make([]byte, rng.IntN(40))
			}
			if rng.IntN(4) > 0 {
				m.Value = make([]byte, rng.IntN(300))
			}
			for range rng.IntN(3) {
				m.Headers = append(m.Headers, message.Header{Key: "h", Value: make([]byte, rng.IntN(5))})
			}
			m.Timestamp = stamps[rng.IntN(len(stamps))]
			m.Trigger = rng.IntN(2) == 0
		}
		b := message.Batch{Topic: topic, Partition: math.MinInt32 + rng.Int32N(3), Messages: msgs, Bytes: message.BatchSize(msgs)}
		if rng.IntN(2) == 0 {
			b.Seq = randomSequence(rng, n)
		}
		got := int64(len(encodeEntry(b)))
		if bound := MaxEntryBytes(b.Bytes, n); got > bound {
			t.Fatalf("entry of %d records, batch %d bytes: %d bytes, bound %d", n, b.Bytes, got, bound)
		}
		// A record count above what the bytes allow is clipped, not trusted.
		if bound := MaxEntryBytes(b.Bytes, math.MaxInt32); got > bound {
			t.Fatalf("entry of %d records, batch %d bytes: %d bytes, unbounded-count bound %d", n, b.Bytes, got, bound)
		}
	}
}

// randomSequence returns a sequence of records records with the largest
// numbers and, half the time, a record batch per record (the most count
// bytes).
func randomSequence(rng *rand.Rand, records int) *message.Sequence {
	s := &message.Sequence{ProducerID: math.MaxInt64, ProducerEpoch: math.MaxInt16, BaseSequence: math.MaxInt32, Unsure: true}
	if rng.IntN(2) == 0 {
		s.Counts = slices.Repeat([]int32{1}, records)
		return s
	}
	for left := records; left > 0; {
		c := 1 + rng.IntN(left)
		s.Counts = append(s.Counts, int32(c))
		left -= c
	}
	return s
}

func TestEscapeTopic(t *testing.T) {
	for _, tc := range []struct{ topic, dir string }{
		{"logs.app_1-x", "logs.app_1-x"},
		{"a/b", "a%2Fb"},
		{"..", "%2E%2E"},
		{".", "%2E"},
		{"...", "..."},
		{"", "%"},
		{"%41", "%2541"},
		{"ü", "%C3%BC"},
		{"a b\\", "a%20b%5C"},
	} {
		if got := EscapeName(tc.topic); got != tc.dir {
			t.Errorf("EscapeName(%q) = %q, want %q", tc.topic, got, tc.dir)
		}
		if got, err := unescapeName(tc.dir); err != nil || got != tc.topic {
			t.Errorf("unescapeName(%q) = %q, %v; want %q", tc.dir, got, err, tc.topic)
		}
	}
	// Only EscapeName's own output is accepted: one directory per topic.
	for _, dir := range []string{"%61", "%2e", "%2", "%zz", "a b", "%%", "%2E."} {
		if got, err := unescapeName(dir); err == nil {
			t.Errorf("unescapeName(%q) = %q, want an error", dir, got)
		}
	}
}
