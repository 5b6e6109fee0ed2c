package main

import (
	"fmt"
	"io"
	"os"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/kafkabatcher/kafkabatcherexporter/tempstorage"
)

func runCheck(args []string, stdout, stderr io.Writer) (int, error) {
	fs := newFlagSet("check", "DIR", stderr)
	dir, err := parseArgs(fs, args)
	if err != nil {
		return exitFailure, err
	}
	release, err := readOnly(dir)
	if err != nil {
		return exitFailure, err
	}
	defer release()
	rep, files, err := inspectAll(dir)
	if err != nil {
		return exitFailure, err
	}
	damaged := printCheck(stdout, dir, rep, files)
	if newerFormat(rep) {
		fmt.Fprintln(stdout, "\nentries of a newer format: this kbq and a collector of its version refuse the directory;"+
			" use the version that wrote them")
		return exitFound, nil
	}
	if damaged {
		fmt.Fprintf(stdout, "\ndamage found: 'kbq repair %s' (with the collector stopped) does the above; the collector's next start does it too\n", dir)
		return exitFound, nil
	}
	fmt.Fprintln(stdout, "\nno damage")
	return exitOK, nil
}

// newerFormat reports whether Inspect found entries of a format this build
// does not read, which Open refuses and repair cannot change.
func newerFormat(rep *tempstorage.Report) bool {
	for _, p := range rep.Problems {
		if p.Kind == tempstorage.ProblemNewerFormat {
			return true
		}
	}
	return false
}

// inspectAll reads the queue and the dead-letter files.
func inspectAll(dir string) (*tempstorage.Report, []*tempstorage.DeadLetterFile, error) {
	rep, err := tempstorage.Inspect(dir, nil)
	if err != nil {
		return nil, nil, err
	}
	files, err := tempstorage.ReadDeadLetters(dir)
	if err != nil {
		return nil, nil, err
	}
	return rep, files, nil
}

// printCheck prints what check found and reports whether any of it is
// damage.
func printCheck(w io.Writer, dir string, rep *tempstorage.Report, files []*tempstorage.DeadLetterFile) bool {
	batches := 0
	for _, p := range rep.Partitions {
		batches += p.Batches
	}
	fmt.Fprintf(w, "%s: %s checked in %s; %s to replay in %s\n", dir,
		plural(rep.Entries, "entry", "entries"), plural(rep.Segments, "segment", "segments"),
		plural(batches, "batch", "batches"), plural(len(rep.Partitions), "partition", "partitions"))
	for _, p := range rep.Problems {
		where := p.File
		if p.Bytes > 0 {
			where = fmt.Sprintf("%s offset %d (%d bytes)", p.File, p.Offset, p.Bytes)
		}
		fmt.Fprintf(w, "%s: %s: %s\n    repair: %s\n", p.Kind, where, p.Detail, p.Repair)
	}
	for _, p := range rep.Partitions {
		if p.Done > 0 {
			fmt.Fprintf(w, "replay progress (not damage): %s/%d: %s of the oldest batch got through before its replay failed; not sent again\n",
				p.Topic, p.Partition, plural(p.Done, "record", "records"))
		}
	}
	if n := len(rep.KeptAside); n > 0 {
		fmt.Fprintf(w, "kept aside earlier (not damage): %s in corrupt/ directories\n", plural(n, "range", "ranges"))
	}
	for _, f := range rep.Ignored {
		fmt.Fprintf(w, "not the store's, left alone: %s\n", f)
	}
	unreadable := 0
	lines := 0
	for _, f := range files {
		for _, l := range f.Lines {
			lines++
			if l.Err != nil {
				unreadable++
				fmt.Fprintf(w, "dead letter: %v\n    repair: nothing; resend leaves the line where it is\n", l.Err)
			}
		}
	}
	fmt.Fprintf(w, "dead letters: %s in %s\n", plural(lines, "line", "lines"), plural(len(files), "file", "files"))
	return rep.Damaged() || unreadable > 0
}

func runRepair(args []string, stdout, stderr io.Writer) (int, error) {
	fs := newFlagSet("repair", "DIR", stderr)
	dir, err := parseArgs(fs, args)
	if err != nil {
		return exitFailure, err
	}
	if _, err := os.Stat(dir); err != nil {
		return exitFailure, err
	}
	lock, err := tempstorage.LockDir(dir) // refused, naming the pid, while a collector runs
	if err != nil {
		return exitFailure, err
	}
	before, files, err := inspectAll(dir)
	_ = lock.Close() // Repair takes the lock itself, as a collector's start does
	if err != nil {
		return exitFailure, err
	}
	fmt.Fprintln(stdout, "before:")
	if !printCheck(stdout, dir, before, files) {
		fmt.Fprintln(stdout, "\nno damage: nothing to repair")
		return exitOK, nil
	}
	enc := zap.NewDevelopmentEncoderConfig()
	enc.TimeKey = ""
	log := zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.AddSync(stderr), zapcore.InfoLevel))
	if err := tempstorage.Repair(dir, tempstorage.Options{Logger: log}); err != nil {
		return exitFailure, err
	}
	after, files, err := inspectAll(dir)
	if err != nil {
		return exitFailure, err
	}
	fmt.Fprintln(stdout, "\nafter:")
	if printCheck(stdout, dir, after, files) {
		fmt.Fprintln(stdout, "\nwhat is left cannot be repaired (lost segments, unreadable dead-letter lines)")
		return exitFound, nil
	}
	fmt.Fprintln(stdout, "\nrepaired")
	return exitOK, nil
}
