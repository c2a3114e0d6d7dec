package seq

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestFormatLengthAndParse(t *testing.T) {
	formats := map[string]Format{
		"zero":      {},
		"text":      {Size: 120},
		"json":      {Size: 120, JSON: true},
		"ansi":      {Size: 120, ANSI: true, StderrFraction: 0.3},
		"json-ansi": {Size: 120, ANSI: true, JSON: true, StderrFraction: 0.3},
		"long":      {Size: 64, LongEvery: 7, LongSize: 40 << 10},
		"tiny-long": {Size: 200, LongEvery: 3, LongSize: 5},
	}
	const sent = 1764200000123456789
	for name, f := range formats {
		t.Run(name, func(t *testing.T) {
			for n := int64(1); n <= 1200; n++ {
				line := f.Line(n, sent)
				if len(line) != f.Len(n) {
					t.Fatalf("line %d: len %d, Len says %d", n, len(line), f.Len(n))
				}
				if want := f.size(n); want >= f.overhead(n) && len(line) != want {
					t.Fatalf("line %d: len %d, want size %d", n, len(line), want)
				}
				if strings.ContainsAny(line, "\n\r") {
					t.Fatalf("line %d contains a line break", n)
				}
				gotSeq, gotStream, gotSent, ok := ParseLine(line + "\n")
				if !ok || gotSeq != n || gotStream != f.Stream(n) || gotSent != sent {
					t.Fatalf("ParseLine(%q) = %d %q %d %v", line, gotSeq, gotStream, gotSent, ok)
				}
				if f.JSON && !json.Valid([]byte(line)) {
					t.Fatalf("line %d is not valid JSON: %q", n, line)
				}
			}
		})
	}
}

func TestFormatDeterministic(t *testing.T) {
	f := Format{Size: 90, StderrFraction: 0.25}
	if a, b := f.Line(42, 7), f.Line(42, 7); a != b {
		t.Fatalf("same input, different lines: %q %q", a, b)
	}
	const want = "seq=1 stream=out sent=0000000000000000007 quick brown fox jumps over the lazy dog while fi"
	if got := f.Line(1, 7); got != want {
		t.Fatalf("line 1 = %q", got)
	}
	errs := 0
	for n := int64(1); n <= 1000; n++ {
		if f.Stream(n) == StreamErr {
			errs++
		}
	}
	if errs != 250 {
		t.Fatalf("%d stderr lines of 1000 for fraction 0.25", errs)
	}
}

func TestParseLineRejects(t *testing.T) {
	for _, line := range []string{
		"",
		"hello",
		"seq=",
		"seq=1",
		"seq=1 stream=out",
		"seq=1 stream=bad sent=1",
		"seq=1 stream=out sent=",
		"seq=1 stream=out sent=12x",
		"seq=x stream=out sent=1 ",
		"seq=99999999999999999999 stream=out sent=1 ",
		`{"seq":1,"stream":"out","sent":5`,
		`{"seq":1,"stream":"out","sent":}`,
		"2025-01-01T00:00:00Z seq=1 stream=out sent=1 ",
	} {
		if _, _, _, ok := ParseLine(line); ok {
			t.Errorf("ParseLine(%q) ok", line)
		}
	}
	for _, line := range []string{
		"seq=1 stream=out sent=1",
		"seq=1 stream=err sent=1 pad\r\n",
		`{"seq":1,"stream":"out","sent":5}`,
	} {
		if _, _, _, ok := ParseLine(line); !ok {
			t.Errorf("ParseLine(%q) not ok", line)
		}
	}
}

func TestChecker(t *testing.T) {
	f := Format{StderrFraction: 0.5}
	line := func(n int64) string { return f.Line(n, 1) }
	c := NewChecker()
	for n := int64(1); n <= 10; n++ {
		c.Add("good", line(n))
	}
	// bad: 3 missing, 5 twice, 8 (stdout? decided by f) after 9 of the same stream.
	for _, n := range []int64{1, 2, 4, 5, 5, 6, 7, 9, 10, 8} {
		c.Add("bad", line(n))
	}
	c.Add("bad", "garbage")
	c.Add("bad", line(11))

	if r := c.Report("good", 10); !r.OK() {
		t.Errorf("good: %v", r)
	}
	r := c.Report("bad", 10)
	if r.OK() {
		t.Fatal("bad reported OK")
	}
	if len(r.Missing) != 1 || r.Missing[0] != (Range{3, 3}) {
		t.Errorf("missing = %v", r.Missing)
	}
	if len(r.Duplicated) != 1 || r.Duplicated[0] != 5 {
		t.Errorf("duplicated = %v", r.Duplicated)
	}
	if f.Stream(8) != f.Stream(10) {
		t.Fatal("test assumes 8 and 10 share a stream")
	}
	if len(r.OutOfOrder) != 1 || r.OutOfOrder[0] != 8 {
		t.Errorf("out of order = %v", r.OutOfOrder)
	}
	if r.Unparsed != 1 || r.Unexpected != 1 {
		t.Errorf("unparsed %d, unexpected %d", r.Unparsed, r.Unexpected)
	}
	if r := c.Report("absent", 4); len(r.Missing) != 1 || r.Missing[0] != (Range{1, 4}) {
		t.Errorf("absent: %v", r)
	}
	err := c.Verify(map[string]int64{"good": 10})
	if err == nil || !strings.Contains(err.Error(), "unexpected container bad") {
		t.Errorf("Verify = %v", err)
	}
	if err := c.Verify(map[string]int64{"good": 10, "bad": 0}); err == nil {
		t.Error("Verify passed with a faulty container")
	} else {
		t.Log(err)
	}
}

func TestCheckerStreamsInterleave(t *testing.T) {
	// Docker reads stdout and stderr through separate pipes: an err line may
	// arrive before earlier out lines without that being reordering.
	f := Format{StderrFraction: 0.5}
	var lines []string
	for _, n := range []int64{2, 4, 1, 3, 6, 5} {
		lines = append(lines, f.Line(n, 1))
	}
	if r := CheckLines("c", lines, 6); !r.OK() {
		t.Fatal(r)
	}
}

func FuzzParseLine(f *testing.F) {
	f.Add("seq=1 stream=out sent=0000000000000000001 pad")
	f.Add(`{"seq":1,"stream":"err","sent":1,"msg":"x"}`)
	f.Fuzz(func(t *testing.T, line string) {
		n, stream, sent, ok := ParseLine(line)
		if !ok {
			return
		}
		if n < 0 || sent < 0 || (stream != StreamOut && stream != StreamErr) {
			t.Fatalf("ParseLine(%q) = %d %q %d", line, n, stream, sent)
		}
	})
}

func BenchmarkAppend(b *testing.B) {
	f := Format{Size: 256, StderrFraction: 0.2}
	buf := make([]byte, 0, 512)
	for i := range b.N {
		buf = f.Append(buf[:0], int64(i+1), 1764200000123456789)
	}
	b.SetBytes(256)
}
