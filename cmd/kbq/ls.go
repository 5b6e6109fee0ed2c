package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/kafkabatcher/kafkabatcherexporter/tempstorage"
)

// lsReport is what ls prints (--json as is).
type lsReport struct {
	Directory string `json:"directory"`
	Batches   int    `json:"batches"`
	Records   int    `json:"records"`
	Bytes     int64  `json:"bytes"`
	// OldestAgeSeconds is the age of the oldest stored batch of all
	// partitions, 0 when nothing is stored.
	OldestAgeSeconds float64                 `json:"oldest_age_seconds"`
	Partitions       []lsPartition           `json:"partitions"`
	KeptAside        []tempstorage.KeptAside `json:"kept_aside"`
	Problems         []lsProblem             `json:"problems"`
	Ignored          []string                `json:"ignored,omitempty"`
	DeadLetters      lsDeadLetters           `json:"dead_letters"`
}

type lsPartition struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Batches   int    `json:"batches"`
	Records   int    `json:"records"`
	Bytes     int64  `json:"bytes"`
	// Oldest is the timestamp of the first record of the oldest batch;
	// OldestAgeSeconds is now less Oldest.
	Oldest           time.Time `json:"oldest"`
	OldestAgeSeconds float64   `json:"oldest_age_seconds"`
}

type lsProblem struct {
	File   string `json:"file"`
	Offset int64  `json:"offset,omitempty"`
	Bytes  int64  `json:"bytes,omitempty"`
	Kind   string `json:"kind"`
	Detail string `json:"detail"`
	Repair string `json:"repair"`
}

type lsDeadLetters struct {
	Lines    int            `json:"lines"`
	Bytes    int64          `json:"bytes"`
	ByReason map[string]int `json:"by_reason"`
	// Truncated counts lines written without their content (too large to
	// keep): resend cannot send them.
	Truncated  int          `json:"truncated"`
	Unreadable int          `json:"unreadable"`
	Files      []lsDeadFile `json:"files"`
}

type lsDeadFile struct {
	File  string `json:"file"`
	Lines int    `json:"lines"`
	Bytes int64  `json:"bytes"`
}

func runLs(args []string, stdout, stderr io.Writer, now func() time.Time) error {
	fs := newFlagSet("ls", "DIR [--json]", stderr)
	asJSON := fs.Bool("json", false, "print one JSON object (for scripts) instead of tables")
	dir, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	release, err := readOnly(dir)
	if err != nil {
		return err
	}
	defer release()
	rep, err := buildLs(dir, now())
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	printLs(stdout, rep)
	return nil
}

func buildLs(dir string, now time.Time) (*lsReport, error) {
	ins, err := tempstorage.Inspect(dir, nil)
	if err != nil {
		return nil, err
	}
	rep := &lsReport{
		Directory:  dir,
		Partitions: []lsPartition{},
		KeptAside:  append([]tempstorage.KeptAside{}, ins.KeptAside...),
		Problems:   problems(ins),
		Ignored:    ins.Ignored,
	}
	for _, p := range ins.Partitions {
		a := ageSeconds(now, p.Oldest)
		rep.Partitions = append(rep.Partitions, lsPartition{
			Topic: p.Topic, Partition: p.Partition,
			Batches: p.Batches, Records: p.Records, Bytes: p.Bytes,
			Oldest: p.Oldest.UTC(), OldestAgeSeconds: a,
		})
		rep.Batches += p.Batches
		rep.Records += p.Records
		rep.Bytes += p.Bytes
		rep.OldestAgeSeconds = max(rep.OldestAgeSeconds, a)
	}
	files, err := tempstorage.ReadDeadLetters(dir)
	if err != nil {
		return nil, err
	}
	rep.DeadLetters = lsDeadLetters{ByReason: map[string]int{}, Files: []lsDeadFile{}}
	for _, f := range files {
		dl := &rep.DeadLetters
		dl.Files = append(dl.Files, lsDeadFile{File: "deadletter/" + f.Name, Lines: len(f.Lines), Bytes: f.Size})
		dl.Bytes += f.Size
		for _, l := range f.Lines {
			dl.Lines++
			switch {
			case l.Err != nil:
				dl.Unreadable++
			default:
				dl.ByReason[l.Record.Reason]++
				if l.Record.Truncated {
					dl.Truncated++
				}
			}
		}
	}
	return rep, nil
}

