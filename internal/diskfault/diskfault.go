// Package diskfault is a small disk for tests: a tempstorage.FS whose
// writes fail with ENOSPC once the files under its root would take more
// than its capacity, as a full file system does. Space is what the files
// under the root hold, so deleting a file (by any means) frees it.
package diskfault

import (
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/kafkabatcher/kafkabatcherexporter/tempstorage"
)

// Disk is a file system of Capacity bytes rooted at a directory. It is
// safe for concurrent use.
type Disk struct {
	root string

	mu       sync.Mutex
	capacity int64
	refused  int // writes refused for lack of space
}

// New returns a disk of capacity bytes holding the files under root.
func New(root string, capacity int64) *Disk { return &Disk{root: root, capacity: capacity} }

// SetCapacity changes the size of the disk.
func (d *Disk) SetCapacity(n int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.capacity = n
}

// Refused returns the number of writes refused with ENOSPC so far.
func (d *Disk) Refused() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.refused
}

// Used returns the bytes of the regular files under the root.
func (d *Disk) Used() int64 {
	var n int64
	_ = filepath.WalkDir(d.root, func(_ string, de fs.DirEntry, err error) error {
		if err != nil {
			return nil //nolint:nilerr // a file deleted during the walk holds no space
		}
		if de.Type().IsRegular() {
			if fi, err := de.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// OpenFile implements tempstorage.FS.
func (d *Disk) OpenFile(name string, flag int, perm os.FileMode) (tempstorage.File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &file{f: f, disk: d}, nil
}

// Free implements tempstorage.FS.
func (d *Disk) Free(string) (int64, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return max(d.capacity-d.Used(), 0), true
}

type file struct {
	f    *os.File
	disk *Disk
}

// WriteAt writes what fits and fails with ENOSPC for the rest; writing
// over bytes the file already has needs no space.
func (f *file) WriteAt(p []byte, off int64) (int, error) {
	d := f.disk
	d.mu.Lock()
	defer d.mu.Unlock()
	fi, err := f.f.Stat()
	if err != nil {
		return 0, err
	}
	free := d.capacity - d.Used()
	grow := max(off+int64(len(p))-fi.Size(), 0)
	if grow <= free {
		return f.f.WriteAt(p, off)
	}
	d.refused++
	fits := max(fi.Size()+max(free, 0)-off, 0)
	n := 0
	if fits > 0 {
		n, _ = f.f.WriteAt(p[:fits], off) // the short write a full disk gives
	}
	return n, &os.PathError{Op: "write", Path: f.f.Name(), Err: syscall.ENOSPC}
}

func (f *file) Sync() error               { return f.f.Sync() }
func (f *file) Truncate(size int64) error { return f.f.Truncate(size) }
func (f *file) Close() error              { return f.f.Close() }
