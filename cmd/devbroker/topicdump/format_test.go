package topicdump

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFormatListsBatches(t *testing.T) {
	top := Topic{Name: "otlp_logs", Partitions: []Partition{
		{ID: 0, HighWatermark: 5, Batches: []Batch{
			{BaseOffset: 0, LastOffset: 2, Records: 3, Bytes: 200, Codec: CodecNone, Magic: 2},
			{BaseOffset: 3, LastOffset: 4, Records: 2, Bytes: 150, Codec: CodecGzip, Magic: 2},
		}},
		{ID: 1},
	}}
	var sb strings.Builder
	require.NoError(t, Format(&sb, top, FormatOptions{MaxBatchLines: 5}))
	assert.Equal(t, ""+
		"topic otlp_logs: 5 records in 2 batches, 350 bytes (350 B), 2 partitions\n"+
		"  partition 0: 5 records in 2 batches, 350 bytes\n"+
		"    offset 0: 3 records, 200 bytes\n"+
		"    offset 3: 2 records, 150 bytes, gzip\n"+
		"  partition 1: empty\n", sb.String())
}

func TestFormatHistogramWhenManyBatches(t *testing.T) {
	var batches []Batch
	off := int64(0)
	for _, n := range []int{1, 5, 6, 7, 100, 120} {
		batches = append(batches, Batch{BaseOffset: off, LastOffset: off + int64(n) - 1, Records: n, Bytes: 100 * n, Codec: CodecNone, Magic: 2})
		off += int64(n)
	}
	top := Topic{Name: "t", Partitions: []Partition{{ID: 3, Batches: batches}}}
	var sb strings.Builder
	require.NoError(t, Format(&sb, top, FormatOptions{MaxBatchLines: 5}))
	assert.Equal(t, ""+
		"topic t: 239 records in 6 batches, 23900 bytes (23.3 KiB), 1 partitions\n"+
		"  partition 3: 239 records in 6 batches, 23900 bytes\n"+
		"    records/batch    batches\n"+
		"    1                1\n"+
		"    2-3              0\n"+
		"    4-7              3\n"+
		"    8-15             0\n"+
		"    16-31            0\n"+
		"    32-63            0\n"+
		"    64-127           2\n"+
		"    bytes/batch: min 100, mean 3983, max 12000\n", sb.String())
}

func TestRecordsHistogram(t *testing.T) {
	assert.Nil(t, RecordsHistogram(nil))
	assert.Nil(t, RecordsHistogram([]Batch{{Records: 4, Control: true}}), "control batches are not counted")
	assert.Equal(t, []Bucket{{Low: 0, High: 0, Batches: 1}, {Low: 1, High: 1, Batches: 2}},
		RecordsHistogram([]Batch{{Records: 0}, {Records: 1}, {Records: 1}}))
	assert.Equal(t, []Bucket{{Low: 256, High: 511, Batches: 2}, {Low: 512, High: 1023, Batches: 1}},
		RecordsHistogram([]Batch{{Records: 500}, {Records: 256}, {Records: 512}}))
	assert.Equal(t, "1", Bucket{Low: 1, High: 1}.Label())
	assert.Equal(t, "8-15", Bucket{Low: 8, High: 15}.Label())
}

func TestProgress(t *testing.T) {
	prev := Topic{Name: "otlp_logs", Partitions: []Partition{
		{ID: 0, Batches: []Batch{{Records: 10, Bytes: 1000}}},
		{ID: 1},
	}}
	cur := Topic{Name: "otlp_logs", Partitions: []Partition{
		{ID: 0, Batches: []Batch{{Records: 10, Bytes: 1000}, {Records: 20, Bytes: 2000}}},
		{ID: 1, Batches: []Batch{{Records: 5, Bytes: 600}}},
	}}
	at := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	assert.Equal(t, "15:04:05 otlp_logs: 35 records in 3 batches, 3.5 KiB (+25 records, +2 batches) p0=30 p1=5",
		Progress(prev, cur, at))
	assert.Equal(t, "15:04:05 otlp_logs: 0 records in 0 batches, 0 B (+0 records, +0 batches)",
		Progress(Topic{}, Topic{Name: "otlp_logs"}, at))
}

func TestHumanBytes(t *testing.T) {
	assert.Equal(t, "1023 B", humanBytes(1023))
	assert.Equal(t, "1.0 KiB", humanBytes(1024))
	assert.Equal(t, "1.5 MiB", humanBytes(3<<19))
}
