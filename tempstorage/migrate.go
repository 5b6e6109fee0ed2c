package tempstorage

import (
	"fmt"

	"go.uber.org/zap"
)

// migrate moves the entries of the single-queue layout (segments directly
// in the store directory, written before Store existed) into their
// partition queues, oldest first, acknowledging each once appended: a
// crash in between replays it twice, never loses it.
func (s *Store) migrate() error {
	ids, _, err := listSegments(s.dir)
	if err != nil {
		return fmt.Errorf("temp storage: %w", err)
	}
	if len(ids) == 0 {
		return nil
	}
	o := s.opts
	o.budget = nil // its own: the old bytes are counted as they are appended
	o.legacyRoot = true
	q, err := Open(s.dir, o)
	if err != nil {
		return err
	}
	n := 0
	for {
		b, ok, err := q.Peek()
		if err == nil && ok {
			if err = s.Append(b); err == nil {
				err = q.Ack()
			}
		}
		if err != nil {
			_ = q.Close() // the error is the one to report; what is left stays for the next open
			// err starts with "temp storage" and names its queue.
			return fmt.Errorf("move the single-queue layout of %s into partition queues: %w", s.dir, err)
		}
		if !ok {
			break
		}
		n++
	}
	s.corruptGone += q.Corrupt()
	if err := q.Close(); err != nil {
		return err
	}
	s.removeCheckpoint(s.dir)
	s.log.Info("temp storage: moved the single-queue layout into partition queues", zap.Int("entries", n))
	return nil
}
