package kafkabatcherexporter

import (
	"sync"

	"go.uber.org/zap"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
	"github.com/kafkabatcher/kafkabatcherexporter/tempstorage"
)

// deadLetters is the dead-letter file: records Kafka will never take are
// written to it, with the reason. It is opened on the first such record
// and closed by shutdown; its methods may be called from any goroutine.
type deadLetters struct {
	dir      string // set by start
	maxBytes int64  // bound of the dead-letter files; 0: tempstorage's default

	mu   sync.Mutex
	file *tempstorage.DeadLetter // nil until the first record
}

// write writes m, rejected for reason, opening the file first if need be.
// truncated: the line would pass the file bound, so only the record's
// sizes are kept.
func (d *deadLetters) write(m message.Message, reason message.RejectReason) (truncated bool, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.file == nil {
		f, err := tempstorage.OpenDeadLetter(d.dir, d.maxBytes)
		if err != nil {
			return false, err // tempstorage's errors say "dead letter"
		}
		d.file = f
	}
	return d.file.Write(message.TopicPartition{Topic: m.Topic, Partition: m.Partition}, reason, m)
}

// close closes the file if it was opened.
func (d *deadLetters) close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.file == nil {
		return nil
	}
	err := d.file.Close()
	d.file = nil
	return err
}

// bytes returns the size of the dead-letter files on disk.
func (d *deadLetters) bytes() (int64, error) { return tempstorage.DeadLetterBytes(d.dir) }

// deadLetter counts m as rejected for reason, writes it to the dead-letter
// file and logs it, with cause when there is one.
func (e *kafkaBatcherExporter) deadLetter(m message.Message, reason message.RejectReason, cause error) {
	e.tel.rejected([]message.Message{m}, reason)
	fields := []zap.Field{
		zap.String("topic", m.Topic), zap.Int32("partition", m.Partition),
		zap.Int("bytes", len(m.Key)+len(m.Value)), zap.String("reason", string(reason)),
	}
	if cause != nil {
		fields = append(fields, zap.NamedError("cause", cause))
	}
	truncated, err := e.deadLetters.write(m, reason)
	if err != nil {
		e.logger.Error("record rejected and not written to the dead-letter file", append(fields, zap.Error(err))...)
		return
	}
	if truncated {
		// The line would pass the file bound: only the record's sizes are kept.
		e.logger.Warn("record rejected to the dead-letter file without its content (too large to keep: key, value and headers are null)",
			append(fields, zap.Bool("truncated", true))...)
		return
	}
	e.logger.Warn("record rejected to the dead-letter file", fields...)
}
