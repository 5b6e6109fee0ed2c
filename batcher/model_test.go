package batcher

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
	"unsafe"

	"github.com/kafkabatcher/kafkabatcherexporter/internal/fakeclock"
	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// The model test drives a Pool on a fake clock with a sequence of adds,
// clock moves and releases decoded from bytes (random in TestPoolModel,
// fuzzed in FuzzPool), and checks after every step:
//   - no record lost or handed off twice, order kept per partition;
//   - every batch: Bytes == message.BatchSize(Messages) <= MaxBytes (a lone
//     record above MaxBytes but within MaxMessageBytes excepted);
//   - no batch handed off after its max_wait deadline, none held by
//     min_delay after the min_delay deadline, none released by size (or by
//     a call) before min_delay allowed it; each flush reason's condition
//     held. min_delay counts from the accumulator's previous cut, whatever
//     its reason: a send begins when its batch is handed off, and the model
//     acknowledges nothing;
//   - exactly the oversize records rejected; the memory count is exact;
//     Add fails only when the bound is reached, and then accepts nothing;
//   - with CutEachAdd: after an Add, the accumulators it touched hold
//     nothing, unless min_delay holds them back, and then only until the
//     min_delay deadline; reason call only during an Add;
//   - the memory rule: an Add that does not fit, made while the
//     accumulators hold more than half of the pending bytes, releases
//     pending batches (reason memory) oldest first, each while the
//     accumulators still hold more than a quarter of the bytes pending, and
//     leaves them at most a quarter; no memory batch otherwise.
//
// The model's Adds never wait: their context is canceled, so an Add that
// does not fit fails once it has queued (and applied the memory rule).
// Waiting, and admission once a release frees room, are covered by the
// pool tests.

// byteReader yields bytes of the fuzz input, zeros once it is used up.
type byteReader struct {
	b []byte
	i int
}

func (r *byteReader) next() byte {
	if r.i >= len(r.b) {
		r.i++
		return 0
	}
	r.i++
	return r.b[r.i-1]
}

func (r *byteReader) done() bool { return r.i >= len(r.b) }

type accKey struct {
	topic     string
	partition int32 // -1: topic-wide
}

type partKey struct {
	topic     string
	partition int32
}

type model struct {
	t   testing.TB
	cfg Config
	clk *fakeclock.Clock
	p   *Pool

	nextID   uint64
	msgs     map[uint64]message.Message // every record added, by id
	arrival  map[uint64]time.Time
	accOf    map[uint64]accKey
	expected map[partKey][]uint64 // accepted records per partition, in order
	handed   map[partKey]int      // how many of expected were handed off
	pending  map[accKey][]uint64  // accepted, not yet handed off, in order
	lastCut  map[accKey]cutMark   // the accumulator's latest cut: its last send began
	prevCut  map[accKey]time.Time // the cut before lastCut

	wantRejected map[uint64]bool
	rejected     map[uint64]bool

	unreleased []message.Batch
	released   int
	used       int64
	records    int64

	memory *memoryPass // set during an Add the memory rule applies to
	stats  modelStats

	inAdd bool            // Pool.Add is running
	soon  map[accKey]bool // cut by CutEachAdd but held back by min_delay
}

// cutMark tells the cuts of an accumulator apart: the parts of a topic-wide
// batch split by partition share all three.
type cutMark struct {
	at, opened time.Time
	reason     message.FlushReason
}

// memoryPass is what the model expects of one application of the memory rule.
type memoryPass struct {
	target int64           // a quarter of the pending bytes
	cut    map[accKey]bool // accumulators released so far
}

func decodeConfig(r *byteReader) Config {
	cfg := Config{
		Size:     1 + int(r.next()%12),
		MaxBytes: 150 + int(r.next())*8,
		MaxWait:  time.Duration(10+int(r.next()%100)) * time.Millisecond,
	}
	b := r.next()
	cfg.CollectByPartition = b&1 == 0
	cfg.CutEachAdd = b&6 == 6
	cfg.MaxMessageBytes = cfg.MaxBytes + int(r.next()%4)*200
	if b := r.next(); b%3 != 0 {
		cfg.MinDelay = time.Duration(int64(b)%int64(cfg.MaxWait/time.Millisecond+1)) * time.Millisecond
	}
	if b := r.next(); b%2 == 0 {
		cfg.MaxPendingBytes = 500 + int64(b)*40
	}
	return cfg
}

// modelStats counts what a run exercised, so that TestPoolModel can insist
// the rules were reached, not only left unbroken.
type modelStats struct {
	memory int // batches cut by the memory rule
	call   int // batches cut by CutEachAdd
	held   int // min_delay batches a call's cut was held back for
}

