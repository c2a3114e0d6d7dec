package tail

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wharf-logs/wharf/internal/linecap"
)

// fakeSource serves files back to back, in reads of at most chunk bytes
// (cycling through chunks), with ErrFileEnd between files and io.EOF after
// the last. File i has inode i+1.
type fakeSource struct {
	files  [][]byte
	chunks []int
	i, off int
	reads  int
	ended  bool // ErrFileEnd returned for file i
}

func (s *fakeSource) read(_ context.Context, p []byte, _ time.Time) (int, error) {
	for s.i < len(s.files) && s.off == len(s.files[s.i]) {
		if !s.ended {
			s.ended = true
			if s.i < len(s.files)-1 {
				return 0, ErrFileEnd
			}
		}
		if s.i == len(s.files)-1 {
			return 0, io.EOF
		}
		s.i, s.off, s.ended = s.i+1, 0, false
	}
	if s.i == len(s.files) {
		return 0, io.EOF
	}
	n := len(p)
	if len(s.chunks) > 0 {
		n = min(n, max(1, s.chunks[s.reads%len(s.chunks)]))
	}
	s.reads++
	n = copy(p[:n], s.files[s.i][s.off:])
	s.off += n
	return n, nil
}

func (s *fakeSource) Position() Position {
	return Position{Dev: 1, Inode: uint64(s.i + 1), Offset: int64(s.off)}
}

// refLine is what a LineReader should return.
type refLine struct {
	text      string
	inode     uint64
	end       int64
	partial   bool
	truncated bool
	lines     int
}

// reference splits files the simple way, for comparison.
func reference(files [][]byte, maxLine int) []refLine {
	var out []refLine
	for fi, data := range files {
		start := 0
		for start < len(data) {
			i := bytes.IndexByte(data[start:], '\n')
			partial := i < 0
			end := len(data)
			line := data[start:]
			if !partial {
				end = start + i + 1
				line = data[start : start+i]
				line = bytes.TrimSuffix(line, []byte("\r"))
			}
			r := refLine{inode: uint64(fi + 1), end: int64(end), partial: partial, lines: 1}
			if len(line) > maxLine {
				kept, dropped := linecap.Cut(line[:maxLine], len(line)-maxLine)
				r.text = string(linecap.AppendMarker(append([]byte(nil), kept...), dropped))
				r.truncated = true
			} else {
				r.text = string(line)
			}
			out = append(out, r)
			start = end
		}
	}
	return out
}

// joinReference joins reference lines into multiline entries.
func joinReference(lines []refLine, start *regexp.Regexp, maxBytes int) []refLine {
	var out []refLine
	open := false
	for _, l := range lines {
		if open {
			e := &out[len(out)-1]
			if e.inode == l.inode && !start.MatchString(l.text) && len(e.text)+1+len(l.text) <= maxBytes {
				e.text += "\n" + l.text
				e.end, e.partial = l.end, l.partial
				e.truncated = e.truncated || l.truncated
				e.lines++
				continue
			}
		}
		out = append(out, l)
		open = true
	}
	return out
}

// readAllLines reads r to io.EOF.
func readAllLines(t testing.TB, r *LineReader) []refLine {
	var out []refLine
	for range 1 << 20 {
		l, err := r.Next(context.Background())
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("after %d lines: %v", len(out), err)
		}
		out = append(out, refLine{string(l.Bytes), l.End.Inode, l.End.Offset, l.Partial, l.Truncated, l.Lines})
	}
	t.Fatal("no end")
	return nil
}

