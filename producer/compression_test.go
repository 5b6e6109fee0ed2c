package producer

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/IBM/sarama"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// wordyBatch is a batch of n records of pseudo-random sentences: text whose
// compressed size depends on the level.
func wordyBatch(topic string, n int) *message.Batch {
	words := strings.Fields("order placed by user items total payment authorised shipped " +
		"refund cart checkout warehouse latency retry timeout region zone pod node")
	rng := rand.New(rand.NewPCG(1, 2))
	b := batchOf(topic, 0, "rec", n, 0)
	for i := range b.Messages {
		var v strings.Builder
		fmt.Fprintf(&v, "rec-%d:", i)
		for range 40 {
			v.WriteString(" " + words[rng.IntN(len(words))])
			fmt.Fprintf(&v, " %d", rng.IntN(1000))
		}
		b.Messages[i].Value = []byte(v.String())
	}
	b.Bytes = message.BatchSize(b.Messages)
	return b
}

// sentBatch produces b with cfg to a fresh kfake cluster, checks that b's
// records read back, and returns the record batch the broker received.
func sentBatch(t *testing.T, cfg Config, b *message.Batch) kmsg.RecordBatch {
	t.Helper()
	c := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, b.Topic))
	var (
		mu  sync.Mutex
		raw [][]byte
	)
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		mu.Lock()
		defer mu.Unlock()
		for _, tp := range req.(*kmsg.ProduceRequest).Topics {
			for _, pp := range tp.Partitions {
				raw = append(raw, bytes.Clone(pp.Records))
			}
		}
		return nil, nil, false // observed, then handled as usual
	})
	cfg.Brokers = c.ListenAddrs()
	produceAndRead(t, newProducer(t, cfg), c, b)

	mu.Lock()
	defer mu.Unlock()
	if len(raw) != 1 {
		t.Fatalf("broker got %d record batches, want 1", len(raw))
	}
	var rb kmsg.RecordBatch
	if err := rb.ReadFrom(raw[0]); err != nil {
		t.Fatalf("record batch: %v", err)
	}
	return rb
}

// Codec numbers in a record batch's attributes.
var batchCodecs = map[string]int16{
	CompressionNone: 0, CompressionGzip: 1, CompressionSnappy: 2, CompressionLZ4: 3, CompressionZstd: 4,
}

// TestCompressionLevelIsTheCodecs: the broker receives each record batch
// compressed by its codec at exactly producer.compression_level (the
// records compressed again at that level give the same bytes; 0 gives the
// codec's default), and the records read back.
func TestCompressionLevelIsTheCodecs(t *testing.T) {
	b := wordyBatch("t", 200)
	sizes := map[string]int{}
	for _, tc := range []struct {
		codec string
		level int
		// compress compresses the uncompressed records as the level should.
		compress func(t *testing.T, data []byte) []byte
	}{
		{CompressionGzip, 0, gzipAt(gzip.DefaultCompression)},
		{CompressionGzip, 1, gzipAt(1)},
		{CompressionGzip, 9, gzipAt(9)},
		{CompressionZstd, 0, zstdAt(zstd.SpeedDefault)},
		{CompressionZstd, 1, zstdAt(zstd.SpeedFastest)},
		{CompressionZstd, 7, zstdAt(zstd.SpeedBetterCompression)},
		{CompressionZstd, 22, zstdAt(zstd.SpeedBestCompression)},
		{CompressionLZ4, 0, nil},
		{CompressionSnappy, 0, nil},
		{CompressionNone, 0, nil},
	} {
		name := fmt.Sprintf("%s/%d", tc.codec, tc.level)
		t.Run(name, func(t *testing.T) {
			rb := sentBatch(t, Config{Compression: tc.codec, CompressionLevel: tc.level}, b)
			if got := rb.Attributes & 0x07; got != batchCodecs[tc.codec] {
				t.Fatalf("batch codec %d, want %d (%s)", got, batchCodecs[tc.codec], tc.codec)
			}
			sizes[name] = len(rb.Records)
			if tc.compress == nil {
				return
			}
			plain := decompress(t, tc.codec, rb.Records)
			if want := tc.compress(t, plain); !bytes.Equal(rb.Records, want) {
				t.Fatalf("%d compressed bytes differ from the %d of %s at level %d", len(rb.Records), len(want), tc.codec, tc.level)
			}
		})
	}
	t.Logf("compressed record bytes: %v", sizes)
	for _, pair := range [][2]string{{"gzip/9", "gzip/1"}, {"zstd/22", "zstd/1"}, {"zstd/7", "zstd/1"}} {
		if sizes[pair[0]] >= sizes[pair[1]] {
			t.Errorf("%s gave %d bytes, not fewer than %s's %d", pair[0], sizes[pair[0]], pair[1], sizes[pair[1]])
		}
	}
}

