package tempstorage

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// DeadLetterLine is one line of a dead-letter file as a tool reads it.
type DeadLetterLine struct {
	// Number is the line number in its file, from 1.
	Number int
	// Raw is the line as written, without its newline.
	Raw []byte
	// Record is the decoded line; Err is set instead when it does not
	// decode.
	Record DeadLetterRecord
	Err    error
}

// DeadLetterFile is one dead-letter file read whole, for tools that show
// its records or send them again.
type DeadLetterFile struct {
	// Path is the file; Name its name in <dir>/deadletter/.
	Path, Name string
	Lines      []DeadLetterLine
	// Size is the file's size when it was read; a line cut short at the
	// end (a write interrupted by a crash) is not a line and stays.
	Size int64
	read int64 // bytes taken as whole lines
}

// ReadDeadLetters reads the dead-letter files under dir/deadletter/,
// oldest first (deadletter.1.jsonl, then deadletter.jsonl); missing files
// are left out.
func ReadDeadLetters(dir string) ([]*DeadLetterFile, error) {
	var files []*DeadLetterFile
	for _, name := range []string{deadLetterPrevious, deadLetterCurrent} {
		path := filepath.Join(dir, deadLetterDir, name)
		b, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("dead letter: %w", err)
		}
		f := &DeadLetterFile{Path: path, Name: name, Size: int64(len(b))}
		for n := 1; ; n++ {
			i := bytes.IndexByte(b[f.read:], '\n')
			if i < 0 {
				break
			}
			raw := b[f.read : f.read+int64(i)]
			f.read += int64(i) + 1
			l := DeadLetterLine{Number: n, Raw: raw}
			if err := json.Unmarshal(raw, &l.Record); err != nil {
				l.Err = fmt.Errorf("dead letter %s line %d: %w", name, n, err)
			}
			f.Lines = append(f.Lines, l)
		}
		files = append(files, f)
	}
	return files, nil
}

// DeadLetterBytes returns the bytes of the dead-letter files under
// dir/deadletter/ (0 when there are none).
func DeadLetterBytes(dir string) (int64, error) {
	var n int64
	for _, name := range []string{deadLetterPrevious, deadLetterCurrent} {
		st, err := os.Stat(filepath.Join(dir, deadLetterDir, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return n, fmt.Errorf("dead letter: %w", err)
		}
		n += st.Size()
	}
	return n, nil
}

// Keep replaces the file with the given lines (in their order) and whatever
// was appended to it since it was read, by write, sync and rename, so a
// crash leaves either the old file or the new one. deadletter.1.jsonl is
// removed when nothing is left in it; deadletter.jsonl stays, empty. The
// caller holds the directory's lock (LockDir), so no collector with temp
// storage writes to it meanwhile; a collector with temp storage disabled
// takes no lock, and lines it appends are kept, not sent.
func (f *DeadLetterFile) Keep(lines []DeadLetterLine) error {
	var buf bytes.Buffer
	for _, l := range lines {
		buf.Write(l.Raw)
		buf.WriteByte('\n')
	}
	kept := int64(buf.Len())
	tail, err := readFrom(f.Path, f.read)
	if err != nil {
		return err
	}
	buf.Write(tail)
	if buf.Len() == 0 && f.Name == deadLetterPrevious {
		if err := os.Remove(f.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("dead letter: %w", err)
		}
		return syncDir(filepath.Dir(f.Path))
	}
	tmp := f.Path + ".tmp"
	w, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("dead letter: %w", err)
	}
	_, err = w.Write(buf.Bytes())
	if err == nil {
		err = w.Sync()
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, f.Path)
	}
	if err == nil {
		err = syncDir(filepath.Dir(f.Path))
	}
	if err != nil {
		_ = os.Remove(tmp) // the old file is intact; the write error is the one to report
		return fmt.Errorf("dead letter: rewrite %s: %w", f.Path, err)
	}
	f.Lines = append([]DeadLetterLine(nil), lines...)
	f.Size, f.read = int64(buf.Len()), kept
	return nil
}

// readFrom returns the bytes of path from off on (none if it is gone).
func readFrom(path string, off int64) ([]byte, error) {
	r, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dead letter: %w", err)
	}
	defer func() { _ = r.Close() }() // read only
	if _, err := r.Seek(off, io.SeekStart); err != nil {
		return nil, fmt.Errorf("dead letter: %w", err)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("dead letter: %w", err)
	}
	return b, nil
}
