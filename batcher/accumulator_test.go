package batcher

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

type step struct {
	at       time.Duration // clock, from t0
	op       string        // add | tick | flush | memory (Cut with reason memory) | call (CutSoon with reason call)
	rec      string        // add: record name
	pad      int           // add: value size
	flush    bool          // add: matches flush_when
	want     []string      // ready batches, "reason:names"
	rejected bool          // add: record refused as oversize
	deadline string        // if set: Deadline() afterwards, as offset from t0 ("none" for zero)
}

func runSteps(t *testing.T, cfg Config, steps []step) {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a := NewAccumulator(cfg, "t", 3)
	for i, s := range steps {
		now := t0.Add(s.at)
		var out []message.Batch
		rejected := false
		switch s.op {
		case "add":
			m := rec(s.rec, s.pad)
			m.Trigger = s.flush
			out, rejected = a.Add(&m, now, nil)
		case "tick":
			out = a.Tick(now, nil)
		case "flush":
			out = a.Drain(nil)
		case "memory":
			out = a.Cut(now, message.ReasonMemory, nil)
		case "call":
			out = a.CutSoon(now, message.ReasonCall, nil)
		default:
			t.Fatalf("step %d: unknown op %q", i, s.op)
		}
		var got []string
		for _, b := range out {
			checkBatch(t, cfg, b)
			if b.Topic != "t" || b.Partition != 3 {
				t.Fatalf("step %d: batch for %s/%d, want t/3", i, b.Topic, b.Partition)
			}
			got = append(got, describe(b))
		}
		if fmt.Sprint(got) != fmt.Sprint(s.want) {
			t.Fatalf("step %d (%s %s at %v): ready %v, want %v", i, s.op, s.rec, s.at, got, s.want)
		}
		if rejected != s.rejected {
			t.Fatalf("step %d: rejected = %v, want %v", i, rejected, s.rejected)
		}
		if s.deadline != "" {
			got := "none"
			if d := a.Deadline(); !d.IsZero() {
				got = d.Sub(t0).String()
			}
			if got != s.deadline {
				t.Fatalf("step %d: Deadline = %s, want %s", i, got, s.deadline)
			}
		}
	}
}

