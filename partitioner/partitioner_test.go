package partitioner

import (
	"crypto/md5"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/IBM/sarama"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// Vectors of Kafka's own UtilsTest.testMurmur2 (Java's Utils.murmur2).
var javaMurmur2Vectors = map[string]int32{
	"21":                         -973932308,
	"foobar":                     -790332482,
	"a-little-bit-long-string":   -985981536,
	"a-little-bit-longer-string": -1486304829,
	"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
	"abc": 479470107,
}

func TestMurmur2HashJavaVectors(t *testing.T) {
	for in, want := range javaMurmur2Vectors {
		if got := Murmur2Hash([]byte(in)); got != want {
			t.Errorf("Murmur2Hash(%q) = %d, want %d", in, got, want)
		}
	}
}

// randomKeys gives keys of every length 0..64 (all tail cases of the hash)
// plus empty and binary keys.
func randomKeys(n int) [][]byte {
	r := rand.New(rand.NewPCG(1, 2))
	keys := [][]byte{{}, {0}, {0xff, 0xfe, 0x80}}
	for in := range javaMurmur2Vectors {
		keys = append(keys, []byte(in))
	}
	for i := 0; i < n; i++ {
		k := make([]byte, i%65)
		for j := range k {
			k[j] = byte(r.Uint32())
		}
		keys = append(keys, k)
	}
	return keys
}

var partitionCounts = []int32{1, 2, 3, 6, 7, 12, 100, 1009, 1<<31 - 1}

func saramaPartition(t *testing.T, p sarama.Partitioner, key []byte, n int32) int32 {
	t.Helper()
	got, err := p.Partition(&sarama.ProducerMessage{Key: sarama.ByteEncoder(key)}, n)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestKeyedHashesMatchReferences(t *testing.T) {
	keys := randomKeys(2000)
	cases := []struct {
		strategy string
		ref      func(t *testing.T, key []byte, n int32) int32
	}{
		{Murmur2, func(t *testing.T, key []byte, n int32) int32 {
			return saramaPartition(t, sarama.NewMurmur2Partitioner("t"), key, n)
		}},
		{FNV1a, func(t *testing.T, key []byte, n int32) int32 {
			return saramaPartition(t, sarama.NewHashPartitioner("t"), key, n)
		}},
		{MD5, func(_ *testing.T, key []byte, n int32) int32 {
			// Kaffe: :crypto.hash(:md5, key) |> :binary.bin_to_list |> Enum.sum |> rem(n)
			d := md5.Sum(key)
			s := 0
			for _, b := range d[:] {
				s += int(b)
			}
			return int32(s % int(n))
		}},
	}
	for _, c := range cases {
		t.Run(c.strategy, func(t *testing.T) {
			p, err := New(c.strategy, 1, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range partitionCounts {
				seen := map[int32]bool{}
				for _, k := range keys {
					got, want := p.Partition("t", k, n), c.ref(t, k, n)
					if got != want {
						t.Fatalf("%s(%x) with %d partitions = %d, reference %d", c.strategy, k, n, got, want)
					}
					seen[got] = true
				}
				if n <= 12 && len(seen) != int(n) {
					t.Errorf("%s with %d partitions used only %d of them", c.strategy, n, len(seen))
				}
			}
		})
	}
}

// With 2^31-1 partitions the partition is the positive hash itself (almost
// always), so sarama's murmur2 partitioner checks the full Java vectors too.
func TestJavaVectorsThroughSarama(t *testing.T) {
	sp := sarama.NewMurmur2Partitioner("t")
	for in, h := range javaMurmur2Vectors {
		want := (h & 0x7fffffff) % (1<<31 - 1)
		if got := saramaPartition(t, sp, []byte(in), 1<<31-1); got != want {
			t.Errorf("sarama murmur2 %q = %d, want %d", in, got, want)
		}
	}
}

func TestMD5KnownVector(t *testing.T) {
	// Elsa (same rule as Kaffe) documents md5 partition(2, "key1") == 1.
	p, _ := New(MD5, 0, nil)
	if got := p.Partition("t", []byte("key1"), 2); got != 1 {
		t.Fatalf("md5 key1 over 2 = %d, want 1", got)
	}
}

func TestKeylessStickyStrategies(t *testing.T) {
	for _, s := range []string{Murmur2, FNV1a, MD5, Sticky} {
		t.Run(s, func(t *testing.T) {
			p, err := New(s, 42, nil)
			if err != nil {
				t.Fatal(err)
			}
			const n = 6
			first := p.Partition("a", nil, n)
			for i := 0; i < 50; i++ {
				if got := p.Partition("a", nil, n); got != first {
					t.Fatalf("keyless record %d went to %d, sticky partition is %d", i, got, first)
				}
			}
			// A batch of another partition, or of another topic, does not move it.
			p.BatchReady(message.TopicPartition{Topic: "a", Partition: (first + 1) % n})
			p.BatchReady(message.TopicPartition{Topic: "b", Partition: first})
			if got := p.Partition("a", nil, n); got != first {
				t.Fatalf("moved to %d after an unrelated BatchReady", got)
			}
			// Its own batch moves it, always to another partition.
			counts := map[int32]int{}
			prev := first
			for i := 0; i < 600; i++ {
				p.BatchReady(message.TopicPartition{Topic: "a", Partition: prev})
				next := p.Partition("a", nil, n)
				if next == prev || next < 0 || next >= n {
					t.Fatalf("after BatchReady(%d) chose %d", prev, next)
				}
				counts[next]++
				prev = next
			}
			for q := int32(0); q < n; q++ {
				if counts[q] < 60 { // 100 expected each
					t.Fatalf("sticky choices not spread: %v", counts)
				}
			}
			// Fewer partitions than the sticky choice: a valid one is chosen.
			if got := p.Partition("a", nil, 1); got != 0 {
				t.Fatalf("with one partition chose %d", got)
			}
			p.BatchReady(message.TopicPartition{Topic: "a", Partition: 0})
			if got := p.Partition("a", nil, 1); got != 0 {
				t.Fatalf("with one partition after BatchReady chose %d", got)
			}
		})
	}
}

func TestStickyIgnoresKeys(t *testing.T) {
	p, _ := New(Sticky, 7, nil)
	first := p.Partition("t", []byte("k1"), 8)
	for _, k := range []string{"k2", "other", ""} {
		if got := p.Partition("t", []byte(k), 8); got != first {
			t.Fatalf("key %q went to %d, sticky %d", k, got, first)
		}
	}
}

func TestRandomPerRecord(t *testing.T) {
	p, _ := New(Random, 3, nil)
	q, _ := New(Random, 3, nil)
	counts := make([]int, 6)
	changes := 0
	prev := int32(-1)
	for i := 0; i < 6000; i++ {
		got := p.Partition("t", nil, 6)
		if want := q.Partition("t", []byte("ignored"), 6); got != want {
			t.Fatalf("same seed gave %d and %d at call %d", got, want, i)
		}
		counts[got]++
		if got != prev {
			changes++
		}
		prev = got
		p.BatchReady(message.TopicPartition{Topic: "t", Partition: got}) // no effect on random
	}
	for i, c := range counts {
		if c < 800 || c > 1200 {
			t.Fatalf("partition %d got %d of 6000: %v", i, c, counts)
		}
	}
	if changes < 4000 {
		t.Fatalf("random kept its partition too often: %d changes", changes)
	}
}

func TestRoundRobinRotatesPerTopic(t *testing.T) {
	p, _ := New(RoundRobin, 0, nil)
	var a, b []int32
	for i := 0; i < 7; i++ {
		a = append(a, p.Partition("a", []byte("same-key"), 3))
		if i < 2 {
			b = append(b, p.Partition("b", nil, 5))
		}
	}
	wantA := []int32{0, 1, 2, 0, 1, 2, 0}
	for i := range wantA {
		if a[i] != wantA[i] {
			t.Fatalf("topic a got %v, want %v", a, wantA)
		}
	}
	if b[0] != 0 || b[1] != 1 {
		t.Fatalf("topic b got %v, want [0 1]", b)
	}
}

func TestUnknownStrategyAndBadCounts(t *testing.T) {
	_, err := New("consistent", 0, nil)
	if !errors.Is(err, ErrUnknownStrategy) || !strings.Contains(err.Error(), `"consistent"`) {
		t.Fatalf("New(consistent) error = %v", err)
	}
	for _, s := range Strategies() {
		p, err := New(s, 0, nil)
		if err != nil {
			t.Fatalf("New(%s): %v", s, err)
		}
		if got := p.Partition("t", []byte("k"), 0); got != -1 {
			t.Errorf("%s with 0 partitions = %d, want -1", s, got)
		}
		if got := p.Partition("t", nil, -3); got != -1 {
			t.Errorf("%s keyless with -3 partitions = %d, want -1", s, got)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	for _, s := range Strategies() {
		p, _ := New(s, 1, nil)
		var wg sync.WaitGroup
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 500; i++ {
					var key []byte
					if i%2 == 0 {
						key = []byte{byte(i), byte(g)}
					}
					topic := []string{"a", "b"}[i%2]
					q := p.Partition(topic, key, 4)
					if q < 0 || q >= 4 {
						t.Errorf("%s: partition %d out of range", s, q)
						return
					}
					if i%10 == 0 {
						p.BatchReady(message.TopicPartition{Topic: topic, Partition: q})
					}
				}
			}()
		}
		wg.Wait()
	}
}

func BenchmarkPartition(b *testing.B) {
	key := []byte("a-little-bit-longer-string")
	for _, s := range Strategies() {
		p, _ := New(s, 1, nil)
		b.Run(s, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				p.Partition("topic", key, 12)
			}
		})
	}
}

func TestStickyMovesToTheLeastLoaded(t *testing.T) {
	load := map[int32]int{0: 3, 1: 0, 2: 2, 3: 0, 4: 1, 5: 5}
	p, _ := New(Sticky, 11, func(topic string, part int32) int {
		if topic != "t" {
			t.Fatalf("load asked for topic %q", topic)
		}
		return load[part]
	})
	seen := map[int32]int{}
	cur := p.Partition("t", nil, 6)
	for range 400 {
		p.BatchReady(message.TopicPartition{Topic: "t", Partition: cur})
		next := p.Partition("t", nil, 6)
		if next == cur {
			t.Fatalf("stayed on %d after its batch was ready", cur)
		}
		cur = next
		seen[cur]++
	}
	// 1 and 3 are the least loaded, and a move never stays: the choice
	// alternates between them.
	if seen[1]+seen[3] != 400 || seen[1] < 199 || seen[3] < 199 {
		t.Fatalf("moves went to %v, want only the idle partitions 1 and 3, evenly", seen)
	}

	// Above scanLimit two random candidates are compared: the loaded half
	// is chosen only when both candidates fall in it.
	many := int32(2 * scanLimit)
	q, _ := New(Sticky, 5, func(_ string, part int32) int { return int(part % 2) })
	even := 0
	cur = q.Partition("t", nil, many)
	for range 4000 {
		q.BatchReady(message.TopicPartition{Topic: "t", Partition: cur})
		cur = q.Partition("t", nil, many)
		if cur%2 == 0 {
			even++
		}
	}
	if even < 2700 || even > 3300 { // 3/4 expected
		t.Fatalf("%d of 4000 moves went to idle partitions, want about 3000", even)
	}
}
