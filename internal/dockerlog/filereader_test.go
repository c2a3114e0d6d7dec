package dockerlog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// tr is a record of a test file.
type tr struct {
	text   string // unescaped log text, "\n" included if any
	stderr bool
	time   int64 // offset in nanoseconds from base
}

var base = time.Date(2026, 11, 26, 23, 35, 52, 891162506, time.UTC)

// buildFile writes records as Docker does and returns the file with the
// offset of every record and of the end of the file.
func buildFile(recs []tr) (file []byte, offs []int64) {
	for _, r := range recs {
		offs = append(offs, int64(len(file)))
		stream := "stdout"
		if r.stderr {
			stream = "stderr"
		}
		file = appendDockerRecord(file, []byte(r.text), stream, base.Add(time.Duration(r.time)), "")
		file = append(file, '\n')
	}
	return file, append(offs, int64(len(file)))
}

// readAll reads r to its end, then flushes it, and returns every line and
// every corrupt-record error.
func readAll(t testing.TB, r *FileReader) (lines []Line, corrupt []*CorruptRecordError) {
	t.Helper()
	next := r.Next
	for flushing := false; ; {
		l, err := next()
		var ce *CorruptRecordError
		switch {
		case err == nil:
			lines = append(lines, l)
		case errors.As(err, &ce):
			if !errors.Is(err, ErrCorruptRecord) {
				t.Fatalf("%v does not match ErrCorruptRecord", err)
			}
			corrupt = append(corrupt, ce)
		case err == io.EOF && !flushing:
			next, flushing = r.Flush, true
		case err == io.EOF:
			return lines, corrupt
		default:
			t.Fatalf("after %d lines: %v", len(lines), err)
		}
	}
}

// want describes an expected line; end, seen and resume are record indices
// into the offsets buildFile returns, and seen is end when left 0.
type want struct {
	text      string
	stderr    bool
	time      int64
	partial   bool
	truncated bool
	end       int // offs[end]
	seen      int // offs[seen]
	resume    int // offs[resume]
}

func checkLines(t *testing.T, got []Line, wants []want, offs []int64) {
	t.Helper()
	for i := range max(len(got), len(wants)) {
		if i >= len(got) {
			t.Errorf("line %d missing: want %+v", i, wants[i])
			continue
		}
		g := got[i]
		if i >= len(wants) {
			t.Errorf("unexpected line %d: %q", i, g.Text)
			continue
		}
		w := wants[i]
		if w.seen == 0 {
			w.seen = w.end
		}
		gw := want{string(g.Text), g.Stream == Stderr, g.Time - base.UnixNano(), g.Partial, g.Truncated, -1, -1, -1}
		for k, o := range offs {
			if o == g.Pos.End && gw.end < 0 {
				gw.end = k
			}
			if o == g.Pos.Seen && gw.seen < 0 {
				gw.seen = k
			}
			if o == g.Pos.Resume && gw.resume < 0 {
				gw.resume = k
			}
		}
		if gw != w {
			t.Errorf("line %d:\n got %s\nwant %s", i, describe(gw), describe(w))
		}
	}
}

func describe(w want) string {
	text := w.text
	if len(text) > 60 {
		text = fmt.Sprintf("%s...(%d bytes)...%s", text[:20], len(text), text[len(text)-20:])
	}
	return fmt.Sprintf("{%q stderr=%v time=+%d partial=%v truncated=%v end=rec%d seen=rec%d resume=rec%d}", text, w.stderr, w.time, w.partial, w.truncated, w.end, w.seen, w.resume)
}

