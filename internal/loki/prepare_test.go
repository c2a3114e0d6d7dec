package loki

import (
	"bytes"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/wharf-logs/wharf/internal/entry"
)

func TestLimitsPrepare(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	st := entry.NewStream(entry.Labels{{Name: "a", Value: "b"}}, nil, "x")
	many := make(entry.Labels, 16)
	for i := range many {
		many[i] = entry.Label{Name: string(rune('a' + i)), Value: "v"}
	}
	wide := entry.NewStream(many, nil, "x")
	l := Limits{MaxAge: 167 * time.Hour, MaxFuture: 10 * time.Minute, MaxLineBytes: 100, LongLines: LongLinesTruncate}
	drop := l
	drop.LongLines = LongLinesDrop
	long := []byte(strings.Repeat("é", 80)) // 160 bytes
	tests := []struct {
		name   string
		l      Limits
		e      entry.Entry
		reason string
	}{
		{"fresh", l, entry.Entry{Time: now.UnixNano(), Line: []byte("x"), Stream: st}, ""},
		{"old", l, entry.Entry{Time: now.Add(-168 * time.Hour).UnixNano(), Line: []byte("x"), Stream: st}, ReasonTooOld},
		{"just young enough", l, entry.Entry{Time: now.Add(-166 * time.Hour).UnixNano(), Line: []byte("x"), Stream: st}, ""},
		{"future", l, entry.Entry{Time: now.Add(11 * time.Minute).UnixNano(), Line: []byte("x"), Stream: st}, ReasonTooNew},
		{"too many labels", l, entry.Entry{Time: now.UnixNano(), Line: []byte("x"), Stream: wide}, ReasonTooManyLabels},
		{"long dropped", drop, entry.Entry{Time: now.UnixNano(), Line: long, Stream: st}, ReasonLineTooLong},
		{"long truncated", l, entry.Entry{Time: now.UnixNano(), Line: long, Stream: st}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := bytes.Clone(tt.e.Line)
			e := tt.e
			if got := tt.l.Prepare(&e, now); got != tt.reason {
				t.Fatalf("reason %q, want %q", got, tt.reason)
			}
			if !bytes.Equal(tt.e.Line, orig) {
				t.Fatal("Prepare modified the shared line bytes")
			}
			if tt.name == "long truncated" {
				if len(e.Line) > 100 || !utf8.Valid(e.Line) || !strings.Contains(string(e.Line), "…[truncated ") {
					t.Fatalf("truncated line %q (%d bytes)", e.Line, len(e.Line))
				}
			}
		})
	}
}
