// Package tempstorage is the exporter's durable file queue for batches
// Kafka did not take, and the dead-letter file for records Kafka will
// never take.
//
// # Queue
//
// A Queue is a FIFO of message.Batch values in one directory:
//
//	LOCK                              flock held while open (ErrLocked for a second user)
//	segment-<20-digit id>.log         append-only segment files, oldest id first
//	checkpoint                        replay position, replaced by write + rename
//	corrupt/<segment>.<offset>.bad    corrupt ranges skipped by recovery
//	corrupt/<segment>.<offset>.torn   interrupted writes cut from the end of the queue
//	deadletter/                       see DeadLetter
//
// Append writes one entry at the end of the last segment, starting a new
// segment when the entry would take it past Options.SegmentBytes. Each
// entry is framed with a magic number, a format version, its length and a
// CRC-32C (Castagnoli) of header and payload; the payload holds the topic,
// partition, flush reason and each record's key, value, headers, timestamp
// and flush flag (Batch.Bytes is recomputed on read). Peek returns the
// oldest entry; Ack moves the checkpoint past it and deletes segments with
// nothing left to replay, so disk use falls as the backlog drains; when the
// last entry is acknowledged the last segment goes too. The queue is one
// FIFO across partitions: replay is oldest first. Backlog gives the count
// per partition so the exporter can put a partition's new batches behind
// its stored ones.
//
// Options.MaxBytes bounds the bytes of segment files on disk (acknowledged
// entries still in a live segment included); Append returns ErrFull beyond
// it, and ErrTooLarge for an entry that could never fit. A write error
// (ENOSPC included) is returned and the partial entry removed; earlier
// entries are never rewritten.
//
// Durability (Options.Fsync): FsyncBatch (default) syncs the segment before
// Append returns and the checkpoint before Ack returns, plus the directory
// when a segment is created or the checkpoint renamed (a deleted segment
// that comes back after an OS crash lies before the checkpoint and is
// deleted again by Open). FsyncInterval syncs the
// active segment and the directory every Options.FsyncInterval (default
// 1s) and at Close. FsyncNever leaves it to the OS. A process crash loses
// nothing acknowledged under any policy; an OS crash may lose the last
// interval (FsyncInterval) or more (FsyncNever). A checkpoint lost or
// damaged by a crash means entries are replayed again, never skipped.
//
// Open recovers without help: every segment is scanned and each entry's
// CRC checked (one segment is read into memory at a time). A range that
// does not parse at the end of the last segment is an interrupted write:
// it is copied to corrupt/ (*.torn, not counted) and truncated. Any other
// range that does not parse (bad magic, length, CRC or version) is copied
// to corrupt/ (*.bad), logged and counted in Corrupt, and the scan resumes
// at the next valid entry. A checkpoint that is unreadable, points past the
// end of its segment, past the last segment, or into the middle of an
// entry is ignored with a warning and the affected data replayed. Memory
// use is 16 bytes per queued entry plus one entry of write buffer.
//
// # Dead letters
//
// DeadLetter writes rejected records as JSON lines (DeadLetterRecord) to
// <dir>/deadletter/deadletter.jsonl. When the next line would take that file
// past half the bound it is renamed to deadletter.1.jsonl, replacing the
// previous one, so the two files together stay within the bound (default
// DefaultDeadLetterBytes) and the newest rejects are kept. Lines are not
// synced one by one; rotation and Close sync.
package tempstorage
