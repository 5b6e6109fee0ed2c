package tempstorage

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// readDeadLetters decodes the lines of one dead-letter file.
func readDeadLetters(t *testing.T, path string) []DeadLetterRecord {
	t.Helper()
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }() // read only: nothing to lose on close
	var recs []DeadLetterRecord
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r DeadLetterRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		recs = append(recs, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return recs
}

func TestDeadLetterWritesJSONLines(t *testing.T) {
	dir := t.TempDir()
	d, err := OpenDeadLetter(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2025, 5, 6, 7, 8, 9, 123456789, time.UTC)
	d.now = func() time.Time { return now }
	msgs := []message.Message{
		{Key: []byte("k1"), Value: []byte{0, 1, 0xFE, 0xFF}, Timestamp: baseTime,
			Headers: []message.Header{{Key: "attributes.a", Value: []byte("x")}}},
		{Value: []byte(`{"not":"json-escaped"}`)},
	}
	if _, err := d.Write(tp("logs", 4), "oversize", msgs[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Write(tp("audit", 0), "kafka: INVALID_RECORD", msgs[1]); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Write(tp("logs", 0), "x", msgs[1]); !errors.Is(err, ErrClosed) {
		t.Fatalf("Write after Close: %v", err)
	}

	path := filepath.Join(dir, "deadletter", "deadletter.jsonl")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	first := strings.SplitN(string(raw), "\n", 2)[0]
	for _, want := range []string{
		`"time":"2025-05-06T07:08:09.123456789Z"`, `"topic":"logs"`, `"partition":4`, `"reason":"oversize"`,
		`"key":"` + base64.StdEncoding.EncodeToString([]byte("k1")) + `"`,
		`"value":"` + base64.StdEncoding.EncodeToString(msgs[0].Value) + `"`,
		`"headers":[{"key":"attributes.a","value":"eA=="}]`,
	} {
		if !strings.Contains(first, want) {
			t.Errorf("line %s lacks %s", first, want)
		}
	}
	recs := readDeadLetters(t, path)
	if len(recs) != 2 {
		t.Fatalf("%d records", len(recs))
	}
	r := recs[1]
	if r.Topic != "audit" || r.Partition != 0 || r.Reason != "kafka: INVALID_RECORD" || r.Key != nil ||
		string(r.Value) != string(msgs[1].Value) || !r.Timestamp.IsZero() || !r.Time.Equal(now) {
		t.Fatalf("second record: %+v", r)
	}
	if !recs[0].Timestamp.Equal(baseTime) || string(recs[0].Key) != "k1" {
		t.Fatalf("first record: %+v", recs[0])
	}
	if st, _ := os.Stat(filepath.Join(dir, "deadletter")); st.Mode().Perm() != 0o700 {
		t.Fatalf("deadletter dir mode %v", st.Mode().Perm())
	}
}

// TestDeadLetterBounded: with rotation the two files never pass the bound
// and together hold the newest records, in order.
func TestDeadLetterBounded(t *testing.T) {
	dir := t.TempDir()
	const bound = 4000
	d, err := OpenDeadLetter(dir, bound)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	cur := filepath.Join(dir, "deadletter", "deadletter.jsonl")
	prev := filepath.Join(dir, "deadletter", "deadletter.1.jsonl")
	size := func(p string) int64 {
		st, err := os.Stat(p)
		if err != nil {
			return 0
		}
		return st.Size()
	}
	const n = 200
	for i := range n {
		m := message.Message{Value: []byte(strings.Repeat("v", i%150)), Key: []byte{byte(i)}}
		if _, err := d.Write(tp("t", int32(i)), "oversize", m); err != nil {
			t.Fatal(err)
		}
		if total := size(cur) + size(prev); total > bound {
			t.Fatalf("after %d writes the files hold %d bytes, bound %d", i+1, total, bound)
		}
	}
	recs := append(readDeadLetters(t, prev), readDeadLetters(t, cur)...)
	if len(recs) < 5 {
		t.Fatalf("only %d records kept", len(recs))
	}
	for i, r := range recs {
		if want := int32(n - len(recs) + i); r.Partition != want {
			t.Fatalf("record %d is #%d, want #%d (newest kept, in order)", i, r.Partition, want)
		}
	}
	des, _ := os.ReadDir(filepath.Join(dir, "deadletter"))
	if len(des) != 2 {
		t.Fatalf("deadletter/ holds %d files", len(des))
	}
}

func TestDeadLetterOversizeRecordWrittenWithoutPayload(t *testing.T) {
	dir := t.TempDir()
	d, err := OpenDeadLetter(dir, 2000)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	m := message.Message{Key: []byte("key"), Value: make([]byte, 5000), Headers: []message.Header{{Key: "h"}}}
	truncated, err := d.Write(tp("t", 1), "oversize", m)
	if err != nil || !truncated {
		t.Fatalf("Write: truncated %v, %v; want the content left out, said", truncated, err)
	}
	recs := readDeadLetters(t, filepath.Join(dir, "deadletter", "deadletter.jsonl"))
	if len(recs) != 1 {
		t.Fatalf("%d records", len(recs))
	}
	r := recs[0]
	if !r.Truncated || r.Value != nil || r.Key != nil || r.Headers != nil || r.ValueBytes != 5000 || r.KeyBytes != 3 || r.Reason != "oversize" {
		t.Fatalf("record %+v", r)
	}
	if _, err := d.Write(message.TopicPartition{Topic: strings.Repeat("t", 3000), Partition: 1}, "oversize", m); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("line that cannot fit: %v", err)
	}
}

func TestDeadLetterReopenAppends(t *testing.T) {
	dir := t.TempDir()
	for i := range 3 {
		d, err := OpenDeadLetter(dir, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.Write(tp("t", int32(i)), "oversize", message.Message{Value: []byte(strings.Repeat("x", 200))}); err != nil {
			t.Fatal(err)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	}
	cur := readDeadLetters(t, filepath.Join(dir, "deadletter", "deadletter.jsonl"))
	prev := readDeadLetters(t, filepath.Join(dir, "deadletter", "deadletter.1.jsonl"))
	// Lines are ~400 bytes and each file holds up to 500: the size found at
	// Open counts, so every file has one line.
	if len(cur) != 1 || len(prev) != 1 || cur[0].Partition != 2 || prev[0].Partition != 1 {
		t.Fatalf("current %+v previous %+v", cur, prev)
	}
}