func TestAccumulatorRules(t *testing.T) {
	// Sizes used below: a record with a v-byte value, no key, no headers,
	// offset and timestamp deltas 0, encodes as 7+v bytes for v < 57.
	if got := message.RecordSize(&message.Message{Value: make([]byte, 50), Timestamp: t0}, 0, t0); got != 57 {
		t.Fatalf("RecordSize of a 50-byte value = %d, the cases below assume 57", got)
	}
	with := func(f func(*Config)) Config { c := testConfig(); f(&c); return c }

	cases := []struct {
		name  string
		cfg   Config
		steps []step
	}{
		{"size: min_delay 0 never holds a full batch, even when the last cut is later than the add's clock", with(func(c *Config) { c.Size = 2; c.MinDelay = 0 }), []step{
			{at: ms(10), op: "add", rec: "u", flush: true, want: []string{"trigger:u"}},
			{at: ms(5), op: "add", rec: "a", pad: 10},
			{at: ms(5), op: "add", rec: "b", pad: 10, want: []string{"size:a,b"}},
			{at: ms(5), op: "add", rec: "c", pad: 10},
			{at: ms(5), op: "call", want: []string{"call:c"}},
		}},
		{"size: batch_size 30 is ready at the 30th record", with(func(c *Config) { c.Size = 30 }), func() []step {
			var s []step
			var names []string
			for i := 0; i < 30; i++ {
				n := fmt.Sprintf("r%d", i)
				names = append(names, n)
				s = append(s, step{at: ms(i), op: "add", rec: n})
			}
			s[29].want = []string{"size:" + strings.Join(names, ",")}
			s[29].deadline = "none"
			return s
		}()},
		{"max_wait 50ms with one record", with(func(c *Config) { c.MaxWait = ms(50) }), []step{
			{at: 0, op: "add", rec: "a", deadline: "50ms"},
			{at: ms(49), op: "tick"},
			{at: ms(49), op: "add", rec: "b", deadline: "50ms"}, // later adds do not reset the timer
			{at: ms(50), op: "tick", want: []string{"max_wait:a,b"}, deadline: "none"},
			{at: ms(60), op: "tick"},
		}},
		{"min_delay: batch_size 2, min_delay 200ms gives [a,b] then one larger batch at the min_delay deadline",
			with(func(c *Config) { c.Size = 2; c.MinDelay = ms(200) }), []step{
				{at: 0, op: "add", rec: "a"},
				{at: ms(1), op: "add", rec: "b", want: []string{"size:a,b"}}, // no send yet: min_delay holds nothing
				{at: ms(10), op: "add", rec: "c", deadline: "1.01s"},
				// Full, and a,b (cut at 1ms, never acknowledged) holds it
				// until the min_delay deadline.
				{at: ms(20), op: "add", rec: "d", deadline: "201ms"},
				{at: ms(30), op: "add", rec: "e"},
				{at: ms(40), op: "add", rec: "f"},
				{at: ms(50), op: "add", rec: "g", deadline: "201ms"},
				{at: ms(200), op: "tick"},
				{at: ms(201), op: "tick", want: []string{"min_delay:c,d,e,f,g"}, deadline: "none"},
				// The min_delay batch's own send holds the next full one.
				{at: ms(210), op: "add", rec: "h"},
				{at: ms(220), op: "add", rec: "i", deadline: "401ms"},
				{at: ms(401), op: "tick", want: []string{"min_delay:h,i"}},
			}},
		{"min_delay: the first send is not held", with(func(c *Config) { c.Size = 2; c.MinDelay = ms(200) }), []step{
			{at: 0, op: "add", rec: "a"},
			{at: 0, op: "add", rec: "b", want: []string{"size:a,b"}},
		}},
		{"min_delay: the first call is not held", with(func(c *Config) { c.Size = 2; c.MinDelay = ms(200) }), []step{
			{at: 0, op: "add", rec: "a"},
			{at: 0, op: "call", want: []string{"call:a"}},
		}},
		{"min_delay passed: the count rule applies at once", with(func(c *Config) { c.Size = 2; c.MinDelay = ms(200) }), []step{
			{at: 0, op: "add", rec: "u"},
			{at: 0, op: "add", rec: "v", want: []string{"size:u,v"}},
			{at: ms(199), op: "add", rec: "a"},
			{at: ms(200), op: "add", rec: "b", want: []string{"size:a,b"}}, // exactly min_delay after the cut
		}},
		{"held batch keeps growing up to max_bytes, then bytes cuts it",
			with(func(c *Config) { c.Size = 2; c.MinDelay = ms(200); c.MaxBytes = 61 + 3*57 }), []step{
				{at: 0, op: "add", rec: "u", pad: 50, flush: true, want: []string{"trigger:u"}},
				{at: ms(1), op: "add", rec: "a", pad: 50},
				{at: ms(2), op: "add", rec: "b", pad: 50, deadline: "200ms"},
				{at: ms(3), op: "add", rec: "c", pad: 50},
				// The bytes cut is a send too: d,e wait min_delay from it.
				{at: ms(4), op: "add", rec: "d", pad: 50, want: []string{"bytes:a,b,c"}, deadline: "1.004s"},
				{at: ms(5), op: "add", rec: "e", pad: 50, deadline: "204ms"},
				{at: ms(203), op: "tick"},
				{at: ms(204), op: "tick", want: []string{"min_delay:d,e"}},
			}},
		{"max_bytes cut: the carried-over record starts its own age timer",
			with(func(c *Config) { c.MaxBytes = 61 + 2*57; c.MaxWait = ms(100) }), []step{
				{at: 0, op: "add", rec: "a", pad: 50},
				{at: ms(10), op: "add", rec: "b", pad: 50, deadline: "100ms"}, // exactly max_bytes: stays
				{at: ms(20), op: "add", rec: "c", pad: 50, want: []string{"bytes:a,b"}, deadline: "120ms"},
				{at: ms(119), op: "tick"},
				{at: ms(120), op: "tick", want: []string{"max_wait:c"}},
			}},
		{"trigger: the flush record is in its batch", testConfig(), []step{
			{at: 0, op: "add", rec: "a"},
			{at: ms(1), op: "add", rec: "b", flush: true, want: []string{"trigger:a,b"}, deadline: "none"},
			{at: ms(2), op: "add", rec: "c", flush: true, want: []string{"trigger:c"}},
		}},
		{"order: count before trigger", with(func(c *Config) { c.Size = 2 }), []step{
			{at: 0, op: "add", rec: "a"},
			{at: 0, op: "add", rec: "b", flush: true, want: []string{"size:a,b"}},
		}},
		{"order: trigger releases a batch min_delay holds", with(func(c *Config) { c.Size = 2; c.MinDelay = ms(200) }), []step{
			{at: 0, op: "add", rec: "u", flush: true, want: []string{"trigger:u"}},
			{at: ms(1), op: "add", rec: "a"},
			{at: ms(2), op: "add", rec: "b"},
			{at: ms(3), op: "add", rec: "c", flush: true, want: []string{"trigger:a,b,c"}},
		}},
		{"order: bytes before count and trigger", with(func(c *Config) { c.Size = 2; c.MaxBytes = 61 + 57 + 20 }), []step{
			{at: 0, op: "add", rec: "a", pad: 50},
			{at: 0, op: "add", rec: "b", pad: 50, flush: true, want: []string{"bytes:a", "trigger:b"}},
			{at: 0, op: "add", rec: "c", pad: 50},
			{at: 0, op: "add", rec: "d", pad: 5, want: []string{"size:c,d"}}, // 61+57+13 fits
		}},
		// A batch opens at or after the last cut and min_delay <= max_wait,
		// so the two deadlines meet at most; max_wait names the release.
		{"max_wait wins over min_delay when both are due", with(func(c *Config) { c.Size = 2; c.MinDelay = ms(300); c.MaxWait = ms(300) }), []step{
			{at: 0, op: "add", rec: "u"},
			{at: 0, op: "add", rec: "v", want: []string{"size:u,v"}},
			{at: 0, op: "add", rec: "a"},
			{at: ms(150), op: "add", rec: "b", deadline: "300ms"},
			{at: ms(299), op: "tick"},
			{at: ms(300), op: "tick", want: []string{"max_wait:a,b"}},
		}},
		// An Add reads its clock before it locks the accumulator, so a
		// timer's cut may carry a later time than the records after it.
		{"max_wait wins over min_delay when an add's clock predates the last cut", with(func(c *Config) { c.Size = 2; c.MinDelay = ms(300); c.MaxWait = ms(300) }), []step{
			{at: ms(10), op: "add", rec: "u", flush: true, want: []string{"trigger:u"}},
			{at: ms(5), op: "add", rec: "a"},
			{at: ms(5), op: "add", rec: "b", deadline: "305ms"}, // min_delay would be 310ms
			{at: ms(305), op: "tick", want: []string{"max_wait:a,b"}},
			// The earlier clock did not move the last send back: it began at 305ms.
			{at: ms(306), op: "add", rec: "c"},
			{at: ms(306), op: "add", rec: "d", deadline: "605ms"},
		}},
		{"oversize record is rejected and the next record still gets a timer",
			with(func(c *Config) { c.MaxMessageBytes = 200; c.MaxBytes = 200; c.MaxWait = ms(50) }), []step{
				{at: 0, op: "add", rec: "big", pad: 500, rejected: true, deadline: "none"},
				{at: ms(10), op: "add", rec: "a", deadline: "60ms"},
				{at: ms(60), op: "tick", want: []string{"max_wait:a"}},
			}},
		{"oversize limit is inclusive", with(func(c *Config) { c.MaxMessageBytes = 61 + 57; c.MaxBytes = 61 + 57 }), []step{
			{at: 0, op: "add", rec: "a", pad: 51, rejected: true},
			{at: 0, op: "add", rec: "b", pad: 50, deadline: "1s"},
		}},
		{"oversize record between pending records: the batch is untouched", with(func(c *Config) { c.MaxMessageBytes = 300; c.MaxBytes = 300 }), []step{
			{at: 0, op: "add", rec: "a"},
			{at: 0, op: "add", rec: "big", pad: 1000, rejected: true},
			{at: 0, op: "add", rec: "b"},
			{at: 0, op: "flush", want: []string{"shutdown:a,b"}},
		}},
		{"record above max_bytes but within max_message_bytes goes alone",
			with(func(c *Config) { c.MaxBytes = 61 + 57; c.MaxMessageBytes = 1000 }), []step{
				{at: 0, op: "add", rec: "a", pad: 10},
				{at: 0, op: "add", rec: "big", pad: 300, want: []string{"bytes:a", "bytes:big"}, deadline: "none"},
			}},
		{"an overdue batch is released before a new record joins it", with(func(c *Config) { c.MaxWait = ms(50) }), []step{
			{at: 0, op: "add", rec: "a"},
			{at: ms(70), op: "add", rec: "b", want: []string{"max_wait:a"}, deadline: "120ms"},
		}},
		{"cut: memory releases what is pending and the next record opens a batch", with(func(c *Config) { c.MaxWait = ms(50) }), []step{
			{at: 0, op: "memory"},
			{at: 0, op: "add", rec: "a"},
			{at: ms(10), op: "add", rec: "b", deadline: "50ms"},
			{at: ms(20), op: "memory", want: []string{"memory:a,b"}, deadline: "none"},
			{at: ms(20), op: "memory"},
			{at: ms(30), op: "add", rec: "c", deadline: "80ms"},
			{at: ms(80), op: "tick", want: []string{"max_wait:c"}},
		}},
		{"cut: an overdue batch keeps its max_wait reason", with(func(c *Config) { c.MaxWait = ms(50) }), []step{
			{at: 0, op: "add", rec: "a"},
			{at: ms(60), op: "memory", want: []string{"max_wait:a"}, deadline: "none"},
		}},
		{"cut: a full batch held by min_delay past its deadline keeps min_delay", with(func(c *Config) { c.Size = 2; c.MinDelay = ms(100) }), []step{
			{at: 0, op: "add", rec: "u", flush: true, want: []string{"trigger:u"}},
			{at: ms(1), op: "add", rec: "a"},
			{at: ms(2), op: "add", rec: "b", deadline: "100ms"},
			{at: ms(100), op: "memory", want: []string{"min_delay:a,b"}},
		}},
		{"cut: a full batch held by min_delay before its deadline goes as memory", with(func(c *Config) { c.Size = 2; c.MinDelay = ms(100) }), []step{
			{at: 0, op: "add", rec: "u", flush: true, want: []string{"trigger:u"}},
			{at: ms(1), op: "add", rec: "a"},
			{at: ms(2), op: "add", rec: "b"},
			{at: ms(50), op: "memory", want: []string{"memory:a,b"}, deadline: "none"},
		}},
		{"cut soon: a call releases what is pending at once", with(func(c *Config) { c.MaxWait = ms(50) }), []step{
			{at: 0, op: "call"},
			{at: 0, op: "add", rec: "a"},
			{at: ms(10), op: "add", rec: "b", deadline: "50ms"},
			{at: ms(10), op: "call", want: []string{"call:a,b"}, deadline: "none"},
			{at: ms(20), op: "add", rec: "c", deadline: "70ms"},
		}},
		{"cut soon: min_delay holds a call's batch until its deadline", with(func(c *Config) { c.MinDelay = ms(100); c.MaxWait = ms(500) }), []step{
			{at: 0, op: "add", rec: "u", flush: true, want: []string{"trigger:u"}},
			{at: ms(10), op: "add", rec: "a", deadline: "510ms"},
			{at: ms(10), op: "call", deadline: "100ms"},
			{at: ms(20), op: "add", rec: "b", deadline: "100ms"},
			{at: ms(99), op: "tick"},
			{at: ms(100), op: "tick", want: []string{"min_delay:a,b"}, deadline: "none"},
			{at: ms(110), op: "add", rec: "c", deadline: "610ms"},
		}},
		{"cut soon: held by min_delay, a later record past the deadline is not joined", with(func(c *Config) { c.MinDelay = ms(100); c.MaxWait = ms(500) }), []step{
			{at: 0, op: "add", rec: "u", flush: true, want: []string{"trigger:u"}},
			{at: ms(10), op: "add", rec: "a"},
			{at: ms(10), op: "call"},
			{at: ms(150), op: "add", rec: "b", want: []string{"min_delay:a"}, deadline: "650ms"},
			// a's send began at 150ms, when it was released: b waits for it.
			{at: ms(150), op: "call", deadline: "250ms"},
			{at: ms(250), op: "tick", want: []string{"min_delay:b"}, deadline: "none"},
		}},
		{"cut soon: without min_delay an earlier send does not hold the call back", with(func(c *Config) { c.MaxWait = ms(500) }), []step{
			{at: 0, op: "add", rec: "u", flush: true, want: []string{"trigger:u"}},
			{at: ms(1), op: "add", rec: "a"},
			{at: ms(1), op: "call", want: []string{"call:a"}},
		}},
		{"flush: shutdown returns what is pending", testConfig(), []step{
			{at: 0, op: "flush"},
			{at: 0, op: "add", rec: "a"},
			{at: 0, op: "add", rec: "b"},
			{at: 0, op: "flush", want: []string{"shutdown:a,b"}, deadline: "none"},
			{at: 0, op: "flush"},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { runSteps(t, c.cfg, c.steps) })
	}
}

// Every cut is the start of a send, whatever released it, and min_delay
// counts from it: acknowledgements play no part.
func TestAccumulatorMinDelayCountsFromEveryCut(t *testing.T) {
	cfg := testConfig()
	cfg.Size, cfg.MinDelay, cfg.MaxWait = 3, ms(100), ms(200)
	cfg.MaxBytes, cfg.MaxMessageBytes = 61+3*57, 1000
	// Each prefix cuts one batch, with its reason, at 200ms.
	prefixes := map[string][]step{
		"size": {
			{at: ms(200), op: "add", rec: "a"},
			{at: ms(200), op: "add", rec: "b"},
			{at: ms(200), op: "add", rec: "c", want: []string{"size:a,b,c"}},
		},
		"bytes": {{at: ms(200), op: "add", rec: "big", pad: 300, want: []string{"bytes:big"}}},
		"trigger": {
			{at: ms(200), op: "add", rec: "a"},
			{at: ms(200), op: "add", rec: "b", flush: true, want: []string{"trigger:a,b"}},
		},
		"max_wait": {
			{at: 0, op: "add", rec: "a"},
			{at: ms(200), op: "tick", want: []string{"max_wait:a"}},
		},
		"min_delay": {
			{at: ms(100), op: "add", rec: "u", flush: true, want: []string{"trigger:u"}},
			{at: ms(150), op: "add", rec: "a"},
			{at: ms(150), op: "add", rec: "b"},
			{at: ms(150), op: "add", rec: "c", deadline: "200ms"},
			{at: ms(200), op: "tick", want: []string{"min_delay:a,b,c"}},
		},
		"memory": {
			{at: ms(150), op: "add", rec: "a"},
			{at: ms(200), op: "memory", want: []string{"memory:a"}},
		},
		"call": {
			{at: ms(150), op: "add", rec: "a"},
			{at: ms(200), op: "call", want: []string{"call:a"}},
		},
	}
	for reason, prefix := range prefixes {
		t.Run(reason, func(t *testing.T) {
			steps := append(prefix[:len(prefix):len(prefix)],
				step{at: ms(210), op: "add", rec: "p"},
				step{at: ms(220), op: "add", rec: "q"},
				step{at: ms(230), op: "add", rec: "r", deadline: "300ms"}, // full, held
				step{at: ms(240), op: "call", deadline: "300ms"},
				step{at: ms(299), op: "tick"},
				step{at: ms(300), op: "tick", want: []string{"min_delay:p,q,r"}},
			)
			runSteps(t, cfg, steps)
		})
	}
}

// Issue 19's scenario: batch.size 10, min_delay 1s, max_wait 5s; 10 records,
// then 25 more 100 ms later while the first batch is still unacknowledged.
// The first 10 go at once; the 25 wait for min_delay and go as one batch,
// not as [10, 10, 5].
func TestAccumulatorMinDelayHoldsWhileFirstBatchInFlight(t *testing.T) {
	cfg := testConfig()
	cfg.Size, cfg.MinDelay, cfg.MaxWait = 10, time.Second, 5*time.Second
	a := NewAccumulator(cfg, "t", 0)
	var out []message.Batch
	add := func(n int, at time.Duration) {
		for i := range n {
			m := rec(fmt.Sprintf("r%d", i), 0)
			out, _ = a.Add(&m, t0.Add(at), out)
		}
	}
	add(10, 0)
	if len(out) != 1 || out[0].Reason != message.ReasonSize || len(out[0].Messages) != 10 {
		t.Fatalf("after the first 10 records: %d batches, want one size batch of 10", len(out))
	}
	add(25, ms(100))
	if len(out) != 1 {
		t.Fatalf("min_delay released %d more batches before its deadline", len(out)-1)
	}
	if got := a.Deadline().Sub(t0); got != time.Second {
		t.Fatalf("Deadline = %v, want 1s (min_delay after the first cut)", got)
	}
	out = a.Tick(t0.Add(time.Second-1), out)
	out = a.Tick(t0.Add(time.Second), out)
	var sizes []int
	for _, b := range out {
		checkBatch(t, cfg, b)
		sizes = append(sizes, len(b.Messages))
	}
	if fmt.Sprint(sizes) != "[10 25]" || out[1].Reason != message.ReasonMinDelay {
		t.Fatalf("batches %v (last reason %s), want [10 25], the last by min_delay", sizes, out[len(out)-1].Reason)
	}
}

// RecordBytes is the sum of the pending records' sizes alone, the unit the
// pool counts against max_pending_bytes, whatever cut the batch before.
func TestAccumulatorRecordBytes(t *testing.T) {
	cfg := testConfig()
	cfg.Size = 3
	cfg.MaxBytes = 61 + 2*57
	a := NewAccumulator(cfg, "t", 0)
	alone := func(ms ...message.Message) int {
		n := 0
		for i := range ms {
			n += recordBytes(&ms[i])
		}
		return n
	}
	x, y, z := rec("a", 50), rec("b", 50), rec("c", 10)
	z.Timestamp = t0.Add(time.Hour) // a delta: z's size in the batch differs from alone
	var out []message.Batch
	for i, c := range []struct {
		m    message.Message
		want int
	}{{x, alone(x)}, {y, alone(x, y)}, {z, alone(z)}} { // z does not fit: bytes cuts x,y
		out, _ = a.Add(&c.m, t0, out)
		if got := a.RecordBytes(); got != c.want {
			t.Fatalf("after record %d: RecordBytes = %d, want %d", i, got, c.want)
		}
	}
	if len(out) != 1 || describe(out[0]) != "bytes:a,b" {
		t.Fatalf("ready %d batches (want bytes:a,b)", len(out))
	}
	if a.Bytes() == a.RecordBytes() {
		t.Fatalf("Bytes %d counts the batch header, RecordBytes must not", a.Bytes())
	}
	out = a.Cut(t0, message.ReasonMemory, out[:0])
	if a.RecordBytes() != 0 || a.Bytes() != 0 || len(out) != 1 {
		t.Fatalf("after Cut: RecordBytes %d, Bytes %d, %d batches", a.RecordBytes(), a.Bytes(), len(out))
	}
}

// The original library's max_batch_bytesize scenario with Kafka record
// sizes: every batch stays within 400 bytes, and every cut was needed.
func TestAccumulatorMaxBytes400(t *testing.T) {
	cfg := testConfig()
	cfg.MaxBytes = 400
	cfg.Size = 1000
	a := NewAccumulator(cfg, "t", 0)
	var got []message.Batch
	var all []string
	for i := 0; i < 60; i++ {
		m := rec(fmt.Sprintf("r%d", i), 10+(i*37)%140)
		m.Key = []byte(fmt.Sprintf("k%d", i%7))
		m.Headers = []message.Header{{Key: "h", Value: []byte("v")}}
		m.Timestamp = t0.Add(ms(i * 3))
		all = append(all, name(m))
		got, _ = a.Add(&m, t0.Add(ms(i)), got)
	}
	got = a.Drain(got)
	var seen []string
	for i, b := range got {
		checkBatch(t, cfg, b)
		if b.Bytes > 400 {
			t.Fatalf("batch %d has %d bytes", i, b.Bytes)
		}
		if i < len(got)-1 {
			if b.Reason != message.ReasonBytes {
				t.Fatalf("batch %d reason %s, want bytes", i, b.Reason)
			}
			next := append(append([]message.Message(nil), b.Messages...), got[i+1].Messages[0])
			if message.BatchSize(next) <= 400 {
				t.Fatalf("batch %d was cut although the next record fits", i)
			}
		}
		for _, m := range b.Messages {
			seen = append(seen, name(m))
		}
	}
	if len(got) < 5 {
		t.Fatalf("only %d batches; the scenario should cut several", len(got))
	}
	if fmt.Sprint(seen) != fmt.Sprint(all) {
		t.Fatalf("records out of order or lost:\n got %v\nwant %v", seen, all)
	}
}

func TestConfigValidate(t *testing.T) {
	good := testConfig()
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		field string
		f     func(*Config)
	}{
		// Errors name the config key (batch.*), not the Go field.
		{"batch.size", func(c *Config) { c.Size = 0 }},
		{"batch.max_bytes", func(c *Config) { c.MaxMessageBytes = 61 }}, // MaxBytes > MaxMessageBytes
		{"producer.max_message_bytes", func(c *Config) { c.MaxMessageBytes = 0 }},
		{"batch.max_bytes", func(c *Config) { c.MaxBytes = 10 }},
		{"batch.max_bytes", func(c *Config) { c.MaxBytes = c.MaxMessageBytes + 1 }},
		{"batch.max_wait", func(c *Config) { c.MaxWait = 0 }},
		{"batch.min_delay", func(c *Config) { c.MinDelay = -1 }},
		{"batch.min_delay", func(c *Config) { c.MinDelay = c.MaxWait + 1 }},
		{"max_pending_bytes", func(c *Config) { c.MaxPendingBytes = -1 }},
	}
	for _, b := range bad {
		c := testConfig()
		b.f(&c)
		err := c.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), b.field+":") {
			t.Errorf("%s: Validate() = %v", b.field, err)
		}
	}
}
