package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkabatcher/kafkabatcherexporter/message"
	"github.com/kafkabatcher/kafkabatcherexporter/partitioner"
	"github.com/kafkabatcher/kafkabatcherexporter/tempstorage"
)

const resendSynopsis = `DIR --brokers HOST:PORT[,...] [flags]
       kbq resend DIR --config collector.yaml [--exporter kafkabatcher/NAME] [flags]

Sends the records of the dead-letter files (oldest first) to Kafka, to the topic and
partition each was rejected from, or re-partitioned with --repartition. Records go in
rounds of --records; after each round the lines Kafka acknowledged are removed from
their file (write and rename: a crash leaves the file before or after the round, so a
record is sent twice at most when it was in the round in flight). What Kafka refuses
stays where it is and is listed with Kafka's reason; the exit status is then 1. Lines
written without their content (truncated) cannot be sent and stay.`

// resendOptions are resend's flags.
type resendOptions struct {
	kafka       kafkaOptions
	topic       string
	partition   int
	repartition bool
	strategy    string
	records     int
	timeout     time.Duration
}

func runResend(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	fs := newFlagSet("resend", resendSynopsis, stderr)
	var o resendOptions
	o.kafka.register(fs)
	fs.StringVar(&o.topic, "topic", "", "only dead letters of this topic")
	fs.IntVar(&o.partition, "partition", -1, "only dead letters of this partition (with --topic)")
	fs.BoolVar(&o.repartition, "repartition", false, "place each record on a partition of its topic's current partition count (by key, --strategy) instead of the partition it was rejected from")
	fs.StringVar(&o.strategy, "strategy", "", "partitioning strategy for --repartition: "+strings.Join(partitioner.Strategies(), ", ")+" (default: the config's partitioning.strategy, else murmur2)")
	fs.IntVar(&o.records, "records", 500, "records per round: lines are removed after each round Kafka acknowledged")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "how long a round may take before its unacknowledged records are left in place")
	dir, err := parseArgs(fs, args)
	if err != nil {
		return exitFailure, err
	}
	if o.records <= 0 {
		return exitFailure, fmt.Errorf("--records: must be > 0, got %d", o.records)
	}
	cfg, err := o.kafka.resolve(ctx, fs)
	if err != nil {
		return exitFailure, err
	}
	if o.strategy == "" {
		o.strategy = cmpOr(cfg.strategy, partitioner.Murmur2)
	}
	part, err := partitioner.New(o.strategy, time.Now().UnixNano(), nil)
	if err != nil {
		return exitFailure, fmt.Errorf("--strategy: %w", err)
	}
	if _, err := os.Stat(dir); err != nil {
		return exitFailure, err
	}
	lock, err := tempstorage.LockDir(dir)
	if err != nil {
		return exitFailure, err
	}
	defer func() { _ = lock.Close() }() // closing the fd drops the flock

	files, err := tempstorage.ReadDeadLetters(dir)
	if err != nil {
		return exitFailure, err
	}
	// No RecordDeliveryTimeout: kgo measures it from the record's timestamp,
	// which for a dead letter is long past; each round has its context instead.
	opts := append(cfg.opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return exitFailure, fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	r := &resender{o: o, cl: cl, part: part, counts: map[string]int32{}, failed: map[failKey]int{}, out: stderr}
	for _, f := range files {
		if err := r.file(ctx, f); err != nil {
			return exitFailure, err
		}
	}
	return r.report(stdout), nil
}

// resender sends the dead letters of one run.
type resender struct {
	o      resendOptions
	cl     *kgo.Client
	part   partitioner.Partitioner
	counts map[string]int32 // partition counts from Kafka's metadata; 0: no such topic
	out    io.Writer        // progress

	selected, sent, rounds int
	failed                 map[failKey]int
}

// failKey groups the records left in place by where they went and why.
type failKey struct {
	topic     string
	partition int32
	reason    string
}

