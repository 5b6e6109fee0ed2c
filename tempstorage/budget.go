package tempstorage

import (
	"sync/atomic"
)

// byteBudget is the MaxBytes bound, shared by the queues of a Store (the
// single-queue layout being migrated has its own). stored <= used: an
// append reserves its bytes in used before writing and adds them to stored
// once written; a deleted segment leaves stored first.
type byteBudget struct {
	max    int64
	dir    string       // named in ErrFull
	used   atomic.Int64 // stored plus appends in flight
	stored atomic.Int64 // bytes of segments not yet fully replayed, all queues
}

// reserve takes n bytes if they fit; otherwise it returns false and the
// bytes in use.
func (b *byteBudget) reserve(n int64) (int64, bool) {
	for {
		used := b.used.Load()
		if used+n > b.max {
			return used, false
		}
		if b.used.CompareAndSwap(used, used+n) {
			return used + n, true
		}
	}
}

// unreserve gives back a reservation that was not written.
func (b *byteBudget) unreserve(n int64) { b.used.Add(-n) }

// commit counts a reservation as written.
func (b *byteBudget) commit(n int64) { b.stored.Add(n) }

// add counts n bytes found on disk, even past the bound.
func (b *byteBudget) add(n int64) {
	b.used.Add(n)
	b.stored.Add(n)
}

// free gives back n bytes deleted from disk.
func (b *byteBudget) free(n int64) {
	b.stored.Add(-n)
	b.used.Add(-n)
}