func gzipAt(level int) func(*testing.T, []byte) []byte {
	return func(t *testing.T, data []byte) []byte {
		var buf bytes.Buffer
		w, err := gzip.NewWriterLevel(&buf, level)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
}

// zstdAt compresses as sarama's zstd encoder does at a level that maps to speed.
func zstdAt(speed zstd.EncoderLevel) func(*testing.T, []byte) []byte {
	return func(t *testing.T, data []byte) []byte {
		enc, err := zstd.NewWriter(nil, zstd.WithZeroFrames(true), zstd.WithEncoderLevel(speed), zstd.WithEncoderConcurrency(1))
		if err != nil {
			t.Fatal(err)
		}
		defer enc.Close()
		return enc.EncodeAll(data, nil)
	}
}

func decompress(t *testing.T, codec string, data []byte) []byte {
	t.Helper()
	var (
		out []byte
		err error
	)
	switch codec {
	case CompressionGzip:
		var r *gzip.Reader
		if r, err = gzip.NewReader(bytes.NewReader(data)); err == nil {
			out, err = io.ReadAll(r)
		}
	case CompressionZstd:
		var d *zstd.Decoder
		if d, err = zstd.NewReader(nil); err == nil {
			defer d.Close()
			out, err = d.DecodeAll(data, nil)
		}
	default:
		t.Fatalf("no decompressor for %s", codec)
	}
	if err != nil {
		t.Fatalf("%s: %v", codec, err)
	}
	return out
}

// TestCompressionLevelRanges: gzip takes 1..9, zstd 1..22 and every codec
// 0; a level out of its codec's range, or any level with none, snappy or
// lz4 (sarama compresses lz4 at one fixed level), is an error naming
// CompressionLevel and the codec.
func TestCompressionLevelRanges(t *testing.T) {
	valid := func(codec string, level int) Config {
		return Config{Brokers: []string{"b:1"}, Compression: codec, CompressionLevel: level}.withDefaults()
	}
	for codec, maxLevel := range map[string]int{CompressionGzip: 9, CompressionZstd: 22} {
		for level := 0; level <= maxLevel; level++ {
			st, err := compile(valid(codec, level))
			if err != nil {
				t.Fatalf("%s level %d: %v", codec, level, err)
			}
			want := level
			if level == 0 {
				want = sarama.CompressionLevelDefault
			}
			if st.level != want {
				t.Errorf("%s level %d: sarama level %d, want %d", codec, level, st.level, want)
			}
		}
	}
	for _, codec := range Compressions() {
		if _, err := compile(valid(codec, 0)); err != nil {
			t.Errorf("%s level 0: %v", codec, err)
		}
	}
	for _, tc := range []struct {
		codec string
		level int
		want  string
	}{
		{CompressionGzip, 10, "CompressionLevel: must be 1..9 with Compression gzip (0: the codec's default), got 10"},
		{CompressionGzip, -1, "CompressionLevel: must be 1..9 with Compression gzip (0: the codec's default), got -1"},
		{CompressionZstd, 23, "CompressionLevel: must be 1..22 with Compression zstd (0: the codec's default), got 23"},
		{CompressionZstd, -5, "CompressionLevel: must be 1..22 with Compression zstd (0: the codec's default), got -5"},
		{CompressionNone, 1, "CompressionLevel: must be 0 with Compression none (nothing is compressed), got 1"},
		{CompressionSnappy, 3, "CompressionLevel: must be 0 with Compression snappy (snappy has no levels), got 3"},
		{CompressionLZ4, 9, "CompressionLevel: must be 0 with Compression lz4 (the client compresses lz4 at one fixed level), got 9"},
		{"brotli", 5, `Compression: unknown compression "brotli" (want none, gzip, snappy, lz4, zstd)`},
	} {
		err := valid(tc.codec, tc.level).Validate()
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s level %d: error %v, want %q", tc.codec, tc.level, err, tc.want)
		}
	}
}
