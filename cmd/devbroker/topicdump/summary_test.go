package topicdump

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kafkabatcher/kafkabatcherexporter/cmd/devbroker/internal/kafkatest"
	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

func encodeBatch(t *testing.T, base int64, attrs int16, msgs []message.Message) []byte {
	t.Helper()
	require.NotEmpty(t, msgs)
	return kafkatest.EncodeBatch(base, attrs, msgs)
}

func testMessages(n int, valueLen int) []message.Message {
	ts := time.UnixMilli(1_700_000_000_000)
	out := make([]message.Message, n)
	for i := range out {
		out[i] = message.Message{
			Key:       []byte("host-1"),
			Value:     []byte(strings.Repeat("v", valueLen+i)),
			Headers:   []message.Header{{Key: "resource.service.name", Value: []byte("api")}},
			Timestamp: ts.Add(time.Duration(i) * time.Millisecond),
		}
	}
	return out
}

func TestParseBatchesSizesMatchTheExportersBatchSize(t *testing.T) {
	a := testMessages(3, 10)
	b := testMessages(7, 100)
	raw := append(encodeBatch(t, 0, 0, a), encodeBatch(t, 3, 0, b)...)

	got, err := ParseBatches(raw)
	require.NoError(t, err)
	require.Len(t, got, 2)

	assert.Equal(t, int64(0), got[0].BaseOffset)
	assert.Equal(t, int64(2), got[0].LastOffset)
	assert.Equal(t, 3, got[0].Records)
	assert.Equal(t, message.BatchSize(a), got[0].Bytes)
	assert.Equal(t, CodecNone, got[0].Codec)
	assert.Equal(t, int8(2), got[0].Magic)
	assert.Equal(t, a[0].Timestamp, got[0].FirstTimestamp)

	assert.Equal(t, int64(3), got[1].BaseOffset)
	assert.Equal(t, int64(9), got[1].LastOffset)
	assert.Equal(t, 7, got[1].Records)
	assert.Equal(t, message.BatchSize(b), got[1].Bytes)
}

func TestParseBatchesLeavesOutATruncatedTail(t *testing.T) {
	whole := encodeBatch(t, 0, 0, testMessages(2, 5))
	next := encodeBatch(t, 2, 0, testMessages(4, 5))
	for _, cut := range []int{1, 11, 12, 17, len(next) - 1} {
		got, err := ParseBatches(append(append([]byte{}, whole...), next[:cut]...))
		require.NoError(t, err, "cut at %d", cut)
		require.Len(t, got, 1, "cut at %d", cut)
		assert.Equal(t, 2, got[0].Records)
	}
}

func TestParseBatchesRejectsABadLength(t *testing.T) {
	raw := encodeBatch(t, 0, 0, testMessages(2, 5))
	binary.BigEndian.PutUint32(raw[8:12], 2) // shorter than a header
	_, err := ParseBatches(raw)
	require.ErrorIs(t, err, ErrCorruptBatch)

	raw = encodeBatch(t, 0, 0, testMessages(2, 5))
	raw[len(raw)-1] ^= 0xff // a flipped bit in a record fails the CRC
	_, err = ParseBatches(raw)
	require.ErrorIs(t, err, ErrCorruptBatch)

	raw = encodeBatch(t, 0, 0, testMessages(2, 5))
	raw[16] = 3 // no such format
	_, err = ParseBatches(raw)
	require.ErrorIs(t, err, ErrCorruptBatch)
}

func TestParseBatchesCodecAndControl(t *testing.T) {
	// The records are not really compressed: only the attributes are read.
	zstd := encodeBatch(t, 0, 4, testMessages(2, 5))
	control := encodeBatch(t, 2, 0x20, testMessages(1, 0))
	got, err := ParseBatches(append(zstd, control...))
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.Equal(t, CodecZstd, got[0].Codec)
	assert.False(t, got[0].Control)
	assert.True(t, got[1].Control)

	p := Partition{Batches: got}
	assert.Equal(t, 2, p.Records(), "a control batch holds no user records")
	assert.Equal(t, 1, p.DataBatches())
	assert.Equal(t, len(zstd)+len(control), p.Bytes())
}

func TestParseBatchesLegacyMessage(t *testing.T) {
	// magic 1 message: offset, size, then crc, magic, attributes, timestamp, key, value
	var msg []byte
	msg = binary.BigEndian.AppendUint32(msg, 0xdeadbeef) // crc, not checked
	msg = append(msg, 1, 1)                              // magic 1, gzip
	msg = binary.BigEndian.AppendUint64(msg, 1_700_000_000_000)
	msg = binary.BigEndian.AppendUint32(msg, 0xffffffff) // null key
	msg = binary.BigEndian.AppendUint32(msg, 0xffffffff) // null value
	raw := binary.BigEndian.AppendUint64(nil, 42)
	raw = binary.BigEndian.AppendUint32(raw, uint32(len(msg)))
	raw = append(raw, msg...)

	got, err := ParseBatches(raw)
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, Batch{
		BaseOffset: 42, LastOffset: 42, Records: 1, Bytes: len(raw), Codec: CodecGzip, Magic: 1,
		FirstTimestamp: time.UnixMilli(1_700_000_000_000),
	}, got[0])
}

func TestParseBatchesEmpty(t *testing.T) {
	got, err := ParseBatches(nil)
	require.NoError(t, err)
	assert.Empty(t, got)
}

func TestTopicTotals(t *testing.T) {
	top := Topic{Name: "t", Partitions: []Partition{
		{ID: 0, Batches: []Batch{{Records: 3, Bytes: 100}, {Records: 2, Bytes: 90}}},
		{ID: 1},
		{ID: 2, Batches: []Batch{{Records: 10, Bytes: 400}, {Records: 1, Bytes: 80, Control: true}}},
	}}
	assert.Equal(t, 15, top.Records())
	assert.Equal(t, 3, top.DataBatches())
	assert.Equal(t, 670, top.Bytes())
}