func (s *modelStats) add(o modelStats) {
	s.memory, s.call, s.held = s.memory+o.memory, s.call+o.call, s.held+o.held
}

// runModel runs one input and returns what it exercised.
func runModel(t testing.TB, data []byte) modelStats {
	r := &byteReader{b: data}
	cfg := decodeConfig(r)
	clk := fakeclock.New(t0)
	m := &model{
		t: t, cfg: cfg, clk: clk,
		msgs: map[uint64]message.Message{}, arrival: map[uint64]time.Time{}, accOf: map[uint64]accKey{},
		expected: map[partKey][]uint64{}, handed: map[partKey]int{}, pending: map[accKey][]uint64{},
		lastCut: map[accKey]cutMark{}, prevCut: map[accKey]time.Time{}, wantRejected: map[uint64]bool{}, rejected: map[uint64]bool{},
		soon: map[accKey]bool{},
	}
	p, err := NewPool(cfg, clk, m)
	if err != nil {
		t.Fatalf("config %+v: %v", cfg, err)
	}
	m.p = p
	canceled, cancel := context.WithCancel(context.Background())
	cancel() // Add must never block here: it either fits or fails at once

	for steps := 0; !r.done() && steps < 400; steps++ {
		switch op := r.next() % 8; {
		case op < 4:
			m.add(r, canceled)
		case op < 6:
			clk.Advance(time.Duration(r.next()) * time.Millisecond)
		case op == 6: // a short move, around min_delay deadlines
			clk.Advance(time.Duration(r.next()%16) * time.Millisecond)
		default:
			b := r.next()
			if len(m.unreleased) > 0 {
				i := int(b) % len(m.unreleased)
				bt := m.unreleased[i]
				m.unreleased = append(m.unreleased[:i], m.unreleased[i+1:]...)
				m.release(bt, b&1 == 1)
			}
		}
		m.checkState()
	}

	// Shutdown: either let every timer run first or flush at once.
	if len(data)%2 == 0 {
		clk.Advance(cfg.MaxWait)
		m.checkState()
		for k, ids := range m.pending {
			if len(ids) > 0 {
				t.Fatalf("%v: %d records still pending after max_wait", k, len(ids))
			}
		}
	}
	for _, b := range p.Shutdown(context.Background()) {
		if b.Reason != message.ReasonShutdown {
			t.Fatalf("Shutdown returned a batch with reason %s", b.Reason)
		}
		m.handoff(b)
		m.unreleased = append(m.unreleased, b)
	}
	if clk.Pending() != 0 {
		t.Fatalf("%d timers armed after Shutdown", clk.Pending())
	}
	for k, ids := range m.expected {
		if m.handed[k] != len(ids) {
			t.Fatalf("%v: %d of %d accepted records handed off", k, m.handed[k], len(ids))
		}
	}
	if len(m.rejected) != len(m.wantRejected) {
		t.Fatalf("%d records rejected, want %d", len(m.rejected), len(m.wantRejected))
	}
	for _, b := range m.unreleased {
		m.release(b, true)
	}
	if p.PendingBytes() != 0 || p.PendingRecords() != 0 {
		t.Fatalf("after releasing everything: %d bytes, %d records pending", p.PendingBytes(), p.PendingRecords())
	}
	return m.stats
}

func (m *model) key(topic string, part int32) accKey {
	if m.cfg.CollectByPartition {
		return accKey{topic, part}
	}
	return accKey{topic, -1}
}