// file resends the selected lines of f, round by round; after each round
// f is rewritten without the lines acknowledged so far.
func (r *resender) file(ctx context.Context, f *tempstorage.DeadLetterFile) error {
	lines := f.Lines // as read; f.Lines changes with every Keep
	acked := make([]bool, len(lines))
	var todo []int
	for i, l := range lines {
		switch {
		case l.Err != nil:
			r.failed[failKey{"?", -1, "unreadable line: " + l.Err.Error()}]++
		case !r.selects(l.Record):
		case l.Record.Truncated:
			r.selected++
			r.failed[failKey{l.Record.Topic, l.Record.Partition, "written without its content (truncated): nothing to send"}]++
		default:
			r.selected++
			todo = append(todo, i)
		}
	}
	for len(todo) > 0 {
		round := todo[:min(len(todo), r.o.records)]
		todo = todo[len(round):]
		ok, err := r.round(ctx, lines, round)
		if err != nil {
			return err
		}
		for j, i := range round {
			acked[i] = ok[j]
		}
		var left []tempstorage.DeadLetterLine
		for i, l := range lines {
			if !acked[i] {
				left = append(left, l)
			}
		}
		if err := f.Keep(left); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

func (r *resender) selects(d tempstorage.DeadLetterRecord) bool {
	return (r.o.topic == "" || d.Topic == r.o.topic) && (r.o.partition < 0 || int(d.Partition) == r.o.partition)
}

// round produces the records of lines[idx] and waits for Kafka's
// answers; acked[j] says whether line idx[j] was acknowledged. Records of
// a topic or partition Kafka's metadata does not have are not sent.
func (r *resender) round(ctx context.Context, lines []tempstorage.DeadLetterLine, idx []int) ([]bool, error) {
	r.rounds++
	recs := make([]*kgo.Record, len(idx))
	for j, i := range idx {
		d := lines[i].Record
		rec := &kgo.Record{Topic: d.Topic, Partition: d.Partition, Key: d.Key, Value: d.Value, Timestamp: d.Timestamp}
		for _, h := range d.Headers {
			rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
		}
		recs[j] = rec
	}
	if err := r.learn(ctx, recs); err != nil {
		return nil, err
	}
	acked := make([]bool, len(idx))
	pos := make(map[*kgo.Record]int, len(recs))
	var send []*kgo.Record
	var last message.TopicPartition
	for j, rec := range recs {
		n := r.counts[rec.Topic]
		switch {
		case n <= 0:
			r.fail(rec, "UNKNOWN_TOPIC_OR_PARTITION: the topic does not exist")
			continue
		case r.o.repartition:
			tp := message.TopicPartition{Topic: rec.Topic, Partition: r.part.Partition(rec.Topic, rec.Key, n)}
			if tp != last && last.Topic != "" {
				r.part.BatchReady(last) // a keyless sticky choice moves on, as after a batch
			}
			rec.Partition, last = tp.Partition, tp
		case rec.Partition < 0 || rec.Partition >= n:
			r.fail(rec, fmt.Sprintf("UNKNOWN_TOPIC_OR_PARTITION: the topic has %d partitions; --repartition places records on them", n))
			continue
		}
		pos[rec] = j
		send = append(send, rec)
	}
	if last.Topic != "" {
		r.part.BatchReady(last)
	}
	rctx, cancel := context.WithTimeout(ctx, r.o.timeout)
	defer cancel()
	ok := 0
	// Results come in the order Kafka answered, not the records' order.
	for _, res := range r.cl.ProduceSync(rctx, send...) {
		if res.Err != nil {
			r.fail(res.Record, res.Err.Error())
			continue
		}
		acked[pos[res.Record]] = true
		ok++
	}
	r.sent += ok
	fmt.Fprintf(r.out, "round %d: %d of %d records acknowledged\n", r.rounds, ok, len(idx))
	return acked, nil
}

func (r *resender) fail(rec *kgo.Record, reason string) {
	r.failed[failKey{rec.Topic, rec.Partition, reason}]++
}

// learn asks Kafka for the partition counts of the records' topics not
// asked about yet; a topic Kafka does not have counts 0 (it is not created).
func (r *resender) learn(ctx context.Context, recs []*kgo.Record) error {
	req := kmsg.NewPtrMetadataRequest()
	req.AllowAutoTopicCreation = false
	for _, rec := range recs {
		if _, ok := r.counts[rec.Topic]; ok {
			continue
		}
		r.counts[rec.Topic] = 0
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(rec.Topic)
		req.Topics = append(req.Topics, rt)
	}
	if len(req.Topics) == 0 {
		return nil
	}
	mctx, cancel := context.WithTimeout(ctx, r.o.timeout)
	defer cancel()
	resp, err := req.RequestWith(mctx, r.cl)
	if err != nil {
		return fmt.Errorf("kafka metadata: %w", err)
	}
	for _, t := range resp.Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); t.Topic != nil && err != nil && !errors.Is(err, kerr.UnknownTopicOrPartition) {
			return fmt.Errorf("kafka metadata of topic %s: %w", *t.Topic, err)
		}
		if t.Topic != nil && t.ErrorCode == 0 {
			r.counts[*t.Topic] = int32(len(t.Partitions))
		}
	}
	return nil
}

// report prints the summary and returns the exit code.
func (r *resender) report(w io.Writer) int {
	left := 0
	for _, n := range r.failed {
		left += n
	}
	if r.selected == 0 && left == 0 {
		fmt.Fprintln(w, "no dead letters to resend")
		return exitOK
	}
	fmt.Fprintf(w, "resent %d of %d dead-letter records in %s", r.sent, r.selected, plural(r.rounds, "round", "rounds"))
	if left == 0 {
		fmt.Fprintln(w, "; all acknowledged by Kafka and removed from the dead-letter files")
		return exitOK
	}
	fmt.Fprintf(w, "; %s left in the dead-letter files:\n", plural(left, "line", "lines"))
	keys := slices.SortedFunc(maps.Keys(r.failed), func(a, b failKey) int {
		return cmpOr(strings.Compare(a.topic, b.topic), int(a.partition-b.partition), strings.Compare(a.reason, b.reason))
	})
	for _, k := range keys {
		fmt.Fprintf(w, "  %s/%d: %s: %s\n", k.topic, k.partition, plural(r.failed[k], "record", "records"), k.reason)
	}
	return exitFound
}

func cmpOr[T comparable](vals ...T) T {
	var zero T
	for _, v := range vals {
		if v != zero {
			return v
		}
	}
	return zero
}
