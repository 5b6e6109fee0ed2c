package tempstorage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
)

// storeQueueDir holds the Store's partition queues: queue/<topic>/<partition>/.
const storeQueueDir = "queue"

// Store is a set of queues, one per (topic, partition), under one
// directory: replay of a partition waits only for that partition. All
// methods are safe for concurrent use: senders Append to any partitions
// while one replay loop calls Partitions, Peek and Ack.
type Store struct {
	dir    string
	opts   Options     // with defaults
	budget *byteBudget // MaxBytes, shared by the queues
	bufs   sync.Pool   // of *[]byte: write buffers the queues borrow for an Append
	log    *zap.Logger
	lock   *os.File

	// corruptGone counts corrupt entries of queues OpenStore closed (empty
	// ones, the single-queue layout); set before the Store is shared.
	corruptGone int64

	// mu guards the map, never I/O: a queue is opened outside it.
	mu     sync.Mutex
	queues map[message.TopicPartition]*storeQueue
	closed bool

	closeOnce sync.Once
	stop      chan struct{} // FsyncInterval loop
	done      chan struct{}
}

// storeQueue is a map slot: q (or err) is set before ready is closed, by
// the Append that created the slot.
type storeQueue struct {
	ready chan struct{}
	q     *queue
	err   error
}

