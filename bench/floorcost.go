package main

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"testing"
)

// What a record costs at best: the work no Kafka producer can skip for one
// 200-byte record on this machine, each part measured on its own as ns per
// record. A producer copies the value into the batch it sends (copy),
// frames it as a Kafka v2 record (encode: the varints of length, attributes,
// timestamp and offset deltas, key and value lengths and the header
// count), computes the batch's CRC32C (crc, one checksum over a 1 MiB batch
// divided by its records) and writes the batch to the broker's socket
// (syscall, one write(2) of 1 MiB to a loopback TCP connection divided by
// its records). floorcost_test.go runs each part as a Go benchmark; the
// bench measures them with testing.Benchmark and reports them next to what
// the systems spend.

// floorValueBytes is the value of the floor estimate's record: the bench's
// 200-byte body.
const floorValueBytes = 200

// floorBatchBytes is the batch the estimate amortises per-batch work over:
// 1 MiB, the producers' largest produce request here.
const floorBatchBytes = 1 << 20

// floorCost is the estimate, in ns per record.
type floorCost struct {
	RecordBytes     int     `json:"record_bytes"`      // one encoded Kafka record
	RecordsPerBatch int     `json:"records_per_batch"` // records in floorBatchBytes
	CopyNs          float64 `json:"copy_ns"`
	EncodeNs        float64 `json:"encode_ns"`
	CRCNs           float64 `json:"crc_ns"`
	SyscallNs       float64 `json:"syscall_ns"`
}

func (f floorCost) totalNs() float64 { return f.CopyNs + f.EncodeNs + f.CRCNs + f.SyscallNs }

// floorRecord is the value and the batch the benchmarks write records into.
type floorRecord struct {
	value []byte
	batch []byte
	size  int // encoded record bytes
	per   int // records per batch
}

func newFloorRecord() *floorRecord {
	r := &floorRecord{value: make([]byte, floorValueBytes), batch: make([]byte, floorBatchBytes)}
	for i := range r.value {
		r.value[i] = 'a' + byte(i%26)
	}
	r.size = len(r.frame(r.batch[:0], 499)) + floorValueBytes
	r.per = floorBatchBytes / r.size
	return r
}

// frame appends the Kafka v2 record framing of a keyless, headerless record
// of floorValueBytes at offsetDelta: everything but the value's bytes.
func (r *floorRecord) frame(dst []byte, offsetDelta int) []byte {
	var body [32]byte
	b := body[:0]
	b = append(b, 0)                                   // attributes
	b = binary.AppendVarint(b, int64(offsetDelta))     // timestamp delta (ms)
	b = binary.AppendVarint(b, int64(offsetDelta))     // offset delta
	b = binary.AppendVarint(b, -1)                     // key length: null
	b = binary.AppendVarint(b, int64(floorValueBytes)) // value length
	n := len(b) + floorValueBytes + 1                  // + value + header count
	dst = binary.AppendVarint(dst, int64(n))
	dst = append(dst, b...)
	// The value goes here (copy); then the header count.
	return binary.AppendVarint(dst, 0)
}

// benchFloorCopy copies the value into the batch, record after record.
func benchFloorCopy(b *testing.B) {
	r := newFloorRecord()
	b.SetBytes(floorValueBytes)
	off := 0
	for b.Loop() {
		if off+r.size > len(r.batch) {
			off = 0
		}
		copy(r.batch[off:], r.value)
		off += r.size
	}
}

// benchFloorEncode writes the framing of record after record.
func benchFloorEncode(b *testing.B) {
	r := newFloorRecord()
	off, i := 0, 0
	for b.Loop() {
		if off+r.size > len(r.batch) {
			off, i = 0, 0
		}
		r.frame(r.batch[off:off], i)
		off += r.size
		i++
	}
}

// benchFloorCRC takes the CRC32C of a full batch once per RecordsPerBatch
// records.
func benchFloorCRC(b *testing.B) {
	r := newFloorRecord()
	tab := crc32.MakeTable(crc32.Castagnoli)
	used := r.per * r.size
	i := 0
	for b.Loop() {
		if i++; i == r.per {
			i = 0
			crc32.Checksum(r.batch[:used], tab)
		}
	}
}

// benchFloorSyscall writes a full batch to a loopback TCP connection (a
// reader on the other end discards it) once per RecordsPerBatch records.
func benchFloorSyscall(b *testing.B) {
	r := newFloorRecord()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.CopyBuffer(io.Discard, c, make([]byte, floorBatchBytes))
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	used := r.per * r.size
	i := 0
	for b.Loop() {
		if i++; i == r.per {
			i = 0
			if _, err := c.Write(r.batch[:used]); err != nil {
				b.Fatal(err)
			}
		}
	}
	c.Close()
	<-done
}

// measureFloorCost runs the four benchmarks.
func measureFloorCost() (floorCost, error) {
	testing.Init()
	r := newFloorRecord()
	f := floorCost{RecordBytes: r.size, RecordsPerBatch: r.per}
	for _, part := range []struct {
		ns    *float64
		bench func(*testing.B)
	}{
		{&f.CopyNs, benchFloorCopy}, {&f.EncodeNs, benchFloorEncode}, {&f.CRCNs, benchFloorCRC}, {&f.SyscallNs, benchFloorSyscall},
	} {
		res := testing.Benchmark(part.bench)
		if res.N == 0 {
			return f, fmt.Errorf("floor cost benchmark failed")
		}
		*part.ns = float64(res.T.Nanoseconds()) / float64(res.N)
	}
	return f, nil
}
