//go:build !unix

package tempstorage

import (
	"fmt"
	"os"
)

// LockShared does nothing on this platform: without flock there is no
// cross-process check.
func LockShared(string) (release func(), err error) { return func() {}, nil }

// LockDir opens dir/LOCK (creating dir if missing); without flock there is
// no cross-process check on this platform.
func LockDir(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("temp storage: create %s: %w", dir, err)
	}
	return lockDir(dir)
}
