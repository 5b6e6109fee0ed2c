package tempstorage

import (
	"errors"
	"os"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Defaults used when an Options field is zero.
const (
	DefaultMaxBytes        int64 = 1 << 30  // temp_storage.max_bytes
	DefaultSegmentBytes    int64 = 16 << 20 // temp_storage.segment_bytes
	DefaultFsyncInterval         = time.Second
	DefaultDeadLetterBytes int64 = 64 << 20
)

// Errors callers branch on. Returned errors wrap them with the directory and sizes.
var (
	// ErrFull: the entry would take the queue (or store) past
	// Options.MaxBytes. It is temporary: space comes back as the backlog is
	// acknowledged.
	ErrFull = errors.New("temp storage full")
	// ErrTooLarge: the entry alone is larger than Options.MaxBytes (or a
	// dead-letter record larger than its file bound); it can never be stored.
	ErrTooLarge = errors.New("entry larger than temp storage bound")
	// ErrLocked: another process (or another Store in this process) has
	// the directory open.
	ErrLocked = errors.New("temp storage directory in use")
	// ErrClosed: the Store or DeadLetter was closed.
	ErrClosed = errors.New("temp storage closed")
	// ErrEmpty: Ack was called on an empty queue.
	ErrEmpty = errors.New("temp storage empty")
)

// FsyncPolicy says when appended data is forced to stable storage. Its
// values are the temp_storage.fsync names; the zero value is FsyncBatch.
// It is a string, so that a configuration decodes into it as the text it
// is and Validate names a wrong value (numbers and null included).
type FsyncPolicy string

// Fsync policies.
const (
	// FsyncBatch: every Append and every Ack is on stable storage when it
	// returns.
	FsyncBatch FsyncPolicy = "batch"
	// FsyncInterval: data is forced to disk every Options.FsyncInterval and
	// at Close; an OS crash or power loss may lose the last interval.
	FsyncInterval FsyncPolicy = "interval"
	// FsyncNever: the OS decides; a process crash loses nothing, an OS crash
	// may lose anything not yet written back.
	FsyncNever FsyncPolicy = "never"
)

// String returns the configuration name of p.
func (p FsyncPolicy) String() string { return string(p) }

// FsyncPolicies lists every policy: the accepted temp_storage.fsync names.
func FsyncPolicies() []FsyncPolicy { return []FsyncPolicy{FsyncBatch, FsyncInterval, FsyncNever} }

// FsyncNames lists the names of FsyncPolicies, comma-separated.
func FsyncNames() string {
	names := make([]string, 0, len(FsyncPolicies()))
	for _, p := range FsyncPolicies() {
		names = append(names, p.String())
	}
	return strings.Join(names, ", ")
}

// Options configures a Store. Zero fields take the defaults above.
type Options struct {
	// MaxBytes bounds the bytes on disk of segments not yet fully replayed
	// (temp_storage.max_bytes), for a Store the total of all its queues.
	// Append returns ErrFull beyond it.
	MaxBytes int64
	// SegmentBytes is the size at which a new segment file is started
	// (temp_storage.segment_bytes). An entry larger than it gets a segment
	// of its own.
	SegmentBytes int64
	// Fsync is the durability policy (temp_storage.fsync).
	Fsync FsyncPolicy
	// FsyncInterval is how often the FsyncInterval policy syncs; default 1s.
	FsyncInterval time.Duration
	// Logger receives recovery and corruption reports; default no-op.
	Logger *zap.Logger

	// FS is the file system segment and checkpoint files are written
	// through; nil is the operating system's. Tests substitute one that
	// fails (a disk that fills up).
	FS FS

	// Test hook; nil means the real thing.
	newTicker func(d time.Duration) (<-chan time.Time, func())
}

// FS is what the queue writes through: segment files and the checkpoint.
// Reads, renames and deletes go to the operating system directly.
type FS interface {
	OpenFile(name string, flag int, perm os.FileMode) (File, error)
	// Free returns the bytes available to the process on the file system
	// holding dir; ok false when it cannot tell.
	Free(dir string) (n int64, ok bool)
}

// File is the part of *os.File the writer uses.
type File interface {
	WriteAt(p []byte, off int64) (int, error)
	Sync() error
	Truncate(size int64) error
	Close() error
}

// osFS is the operating system's file system.
type osFS struct{}

func (osFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	return os.OpenFile(name, flag, perm)
}

func (osFS) Free(dir string) (int64, bool) { return freeBytes(dir) }

func (o Options) withDefaults() Options {
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.SegmentBytes <= 0 {
		o.SegmentBytes = DefaultSegmentBytes
	}
	if o.Fsync == "" {
		o.Fsync = FsyncBatch
	}
	if o.FsyncInterval <= 0 {
		o.FsyncInterval = DefaultFsyncInterval
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.FS == nil {
		o.FS = osFS{}
	}
	if o.newTicker == nil {
		o.newTicker = func(d time.Duration) (<-chan time.Time, func()) {
			t := time.NewTicker(d)
			return t.C, t.Stop
		}
	}
	return o
}

// IsFull reports whether err says the disk refused an entry for lack of
// space: ErrFull (MaxBytes reached) or the file system's ENOSPC (or EDQUOT,
// a quota). Space comes back as the backlog is acknowledged.
func IsFull(err error) bool { return errors.Is(err, ErrFull) || isNoSpace(err) }