func (m *model) add(r *byteReader, ctx context.Context) {
	n := 1 + int(r.next()%4)
	now := m.clk.Now()
	var msgs []message.Message
	var need, count int64
	for i := 0; i < n; i++ {
		b := r.next()
		topic := []string{"a", "b"}[b&1]
		part := int32(b>>1) % 6
		size := int(r.next())
		switch {
		case size >= 250: // oversize
			size = m.cfg.MaxMessageBytes
		case size >= 240: // above max_bytes, maybe within max_message_bytes
			size = m.cfg.MaxBytes - 40 + (size-240)*30
		default:
			size %= 120
		}
		f := r.next()
		id := m.nextID
		m.nextID++
		val := make([]byte, 8+size)
		binary.BigEndian.PutUint64(val, id)
		msg := message.Message{
			Topic: topic, Partition: part, Value: val, Trigger: f%16 == 0,
			Timestamp: now.Add(time.Duration(int8(r.next())) * 10 * time.Millisecond),
		}
		if f%5 == 0 {
			msg.Key = val[:1+f%7]
		}
		m.msgs[id] = msg
		msgs = append(msgs, msg)
		if rs := message.RecordSize(&msg, 0, msg.Timestamp); message.BatchHeaderBytes+rs > m.cfg.MaxMessageBytes {
			m.wantRejected[id] = true
		} else {
			need += modelBytes(&msg)
			count++
		}
	}
	fits := m.cfg.MaxPendingBytes == 0 || m.used == 0 || m.used+need <= m.cfg.MaxPendingBytes
	touched := map[accKey]bool{}
	if fits {
		for i := range msgs {
			id := binary.BigEndian.Uint64(msgs[i].Value)
			if m.wantRejected[id] {
				continue
			}
			k := partKey{msgs[i].Topic, msgs[i].Partition}
			m.expected[k] = append(m.expected[k], id)
			ak := m.key(msgs[i].Topic, msgs[i].Partition)
			touched[ak] = true
			m.pending[ak] = append(m.pending[ak], id)
			m.arrival[id] = now
			m.accOf[id] = ak
		}
		m.used += need
		m.records += count
	} else {
		for i := range msgs {
			delete(m.wantRejected, binary.BigEndian.Uint64(msgs[i].Value))
		}
	}
	if !fits && 2*m.held() > m.used {
		m.memory = &memoryPass{target: m.used / 4, cut: map[accKey]bool{}}
	}
	m.inAdd = true
	err := m.p.Add(ctx, msgs)
	m.inAdd = false
	if m.cfg.CutEachAdd && err == nil {
		for ak := range touched {
			if len(m.pending[ak]) == 0 {
				continue
			}
			last, sent := m.lastCut[ak]
			if !sent || !now.Before(last.at.Add(m.cfg.MinDelay)) {
				m.t.Fatalf("%v: %d records pending after an Add with CutEachAdd, min_delay not holding them (last cut %v, %v)", ak, len(m.pending[ak]), last.at.Sub(t0), sent)
			}
			m.soon[ak] = true
		}
	}
	if mp := m.memory; mp != nil {
		m.memory = nil
		if held := m.held(); held > mp.target {
			m.t.Fatalf("memory rule left %d bytes in accumulators, want at most %d (%d pending)", held, mp.target, m.used)
		}
		for ak := range mp.cut {
			if len(m.pending[ak]) > 0 {
				m.t.Fatalf("%v: memory batch left %d records pending", ak, len(m.pending[ak]))
			}
		}
	}
	switch {
	case fits && err != nil:
		m.t.Fatalf("Add with room: %v", err)
	case !fits && (!errors.Is(err, ErrMemoryLimit) || !errors.Is(err, context.Canceled)):
		m.t.Fatalf("Add over the bound (%d used + %d > %d) = %v", m.used, need, m.cfg.MaxPendingBytes, err)
	}
}

// modelBytes is what the model counts for a pending record: its encoded
// size alone (the oversize rule's size) plus its Message and Header structs.
func modelBytes(msg *message.Message) int64 {
	return int64(message.RecordSize(msg, 0, msg.Timestamp)) +
		int64(unsafe.Sizeof(*msg)) + int64(len(msg.Headers))*int64(unsafe.Sizeof(message.Header{}))
}

func (m *model) release(b message.Batch, recycle bool) {
	for i := range b.Messages {
		m.used -= modelBytes(&b.Messages[i])
	}
	m.records -= int64(len(b.Messages))
	m.p.Release(b)
	if recycle {
		m.p.Recycle(b.Messages)
	}
	m.released++
}

// Ready is the pool's sink: the handed-off batch is checked against the model.
func (m *model) Ready(b message.Batch) {
	m.handoff(b)
	m.unreleased = append(m.unreleased, b)
}

func (m *model) Reject(msg message.Message, reason message.RejectReason) {
	id := binary.BigEndian.Uint64(msg.Value)
	if !m.wantRejected[id] || m.rejected[id] || reason != message.RejectOversize {
		m.t.Fatalf("rejected record %d (%s): expected %v, already %v", id, reason, m.wantRejected[id], m.rejected[id])
	}
	m.rejected[id] = true
}