func TestReader(t *testing.T) {
	x16 := strings.Repeat("x", partSize)
	y16 := strings.Repeat("y", partSize)
	tests := []struct {
		name    string
		recs    []tr
		maxLine int
		want    []want
	}{{
		name: "whole lines",
		recs: []tr{{"a\n", false, 0}, {"b\n", true, 1}, {"\n", false, 2}},
		want: []want{{text: "a", end: 1, resume: 1}, {text: "b", stderr: true, time: 1, end: 2, resume: 2}, {text: "", time: 2, end: 3, resume: 3}},
	}, {
		name: "carriage returns",
		recs: []tr{{"a\r\n", false, 0}, {"\r\n", false, 1}, {"a\rb\n", false, 2}, {"a\r\r\n", false, 3}},
		want: []want{{text: "a", end: 1, resume: 1}, {text: "", time: 1, end: 2, resume: 2}, {text: "a\rb", time: 2, end: 3, resume: 3}, {text: "a\r", time: 3, end: 4, resume: 4}},
	}, {
		name: "three parts",
		recs: []tr{{x16, false, 5}, {y16, false, 5}, {"z\n", false, 5}, {"next\n", false, 6}},
		want: []want{{text: x16 + y16 + "z", time: 5, end: 3, resume: 3}, {text: "next", time: 6, end: 4, resume: 4}},
	}, {
		name: "parts interleaved with the other stream",
		recs: []tr{{x16, false, 5}, {"e1\n", true, 6}, {x16, true, 7}, {"z\n", false, 5}, {"e2\n", true, 7}},
		want: []want{
			{text: "e1", stderr: true, time: 6, end: 2, resume: 0},
			{text: x16 + "z", time: 5, end: 4, resume: 2},
			{text: x16 + "e2", stderr: true, time: 7, end: 5, resume: 5},
		},
	}, {
		name: "final line without newline",
		recs: []tr{{"a\n", false, 0}, {"tail", false, 1}},
		want: []want{{text: "a", end: 1, resume: 1}, {text: "tail", time: 1, partial: true, end: 2, resume: 2}},
	}, {
		name: "final line then a restart",
		recs: []tr{{"tail", false, 1}, {"e\n", true, 2}, {"new\n", false, 3}},
		want: []want{
			{text: "e", stderr: true, time: 2, end: 2, resume: 0},
			{text: "tail", time: 1, partial: true, end: 1, seen: 2, resume: 2},
			{text: "new", time: 3, end: 3, resume: 3},
		},
	}, {
		name: "a full part continues even with another time",
		recs: []tr{{x16, false, 1}, {"z\n", false, 2}},
		want: []want{{text: x16 + "z", time: 1, end: 2, resume: 2}},
	}, {
		name: "TTY cut between CR and LF",
		recs: []tr{{x16[1:] + "\r", false, 1}, {"\n", false, 1}},
		want: []want{{text: x16[1:], time: 1, end: 2, resume: 2}},
	}, {
		name: "CR ending a partial line stays",
		recs: []tr{{"a\r", false, 1}},
		want: []want{{text: "a\r", time: 1, partial: true, end: 1, resume: 1}},
	}, {
		name: "empty record ignored",
		recs: []tr{{"", false, 0}, {"a\n", false, 1}},
		want: []want{{text: "a", time: 1, end: 2, resume: 2}},
	}, {
		name:    "truncated",
		maxLine: 10,
		recs:    []tr{{"0123456789abcdef\n", false, 0}, {"0123456789\r\n", false, 1}, {"012345678é\n", true, 2}},
		want: []want{
			{text: "0123456789 …[truncated 6 bytes]", truncated: true, end: 1, resume: 1},
			{text: "0123456789", time: 1, end: 2, resume: 2},
			{text: "012345678 …[truncated 2 bytes]", stderr: true, time: 2, truncated: true, end: 3, resume: 3},
		},
	}, {
		name:    "truncated over parts",
		maxLine: 10,
		recs:    []tr{{x16, false, 1}, {"é" + x16[2:], false, 1}, {"\n", false, 1}, {x16, true, 2}},
		want: []want{
			{text: "xxxxxxxxxx …[truncated 32758 bytes]", time: 1, truncated: true, end: 3, resume: 3},
			{text: "xxxxxxxxxx …[truncated 16374 bytes]", stderr: true, time: 2, truncated: true, partial: true, end: 4, resume: 4},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file, offs := buildFile(tt.recs)
			got, corrupt := readAll(t, NewFileReader(bytes.NewReader(file), 0, tt.maxLine))
			if len(corrupt) > 0 {
				t.Errorf("corrupt records: %v", corrupt)
			}
			checkLines(t, got, tt.want, offs)
			// Read one byte at a time, and starting at another offset:
			// same lines, offsets shifted.
			got2, _ := readAll(t, NewFileReader(iotest.OneByteReader(bytes.NewReader(file)), 1000, tt.maxLine))
			for i := range got2 {
				got2[i].Pos.End -= 1000
				got2[i].Pos.Seen -= 1000
				got2[i].Pos.Resume -= 1000
			}
			checkLines(t, got2, tt.want, offs)
		})
	}
}