// OpenStore opens (creating it, mode 0700, if missing) the store in dir,
// locks it against other processes (ErrLocked) and opens, recovering it,
// every partition queue under dir/queue/. Queues left empty are removed.
// Segments of the single-queue layout (directly in dir) are moved into
// their partition queues, oldest first. Options apply to every queue;
// MaxBytes bounds their total.
func OpenStore(dir string, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("temp storage: create %s: %w", dir, err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	s := &Store{
		dir:    dir,
		opts:   opts,
		budget: &byteBudget{max: opts.MaxBytes, dir: dir},
		log:    opts.Logger.With(zap.String("directory", dir)),
		lock:   lock,
		queues: make(map[message.TopicPartition]*storeQueue),
	}
	if err := s.load(); err != nil {
		for _, e := range s.queues {
			if e.q != nil {
				_ = e.q.Close() // the load error is the one to report; the data stays for the next open
			}
		}
		_ = lock.Close() // closing the fd drops the flock regardless
		return nil, err
	}
	if opts.Fsync == FsyncInterval {
		tick, stopTick := opts.newTicker(opts.FsyncInterval)
		s.stop, s.done = make(chan struct{}), make(chan struct{})
		go s.syncLoop(tick, stopTick)
	}
	return s, nil
}

// load opens the partition queues on disk and migrates the single-queue
// layout. Only OpenStore calls it, before the Store is shared.
func (s *Store) load() error {
	root := filepath.Join(s.dir, storeQueueDir)
	if err := os.MkdirAll(root, 0o700); err != nil {
		return fmt.Errorf("temp storage: create %s: %w", root, err)
	}
	topics, err := os.ReadDir(root)
	if err != nil {
		return fmt.Errorf("temp storage: %w", err)
	}
	for _, td := range topics {
		tdir := filepath.Join(root, td.Name())
		topic, err := unescapeName(td.Name())
		if err == nil && !td.IsDir() {
			err = errors.New("not a directory")
		}
		if err != nil {
			s.log.Warn("temp storage: leaving alone a file the store did not write (not a topic directory)",
				zap.String("file", tdir), zap.NamedError("reason", err))
			continue
		}
		parts, err := os.ReadDir(tdir)
		if err != nil {
			return fmt.Errorf("temp storage: %w", err)
		}
		for _, pd := range parts {
			pdir := filepath.Join(tdir, pd.Name())
			partition, err := parsePartition(pd.Name())
			if err == nil && !pd.IsDir() {
				err = errors.New("not a directory")
			}
			if err != nil {
				s.log.Warn("temp storage: leaving alone a file the store did not write (not a partition directory)",
					zap.String("file", pdir), zap.NamedError("reason", err))
				continue
			}
			if err := s.loadQueue(message.TopicPartition{Topic: topic, Partition: partition}, pdir); err != nil {
				return err
			}
		}
		removeIfEmpty(tdir)
	}
	return s.migrate()
}

// loadQueue opens the queue of p in dir; an empty one is closed and its
// directory removed. Entries of another partition (files moved by hand)
// refuse it.
func (s *Store) loadQueue(p message.TopicPartition, dir string) error {
	q, routes, err := s.openPartition(p, dir)
	if err != nil {
		return partitionErr(p, err)
	}
	if i := slices.IndexFunc(routes, func(r message.TopicPartition) bool { return r != p }); i >= 0 {
		_ = q.Close() // the misplaced entries are the error to report
		return fmt.Errorf("temp storage: %s holds entries of %s/%d, not of %s/%d; move them out",
			dir, routes[i].Topic, routes[i].Partition, p.Topic, p.Partition)
	}
	if q.Len() > 0 {
		s.queues[p] = readySlot(q)
		return nil
	}
	s.corruptGone += q.Corrupt()
	if err := q.Close(); err != nil {
		return partitionErr(p, err)
	}
	s.removeQueueDir(dir)
	return nil
}

// openPartition opens p's queue in dir (openQueue), creating it if missing.
func (s *Store) openPartition(p message.TopicPartition, dir string) (*queue, []message.TopicPartition, error) {
	o := s.opts
	o.Logger = s.opts.Logger.With(zap.String("topic", p.Topic), zap.Int32("partition", p.Partition))
	return openQueue(dir, o, s.budget, &s.bufs)
}

func readySlot(q *queue) *storeQueue {
	e := &storeQueue{ready: make(chan struct{}), q: q}
	close(e.ready)
	return e
}

// Append stores b behind the entries of its partition (b.Topic,
// b.Partition), creating the partition's queue on first use. When it
// returns nil the entry is on disk as the fsync policy promises. It
// returns an error wrapping ErrFull when the entry would take the store's
// total past MaxBytes, ErrTooLarge when it never fits, or the OS error
// (ENOSPC included); on any error nothing of b is stored and earlier
// entries are untouched. A sequence (b.Seq) that does not fit b's records
// is logged and left out: the records are kept, a replay sends them under
// new numbers. An error for lack of space (IsFull) also has a method
// StorageFull that returns true, which tells it to a caller that does not
// import this package (the dispatcher's Storage).
func (s *Store) Append(b message.Batch) error {
	p := b.TopicPartition()
	q, err := s.queueFor(p)
	if err == nil {
		err = q.Append(b)
	}
	if err != nil {
		err = partitionErr(p, err)
		if IsFull(err) {
			return fullError{err}
		}
		return err
	}
	return nil
}

// fullError is an error of Append for lack of space (IsFull).
type fullError struct{ error }

func (e fullError) Unwrap() error { return e.error }

// StorageFull reports that the entry was refused for lack of space.
func (fullError) StorageFull() bool { return true }

// queueFor returns p's queue, opening it when there is none. Only appends
// to p wait for the open.
func (s *Store) queueFor(p message.TopicPartition) (*queue, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	e, ok := s.queues[p]
	if ok {
		s.mu.Unlock()
		<-e.ready
		return e.q, e.err
	}
	e = &storeQueue{ready: make(chan struct{})}
	s.queues[p] = e
	s.mu.Unlock()

	e.q, e.err = s.create(p)
	if e.err != nil {
		s.mu.Lock()
		delete(s.queues, p) // the next Append tries again
		s.mu.Unlock()
	}
	close(e.ready)
	return e.q, e.err
}

// create opens a new partition queue.
func (s *Store) create(p message.TopicPartition) (*queue, error) {
	root := filepath.Join(s.dir, storeQueueDir)
	tdir := filepath.Join(root, EscapeName(p.Topic))
	q, _, err := s.openPartition(p, filepath.Join(tdir, strconv.FormatInt(int64(p.Partition), 10)))
	if err != nil {
		return nil, err
	}
	if s.opts.Fsync != FsyncNever {
		// The new directories' names must survive an OS crash with the
		// entries in them (each queue syncs only its own directory).
		if err := errors.Join(syncDir(tdir), syncDir(root)); err != nil {
			_ = q.Close() // empty; the sync error is the one to report
			return nil, fmt.Errorf("temp storage %s: sync directory: %w", tdir, err)
		}
	}
	return q, nil
}

// lookup returns p's queue, or nil when there is none (yet).
func (s *Store) lookup(p message.TopicPartition) (*queue, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	e, ok := s.queues[p]
	if !ok {
		return nil, nil
	}
	select {
	case <-e.ready:
		return e.q, nil // nil after a failed open
	default:
		return nil, nil // being opened: nothing appended yet
	}
}

// Peek returns the oldest unacknowledged batch of the partition, or ok
// false when it has none. It returns the same batch until Ack; after a
// crash or Close without Ack it is returned again (at-least-once), less
// the records and with the sequence SetHead recorded for it. An entry
// found corrupt here is moved aside and counted (Corrupt) like those found
// by OpenStore, and the next one is returned. Byte slices of the batch are
// the caller's.
func (s *Store) Peek(p message.TopicPartition) (message.Batch, bool, error) {
	q, err := s.lookup(p)
	if err != nil {
		return message.Batch{}, false, partitionErr(p, err)
	}
	if q == nil {
		return message.Batch{}, false, nil
	}
	b, ok, err := q.Peek()
	if err != nil {
		return message.Batch{}, false, partitionErr(p, err)
	}
	return b, ok, nil
}

// Ack marks the oldest entry of the partition (the one Peek returns) as
// replayed: the checkpoint moves past it (durable when Ack returns under
// FsyncBatch), its head progress (SetHead) is deleted and segments with
// nothing left to replay are deleted. On error nothing changes. It returns
// ErrEmpty when the partition has none.
func (s *Store) Ack(p message.TopicPartition) error {
	q, err := s.lookup(p)
	if err == nil && q == nil {
		err = ErrEmpty
	}
	if err == nil {
		err = q.Ack()
	}
	if err != nil {
		return partitionErr(p, err)
	}
	return nil
}

// SetHead records, durably, how far replays of the partition's oldest
// entry (the one Peek returns) got: done[i] is set for each record of the
// batch Peek returned that Kafka took or refused for good (nil or all
// false: none; shorter than the batch: the rest are not done), and seq is
// the sequence numbers of the others (nil: none; its counts must add up to
// them). Until Ack, Peek then returns the entry less those records, with
// Seq set to seq; after a restart too. Calls compose: indices are those of
// the batch Peek returns at the time of the call. On error (ENOSPC
// included) the earlier progress, or none, stays in force: Peek and Ack
// are unaffected. It returns ErrEmpty when the partition has none.
func (s *Store) SetHead(p message.TopicPartition, done []bool, seq *message.Sequence) error {
	q, err := s.lookup(p)
	if err == nil && q == nil {
		err = ErrEmpty
	}
	if err == nil {
		err = q.SetHead(done, seq)
	}
	if err != nil {
		return partitionErr(p, err)
	}
	return nil
}

// Backlog returns the number of entries queued for the partition: while
// it is above zero, new batches of the partition belong behind them.
func (s *Store) Backlog(p message.TopicPartition) int {
	s.mu.Lock()
	e, ok := s.queues[p]
	s.mu.Unlock()
	if !ok {
		return 0
	}
	select {
	case <-e.ready:
		if e.q != nil {
			return e.q.Len()
		}
	default:
	}
	return 0
}

// Partitions returns the partitions with queued entries, sorted by topic
// then partition.
func (s *Store) Partitions() []message.TopicPartition {
	var ps []message.TopicPartition
	s.each(func(p message.TopicPartition, q *queue) {
		if q.Len() > 0 {
			ps = append(ps, p)
		}
	})
	slices.SortFunc(ps, message.TopicPartition.Compare)
	return ps
}

// Len returns the number of entries in all queues.
func (s *Store) Len() int {
	n := 0
	s.each(func(_ message.TopicPartition, q *queue) { n += q.Len() })
	return n
}

// Bytes returns the bytes on disk of segments not yet fully replayed, in
// all queues: the figure MaxBytes bounds.
func (s *Store) Bytes() int64 { return s.budget.stored.Load() }

// HasRoom reports whether an entry of n bytes would be stored now: it fits
// within MaxBytes and, where the platform tells, within the space free on
// the file system. A disk that refused an entry (IsFull) has room again
// once this holds for the largest entry the caller can append.
func (s *Store) HasRoom(n int64) bool {
	if s.budget.used.Load()+n > s.budget.max {
		return false
	}
	free, ok := s.opts.FS.Free(s.dir)
	return !ok || free >= n
}

// Corrupt returns the number of corrupt entries moved aside, in all
// queues, since OpenStore.
func (s *Store) Corrupt() int64 {
	n := s.corruptGone
	s.each(func(_ message.TopicPartition, q *queue) { n += q.Corrupt() })
	return n
}

// Dir returns the store directory.
func (s *Store) Dir() string { return s.dir }

// each calls fn for every open queue, outside the Store's lock.
func (s *Store) each(fn func(message.TopicPartition, *queue)) {
	type pq struct {
		p message.TopicPartition
		q *queue
	}
	s.mu.Lock()
	qs := make([]pq, 0, len(s.queues))
	for p, e := range s.queues {
		select {
		case <-e.ready:
			if e.q != nil {
				qs = append(qs, pq{p, e.q})
			}
		default:
		}
	}
	s.mu.Unlock()
	for _, x := range qs {
		fn(x.p, x.q)
	}
}

// Close stops the sync loop, closes every queue (syncing what the policy
// asks), removes the directories of empty queues and releases the lock.
// Queued data stays for the next OpenStore. Later calls return nil; other
// methods return ErrClosed.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		slots := make(map[message.TopicPartition]*storeQueue, len(s.queues))
		for p, e := range s.queues {
			slots[p] = e
		}
		s.mu.Unlock()
		if s.stop != nil {
			close(s.stop)
			<-s.done
		}
		var errs []error
		emptied := make(map[string]bool) // topic directories
		for p, e := range slots {
			<-e.ready // an Append still opening it
			if e.q == nil {
				continue
			}
			if cerr := e.q.Close(); cerr != nil {
				errs = append(errs, partitionErr(p, cerr))
				continue
			}
			if e.q.Len() == 0 {
				s.removeQueueDir(e.q.Dir())
				emptied[filepath.Dir(e.q.Dir())] = true
			}
		}
		for dir := range emptied {
			removeIfEmpty(dir)
		}
		errs = append(errs, s.lock.Close())
		err = errors.Join(errs...)
	})
	return err
}

