// Command kbq shows and repairs what a kafkabatcher exporter keeps on disk
// (its temp_storage.directory) and sends dead-lettered records to Kafka
// again.
//
//	kbq ls DIR [--json]                  stored batches per partition, corrupt entries kept aside, dead letters by reason
//	kbq cat DIR [--topic T] [--partition P] [--source queue|deadletter]
//	                                     stored records (with their batch's producer id, epoch and
//	                                     sequence numbers when it has them, and "done" on those a replay
//	                                     that failed part-way got through) and dead letters as JSON lines
//	kbq check DIR                        verify every entry's CRC and the checkpoints; exit 1 on damage
//	kbq repair DIR                       move damaged entries aside as the collector's start does
//	kbq resend DIR --brokers B [flags]   send dead letters to Kafka; each line goes once Kafka acknowledged it
//
// Every command refuses a directory a running collector has locked and names
// its pid; ls, cat and check also work on a copy of the directory.
//
// Exit status: 0 done, 1 damage found (check) or records left unsent
// (resend), 2 a usage error or a failure.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/kafkabatcher/kafkabatcherexporter/tempstorage"
)

// Exit codes.
const (
	exitOK      = 0
	exitFound   = 1 // damage (check), records left (resend)
	exitFailure = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, time.Now)
	stop()
	os.Exit(code)
}

const usage = `usage: kbq COMMAND DIR [flags]

DIR is an exporter's temp_storage.directory (it holds LOCK, queue/ and deadletter/).

commands:
  ls DIR [--json]        per topic/partition: batches, records, bytes, age of the oldest stored batch;
                         corrupt entries kept aside; damage found; dead-letter lines by reason
  cat DIR [--topic T] [--partition P] [--source queue|deadletter]
                         stored records and dead letters as JSON lines (text values as text, others base64;
                         a stored batch's producer id, epoch and sequence numbers when it has them;
                         "done": true on records a replay that failed part-way got through)
  check DIR              verify every entry's CRC and every checkpoint, say what repair would do; exit 1 on damage
  repair DIR             move damaged entries aside, cut torn writes, rewrite bad checkpoints (what the
                         collector's start does), then check again
  resend DIR --brokers HOST:PORT[,...] [flags]
                         send dead-letter records to Kafka (their topic and partition, or --repartition);
                         a line is removed only once Kafka acknowledged its record ('kbq resend -h')

A directory locked by a running collector is refused (the message names its pid): stop the
collector, or run ls, cat and check on a copy (cp -a DIR COPY).
`

// run is the whole command; now is the clock ages are measured with.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, now func() time.Time) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return exitFailure
		}
		return exitOK
	}
	cmd, args := args[0], args[1:]
	var err error
	code := exitOK
	switch cmd {
	case "ls":
		err = runLs(args, stdout, stderr, now)
	case "cat":
		err = runCat(args, stdout, stderr)
	case "check":
		code, err = runCheck(args, stdout, stderr)
	case "repair":
		code, err = runRepair(args, stdout, stderr)
	case "resend":
		code, err = runResend(ctx, args, stdout, stderr)
	default:
		fmt.Fprintf(stderr, "kbq: unknown command %q\n\n%s", cmd, usage)
		return exitFailure
	}
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "kbq %s: %v\n", cmd, err)
		return exitFailure
	}
	return code
}

// parseArgs parses flags and the one positional DIR, flags before or
// after it (kbq ls DIR --json as well as kbq ls --json DIR).
func parseArgs(fs *flag.FlagSet, args []string) (string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return "", err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != 1 {
		fs.Usage()
		return "", fmt.Errorf("want one directory, got %d arguments", len(pos))
	}
	return pos[0], nil
}

func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: kbq %s %s\n\nflags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// readOnly checks that dir exists and holds its lock shared for a command
// that only reads: a running collector makes it fail, naming its pid.
func readOnly(dir string) (release func(), err error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	return tempstorage.LockShared(dir)
}

// plural returns "1 batch" or "2 batches" style counts.
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// age formats d for people: 4m12s, 3h2m, 2d5h.
func age(d time.Duration) string {
	switch {
	case d < 0:
		return "in the future"
	case d < time.Hour:
		return d.Round(time.Second).String()
	case d < 48*time.Hour:
		return strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
	}
	days := int(d / (24 * time.Hour))
	return fmt.Sprintf("%dd%dh", days, int((d-time.Duration(days)*24*time.Hour)/time.Hour))
}