func TestReaderCorruptRecords(t *testing.T) {
	good, _ := buildFile([]tr{{"a\n", false, 0}})
	var file []byte
	file = append(file, "garbage\n"...)
	file = append(file, good...)
	bad := `{"log":"x\n","stream":"stdout"}`
	file = append(file, bad+"\n"...)
	file = append(file, "\n"...) // an empty line is a corrupt record too
	part, _ := buildFile([]tr{{strings.Repeat("p", partSize), false, 1}})
	file = append(file, part...)
	file = append(file, `{"log":"cut`+"\n"...)
	last, _ := buildFile([]tr{{"q\n", false, 1}})
	file = append(file, last...)

	r := NewFileReader(bytes.NewReader(file), 0, 0)
	lines, corrupt := readAll(t, r)
	if len(lines) != 2 || string(lines[0].Text) != "a" || string(lines[1].Text) != strings.Repeat("p", partSize)+"q" {
		t.Errorf("lines: %d, want a and the joined line", len(lines))
	}
	wantOffsets := []int64{0, int64(8 + len(good)), int64(8 + len(good) + len(bad) + 1), int64(8 + len(good) + len(bad) + 2 + len(part))}
	if len(corrupt) != len(wantOffsets) {
		t.Fatalf("%d corrupt records, want %d: %v", len(corrupt), len(wantOffsets), corrupt)
	}
	for i, c := range corrupt {
		if c.Offset != wantOffsets[i] {
			t.Errorf("corrupt record %d at offset %d, want %d", i, c.Offset, wantOffsets[i])
		}
	}
	if msg := corrupt[2].Error(); msg != fmt.Sprintf("dockerlog: corrupt record at offset %d (0 bytes): bad JSON: unexpected end of JSON input", wantOffsets[2]) {
		t.Errorf("error message %q", msg)
	}
	if !strings.Contains(corrupt[1].Error(), "missing time") {
		t.Errorf("error %q does not say what is wrong", corrupt[1])
	}
}

