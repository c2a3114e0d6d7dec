package source

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCapLabelValue(t *testing.T) {
	const max = MaxLabelValueBytes
	for _, tc := range []struct {
		name string
		in   string
		want int // length of the result
	}{
		{"short", "abc", 3},
		{"exactly the limit", strings.Repeat("a", max), max},
		{"one over", strings.Repeat("a", max+1), max},
		{"2-byte runes across the limit", "a" + strings.Repeat("é", max), max - 1},
		{"3-byte runes across the limit", strings.Repeat("€", max), max - max%3},
		{"4-byte runes across the limit", "ab" + strings.Repeat("😀", max), max - 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := CapLabelValue(tc.in)
			if len(got) != tc.want || !strings.HasPrefix(tc.in, got) || !utf8.ValidString(got) {
				t.Errorf("CapLabelValue: %d bytes (valid %v, prefix %v), want %d", len(got), utf8.ValidString(got), strings.HasPrefix(tc.in, got), tc.want)
			}
		})
	}
}
