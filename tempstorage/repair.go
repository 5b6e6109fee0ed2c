package tempstorage

import (
	"errors"
	"os"
	"path/filepath"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// Repair does to the store in dir what OpenStore does at a collector's
// start, then closes it: torn tails are copied to corrupt/ and cut off,
// corrupt entries copied to corrupt/ (and skipped from then on), replayed
// segments deleted, the single-queue layout moved into partition queues,
// empty queues removed. A checkpoint that OpenStore ignored (unreadable, or
// pointing where no entry starts) is also rewritten at the oldest entry,
// which OpenStore leaves to the first acknowledgement. Nothing stored is
// dropped; opts.Logger gets OpenStore's log lines, which say what was done.
func Repair(dir string, opts Options) error {
	s, err := OpenStore(dir, opts)
	if err != nil {
		return err
	}
	var errs []error
	s.each(func(p message.TopicPartition, q *queue) {
		if err := q.repairCheckpoint(); err != nil {
			errs = append(errs, partitionErr(p, err))
		}
	})
	errs = append(errs, s.Close())
	return errors.Join(errs...)
}

// repairCheckpoint rewrites the checkpoint (both slots, by write and
// rename) when the file does not hold the position of the oldest entry.
func (q *queue) repairCheckpoint() error {
	q.rmu.Lock()
	defer q.rmu.Unlock()
	q.mu.Lock()
	pos := q.headPos()
	q.mu.Unlock()
	if b, err := os.ReadFile(filepath.Join(q.dir, checkpointName)); err == nil {
		if p, _, err := decodeCheckpoint(b); err == nil && p == pos && len(b) == checkpointLen {
			return nil
		}
	}
	q.log.Warn("temp storage: rewriting the checkpoint at the oldest entry")
	return q.createCheckpoint(q.cpSeq+1, pos)
}