func TestReaderRecordTooLong(t *testing.T) {
	good, _ := buildFile([]tr{{"a\n", false, 0}})
	huge := bytes.Repeat([]byte("x"), 10<<20)
	file := slices.Concat(good, huge, []byte("\n"), good)

	r := NewFileReader(bytes.NewReader(file), 0, 0)
	lines, corrupt := readAll(t, r)
	if len(lines) != 2 {
		t.Errorf("got %d lines, want 2", len(lines))
	}
	if len(corrupt) != 1 || corrupt[0].Offset != int64(len(good)) || corrupt[0].Len != int64(len(huge)) || !errors.Is(corrupt[0], errRecordTooLong) {
		t.Fatalf("corrupt records: %v", corrupt)
	}
	if len(r.buf) > MaxRecord {
		t.Errorf("read buffer grew to %d bytes", len(r.buf))
	}
	if lines[1].Pos.End != int64(len(file)) {
		t.Errorf("End = %d, want %d", lines[1].Pos.End, len(file))
	}

	// The same, tailing: the long record is dropped as it comes, and
	// reported once its newline arrives.
	f := &growReader{data: file}
	r = NewFileReader(f, 0, 0)
	var n, errs int
	for f.limit < len(file) {
		f.limit = min(len(file), f.limit+3<<20)
		for {
			_, err := r.Next()
			if err == io.EOF {
				break
			}
			if errors.Is(err, ErrCorruptRecord) {
				errs++
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			n++
		}
		if len(r.buf) > MaxRecord {
			t.Fatalf("read buffer grew to %d bytes", len(r.buf))
		}
	}
	if n != 2 || errs != 1 {
		t.Errorf("tailing: %d lines and %d errors, want 2 and 1", n, errs)
	}

	// A long record at the end of a complete file is reported by Flush.
	r = NewFileReader(bytes.NewReader(slices.Concat(good, huge)), 0, 0)
	lines, corrupt = readAll(t, r)
	if len(lines) != 1 || len(corrupt) != 1 || corrupt[0].Len != int64(len(huge)) {
		t.Errorf("at the end: %d lines, corrupt %v", len(lines), corrupt)
	}
}

// growReader is a file being written: Read returns io.EOF at limit, which
// the test moves on.
type growReader struct {
	data  []byte
	pos   int
	limit int
}

func (g *growReader) Read(p []byte) (int, error) {
	if g.pos >= g.limit {
		return 0, io.EOF
	}
	n := copy(p, g.data[g.pos:g.limit])
	g.pos += n
	return n, nil
}

// readGrowing reads data as it grows by step bytes, calling Next until
// io.EOF after each step and Flush at the end, and returns the lines.
func readGrowing(t testing.TB, data []byte, step, maxLine int) []Line {
	return readGrowingRelease(t, data, step, maxLine, false)
}

// readGrowingRelease is readGrowing that, with release, calls Release at
// each io.EOF, as a reader going idle does.
func readGrowingRelease(t testing.TB, data []byte, step, maxLine int, release bool) []Line {
	t.Helper()
	g := &growReader{data: data}
	r := NewFileReader(g, 0, maxLine)
	var lines []Line
	for {
		for {
			l, err := r.Next()
			if err == io.EOF {
				if release {
					r.Release()
				}
				break
			}
			if errors.Is(err, ErrCorruptRecord) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			if l.Pos.Seen > int64(g.limit) {
				t.Fatalf("Seen %d beyond the %d bytes written", l.Pos.Seen, g.limit)
			}
			lines = append(lines, l)
		}
		if g.limit == len(data) {
			break
		}
		g.limit = min(len(data), g.limit+step)
	}
	for {
		l, err := r.Flush()
		if err == io.EOF {
			return lines
		}
		if errors.Is(err, ErrCorruptRecord) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, l)
	}
}

func TestReaderTailing(t *testing.T) {
	file, _ := buildFile(randomRecords(rand.New(rand.NewPCG(1, 2)), 120))
	whole := readGrowing(t, file, len(file), 0)
	for _, step := range []int{1, 7, 100, 4096, 20000} {
		got := readGrowing(t, file, step, 0)
		if !equalLines(got, whole) {
			t.Errorf("step %d: lines differ from reading the whole file", step)
		}
	}
}

