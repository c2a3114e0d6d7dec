package linecap

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCut(t *testing.T) {
	for _, tc := range []struct {
		kept        string
		dropped     int
		wantKept    string
		wantDropped int
	}{
		{"abc", 2, "abc", 2},
		{"ab\xc3", 1, "ab", 2},         // first byte of é
		{"ab\xe2\x82", 1, "ab", 3},     // two bytes of €
		{"ab\xf0\x9f\x98", 1, "ab", 4}, // three bytes of 😀
		{"abé", 1, "abé", 1},
		{"ab\x80", 1, "ab\x80", 1}, // invalid, but not a sequence cut short
		{"", 5, "", 5},
	} {
		kept, dropped := Cut([]byte(tc.kept), tc.dropped)
		if string(kept) != tc.wantKept || dropped != tc.wantDropped {
			t.Errorf("Cut(%q, %d) = %q, %d; want %q, %d", tc.kept, tc.dropped, kept, dropped, tc.wantKept, tc.wantDropped)
		}
	}
}

func TestAppendMarker(t *testing.T) {
	if got := string(AppendMarker([]byte("x"), 12345)); got != "x …[truncated 12345 bytes]" {
		t.Errorf("AppendMarker = %q", got)
	}
	if got := string(AppendMarker([]byte("x"), 0)); got != "x" {
		t.Errorf("AppendMarker of nothing dropped = %q", got)
	}
}

func TestMarkerLen(t *testing.T) {
	for _, n := range []int{-1, 0, 1, 9, 10, 99, 100, 12345, 1<<31 - 1, 1<<63 - 1} {
		if got, want := MarkerLen(n), len(AppendMarker(nil, n)); got != want {
			t.Errorf("MarkerLen(%d) = %d, want %d", n, got, want)
		}
	}
}

func TestBuilder(t *testing.T) {
	for _, tc := range []struct {
		name        string
		max         int
		parts       []string
		stripCR     bool
		wantKept    string
		wantDropped int
	}{
		{"short", 10, []string{"ab", "", "cd"}, true, "abcd", 0},
		{"exactly max", 4, []string{"ab", "cd"}, true, "abcd", 0},
		{"cut", 4, []string{"abc", "def", "g"}, true, "abcd", 3},
		{"crlf ending", 10, []string{"abc\r"}, true, "abc", 0},
		{"cr kept in a partial line", 10, []string{"abc\r"}, false, "abc\r", 0},
		{"cr of crlf beyond max", 3, []string{"abcd", "\r"}, true, "abc", 1},
		{"cr alone beyond max", 3, []string{"abc", "\r"}, true, "abc", 0},
		{"cr only in an earlier part", 10, []string{"a\r", "b"}, true, "a\rb", 0},
		{"cut inside a character", 4, []string{"abcé", "x"}, true, "abc\xc3", 2},
		{"zero max", 0, []string{"abc"}, true, "", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b Builder
			// A previous line must leave nothing behind.
			b.Reset(100)
			b.Add([]byte("previous line\r"))
			b.Reset(tc.max)
			for _, p := range tc.parts {
				b.Add([]byte(p))
			}
			if b.Kept() > tc.max {
				t.Errorf("Kept() = %d, more than %d", b.Kept(), tc.max)
			}
			kept, dropped := b.End(tc.stripCR)
			if string(kept) != tc.wantKept || dropped != tc.wantDropped {
				t.Errorf("End = %q, %d; want %q, %d", kept, dropped, tc.wantKept, tc.wantDropped)
			}
		})
	}
}

func TestBuilderEndMarked(t *testing.T) {
	var b Builder
	for range 3 {
		b.Reset(8)
		b.Add([]byte(strings.Repeat("é", 10)))
		line, truncated := b.EndMarked(true)
		if want := "éééé …[truncated 12 bytes]"; string(line) != want || !truncated || !utf8.Valid(line) {
			t.Fatalf("EndMarked = %q, %v; want %q, true", line, truncated, want)
		}
	}
	b.Reset(8)
	b.Add([]byte("short"))
	if line, truncated := b.EndMarked(true); string(line) != "short" || truncated {
		t.Errorf("EndMarked = %q, %v; want \"short\", false", line, truncated)
	}
	if allocs := testing.AllocsPerRun(10, func() {
		b.Reset(8)
		b.Add([]byte("0123456789"))
		b.EndMarked(false)
	}); allocs != 0 {
		t.Errorf("a truncated line allocates %v times once the buffer has grown", allocs)
	}
}

// TestBuilderRelease: a Builder released between lines gives back its
// buffer and builds the next line as before.
func TestBuilderRelease(t *testing.T) {
	var b Builder
	b.Reset(100)
	b.Add([]byte(strings.Repeat("x", 80)))
	b.End(false)
	if b.Cap() < 80 {
		t.Fatalf("buffer of %d bytes after an 80-byte line", b.Cap())
	}
	b.Release()
	if b.Cap() != 0 {
		t.Fatalf("buffer of %d bytes after Release", b.Cap())
	}
	b.Reset(100)
	b.Add([]byte("ab"))
	b.Add([]byte("c"))
	if kept, dropped := b.End(false); string(kept) != "abc" || dropped != 0 {
		t.Fatalf("after Release: %q, %d dropped", kept, dropped)
	}
}
