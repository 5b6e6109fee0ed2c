//go:build unix

package tempstorage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// LockShared takes a shared lock on dir/LOCK, for a tool that reads the
// directory and must not do so while a collector has it open. It fails
// with an error wrapping ErrLocked, naming the holder's pid, while a
// collector (or a tool that writes, LockDir) holds the lock. A directory
// without a LOCK file was never opened by a collector: there is nothing to
// lock and release does nothing. Several readers may hold it at once.
func LockShared(dir string) (release func(), err error) {
	path := filepath.Join(dir, lockName)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return func() {}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("temp storage: lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		_ = f.Close() // no lock taken; the flock error is the one to report
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, lockedByRunning(dir)
		}
		return nil, fmt.Errorf("temp storage: lock %s: %w", path, err)
	}
	return func() { _ = f.Close() }, nil // closing the fd drops the flock
}

// LockDir takes the exclusive lock a collector takes on dir (creating dir
// and dir/LOCK if missing), for a tool that changes the directory. The
// error wraps ErrLocked and names the holder's pid while another process
// holds it, shared or exclusive. Close releases it.
func LockDir(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("temp storage: create %s: %w", dir, err)
	}
	f, err := lockDir(dir)
	if errors.Is(err, ErrLocked) {
		return nil, lockedByRunning(dir)
	}
	return f, err
}

// lockedByRunning is the ErrLocked error of a tool: the holder is a
// running collector (or another tool) and the fix is to stop it or to work
// on a copy.
func lockedByRunning(dir string) error {
	holder := "unknown"
	if b, err := os.ReadFile(filepath.Join(dir, lockName)); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		holder = strings.TrimSpace(string(b))
	}
	return fmt.Errorf("%w: %s is locked by a running process (pid %s), a collector using it as its temp_storage.directory: "+
		"stop that collector first (read-only commands also work on a copy: cp -a %s COPY)", ErrLocked, dir, holder, dir)
}