// TestReaderRelease: Release at every pause of a growing file changes no
// line, and after a backlog a paused reader is back to its initial buffer.
func TestReaderRelease(t *testing.T) {
	file, _ := buildFile(randomRecords(rand.New(rand.NewPCG(3, 4)), 200))
	whole := readGrowing(t, file, len(file), 0)
	for _, step := range []int{1, 7, 100, 4096, 20000, 1 << 20} {
		if got := readGrowingRelease(t, file, step, 0, true); !equalLines(got, whole) {
			t.Errorf("step %d: lines differ from reading without Release", step)
		}
	}

	backlog, _ := buildFile(slices.Repeat([]tr{{strings.Repeat("x", 300) + "\n", false, 1}}, 2000))
	r := NewFileReader(bytes.NewReader(backlog), 0, 0)
	n := 0
	for {
		_, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 2000 || len(r.buf) <= initialBufSize {
		t.Fatalf("%d lines, buffer %d bytes: the backlog did not make the buffer grow", n, len(r.buf))
	}
	r.Release()
	if len(r.buf) != initialBufSize || r.out != nil {
		t.Errorf("after Release the buffer is %d bytes (want %d), Flush's %d", len(r.buf), initialBufSize, cap(r.out))
	}
}

// TestReaderTailingFile follows a real file while it is written: a record
// cut in the middle is not consumed, a split line waits for its last part.
func TestReaderTailingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	w, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	file, offs := buildFile([]tr{{"a\n", false, 0}, {strings.Repeat("p", partSize), false, 1}, {"q\n", false, 1}})
	r := NewFileReader(f, 0, 0)
	expect := func(want string, end int64) {
		t.Helper()
		l, err := r.Next()
		if want == "" {
			if err != io.EOF {
				t.Fatalf("got %q, %v; want io.EOF", l.Text, err)
			}
			return
		}
		if err != nil || string(l.Text) != want || l.Pos.End != end {
			t.Fatalf("got %.20q End %d, %v; want %.20q End %d", l.Text, l.Pos.End, err, want, end)
		}
	}
	write := func(p []byte) {
		if _, err := w.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	write(file[:5])
	expect("", 0)
	write(file[5:offs[1]])
	expect("a", offs[1])
	expect("", 0)
	write(file[offs[1]:offs[2]])
	expect("", 0) // the line is pending
	write(file[offs[2] : offs[3]-1])
	expect("", 0) // its last record has no newline yet
	write(file[offs[3]-1:])
	expect(strings.Repeat("p", partSize)+"q", offs[3])
	expect("", 0)
}

// TestReaderResume restarts from every line's checkpoint and checks that
// exactly the lines after it come back.
func TestReaderResume(t *testing.T) {
	var interleaved, cutOff int
	for seed := range uint64(4) {
		recs := randomRecords(rand.New(rand.NewPCG(3, seed)), 100)
		if seed%2 == 0 {
			// End with a split line in progress on both streams, for
			// Flush to return.
			recs = append(recs, tr{strings.Repeat("o", partSize), false, 1 << 40}, tr{strings.Repeat("e", partSize), true, 1 << 40})
		}
		file, _ := buildFile(recs)
		all, _ := readAll(t, NewFileReader(bytes.NewReader(file), 0, 0))
		checkResume(t, file, all)
		for _, l := range all {
			if l.Pos.Resume < l.Pos.Seen {
				interleaved++
			}
			if l.Pos.End < l.Pos.Seen {
				cutOff++
			}
		}
	}
	// The cases that make a checkpoint more than an offset must occur.
	if interleaved == 0 || cutOff == 0 {
		t.Fatalf("%d lines read while the other stream had one in progress, %d partial lines known ended later: want some of each", interleaved, cutOff)
	}
}

// checkResume checks the positions of all, the lines of file, and that a
// FileReader resuming after any of them returns the rest.
func checkResume(t testing.TB, file []byte, all []Line) {
	t.Helper()
	var prev FilePosition
	for i, l := range all {
		p := l.Pos
		if p.Seen < prev.Seen || p.Resume < prev.Resume || p.Resume > p.Seen || p.End > p.Seen ||
			p.Seen > int64(len(file)) || (i > 0 && !prev.before(p)) {
			t.Fatalf("line %d at %+v after %+v", i, p, prev)
		}
		if !l.Partial && p.Seen != p.End {
			t.Fatalf("line %d is whole but Seen %d != End %d", i, p.Seen, p.End)
		}
		prev = p
	}
	interleaved := 0
	for i, l := range all {
		// Resuming after every line is quadratic: take the lines whose
		// position is more than an offset, and a sample of the others.
		switch p := l.Pos; {
		case p.End < p.Seen || i%16 == 0 || i == len(all)-1:
		case p.Resume < p.Seen && interleaved < 8:
			interleaved++
		default:
			continue
		}
		got, _ := readAll(t, NewFileReaderAt(bytes.NewReader(file[l.Pos.Resume:]), l.Pos, 0))
		if !equalLines(got, all[i+1:]) {
			t.Fatalf("resuming after line %d at %+v: %d lines, want %d", i, l.Pos, len(got), len(all)-i-1)
		}
	}
}

func equalLines(a, b []Line) bool {
	return slices.EqualFunc(a, b, func(x, y Line) bool {
		return x.Time == y.Time && x.Stream == y.Stream && bytes.Equal(x.Text, y.Text) &&
			x.Truncated == y.Truncated && x.Partial == y.Partial && x.Pos == y.Pos
	})
}

// randomRecords writes n lines as Docker would: lines longer than 16 KiB
// split into parts sharing the first part's time, stdout and stderr parts
// interleaved, text with bytes that need escaping, invalid UTF-8, "\r\n",
// and now and then a final line without newline followed by a restart.
func randomRecords(rng *rand.Rand, n int) []tr {
	var queues [2][]tr
	var now int64
	for range n {
		now += 1 + rng.Int64N(1000)
		var size int
		switch rng.IntN(10) {
		case 0:
			size = partSize - 1 + rng.IntN(3)
		case 1:
			size = rng.IntN(50 << 10)
		default:
			size = rng.IntN(300)
		}
		text := randomText(rng, size)
		switch rng.IntN(20) {
		case 0:
			// A final line without newline: the container stops here.
		case 1:
			text = append(text, "\r\n"...)
		default:
			text = append(text, '\n')
		}
		k := rng.IntN(2)
		for _, p := range dockerParts(text) {
			queues[k] = append(queues[k], tr{string(p), k == 1, now})
		}
	}
	var out []tr
	for len(queues[0])+len(queues[1]) > 0 {
		k := rng.IntN(2)
		if len(queues[k]) == 0 {
			k = 1 - k
		}
		out = append(out, queues[k][0])
		queues[k] = queues[k][1:]
	}
	return out
}

func randomText(rng *rand.Rand, n int) []byte {
	const alphabet = "abcdefghijklmnopqrstuvwxyz 0123456789\"\\<>&\t\x00\x1b\r/é😀\u2028\xff"
	b := make([]byte, 0, n)
	for len(b) < n {
		if rng.IntN(4) == 0 {
			b = append(b, alphabet[rng.IntN(len(alphabet))])
		} else {
			b = append(b, "lorem ipsum dolor sit amet "[rng.IntN(27)])
		}
	}
	return b[:n]
}

// TestReaderRoundTrip checks the lines of a randomly written file against
// the lines that were written, per stream.
func TestReaderRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var written [2][]string
	var queues [2][]tr
	var now int64
	for range 500 {
		now += 1 + rng.Int64N(1000)
		size := rng.IntN(300)
		if rng.IntN(8) == 0 {
			size = rng.IntN(60 << 10)
		}
		text := randomText(rng, size)
		k := rng.IntN(2)
		var want []byte
		for _, p := range dockerParts(append(text, '\n')) {
			queues[k] = append(queues[k], tr{string(p), k == 1, now})
			want = append(want, dockerSanitize(p)...) // Docker escapes each part alone
		}
		want = bytes.TrimSuffix(want, []byte("\n"))
		want = bytes.TrimSuffix(want, []byte("\r"))
		written[k] = append(written[k], string(want))
	}
	var recs []tr
	for len(queues[0])+len(queues[1]) > 0 {
		k := rng.IntN(2)
		if len(queues[k]) == 0 {
			k = 1 - k
		}
		recs = append(recs, queues[k][0])
		queues[k] = queues[k][1:]
	}
	file, _ := buildFile(recs)
	lines, corrupt := readAll(t, NewFileReader(bytes.NewReader(file), 0, 0))
	if len(corrupt) > 0 {
		t.Fatal(corrupt)
	}
	var got [2][]string
	for _, l := range lines {
		k := 0
		if l.Stream == Stderr {
			k = 1
		}
		if l.Partial || l.Truncated {
			t.Errorf("line %q: Partial %v Truncated %v", l.Text, l.Partial, l.Truncated)
		}
		got[k] = append(got[k], string(l.Text))
	}
	for k := range got {
		if !slices.Equal(got[k], written[k]) {
			t.Errorf("stream %d: %d lines differ from the %d written", k, len(got[k]), len(written[k]))
		}
	}
}

