package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"time"
	"unicode/utf8"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
	"github.com/kafkabatcher/kafkabatcherexporter/tempstorage"
)

// catRecord is one line of cat: a stored record (source queue) or a dead
// letter (source deadletter). Key, value and header values are text when
// they are valid UTF-8, else in the *_base64 field; a nil key has neither.
type catRecord struct {
	Source    string `json:"source"`
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// Batch (from 1, oldest first per partition) and Record (from 0) place
	// a stored record; FlushReason is why its batch was made.
	Batch       int    `json:"batch,omitempty"`
	Record      *int   `json:"record,omitempty"`
	FlushReason string `json:"flush_reason,omitempty"`
	// Sequence is the idempotent producer's numbering of a stored batch
	// Kafka did not take (its replay resends them); SequenceNumber is this
	// record's number in it. For the oldest batch of a partition whose
	// replay failed part-way, they are what that replay left (its head
	// progress), and Done marks the records it got through: Kafka took
	// them (or refused them for good) and they are not sent again.
	Sequence       *catSequence `json:"sequence,omitempty"`
	SequenceNumber *int32       `json:"sequence_number,omitempty"`
	Done           bool         `json:"done,omitempty"`
	// File and Line place a dead letter; Time is when it was rejected and
	// Reason why.
	File   string     `json:"file,omitempty"`
	Line   int        `json:"line,omitempty"`
	Time   *time.Time `json:"time,omitempty"`
	Reason string     `json:"reason,omitempty"`

	Timestamp   time.Time   `json:"timestamp,omitzero"`
	Key         *string     `json:"key,omitempty"`
	KeyBase64   *string     `json:"key_base64,omitempty"`
	Value       *string     `json:"value,omitempty"`
	ValueBase64 *string     `json:"value_base64,omitempty"`
	Headers     []catHeader `json:"headers,omitempty"`
	Flush       bool        `json:"flush,omitempty"`
	Truncated   bool        `json:"truncated,omitempty"`
	KeyBytes    int         `json:"key_bytes,omitempty"`
	ValueBytes  int         `json:"value_bytes,omitempty"`
	// Error is set for a dead-letter line that does not decode; Raw holds it.
	Error string `json:"error,omitempty"`
	Raw   string `json:"raw,omitempty"`
}

// catSequence is a stored batch's message.Sequence.
type catSequence struct {
	ProducerID    int64 `json:"producer_id"`
	ProducerEpoch int16 `json:"producer_epoch"`
	BaseSequence  int32 `json:"base_sequence"`
	// RecordBatches are the record counts of the record batches the
	// records were numbered as, in order.
	RecordBatches []int32 `json:"record_batches"`
	// Unsure: a send ended without telling whether Kafka wrote the
	// records.
	Unsure bool `json:"unsure"`
}

// sequenceOf returns s for cat, nil for nil.
func sequenceOf(s *message.Sequence) *catSequence {
	if s == nil {
		return nil
	}
	return &catSequence{ProducerID: s.ProducerID, ProducerEpoch: s.ProducerEpoch, BaseSequence: s.BaseSequence,
		RecordBatches: s.Counts, Unsure: s.Unsure}
}

// recordSequence is the sequence number of record i of a batch numbered
// from base: Kafka's sequence numbers wrap from MaxInt32 to 0.
func recordSequence(base int32, i int) *int32 {
	n := int32((int64(base) + int64(i)) % (math.MaxInt32 + 1))
	return &n
}

type catHeader struct {
	Key         string  `json:"key"`
	Value       *string `json:"value,omitempty"`
	ValueBase64 *string `json:"value_base64,omitempty"`
}

// textOrBase64 returns b as text (first) when it is valid UTF-8, else as
// base64 (second); both nil for a nil b.
func textOrBase64(b []byte) (*string, *string) {
	if b == nil {
		return nil, nil
	}
	if utf8.Valid(b) {
		s := string(b)
		return &s, nil
	}
	s := base64.StdEncoding.EncodeToString(b)
	return nil, &s
}

func (r *catRecord) setContent(key, value []byte, headers []catHeader) {
	r.Key, r.KeyBase64 = textOrBase64(key)
	r.Value, r.ValueBase64 = textOrBase64(value)
	r.Headers = headers
}

func header(key string, value []byte) catHeader {
	h := catHeader{Key: key}
	h.Value, h.ValueBase64 = textOrBase64(value)
	return h
}

func runCat(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("cat", "DIR [--topic T] [--partition P] [--source queue|deadletter]", stderr)
	topic := fs.String("topic", "", "only records of this topic")
	partition := fs.Int("partition", -1, "only records of this partition (with --topic)")
	source := fs.String("source", "", "only stored batches (queue) or only dead letters (deadletter); default both")
	dir, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if *source != "" && *source != "queue" && *source != "deadletter" {
		return fmt.Errorf("--source: want queue or deadletter, got %q", *source)
	}
	release, err := readOnly(dir)
	if err != nil {
		return err
	}
	defer release()
	match := func(t string, p int32) bool {
		return (*topic == "" || t == *topic) && (*partition < 0 || int(p) == *partition)
	}
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	if *source != "deadletter" {
		batchNo := map[message.TopicPartition]int{}
		if _, err := tempstorage.Inspect(dir, func(p message.TopicPartition, b message.Batch, progress *tempstorage.HeadProgress) error {
			batchNo[p]++
			if !match(p.Topic, p.Partition) {
				return nil
			}
			var done []bool
			if progress != nil {
				b.Seq, done = progress.Seq, progress.Done
			}
			seq := sequenceOf(b.Seq)
			left := 0 // records not done before this one
			for i, m := range b.Messages {
				rec := catRecord{
					Source: "queue", Topic: p.Topic, Partition: p.Partition,
					Batch: batchNo[p], Record: &i, FlushReason: b.Reason.String(),
					Timestamp: m.Timestamp.UTC(), Flush: m.Trigger,
				}
				if i < len(done) && done[i] {
					rec.Done = true
				} else if seq != nil {
					rec.Sequence, rec.SequenceNumber = seq, recordSequence(seq.BaseSequence, left)
					left++
				}
				var hs []catHeader
				for _, h := range m.Headers {
					hs = append(hs, header(h.Key, h.Value))
				}
				rec.setContent(m.Key, m.Value, hs)
				if err := enc.Encode(&rec); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return err
		}
	}
	if *source == "queue" {
		return nil
	}
	files, err := tempstorage.ReadDeadLetters(dir)
	if err != nil {
		return err
	}
	for _, f := range files {
		for _, l := range f.Lines {
			rec := catRecord{Source: "deadletter", File: "deadletter/" + f.Name, Line: l.Number}
			if l.Err != nil {
				if *topic != "" || *partition >= 0 {
					continue
				}
				rec.Error, rec.Raw = l.Err.Error(), string(l.Raw)
			} else {
				d := l.Record
				if !match(d.Topic, d.Partition) {
					continue
				}
				t := d.Time.UTC()
				rec.Topic, rec.Partition, rec.Time, rec.Reason = d.Topic, d.Partition, &t, d.Reason
				rec.Timestamp = d.Timestamp.UTC()
				rec.Truncated, rec.KeyBytes, rec.ValueBytes = d.Truncated, d.KeyBytes, d.ValueBytes
				var hs []catHeader
				for _, h := range d.Headers {
					hs = append(hs, header(h.Key, h.Value))
				}
				rec.setContent(d.Key, d.Value, hs)
			}
			if err := enc.Encode(&rec); err != nil {
				return err
			}
		}
	}
	return nil
}