// syncLoop syncs every queue with unsynced data each tick (FsyncInterval).
func (s *Store) syncLoop(tick <-chan time.Time, stopTick func()) {
	defer close(s.done)
	defer stopTick()
	for {
		select {
		case <-s.stop:
			return
		case <-tick:
			s.each(func(_ message.TopicPartition, q *queue) {
				if err := q.syncNow(); err != nil {
					q.log.Warn("temp storage: periodic sync", zap.Error(err))
				}
			})
		}
	}
}

// removeQueueDir deletes the directory of a closed queue with no segments,
// its checkpoint, a stale head progress and an empty corrupt/ included. Anything else in it (a
// segment, kept corrupt ranges) keeps it, checkpoint and all: segment ids,
// and so the names of corrupt copies, must not start over.
func (s *Store) removeQueueDir(dir string) {
	_ = os.Remove(filepath.Join(dir, corruptDir)) // fails unless empty, which is the test
	des, err := os.ReadDir(dir)
	if err != nil {
		s.log.Warn("temp storage: remove empty queue directory", zap.String("queue", dir), zap.Error(err))
		return
	}
	for _, de := range des {
		switch de.Name() {
		case checkpointName, checkpointTmp, headProgressName, headProgressTmp:
		default:
			return
		}
	}
	s.removeCheckpoint(dir)
	if err := os.Remove(dir); err != nil {
		s.log.Warn("temp storage: remove empty queue directory", zap.String("queue", dir), zap.Error(err))
	}
}

