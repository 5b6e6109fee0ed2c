package tempstorage

import (
	"fmt"
	"strings"

	"go.uber.org/zap"
)

// migrate moves the entries of the single-queue layout (segments directly
// in the store directory, written before Store existed) into their
// partition queues, oldest first, acknowledging each once appended: a
// crash in between replays it twice, never loses it.
func (s *Store) migrate() error {
	ids, foreign, err := listSegments(s.dir)
	if err != nil {
		return fmt.Errorf("temp storage: %w", err)
	}
	if len(ids) == 0 {
		return nil
	}
	// The store's own files sit beside the layout's segments: only a stray
	// segment name is worth a warning.
	var strays []string
	for _, name := range foreign {
		if strings.HasPrefix(name, segmentPrefix) {
			strays = append(strays, name)
		}
	}
	leaveAlone(s.opts.Logger, s.dir, strays)
	// One queue holds every partition's entries. Its bytes count in a bound
	// of its own: they are counted in the store's as they are appended.
	q, _, err := newQueue(s.dir, ids, s.opts, &byteBudget{max: s.opts.MaxBytes, dir: s.dir}, &s.bufs)
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
