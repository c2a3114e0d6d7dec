package dockerlog

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
)

// FuzzDecode checks Decode against encoding/json (see oracle): both accept
// the same records, with the same text, stream and time to the nanosecond.
// The seeds are Docker's layout, so most mutants still take the fast path.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		rec(`hello world\n`, "stdout", t0),
		rec(`a\"b\\c\/d\b\f\n\r\t\u003c\u003e\u0026\u0000\u001b`, "stderr", t0),
		rec(`\ud83d\ude00 \ud83d \ude00 \ud83d\u0041 héllo 😀`, "stdout", "2026-11-27T01:30:28.0544469Z"),
		rec("invalid \xff \xed\xa0\x80 \xe2\x82", "stdout", "2026-11-27T01:30:28Z"),
		rec(`x`, "stdout", "2026-11-27T01:30:28.123+02:00"),
		rec(`x`, "stdout", "1677-09-21T00:12:43.145224192Z"),
		`{"log":"x\n","stream":"stdout","attrs":{"tag":"web","k":"\u003cv\u003e"},"time":"` + t0 + `"}`,
		`{"time":"` + t0 + `","stream":"stderr","log":"x\n","extra":[1,null]}`,
		`{"log":"x"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		checkOracle(t, line)
	})
}

// FuzzReader reads arbitrary file contents, whole and as a file growing by
// step bytes, and checks that the FileReader never panics, stays within its
// memory bounds, returns the same lines both ways, gives positions that
// only move forward and lie within the data, and resumes exactly after any
// line from its position.
func FuzzReader(f *testing.F) {
	for seed := range uint64(4) {
		rng := rand.New(rand.NewPCG(seed, 99))
		recs := randomRecords(rng, 3)
		for i := range recs {
			// Shorter parts keep seeds small: use 64-byte "parts".
			if len(recs[i].text) > 64 {
				recs[i].text = recs[i].text[:64]
			}
		}
		file, _ := buildFile(recs)
		f.Add(file, uint16(40), uint16(7))
	}
	file, _ := buildFile([]tr{{strings.Repeat("x", partSize), false, 1}, {"e\n", true, 2}, {"z\r", false, 1}, {"\n", false, 1}, {"tail", true, 3}})
	f.Add(file, uint16(100), uint16(1000))
	f.Add([]byte("garbage\n{\"log\":\"x\"}\n\n"+rec(`ok\n`, "stdout", t0)+"\n"+rec(`cut`, "stdout", t0)[:20]), uint16(0), uint16(3))

	f.Fuzz(func(t *testing.T, data []byte, maxLine, step uint16) {
		limit := int(maxLine%300) + 1
		whole := fuzzRead(t, data, len(data)+1, limit)
		if step > 0 {
			if grown := fuzzRead(t, data, int(step), limit); !equalLines(grown, whole) {
				t.Fatalf("reading as the data grows by %d bytes gives other lines", step)
			}
		}
		var prev FilePosition
		for i, l := range whole {
			p := l.Pos
			if p.Resume < 0 || p.Resume > p.Seen || p.End > p.Seen || p.Seen > int64(len(data)) ||
				(i > 0 && !prev.before(p)) || p.Resume < prev.Resume {
				t.Fatalf("line %d at %+v after %+v", i, p, prev)
			}
			if len(l.Text) > limit+markerMax {
				t.Fatalf("line %d: %d bytes for a maximum of %d", i, len(l.Text), limit)
			}
			if l.Truncated && !bytes.Contains(l.Text, []byte(" …[truncated ")) {
				t.Fatalf("line %d: truncated without the marker", i)
			}
			prev = p
		}
		for i, l := range whole {
			if i >= 8 {
				break
			}
			got := fuzzRead(t, data[l.Pos.Resume:], len(data)+1, limit, l.Pos)
			if !equalLines(got, whole[i+1:]) {
				t.Fatalf("resuming after line %d at %+v: %d lines, want %d", i, l.Pos, len(got), len(whole)-i-1)
			}
		}
	})
}

// fuzzRead reads data as a file growing by step bytes, then flushes, and
// checks the FileReader's memory bounds as it goes. With a position, it resumes
// after it; data then starts at its Resume.
func fuzzRead(t *testing.T, data []byte, step, maxLine int, resume ...FilePosition) []Line {
	g := &growReader{data: data}
	r := NewFileReader(g, 0, maxLine)
	if len(resume) > 0 {
		r = NewFileReaderAt(g, resume[0], maxLine)
	}
	var lines []Line
	next := r.Next
	for flushing := false; ; {
		l, err := next()
		if len(r.buf) > MaxRecord || r.lines[0].text.Kept() > maxLine || r.lines[1].text.Kept() > maxLine {
			t.Fatalf("memory bound exceeded: buffer %d, kept %d and %d", len(r.buf), r.lines[0].text.Kept(), r.lines[1].text.Kept())
		}
		switch {
		case err == nil:
			lines = append(lines, l)
		case errors.Is(err, ErrCorruptRecord):
		case err == io.EOF && g.limit < len(data):
			g.limit = min(len(data), g.limit+step)
		case err == io.EOF && !flushing:
			next, flushing = r.Flush, true
		case err == io.EOF:
			return lines
		default:
			t.Fatal(err)
		}
	}
}
