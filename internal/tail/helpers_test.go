package tail

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fast polls often so tests run quickly.
var fast = Options{PollMin: time.Millisecond, PollMax: 5 * time.Millisecond, RotateWait: 50 * time.Millisecond}

func withRotated(o Options) Options {
	o.Rotated = Numbered
	return o
}

// logFile is a log being written in a temporary directory. Lines are
// numbered across the whole log, so a reader's output shows any skip or
// repeat.
type logFile struct {
	t    *testing.T
	path string
	next int
}

func newLog(t *testing.T) *logFile {
	t.Helper()
	return &logFile{t: t, path: filepath.Join(t.TempDir(), "app-json.log")}
}

// line returns the text of line i.
func line(i int) string { return fmt.Sprintf("line %06d %s", i, strings.Repeat("x", i%37)) }

// want returns lines [from, to).
func want(from, to int) []string {
	var s []string
	for i := from; i < to; i++ {
		s = append(s, line(i))
	}
	return s
}

// write appends n numbered lines to the live file.
func (l *logFile) write(n int) {
	l.t.Helper()
	var b strings.Builder
	for range n {
		b.WriteString(line(l.next))
		b.WriteByte('\n')
		l.next++
	}
	appendFile(l.t, l.path, b.String())
}

func appendFile(t *testing.T, path, data string) {
	t.Helper()
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fh.WriteString(data); err != nil {
		t.Fatal(err)
	}
	if err := fh.Close(); err != nil {
		t.Fatal(err)
	}
}

// rotate does what Docker's json-file driver does at max-size: drop the
// oldest, shift path.N(.gz) to path.N+1(.gz), rename the live file to
// path.1, create a new empty live file, and, with compress, write
// path.1.gz and remove path.1.
func (l *logFile) rotate(maxFiles int, compress bool) {
	l.t.Helper()
	ext := ""
	if compress {
		ext = ".gz"
	}
	os.Remove(fmt.Sprintf("%s.%d%s", l.path, maxFiles-1, ext))
	for i := maxFiles - 1; i > 1; i-- {
		err := os.Rename(fmt.Sprintf("%s.%d%s", l.path, i-1, ext), fmt.Sprintf("%s.%d%s", l.path, i, ext))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			l.t.Fatal(err)
		}
	}
	if err := os.Rename(l.path, l.path+".1"); err != nil {
		l.t.Fatal(err)
	}
	appendFile(l.t, l.path, "")
	if compress {
		gzipFile(l.t, l.path+".1")
	}
}

// gzipFile replaces name by name.gz, as Docker's compressor does.
func gzipFile(t *testing.T, name string) {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(data)
	zw.Close()
	if err := os.WriteFile(name+".gz", b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(name); err != nil {
		t.Fatal(err)
	}
}

// gaps records the gaps a Follower reports. It is safe for concurrent use.
type gaps struct {
	mu  sync.Mutex
	got []Gap
}

func (g *gaps) add(x Gap) {
	g.mu.Lock()
	g.got = append(g.got, x)
	g.mu.Unlock()
}

func (g *gaps) list() []Gap {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]Gap(nil), g.got...)
}

func (g *gaps) opts(o Options) Options {
	o.OnGap = g.add
	return o
}

// reader wraps a Follower and its LineReader for tests.
type reader struct {
	t  *testing.T
	f  *Follower
	lr *LineReader
}

func open(t *testing.T, path string, start Position, opts Options) *reader {
	t.Helper()
	f, err := Open(path, start, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	lr, err := NewLineReader(f, LineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return &reader{t: t, f: f, lr: lr}
}

// lines reads n lines and returns them with the End of the last.
func (r *reader) lines(n int) ([]string, Position) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(r.t.Context(), 10*time.Second)
	defer cancel()
	var got []string
	var end Position
	for len(got) < n {
		l, err := r.lr.Next(ctx)
		if err != nil {
			r.t.Fatalf("after %d of %d lines (last %q): %v", len(got), n, last(got), err)
		}
		got = append(got, string(l.Bytes))
		end = l.End
	}
	return got, end
}

// rest reads lines until io.EOF, after Stop.
func (r *reader) rest() []string {
	r.t.Helper()
	r.f.Stop()
	ctx, cancel := context.WithTimeout(r.t.Context(), 10*time.Second)
	defer cancel()
	var got []string
	for {
		l, err := r.lr.Next(ctx)
		if err == io.EOF {
			return got
		}
		if err != nil {
			r.t.Fatalf("after %d lines: %v", len(got), err)
		}
		got = append(got, string(l.Bytes))
	}
}

func (r *reader) close() {
	r.t.Helper()
	if err := r.f.Close(); err != nil {
		r.t.Fatal(err)
	}
}

func last(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[len(s)-1]
}

// same fails t unless got equals want, showing where they part.
func same(t *testing.T, got, want []string) {
	t.Helper()
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			t.Fatalf("line %d: got %q, want %q (got %d lines, want %d)", i, got[i], want[i], len(got), len(want))
		}
	}
	if len(got) != len(want) {
		t.Fatalf("got %d lines, want %d; got ends %q, want ends %q", len(got), len(want), last(got), last(want))
	}
}

func ident(t *testing.T, name string) (dev, ino uint64) {
	t.Helper()
	fi, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	return fileIdentity(fi)
}
