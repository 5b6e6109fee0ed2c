package producer

import (
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// recordPool reuses the record arrays of record batches: sarama is done
// with a batch once AsyncProduce has encoded and written its request.
type recordPool struct{ p sync.Pool }

// recordArrays backs the Records of one record batch.
type recordArrays struct {
	records []sarama.Record
	ptrs    []*sarama.Record
}

func (rp *recordPool) get(n int) *recordArrays {
	if a, _ := rp.p.Get().(*recordArrays); a != nil && cap(a.records) >= n {
		a.records, a.ptrs = a.records[:n], a.ptrs[:n]
		return a
	}
	return &recordArrays{records: make([]sarama.Record, n), ptrs: make([]*sarama.Record, n)}
}

// release gives a's arrays back; the batch built on them must not be used
// afterwards.
func (rp *recordPool) release(a *recordArrays) {
	if a == nil {
		return
	}
	clear(a.records) // drop references to keys and values
	clear(a.ptrs)
	rp.p.Put(a)
}

// batch encodes msgs, in order, as one v2 record batch on pooled arrays,
// returned for release. Timestamps are whole milliseconds relative to the
// first message's, exactly as message.BatchSize counts them; sarama
// compresses them with codec at level (its CompressionLevel). The batch is
// not idempotent (producer id -1) until the caller sets its producer id,
// epoch and first sequence.
func (rp *recordPool) batch(msgs []message.Message, codec sarama.CompressionCodec, level int) (*sarama.RecordBatch, *recordArrays) {
	base := msgs[0].Timestamp.UnixMilli()
	maxTS := base
	nHeaders, keyBytes := 0, 0
	for i := range msgs {
		if ts := msgs[i].Timestamp.UnixMilli(); ts > maxTS {
			maxTS = ts
		}
		nHeaders += len(msgs[i].Headers)
		for _, h := range msgs[i].Headers {
			keyBytes += len(h.Key)
		}
	}

	// One allocation per kind for the whole batch, not per record.
	arrays := rp.get(len(msgs))
	records, ptrs := arrays.records, arrays.ptrs
	var (
		headers    []sarama.RecordHeader
		headerPtrs []*sarama.RecordHeader
		keys       []byte
	)
	if nHeaders > 0 {
		headers = make([]sarama.RecordHeader, 0, nHeaders)
		headerPtrs = make([]*sarama.RecordHeader, 0, nHeaders)
		keys = make([]byte, 0, keyBytes)
	}
	for i := range msgs {
		m := &msgs[i]
		r := &records[i]
		r.OffsetDelta = int64(i)
		r.TimestampDelta = time.Duration(m.Timestamp.UnixMilli()-base) * time.Millisecond
		r.Key = m.Key
		r.Value = m.Value
		if len(m.Headers) > 0 {
			start := len(headerPtrs)
			for _, h := range m.Headers {
				k0 := len(keys)
				keys = append(keys, h.Key...)
				headers = append(headers, sarama.RecordHeader{Key: keys[k0:len(keys):len(keys)], Value: h.Value})
				headerPtrs = append(headerPtrs, &headers[len(headers)-1])
			}
			r.Headers = headerPtrs[start:len(headerPtrs):len(headerPtrs)]
		}
		ptrs[i] = r
	}
	return &sarama.RecordBatch{
		Version:          2,
		Codec:            codec,
		CompressionLevel: level,
		FirstTimestamp:   batchTime(base),
		MaxTimestamp:     batchTime(maxTS),
		LastOffsetDelta:  int32(len(msgs) - 1),
		ProducerID:       -1,
		ProducerEpoch:    -1,
		FirstSequence:    -1,
		Records:          ptrs,
	}, arrays
}

// batchTime is a batch header timestamp; before 1970 it is sent as -1
// (unknown), which sarama encodes for the zero time.
func batchTime(ms int64) time.Time {
	if ms < 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}