func (m *model) handoff(b message.Batch) {
	t := m.t
	now := m.clk.Now()
	cfg := m.cfg
	if len(b.Messages) == 0 {
		t.Fatal("empty batch")
	}
	if got := message.BatchSize(b.Messages); got != b.Bytes {
		t.Fatalf("batch Bytes %d, BatchSize %d", b.Bytes, got)
	}
	if b.Bytes > cfg.MaxBytes && (len(b.Messages) > 1 || b.Bytes > cfg.MaxMessageBytes) {
		t.Fatalf("batch of %d records, %d bytes: max_bytes %d, max_message_bytes %d", len(b.Messages), b.Bytes, cfg.MaxBytes, cfg.MaxMessageBytes)
	}
	pk := partKey{b.Topic, b.Partition}
	exp := m.expected[pk]
	h := m.handed[pk]
	ids := make([]uint64, len(b.Messages))
	for i := range b.Messages {
		msg := &b.Messages[i]
		id := binary.BigEndian.Uint64(msg.Value)
		ids[i] = id
		if msg.Topic != b.Topic || msg.Partition != b.Partition {
			t.Fatalf("record %d of %s/%d in batch %s/%d", id, msg.Topic, msg.Partition, b.Topic, b.Partition)
		}
		if h+i >= len(exp) || exp[h+i] != id {
			t.Fatalf("%v: record %d handed off at position %d, want %v", pk, id, h+i, exp[h:min(len(exp), h+len(b.Messages))])
		}
	}
	m.handed[pk] = h + len(ids)
	ak := m.accOf[ids[0]]
	if b.Reason == message.ReasonMemory {
		m.stats.memory++
		m.checkMemoryCut(ak)
	}
	firstArrival := m.arrival[ids[0]]
	pend := m.pending[ak]
	for _, id := range pend {
		firstArrival = minTime(firstArrival, m.arrival[id]) // the accumulator's oldest record
		break
	}
	// Drop the handed-off records from the accumulator's pending list.
	gone := map[uint64]bool{}
	for _, id := range ids {
		gone[id] = true
	}
	kept := pend[:0]
	for _, id := range pend {
		if !gone[id] {
			kept = append(kept, id)
		}
	}
	m.pending[ak] = kept
	soon := m.soon[ak]
	delete(m.soon, ak) // a cut releases what the call left held

	if b.Reason != message.ReasonShutdown && now.After(firstArrival.Add(cfg.MaxWait)) {
		t.Fatalf("%v: batch (%s) handed off at %v, first record arrived %v, max_wait %v", pk, b.Reason, now.Sub(t0), firstArrival.Sub(t0), cfg.MaxWait)
	}
	byPart := cfg.CollectByPartition
	// min_delay is checked against the cut before this batch's.
	mark := cutMark{at: now, opened: b.Opened, reason: b.Reason}
	if cur, ok := m.lastCut[ak]; !ok || byPart || cur != mark {
		if ok {
			m.prevCut[ak] = cur.at
		}
		m.lastCut[ak] = mark
	}
	last, sent := m.prevCut[ak]
	switch b.Reason {
	case message.ReasonMaxWait:
		if byPart && !now.Equal(m.arrival[ids[0]].Add(cfg.MaxWait)) {
			t.Fatalf("max_wait batch at %v, first arrived %v", now.Sub(t0), m.arrival[ids[0]].Sub(t0))
		}
	case message.ReasonMinDelay:
		if !sent || !now.Equal(last.Add(cfg.MinDelay)) {
			t.Fatalf("min_delay batch at %v, previous cut %v (%v)", now.Sub(t0), last.Sub(t0), sent)
		}
		if soon {
			m.stats.held++
		}
		if byPart && len(ids) < cfg.Size && !soon {
			t.Fatalf("min_delay batch of %d records, size %d, not held back from a call's cut", len(ids), cfg.Size)
		}
	case message.ReasonSize:
		if sent && now.Sub(last) < cfg.MinDelay {
			t.Fatalf("size batch at %v only %v after the previous cut (min_delay %v)", now.Sub(t0), now.Sub(last), cfg.MinDelay)
		}
		if byPart && len(ids) != cfg.Size {
			t.Fatalf("size batch of %d records, size %d", len(ids), cfg.Size)
		}
	case message.ReasonTrigger:
		if byPart && !b.Messages[len(b.Messages)-1].Trigger {
			t.Fatal("trigger batch does not end with the flush record")
		}
	case message.ReasonBytes:
		if byPart && (len(ids) != 1 || b.Bytes <= cfg.MaxBytes) { // not a lone oversize record
			next := m.handed[pk]
			if next >= len(exp) {
				t.Fatalf("bytes batch with no record after it")
			}
			with := append(append([]message.Message(nil), b.Messages...), m.msgs[exp[next]])
			if message.BatchSize(with) <= cfg.MaxBytes {
				t.Fatalf("bytes batch of %d bytes cut although the next record fits", b.Bytes)
			}
		}
	case message.ReasonCall:
		m.stats.call++
		if !cfg.CutEachAdd || !m.inAdd {
			t.Fatalf("call batch outside an Add with CutEachAdd (%v)", cfg.CutEachAdd)
		}
		if sent && now.Sub(last) < cfg.MinDelay {
			t.Fatalf("call batch at %v only %v after the previous cut (min_delay %v)", now.Sub(t0), now.Sub(last), cfg.MinDelay)
		}
	case message.ReasonShutdown, message.ReasonMemory: // checked above
	default:
		t.Fatalf("batch with reason %v", b.Reason)
	}
}