// TestReaderReadErrors checks that an error from the file is returned and
// that the FileReader goes on after it.
func TestReaderReadErrors(t *testing.T) {
	file, _ := buildFile(randomRecords(rand.New(rand.NewPCG(7, 8)), 100))
	want, _ := readAll(t, NewFileReader(bytes.NewReader(file), 0, 0))
	for name, r := range map[string]io.Reader{
		"data with error": iotest.DataErrReader(bytes.NewReader(file)),
		"half reads":      iotest.HalfReader(bytes.NewReader(file)),
		"timeouts":        &flakyReader{r: bytes.NewReader(file)},
	} {
		t.Run(name, func(t *testing.T) {
			rd := NewFileReader(r, 0, 0)
			var got []Line
			for errs := 0; ; {
				l, err := rd.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					if errs++; errs > 1000 {
						t.Fatal(err)
					}
					continue
				}
				got = append(got, l)
			}
			for {
				l, err := rd.Flush()
				if err == io.EOF {
					break
				}
				if err != nil {
					continue
				}
				got = append(got, l)
			}
			if !equalLines(got, want) {
				t.Errorf("%d lines, want %d", len(got), len(want))
			}
		})
	}
}

// flakyReader fails every third read, sometimes after returning data.
type flakyReader struct {
	r io.Reader
	n int
}

