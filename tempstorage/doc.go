// Package tempstorage is the exporter's durable file queue for batches
// Kafka did not take, and the dead-letter file for records Kafka will
// never take.
//
// # Store
//
// A Store is what the exporter opens: one queue per (topic, partition)
// under one directory, so replay order is per partition. Each partition is
// its own FIFO and partitions are independent: a partition that stays
// unavailable holds back only its own entries, and new batches of other
// partitions need not go behind its backlog. Layout:
//
//	LOCK                              flock held while open (ErrLocked for a second user)
//	queue/<topic>/<partition>/        one partition queue (below)
//	deadletter/                       see DeadLetter
//
// <topic> is the topic with every byte outside [A-Za-z0-9_.-] written as
// %XX (upper-case hex), "." and ".." written entirely as %XX and the empty
// topic as "%", so any topic is one safe path element and the mapping is
// reversible; <partition> is the decimal partition (negative allowed).
// OpenStore recovers every queue it finds there and removes those left
// empty; a name it cannot map back to a partition is left alone with one
// warning naming it (its files are not read). Segments found directly in the directory (the single-queue
// layout of earlier versions) are moved into their partition queues, oldest
// first. Options apply to every queue, except that MaxBytes bounds their
// total and one goroutine runs the FsyncInterval syncs of all of them.
// Appends to different partitions do not wait for each other's writes or
// syncs. Close removes the directories of empty queues (unless corrupt/
// holds copies). A queue that empties while open holds no file descriptor,
// and the queues share their write buffers, so partitions that once had a
// backlog cost little.
//
// # Partition queues
//
// A partition queue is a FIFO of the partition's message.Batch values in
// one directory:
//
//	segment-<20-digit id>.log         append-only segment files, oldest id first
//	checkpoint                        replay position, two slots written in place
//	head-progress                     how far replays of the oldest entry got (SetHead); absent: nowhere
//	corrupt/<segment>.<offset>.bad    corrupt ranges skipped by recovery
//	corrupt/<segment>.<offset>.torn   interrupted writes cut from the end of the queue
//
// Append writes one entry at the end of the last segment, starting a new
// segment when the entry would take it past Options.SegmentBytes. Each
// entry is framed with a magic number, a format version, its length and a
// CRC-32C (Castagnoli) of header and payload; the payload holds the topic,
// partition, flush reason, the batch's sequence numbers (Batch.Seq) when
// it has them, and each record's key, value, headers, timestamp, signal
// and flush flag (Batch.Bytes is recomputed on read). Peek returns the
// oldest entry; Ack moves the checkpoint past it and deletes segments with
// nothing left to replay, so disk use falls as the backlog drains; when the
// last entry is acknowledged the last segment goes too. Store.Backlog
// counts a partition's entries so that its new batches can go behind its
// stored ones; a queue holding entries of another partition (files moved
// by hand) makes OpenStore fail rather than replay them out of order.
//
// SetHead records how far replays of the oldest entry got when one failed
// part-way: which of its records Kafka took (or refused for good) and the
// sequence numbers of the others (Batch.Seq: an ambiguous send marks them
// Unsure). From then on Peek returns the entry less those records, with
// that sequence, after a restart too, so a restart neither sends them
// again nor forgets that Kafka may hold the rest. It goes to head-progress
// (write and rename; the layout is at the top of progress.go), which names
// the entry by segment, offset, size, frame CRC and record count, and
// which Ack deletes. A file naming another entry (stale: Ack moved the
// checkpoint but did not get to delete it) is deleted at OpenStore; one that
// does not decode is logged, deleted and ignored: the entry is replayed
// whole, as without it.
//
// Only those exact names are the queue's: a segment name is the prefix, 20
// digits and the suffix (segment-2.log is not segment 2). Anything else in
// the directory is left alone with one warning naming it at OpenStore. Segment
// ids have no gaps, so a segment missing between the checkpoint's and the
// last (deleted by hand) is logged with its ids and counted in Corrupt,
// once per missing segment; one deleted while the queue is open is found
// by Peek, logged and counted the same way.
//
// Options.MaxBytes bounds the bytes of segment files on disk (acknowledged
// entries still in a live segment included); Append returns ErrFull beyond
// it, and ErrTooLarge for an entry that could never fit (MaxEntryBytes
// bounds an entry by its Kafka batch size). A write error (ENOSPC
// included) is returned and the partial entry removed; earlier entries are
// never rewritten. IsFull tells ErrFull, ENOSPC and EDQUOT from other
// errors, and such an error of Store.Append also has a method StorageFull
// that returns true, for callers that do not import this package;
// Store.HasRoom says when an entry would fit again.
//
// A full disk never stops replay: Peek needs no space, Ack writes the
// checkpoint in place (the file is created, with room for both slots,
// before the queue's first entry), and deleting a replayed segment frees
// its bytes. SetHead needs space for a new file: on a full disk it fails
// (ENOSPC), leaving the earlier progress (or none) in force, and replay
// goes on without it.
//
// Durability (Options.Fsync): FsyncBatch (default) syncs the segment before
// Append returns, the checkpoint before Ack returns and the head progress
// before SetHead returns, plus the directory when a segment is created,
// the checkpoint file created or the head progress renamed (a deleted segment
// that comes back after an OS crash lies before the checkpoint and is
// deleted again by OpenStore). FsyncInterval syncs the
// active segment and the directory every Options.FsyncInterval (default
// 1s) and at Close. FsyncNever leaves it to the OS. A process crash loses
// nothing acknowledged under any policy; an OS crash may lose the last
// interval (FsyncInterval) or more (FsyncNever). A checkpoint lost or
// damaged by a crash means entries are replayed again, never skipped.
//
// OpenStore recovers every queue without help: every segment is scanned
// and each entry's CRC checked (one segment is read into memory at a
// time). A range that does not parse at the end of the last segment is an
// interrupted write: it is copied to corrupt/ (*.torn, not counted) and
// truncated. Any other range that does not parse (bad magic, length, CRC,
// a payload that does not decode as far as its records) is copied to
// corrupt/ (*.bad), logged and counted in Corrupt, and the scan resumes at
// the next valid entry. An entry whose CRC holds but whose format version
// this build does not know is not damage: OpenStore fails (below). A
// checkpoint that is unreadable, points past the end of its segment, past
// the last segment, or into the middle of an entry is ignored with a
// warning and the affected data replayed. Memory use is 16 bytes per
// queued entry plus one write buffer per Append in progress, shared by
// the queues.
//
// # Entry format versions
//
// Version 1 is an entry without a sequence; version 2 adds the batch's
// message.Sequence (producer id, epoch, base sequence, the record counts
// of the record batches it was numbered as, Unsure), so that a replay
// resends the records under the numbers they had and the broker writes
// them once. Append writes v2 for a batch with a sequence, v1 for one
// without (byte for byte what earlier builds wrote); a sequence that does
// not fit the batch's records is left out with an error logged. Both are
// read. The layout is at the top of codec.go.
//
// Upgrade: queues of earlier builds (v1) are read as they are, and new
// entries go behind them, in the same segment.
//
// Downgrade: a build that reads only v1 takes a v2 entry (a valid frame of
// an unknown version) for damage: it copies it to corrupt/ (*.bad, counted
// and logged as a corrupt entry; *.torn when it ends the last segment) and
// does not replay it. Its records are not lost (the copy holds them) but
// are not sent either, so drain the queue before going back (kbq ls shows
// it empty) or keep the directory for the newer build. A build without
// head progress leaves head-progress alone, with a warning naming it, and
// replays the oldest entry whole. From this version
// on, an entry of a version newer than the build knows makes OpenStore (and
// Repair) fail with an error naming the segment and offset, changing
// nothing; Inspect reports it as ProblemNewerFormat.
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
