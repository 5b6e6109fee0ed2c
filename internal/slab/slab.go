// Package slab copies the bytes of many small messages into a few shared
// allocations.
package slab

// MaxBytes bounds one slab, so that one message kept long (a partition that
// waits) does not hold much memory of the messages it was built with.
const MaxBytes = 256 << 10

// Slab holds the bytes of the messages of one call: one allocation for many
// messages instead of one each. A Slab is used by one goroutine; its copies
// stay valid after Reset, since the messages keep referring to them.
type Slab struct {
	buf  []byte
	left int // messages of the call not yet taken, to size the next slab
}

// Reset starts a call that will take about n messages.
func (s *Slab) Reset(n int) { s.buf, s.left = nil, n }

// Take returns a capacity-clipped copy of b, so appending to one copy
// cannot touch another, and counts one message taken.
func (s *Slab) Take(b []byte) []byte {
	if s.buf == nil || cap(s.buf)-len(s.buf) < len(b) {
		size := min(len(b)*max(s.left, 1), MaxBytes)
		s.buf = make([]byte, 0, max(size, len(b)))
	}
	s.left--
	start := len(s.buf)
	s.buf = append(s.buf, b...)
	return s.buf[start:len(s.buf):len(s.buf)]
}