func (f *flakyReader) Read(p []byte) (int, error) {
	f.n++
	switch f.n % 3 {
	case 0:
		return 0, iotest.ErrTimeout
	case 1:
		n, err := f.r.Read(p[:min(len(p), 1000)])
		if err == nil && n > 0 {
			err = iotest.ErrTimeout
		}
		return n, err
	}
	return f.r.Read(p)
}

func TestReaderNoProgress(t *testing.T) {
	r := NewFileReader(emptyReader{}, 0, 0)
	if _, err := r.Next(); err != io.ErrNoProgress {
		t.Errorf("err = %v, want io.ErrNoProgress", err)
	}
}

type emptyReader struct{}

func (emptyReader) Read([]byte) (int, error) { return 0, nil }

func TestReaderOwnership(t *testing.T) {
	file, _ := buildFile([]tr{{"first\n", false, 0}, {"second\n", false, 1}})
	r := NewFileReader(bytes.NewReader(file), 0, 0)
	a, _ := r.Next()
	b, _ := r.Next()
	if string(a.Text) != "first" || string(b.Text) != "second" {
		t.Fatalf("Next's lines share memory: %q %q", a.Text, b.Text)
	}

	r = NewFileReader(bytes.NewReader(file), 0, 0)
	dst := []byte("kept:")
	a, dst, _ = r.NextAppend(dst)
	b, dst, _ = r.NextAppend(dst)
	if string(dst) != "kept:firstsecond" || string(a.Text) != "first" || cap(a.Text) != len(a.Text) {
		t.Fatalf("NextAppend: dst %q, first %q (cap %d)", dst, a.Text, cap(a.Text))
	}
	_, dst2, err := r.NextAppend(dst)
	if err != io.EOF || len(dst2) != len(dst) {
		t.Fatalf("NextAppend at the end: %v, dst %q", err, dst2)
	}
}

func TestReaderAllocations(t *testing.T) {
	file := benchFile("plain", 1000)
	r := NewFileReader(&cycleReader{data: file}, 0, 0)
	var dst []byte
	allocs := testing.AllocsPerRun(1000, func() {
		var err error
		if _, dst, err = r.NextAppend(dst[:0]); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("NextAppend: %v allocations per line", allocs)
	}
	allocs = testing.AllocsPerRun(1000, func() {
		if _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 1 {
		t.Errorf("Next: %v allocations per line", allocs)
	}
}