func problems(ins *tempstorage.Report) []lsProblem {
	out := []lsProblem{}
	for _, p := range ins.Problems {
		out = append(out, lsProblem{File: p.File, Offset: p.Offset, Bytes: p.Bytes, Kind: p.Kind, Detail: p.Detail, Repair: p.Repair})
	}
	return out
}

// ageSeconds is now less t in seconds, to the millisecond; 0 for a zero t.
func ageSeconds(now, t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return math.Round(now.Sub(t).Seconds()*1000) / 1000
}

func printLs(w io.Writer, r *lsReport) {
	fmt.Fprintf(w, "%s\n\n", r.Directory)
	if len(r.Partitions) == 0 {
		fmt.Fprintln(w, "queue: empty")
	} else {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "TOPIC\tPARTITION\tBATCHES\tRECORDS\tBYTES\tOLDEST BATCH\tAGE\t")
		for _, p := range r.Partitions {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t%s\n", p.Topic, p.Partition, p.Batches, p.Records, p.Bytes,
				p.Oldest.Format(time.RFC3339), age(time.Duration(p.OldestAgeSeconds*float64(time.Second))))
		}
		fmt.Fprintf(tw, "total\t\t%d\t%d\t%d\t\t%s\n", r.Batches, r.Records, r.Bytes,
			age(time.Duration(r.OldestAgeSeconds*float64(time.Second))))
		_ = tw.Flush() // w's errors show up as missing output; nothing to do about them here
	}
	if n := len(r.KeptAside); n > 0 {
		fmt.Fprintf(w, "\ncorrupt entries kept aside: %d\n", n)
		for _, k := range r.KeptAside {
			kind := "corrupt"
			if k.Torn {
				kind = "torn write"
			}
			fmt.Fprintf(w, "  %s (%s, %d bytes)\n", k.File, kind, k.Bytes)
		}
	}
	if n := len(r.Problems); n > 0 {
		fmt.Fprintf(w, "\ndamage: %s; 'kbq check %s' says what repair would do\n", plural(n, "problem", "problems"), r.Directory)
	}
	for _, f := range r.Ignored {
		fmt.Fprintf(w, "\nnot the store's (left alone): %s", f)
	}
	if len(r.Ignored) > 0 {
		fmt.Fprintln(w)
	}
	dl := r.DeadLetters
	fmt.Fprintln(w)
	if dl.Lines == 0 {
		fmt.Fprintln(w, "dead letters: none")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DEAD-LETTER REASON\tLINES\t")
	reasons := make([]string, 0, len(dl.ByReason))
	for reason := range dl.ByReason {
		reasons = append(reasons, reason)
	}
	slices.Sort(reasons)
	for _, reason := range reasons {
		fmt.Fprintf(tw, "%s\t%d\n", reason, dl.ByReason[reason])
	}
	if dl.Unreadable > 0 {
		fmt.Fprintf(tw, "(unreadable lines)\t%d\n", dl.Unreadable)
	}
	fmt.Fprintf(tw, "total\t%d\n", dl.Lines)
	_ = tw.Flush() // as above
	fmt.Fprintf(w, "%d bytes in %s", dl.Bytes, plural(len(dl.Files), "file", "files"))
	if dl.Truncated > 0 {
		fmt.Fprintf(w, "; %d written without their content (too large to keep), which resend cannot send", dl.Truncated)
	}
	fmt.Fprintln(w)
}
