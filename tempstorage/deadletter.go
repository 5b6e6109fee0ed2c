package tempstorage

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// Dead-letter file names inside <dir>/deadletter/.
const (
	deadLetterDir      = "deadletter"
	deadLetterCurrent  = "deadletter.jsonl"
	deadLetterPrevious = "deadletter.1.jsonl"
)

// DeadLetterRecord is one line of the dead-letter file. encoding/json
// writes Key, Value and header values as base64 and times as RFC 3339 with
// nanoseconds, so json.Unmarshal of a line gives the record back.
type DeadLetterRecord struct {
	Time      time.Time          `json:"time"` // when it was rejected
	Topic     string             `json:"topic"`
	Partition int32              `json:"partition"`
	Reason    string             `json:"reason"`
	Timestamp time.Time          `json:"timestamp,omitzero"` // the record's own timestamp
	Key       []byte             `json:"key"`                // null for a nil key
	Value     []byte             `json:"value"`
	Headers   []DeadLetterHeader `json:"headers,omitempty"`
	// Truncated is set when key, value and headers were left out because
	// the line would not fit the file bound; KeyBytes and ValueBytes then
	// give their sizes.
	Truncated  bool `json:"truncated,omitempty"`
	KeyBytes   int  `json:"key_bytes,omitempty"`
	ValueBytes int  `json:"value_bytes,omitempty"`
}

// DeadLetterHeader is a record header in a DeadLetterRecord.
type DeadLetterHeader struct {
	Key   string `json:"key"`
	Value []byte `json:"value"`
}

// DeadLetter appends rejected records to <dir>/deadletter/deadletter.jsonl.
// The current file is rotated to deadletter.1.jsonl (replacing the previous
// one) before it would pass half the bound, so the two files together never
// exceed maxBytes. It is safe for concurrent use.
type DeadLetter struct {
	dir     string
	perFile int64
	now     func() time.Time

	mu     sync.Mutex
	f      *os.File
	size   int64
	closed bool
}

// OpenDeadLetter opens the dead-letter file under dir/deadletter/ (created
// with mode 0700), appending to what is there. maxBytes bounds both files
// together; zero or less means DefaultDeadLetterBytes.
func OpenDeadLetter(dir string, maxBytes int64) (*DeadLetter, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultDeadLetterBytes
	}
	d := &DeadLetter{dir: filepath.Join(dir, deadLetterDir), perFile: maxBytes / 2, now: time.Now}
	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		return nil, fmt.Errorf("dead letter: create %s: %w", d.dir, err)
	}
	if err := d.open(); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *DeadLetter) open() error {
	path := filepath.Join(d.dir, deadLetterCurrent)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("dead letter: open %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close() // nothing written yet; the stat error is the one to report
		return fmt.Errorf("dead letter: stat %s: %w", path, err)
	}
	d.f, d.size = f, st.Size()
	return nil
}

// Write appends one line for m, rejected from topic/partition for reason
// (e.g. "oversize", or the Kafka error). Lines are written but not synced:
// the file is diagnostic and a flood of rejects must not stall the
// exporter; Close syncs. A record whose line would pass half the bound is
// written without its key, value and headers (null, Truncated set, their
// sizes given): its content is not kept, and truncated says so.
func (d *DeadLetter) Write(tp message.TopicPartition, reason message.RejectReason, m message.Message) (truncated bool, err error) {
	rec := DeadLetterRecord{
		Topic: tp.Topic, Partition: tp.Partition, Reason: string(reason),
		Timestamp: m.Timestamp, Key: m.Key, Value: m.Value,
	}
	for _, h := range m.Headers {
		rec.Headers = append(rec.Headers, DeadLetterHeader{Key: h.Key, Value: h.Value})
	}

	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return false, ErrClosed
	}
	rec.Time = d.now()
	line, err := marshalLine(&rec)
	if err != nil {
		return false, err
	}
	if int64(len(line)) > d.perFile {
		rec.Key, rec.Value, rec.Headers = nil, nil, nil
		rec.Truncated, rec.KeyBytes, rec.ValueBytes = true, len(m.Key), len(m.Value)
		if line, err = marshalLine(&rec); err != nil {
			return true, err
		}
		if int64(len(line)) > d.perFile {
			return true, fmt.Errorf("%w: dead-letter line of %d bytes, file bound %d", ErrTooLarge, len(line), d.perFile)
		}
	}
	if d.size+int64(len(line)) > d.perFile {
		if err := d.rotate(); err != nil {
			return rec.Truncated, err
		}
	}
	n, err := d.f.Write(line)
	d.size += int64(n)
	if err != nil {
		return rec.Truncated, fmt.Errorf("dead letter %s: write: %w", d.dir, err)
	}
	return rec.Truncated, nil
}

func marshalLine(rec *DeadLetterRecord) ([]byte, error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("dead letter: encode: %w", err)
	}
	return append(b, '\n'), nil
}

// rotate moves the current file to the previous slot and starts a new one.
func (d *DeadLetter) rotate() error {
	if err := d.f.Sync(); err != nil {
		return fmt.Errorf("dead letter %s: sync: %w", d.dir, err)
	}
	if err := d.f.Close(); err != nil {
		return fmt.Errorf("dead letter %s: close: %w", d.dir, err)
	}
	d.f = nil
	if err := os.Rename(filepath.Join(d.dir, deadLetterCurrent), filepath.Join(d.dir, deadLetterPrevious)); err != nil {
		// Reopen so later writes still have a file.
		if oerr := d.open(); oerr != nil {
			d.closed = true
		}
		return fmt.Errorf("dead letter %s: rotate: %w", d.dir, err)
	}
	if err := d.open(); err != nil {
		d.closed = true
		return err
	}
	return nil
}

// Close syncs and closes the file. Later calls return nil.
func (d *DeadLetter) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	if d.f == nil {
		return nil
	}
	err := d.f.Sync()
	if cerr := d.f.Close(); err == nil {
		err = cerr
	}
	d.f = nil
	if err != nil {
		return fmt.Errorf("dead letter %s: close: %w", d.dir, err)
	}
	return nil
}
