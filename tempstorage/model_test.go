package tempstorage

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// TestModel runs random sequences of appends, peeks, acks and reopens
// against a slice as the model: Peek always gives the model's head (after
// a reopen too: an unacknowledged entry comes again, nothing acknowledged
// does), nothing is lost, counts agree, and the byte bound holds.
func TestModel(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	fulls := 0
	for run := range 12 {
		rng := rand.New(rand.NewPCG(uint64(seed), uint64(run)))
		opts := Options{
			SegmentBytes: 512 + rng.Int64N(4096),
			MaxBytes:     4096 + rng.Int64N(32768),
			Fsync:        FsyncPolicies()[rng.IntN(3)],
		}
		fulls += modelRun(t, rng, opts, 400)
	}
	if fulls == 0 {
		t.Fatal("no run reached max_bytes; the bound went untested")
	}
}

// modelRun returns how many appends were refused for max_bytes.
func modelRun(t *testing.T, rng *rand.Rand, opts Options, steps int) (fulls int) {
	dir := t.TempDir()
	q := mustOpen(t, dir, opts)
	defer func() { closeQueue(t, q) }()
	var model []message.Batch
	backlog := map[int32]int{}
	seq := 0
	peeked := false // the model head was returned by Peek and not yet acknowledged
	for step := range steps {
		switch op := rng.IntN(100); {
		case op < 45: // append
			p := int32(rng.IntN(4))
			b := seqBatch("t", p, seq, 1+rng.IntN(4), rng.IntN(600))
			err := q.Append(b)
			switch {
			case err == nil:
				model = append(model, b)
				backlog[p]++
				seq++
			case errors.Is(err, ErrFull) || errors.Is(err, ErrTooLarge):
				fulls++
				if need := int64(len(encodeEntry(b))); q.Bytes()+need <= opts.MaxBytes {
					t.Fatalf("step %d: %v with %d+%d of %d bytes", step, err, q.Bytes(), need, opts.MaxBytes)
				}
			default:
				t.Fatalf("step %d: Append: %v", step, err)
			}
		case op < 70: // peek
			b, ok, err := q.Peek()
			if err != nil {
				t.Fatalf("step %d: Peek: %v", step, err)
			}
			if ok != (len(model) > 0) {
				t.Fatalf("step %d: Peek ok=%v with %d in model", step, ok, len(model))
			}
			if ok {
				if d := sameBatch(b, model[0]); d != "" {
					t.Fatalf("step %d: Peek: %s", step, d)
				}
				peeked = true
			}
		case op < 92: // ack
			err := q.Ack()
			if len(model) == 0 {
				if !errors.Is(err, ErrEmpty) {
					t.Fatalf("step %d: Ack on empty: %v", step, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("step %d: Ack: %v", step, err)
			}
			backlog[model[0].Partition]--
			model = model[1:]
			peeked = false
		default: // reopen; a peeked but unacknowledged head must come back
			if err := q.Close(); err != nil {
				t.Fatalf("step %d: Close: %v", step, err)
			}
			q = mustOpen(t, dir, opts)
			if q.Corrupt() != 0 {
				t.Fatalf("step %d: clean reopen found %d corrupt entries", step, q.Corrupt())
			}
			if peeked {
				b, ok, err := q.Peek()
				if err != nil || !ok || sameBatch(b, model[0]) != "" {
					t.Fatalf("step %d: peeked entry not replayed after reopen (ok=%v err=%v)", step, ok, err)
				}
			}
		}
		if q.Len() != len(model) {
			t.Fatalf("step %d: Len %d, model %d", step, q.Len(), len(model))
		}
		got := backlogs(t, q)
		for p := range int32(4) {
			if got[tp("t", p)] != backlog[p] {
				t.Fatalf("step %d: Backlog(%d) = %d, model %d", step, p, got[tp("t", p)], backlog[p])
			}
		}
		if q.Bytes() > opts.MaxBytes {
			t.Fatalf("step %d: %d bytes above max %d", step, q.Bytes(), opts.MaxBytes)
		}
		if len(model) == 0 && q.Bytes() != 0 {
			t.Fatalf("step %d: empty queue holds %d bytes", step, q.Bytes())
		}
	}
	// Everything left comes out in order, after one more reopen.
	closeQueue(t, q)
	q = mustOpen(t, dir, opts)
	for i, want := range model {
		b, ok, err := q.Peek()
		if err != nil || !ok {
			t.Fatalf("final drain %d: ok=%v err=%v", i, ok, err)
		}
		if d := sameBatch(b, want); d != "" {
			t.Fatalf("final drain %d: %s", i, d)
		}
		if err := q.Ack(); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok, _ := q.Peek(); ok {
		t.Fatal("entries beyond the model")
	}
	if n := len(segmentFiles(t, dir)); n != 0 {
		t.Fatalf("%d segment files left after drain", n)
	}
	return fulls
}
