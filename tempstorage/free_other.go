//go:build !unix

package tempstorage

import (
	"errors"
	"syscall"
)

// freeBytes cannot tell on this platform.
func freeBytes(string) (int64, bool) { return 0, false }

// isNoSpace reports an error of a file system that is out of space.
func isNoSpace(err error) bool { return errors.Is(err, syscall.ENOSPC) }