// checkState asserts nothing pending is overdue and the memory count.
func (m *model) checkState() {
	now := m.clk.Now()
	for k, ids := range m.pending {
		if len(ids) == 0 {
			continue
		}
		if first := m.arrival[ids[0]]; !now.Before(first.Add(m.cfg.MaxWait)) {
			m.t.Fatalf("%v: %d records pending at %v, first arrived %v (max_wait %v)", k, len(ids), now.Sub(t0), first.Sub(t0), m.cfg.MaxWait)
		}
		if m.soon[k] {
			if last, sent := m.lastCut[k]; !sent || !now.Before(last.at.Add(m.cfg.MinDelay)) {
				m.t.Fatalf("%v: %d records a call left held at %v, last cut %v (%v), min_delay %v", k, len(ids), now.Sub(t0), last.at.Sub(t0), sent, m.cfg.MinDelay)
			}
		}
		if len(ids) >= m.cfg.Size {
			last, sent := m.lastCut[k]
			if !sent || !now.Before(last.at.Add(m.cfg.MinDelay)) {
				m.t.Fatalf("%v: %d records (size %d) held at %v, last cut %v (%v), min_delay %v", k, len(ids), m.cfg.Size, now.Sub(t0), last.at.Sub(t0), sent, m.cfg.MinDelay)
			}
		}
	}
	if got, want := m.p.held.Load(), m.held(); got != want {
		m.t.Fatalf("pool counts %d bytes in accumulators, model %d", got, want)
	}
	if got := m.p.PendingBytes(); got != m.used {
		m.t.Fatalf("PendingBytes = %d, model %d", got, m.used)
	}
	if got := m.p.PendingRecords(); got != m.records {
		m.t.Fatalf("PendingRecords = %d, model %d", got, m.records)
	}
}

// held is the record bytes of the records in accumulators.
func (m *model) held() int64 {
	var n int64
	for _, ids := range m.pending {
		for _, id := range ids {
			msg := m.msgs[id]
			n += int64(recordBytes(&msg))
		}
	}
	return n
}

// checkMemoryCut checks a memory batch of accumulator ak before its records
// leave the model's pending lists: the rule is being applied, the
// accumulators still hold more than its target, and no other accumulator
// holds an older record. The parts of a topic-wide batch are checked once.
func (m *model) checkMemoryCut(ak accKey) {
	mp := m.memory
	if mp == nil {
		m.t.Fatalf("%v: memory batch outside an Add the memory rule applies to", ak)
	}
	if mp.cut[ak] {
		return
	}
	mp.cut[ak] = true
	if held := m.held(); held <= mp.target {
		m.t.Fatalf("%v: memory batch with %d bytes in accumulators, target %d already met", ak, held, mp.target)
	}
	first := m.arrival[m.pending[ak][0]]
	for k, ids := range m.pending {
		if len(ids) > 0 && m.arrival[ids[0]].Before(first) {
			m.t.Fatalf("%v (opened %v) released by memory before %v (opened %v)", ak, first.Sub(t0), k, m.arrival[ids[0]].Sub(t0))
		}
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func TestPoolModel(t *testing.T) {
	n := 3000
	if testing.Short() {
		n = 300
	}
	rng := rand.New(rand.NewPCG(2024, 11))
	var st modelStats
	for i := 0; i < n; i++ {
		data := make([]byte, 7+rng.IntN(1500))
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		ok := t.Run(fmt.Sprint(i), func(t *testing.T) { st.add(runModel(t, data)) })
		if !ok {
			t.Fatalf("failing input: %x", data)
		}
	}
	// The inputs must exercise the memory rule, not only leave it unbroken.
	if st.memory < n/20 || st.call < n/20 || st.held < n/100 {
		t.Fatalf("%+v batches in %d runs: the inputs hardly reach the memory or call rules", st, n)
	}
	t.Logf("in %d runs: %+v", n, st)
}

func FuzzPool(f *testing.F) {
	rng := rand.New(rand.NewPCG(7, 7))
	for i := 0; i < 20; i++ {
		data := make([]byte, 7+rng.IntN(600))
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) { runModel(t, data) })
}