// removeCheckpoint deletes the checkpoint (and any head progress, stale
// in an empty queue) of an empty queue in dir. The
// directory is synced first (unless FsyncNever) so that replayed segments
// deleted before cannot come back after an OS crash without the checkpoint
// that marks them replayed.
func (s *Store) removeCheckpoint(dir string) {
	if s.opts.Fsync != FsyncNever {
		if err := syncDir(dir); err != nil {
			s.log.Warn("temp storage: sync directory; keeping the checkpoint", zap.String("queue", dir), zap.Error(err))
			return
		}
	}
	for _, name := range []string{headProgressTmp, headProgressName, checkpointTmp, checkpointName} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("temp storage: delete checkpoint of an empty queue", zap.String("queue", dir), zap.Error(err))
		}
	}
}

// removeIfEmpty removes dir if it is an empty directory.
func removeIfEmpty(dir string) {
	_ = os.Remove(dir) // fails unless empty, which is the test
}

// partitionErr names p in err, an error of p's queue or of the Store about
// p, unless err names it already. The queue's errors start with its
// directory (queue/<topic>/<partition>) or, for ErrFull and ErrTooLarge,
// name the partition; ErrClosed and ErrEmpty as they are get p after them:
// "temp storage empty: logs/3". The prefix is never doubled.
func partitionErr(p message.TopicPartition, err error) error {
	if err == ErrClosed || err == ErrEmpty { // bare, not wrapped: nothing names p yet
		return fmt.Errorf("%w: %s/%d", err, p.Topic, p.Partition)
	}
	return err
}
