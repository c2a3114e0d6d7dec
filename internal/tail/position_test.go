package tail

import (
	"strings"
	"testing"
)

func TestPositionString(t *testing.T) {
	for _, p := range []Position{
		{},
		{Dev: 2049, Inode: 1311, Offset: 4096, Fingerprint: 0x8c2d1f0e9a7b3c45, FingerprintLen: FingerprintBytes},
		{Dev: 0, Inode: 1, Offset: 0, Fingerprint: 0, FingerprintLen: 0},
		{Dev: 1<<64 - 1, Inode: 1<<64 - 1, Offset: 1<<63 - 1, Fingerprint: 1, FingerprintLen: 1},
	} {
		s := p.String()
		got, err := ParsePosition(s)
		if err != nil || got != p {
			t.Errorf("%+v -> %q -> %+v, %v", p, s, got, err)
		}
	}
	if s := (Position{Dev: 2049, Inode: 12, Offset: 7, Fingerprint: 0xab, FingerprintLen: 7}).String(); s != "v1 2049 12 7 7 ab" {
		t.Errorf("String() = %q", s)
	}
}

func TestParsePositionRejects(t *testing.T) {
	for _, s := range []string{
		"",
		"v1",
		"v2 1 2 3 4 5",
		"v1 1 2 3 4",
		"v1 1 2 3 4 5 6",
		"v1  1 2 3 4 5",
		"v1 1 2 3 4 5 ",
		"v1 -1 2 3 4 5",
		"v1 1 2 -3 4 5",
		"v1 1 2 9223372036854775808 4 5",
		"v1 1 2 3 1025 5",
		"v1 1 2 3 -1 5",
		"v1 1 2 3 4 xyz",
		"v1 1 2 3 0 5",   // a fingerprint of no bytes
		"v1 1 0 3 4 5",   // no inode, but an offset
		"v1 01 2 3 4 5",  // not canonical
		"v1 1 2 3 4 AB",  // upper-case hex
		"v1 +1 2 3 4 5",  // sign
		"v1 1 2 3 4 0x5", // prefix
		"v1\t1 2 3 4 5",
	} {
		if p, err := ParsePosition(s); err == nil {
			t.Errorf("ParsePosition(%q) = %+v, want an error", s, p)
		} else if !strings.HasPrefix(err.Error(), "tail: position ") {
			t.Errorf("ParsePosition(%q): error %q lacks the prefix", s, err)
		}
	}
}

func FuzzParsePosition(f *testing.F) {
	f.Add("v1 0 0 0 0 0")
	f.Add("v1 2049 1311 4096 1024 8c2d1f0e9a7b3c45")
	f.Add("v1 18446744073709551615 1 9223372036854775807 1 ffffffffffffffff")
	f.Add("v1 1 2 3 0 5")
	f.Add("v1 docker 1 2 3 4")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePosition(s)
		if err != nil {
			return
		}
		// One spelling per position, and only sane values.
		if p.String() != s {
			t.Fatalf("%q parsed to %+v, which prints as %q", s, p, p.String())
		}
		if p.Offset < 0 || p.FingerprintLen < 0 || p.FingerprintLen > FingerprintBytes ||
			(p.FingerprintLen == 0 && p.Fingerprint != 0) || (p.IsZero() && p != Position{}) {
			t.Fatalf("%q parsed to impossible %+v", s, p)
		}
	})
}
