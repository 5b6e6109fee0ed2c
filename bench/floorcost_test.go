package main

import "testing"

// The floor estimate's parts as Go benchmarks, each ns/op one 200-byte
// record (floorcost.go):
//
//	cd bench && go test -run '^$' -bench Floor -benchtime 2s .
func BenchmarkFloorCopy(b *testing.B)    { benchFloorCopy(b) }
func BenchmarkFloorEncode(b *testing.B)  { benchFloorEncode(b) }
func BenchmarkFloorCRC32C(b *testing.B)  { benchFloorCRC(b) }
func BenchmarkFloorSyscall(b *testing.B) { benchFloorSyscall(b) }

func TestFloorRecordFraming(t *testing.T) {
	r := newFloorRecord()
	// At offset delta 499: attributes 1 + timestamp delta 2 + offset delta
	// 2 + key length 1 + value length 2 + value 200 + header count 1 = 209,
	// and its length as a zigzag varint, 2.
	if r.size != 211 {
		t.Errorf("record bytes = %d, want 211", r.size)
	}
	if r.per != (1<<20)/211 {
		t.Errorf("records per batch = %d", r.per)
	}
}
