package jsonenc

import (
	"encoding/json"
	"strings"
	"testing"
)

func check(t *testing.T, s string) {
	t.Helper()
	got := AppendString(nil, s)
	var back string
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatalf("AppendString(%q) = %s: not valid JSON: %v", s, got, err)
	}
	want, _ := json.Marshal(s) // encoding/json's reading of s, incl. U+FFFD
	var wantBack string
	_ = json.Unmarshal(want, &wantBack)
	if back != wantBack {
		t.Fatalf("AppendString(%q) decodes to %q, encoding/json gives %q", s, back, wantBack)
	}
	if gotB := AppendString(nil, []byte(s)); string(gotB) != string(got) {
		t.Fatalf("string and []byte forms differ: %s vs %s", got, gotB)
	}
}

func TestAppendString(t *testing.T) {
	for _, s := range []string{
		"", "plain", `quote " backslash \`, "nl\ncr\rtab\t", "\x00\x01\x1f\x7f",
		"héllo wörld ✓ 😀", "bad \xff\xfe utf8", "cut \xe2\x82", "\u2028\u2029",
		"<html>&amp;</html>", strings.Repeat("x", 1000) + "\xc0",
	} {
		check(t, s)
	}
}

func FuzzAppendString(f *testing.F) {
	f.Add("seed \x00 \xff ✓")
	f.Fuzz(func(t *testing.T, s string) { check(t, s) })
}

func BenchmarkAppendString(b *testing.B) {
	line := strings.Repeat("GET /api/v1/items?id=42 HTTP/1.1 200 0.003s user=\"bob\" ", 5)
	buf := make([]byte, 0, 1024)
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendString(buf[:0], line)
	}
}