func sameLines(t testing.TB, got, want []refLine) {
	t.Helper()
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			t.Fatalf("line %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
	if len(got) != len(want) {
		t.Fatalf("got %d lines, want %d", len(got), len(want))
	}
}

func TestLineReader(t *testing.T) {
	long := strings.Repeat("0123456789", 30000) // 300000 bytes, over the buffer
	for _, tc := range []struct {
		name   string
		files  []string
		max    int
		chunks []int
		want   []refLine
	}{
		{"lines", []string{"a\nbc\n\nd\n"}, 0, nil, []refLine{
			{"a", 1, 2, false, false, 1}, {"bc", 1, 5, false, false, 1}, {"", 1, 6, false, false, 1}, {"d", 1, 8, false, false, 1}}},
		{"crlf", []string{"a\r\nb\r\r\n\r"}, 0, []int{1}, []refLine{
			{"a", 1, 3, false, false, 1}, {"b\r", 1, 7, false, false, 1}, {"\r", 1, 8, true, false, 1}}},
		{"partial at each file end", []string{"x\ny", "z", "w\n"}, 0, nil, []refLine{
			{"x", 1, 2, false, false, 1}, {"y", 1, 3, true, false, 1}, {"z", 2, 1, true, false, 1}, {"w", 3, 2, false, false, 1}}},
		{"truncated", []string{"abcdefgh\nabcde\r\nabcdef\r\n"}, 5, []int{3}, []refLine{
			{"abcde …[truncated 3 bytes]", 1, 9, false, true, 1}, {"abcde", 1, 16, false, false, 1}, {"abcde …[truncated 1 bytes]", 1, 24, false, true, 1}}},
		{"truncated inside a rune", []string{"abcé\n"}, 4, nil, []refLine{
			{"abc …[truncated 2 bytes]", 1, 6, false, true, 1}}},
		{"long line across reads", []string{long + "\r\n" + "next\n"}, 1000, []int{4096, 1, 7}, []refLine{
			{long[:1000] + " …[truncated 299000 bytes]", 1, 300002, false, true, 1}, {"next", 1, 300007, false, false, 1}}},
		{"long line within max", []string{long + "\n" + long}, 400000, nil, []refLine{
			{long, 1, 300001, false, false, 1}, {long, 1, 600001, true, false, 1}}},
		{"exactly max before a split crlf", []string{"abcde\r", "abcde\r\n"}, 5, []int{6, 6, 1}, []refLine{
			{"abcde …[truncated 1 bytes]", 1, 6, true, true, 1}, {"abcde", 2, 7, false, false, 1}}},
		{"long partial", []string{long}, 10, []int{100000}, []refLine{
			{long[:10] + " …[truncated 299990 bytes]", 1, 300000, true, true, 1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var files [][]byte
			for _, f := range tc.files {
				files = append(files, []byte(f))
			}
			r, err := newLineReader(&fakeSource{files: files, chunks: tc.chunks}, LineOptions{MaxLine: tc.max})
			if err != nil {
				t.Fatal(err)
			}
			got := readAllLines(t, r)
			sameLines(t, got, tc.want)
			sameLines(t, got, reference(files, r.max))
		})
	}
}

func TestMultiline(t *testing.T) {
	start := regexp.MustCompile(`^\S`)
	files := [][]byte{
		[]byte("  orphan\nfirst\n  at a\n  at b\nsecond\nthird\n  cont"),
		[]byte("  new file\nfourth\n  1234567890\n  1234567890\n"),
	}
	r, err := newLineReader(&fakeSource{files: files, chunks: []int{5}}, LineOptions{Start: start, MaxBytes: 25})
	if err != nil {
		t.Fatal(err)
	}
	got := readAllLines(t, r)
	sameLines(t, got, []refLine{
		{"  orphan", 1, 9, false, false, 1},
		{"first\n  at a\n  at b", 1, 29, false, false, 3},
		{"second", 1, 36, false, false, 1},
		{"third\n  cont", 1, 48, true, false, 2},
		{"  new file", 2, 11, false, false, 1},
		{"fourth\n  1234567890", 2, 31, false, false, 2},
		{"  1234567890", 2, 44, false, false, 1}, // over MaxBytes: a new entry
	})
	sameLines(t, got, joinReference(reference(files, DefaultMaxLine), start, 25))
}

func TestMultilineMaxLines(t *testing.T) {
	files := [][]byte{[]byte("E\n a\n b\n c\n d\nF\n e\n")}
	r, err := newLineReader(&fakeSource{files: files, chunks: []int{3}}, LineOptions{Start: regexp.MustCompile(`^\S`), MaxLines: 3})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range readAllLines(t, r) {
		got = append(got, l.text)
	}
	if want := []string{"E\n a\n b", " c\n d", "F\n e"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("entries %q, want %q", got, want)
	}
}

func TestEndOf(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	if p, err := EndOf(path, Options{}); err != nil || !p.IsZero() {
		t.Fatalf("missing file: %v %v, want the zero Position", p, err)
	}
	appendFile(t, path, "one\ntwo\nthr")
	p, err := EndOf(path, Options{})
	if err != nil || p.Offset != 8 || p.FingerprintLen != 11 {
		t.Fatalf("EndOf: %+v %v, want offset 8 (after \"two\\n\") and a fingerprint of 11 bytes", p, err)
	}
	// A Follower opened there reads the unfinished line whole, then what
	// comes after.
	appendFile(t, path, "ee\nfour\n")
	r := open(t, path, p, fast)
	defer r.close()
	got, _ := r.lines(2)
	same(t, got, []string{"three", "four"})
	if _, err := EndOf(dir, Options{}); err == nil {
		t.Fatal("EndOf of a directory: no error")
	}
}

func TestMultilineMaxWait(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	appendFile(t, path, "Exception\n  at a\n  at b\n")
	f, err := Open(path, Position{}, fast)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := NewLineReader(f, LineOptions{Start: regexp.MustCompile(`^\S`), MaxWait: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	begin := time.Now()
	l, err := r.Next(ctx)
	if err != nil || string(l.Bytes) != "Exception\n  at a\n  at b" || l.End.Offset != 24 || l.Lines != 3 {
		t.Fatalf("%q %+v %v", l.Bytes, l, err)
	}
	if d := time.Since(begin); d < 50*time.Millisecond {
		t.Fatalf("entry returned after %v, before MaxWait", d)
	}
	// A caller's deadline before MaxWait returns ErrIdle and keeps the entry.
	appendFile(t, path, "Next\n")
	if _, err := r.NextBefore(ctx, time.Now().Add(10*time.Millisecond)); !errors.Is(err, ErrIdle) {
		t.Fatalf("NextBefore: %v, want ErrIdle", err)
	}
	appendFile(t, path, "  more\n")
	l, err = r.Next(ctx)
	if err != nil || string(l.Bytes) != "Next\n  more" {
		t.Fatalf("%q %v", l.Bytes, err)
	}
}

func TestLineOptions(t *testing.T) {
	for _, o := range []LineOptions{{MaxLine: -1}, {MaxWait: -1}, {MaxBytes: -1}, {MaxLines: -1}} {
		if _, err := newLineReader(&fakeSource{}, o); err == nil || !strings.HasPrefix(err.Error(), "tail: ") {
			t.Errorf("%+v: %v", o, err)
		}
	}
}

func FuzzLineReader(f *testing.F) {
	f.Add([]byte("a\nb\r\nc"), []byte{1, 2, 3}, uint16(4), uint8(0), false)
	f.Add([]byte("first\n  at x\nsecond\r\n  é\n"), []byte{7}, uint16(3), uint8(2), true)
	f.Add([]byte("\xff\xfe\n\n\r\r\n"), []byte{0}, uint16(1), uint8(1), false)
	f.Fuzz(func(t *testing.T, data, chunks []byte, maxLine uint16, split uint8, multi bool) {
		if len(data) > 1<<16 {
			return
		}
		// Cut data into up to three files at positions taken from it.
		var files [][]byte
		rest := data
		for i := 0; i < int(split%3) && len(rest) > 0; i++ {
			at := int(rest[0]) % (len(rest) + 1)
			files = append(files, rest[:at])
			rest = rest[at:]
		}
		files = append(files, rest)
		var cs []int
		for _, c := range chunks {
			cs = append(cs, int(c))
		}
		opts := LineOptions{MaxLine: int(maxLine%300) + 1}
		want := reference(files, opts.MaxLine)
		if multi {
			opts.Start = regexp.MustCompile(`^[^ \t]`)
			opts.MaxBytes = opts.MaxLine + 50
			want = joinReference(want, opts.Start, opts.MaxBytes)
		}
		r, err := newLineReader(&fakeSource{files: files, chunks: cs}, opts)
		if err != nil {
			t.Fatal(err)
		}
		got := readAllLines(t, r)
		sameLines(t, got, want)
		// Memory stays bounded: no line or entry beyond its cap.
		bound := opts.MaxLine + len(" …[truncated 99999 bytes]")
		if multi {
			bound = max(bound, opts.MaxBytes)
		}
		for _, l := range got {
			if len(l.text) > bound {
				t.Fatalf("%d bytes returned, cap %d", len(l.text), bound)
			}
		}
	})
}

func ExampleLineReader() {
	dir, _ := os.MkdirTemp("", "tail")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "app.log")
	os.WriteFile(path, []byte("one\ntwo\n"), 0o600)
	f, _ := Open(path, Position{}, Options{})
	defer f.Close()
	r, _ := NewLineReader(f, LineOptions{})
	f.Stop() // read what is there, then io.EOF
	for {
		l, err := r.Next(context.Background())
		if err != nil {
			break
		}
		fmt.Printf("%s (next at %d)\n", l.Bytes, l.End.Offset)
	}
	// Output:
	// one (next at 4)
	// two (next at 8)
}
