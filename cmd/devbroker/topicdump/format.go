package topicdump

import (
	"bufio"
	"fmt"
	"io"
	"math/bits"
	"strings"
	"time"
)

// FormatOptions control Format.
type FormatOptions struct {
	// MaxBatchLines is how many batches of one partition are listed one per
	// line; a partition with more gets a histogram of records per batch.
	// Zero or less means always a histogram.
	MaxBatchLines int
}

// Format writes a report of t for a person: totals, then per partition its
// records, batches and bytes, and its batches one per line or as a histogram.
func Format(w io.Writer, t Topic, opts FormatOptions) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "topic %s: %d records in %d batches, %d bytes (%s), %d partitions\n",
		t.Name, t.Records(), t.DataBatches(), t.Bytes(), humanBytes(t.Bytes()), len(t.Partitions))
	for _, p := range t.Partitions {
		formatPartition(bw, p, opts)
	}
	return bw.Flush()
}

func formatPartition(w io.Writer, p Partition, opts FormatOptions) {
	if len(p.Batches) == 0 {
		fmt.Fprintf(w, "  partition %d: empty\n", p.ID)
		return
	}
	fmt.Fprintf(w, "  partition %d: %d records in %d batches, %d bytes\n",
		p.ID, p.Records(), p.DataBatches(), p.Bytes())
	if len(p.Batches) <= opts.MaxBatchLines {
		for _, b := range p.Batches {
			fmt.Fprintf(w, "    offset %d: %s\n", b.BaseOffset, describeBatch(b))
		}
		return
	}
	formatHistogram(w, p)
}

func describeBatch(b Batch) string {
	if b.Control {
		return fmt.Sprintf("control batch, %d bytes", b.Bytes)
	}
	s := fmt.Sprintf("%d records, %d bytes", b.Records, b.Bytes)
	if b.Codec != CodecNone {
		s += ", " + string(b.Codec)
	}
	if b.Magic < 2 {
		s += fmt.Sprintf(", legacy message v%d", b.Magic)
	}
	return s
}

// formatHistogram writes records per batch in power-of-two buckets, and the
// smallest, mean and largest batch size.
func formatHistogram(w io.Writer, p Partition) {
	h := RecordsHistogram(p.Batches)
	fmt.Fprintf(w, "    %-16s %s\n", "records/batch", "batches")
	for _, b := range h {
		fmt.Fprintf(w, "    %-16s %d\n", b.Label(), b.Batches)
	}
	minB, maxB, sum, n := 0, 0, 0, 0
	for _, b := range p.Batches {
		if b.Control {
			continue
		}
		if n == 0 || b.Bytes < minB {
			minB = b.Bytes
		}
		if b.Bytes > maxB {
			maxB = b.Bytes
		}
		sum += b.Bytes
		n++
	}
	if n > 0 {
		fmt.Fprintf(w, "    bytes/batch: min %d, mean %d, max %d\n", minB, sum/n, maxB)
	}
}

// Bucket counts batches whose record count is in [Low, High].
type Bucket struct {
	Low, High int
	Batches   int
}

// Label is "7" for a one-value bucket, else "4-7".
func (b Bucket) Label() string {
	if b.Low == b.High {
		return fmt.Sprint(b.Low)
	}
	return fmt.Sprintf("%d-%d", b.Low, b.High)
}

// RecordsHistogram buckets data batches by record count in power-of-two
// ranges (1, 2-3, 4-7, ...), from the smallest to the largest non-empty
// bucket; buckets in between are kept, empty, so the shape shows.
func RecordsHistogram(batches []Batch) []Bucket {
	counts := map[int]int{} // bucket index -> batches
	lo, hi := -1, -1
	for _, b := range batches {
		if b.Control {
			continue
		}
		i := 0
		if b.Records > 0 {
			i = bits.Len(uint(b.Records)) // 1 -> 1, 2-3 -> 2, 4-7 -> 3
		}
		counts[i]++
		if lo < 0 || i < lo {
			lo = i
		}
		if i > hi {
			hi = i
		}
	}
	if lo < 0 {
		return nil
	}
	out := make([]Bucket, 0, hi-lo+1)
	for i := lo; i <= hi; i++ {
		b := Bucket{Batches: counts[i]}
		if i > 0 {
			b.Low, b.High = 1<<(i-1), 1<<i-1
		}
		out = append(out, b)
	}
	return out
}

// Progress is one line saying what t holds at time at and what arrived
// since prev: "15:04:05 otlp_logs: 120 records in 4 batches, 9.8 KiB
// (+20 records, +1 batches) p0=20 p1=20 ...". Partitions are listed when
// there are at most 12.
func Progress(prev, cur Topic, at time.Time) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s %s: %d records in %d batches, %s (+%d records, +%d batches)",
		at.Format("15:04:05"), cur.Name, cur.Records(), cur.DataBatches(), humanBytes(cur.Bytes()),
		cur.Records()-prev.Records(), cur.DataBatches()-prev.DataBatches())
	if len(cur.Partitions) <= 12 {
		for _, p := range cur.Partitions {
			fmt.Fprintf(&sb, " p%d=%d", p.ID, p.Records())
		}
	}
	return sb.String()
}

// humanBytes is n in B, KiB or MiB with one decimal.
func humanBytes(n int) string {
	switch {
	case n < 1024:
		return fmt.Sprintf("%d B", n)
	case n < 1024*1024:
		return fmt.Sprintf("%.1f KiB", float64(n)/1024)
	default:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1024*1024))
	}
}
