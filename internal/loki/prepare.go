package loki

import (
	"time"
	"unicode/utf8"

	"github.com/wharf-logs/wharf/internal/entry"
	"github.com/wharf-logs/wharf/internal/linecap"
)

// Limits keeps entries out of a push that Loki would certainly refuse, so
// one bad entry does not turn a whole batch into a 400: entries older than
// MaxAge or further than MaxFuture ahead are dead-lettered with their reason,
// and lines longer than MaxLineBytes are truncated or dead-lettered.
// Limits implements sink.Preparer; it is a value and safe for concurrent use.
type Limits struct {
	MaxAge       time.Duration
	MaxFuture    time.Duration
	MaxLineBytes int
	// LongLines says what becomes of lines over MaxLineBytes; they are
	// truncated when it is empty.
	LongLines LongLines
}

// LongLines is what becomes of a line longer than Loki takes, as written in
// loki.long_lines.
type LongLines string

const (
	// LongLinesTruncate cuts the line, with a marker saying how much.
	LongLinesTruncate LongLines = "truncate"
	// LongLinesDrop dead-letters the entry.
	LongLinesDrop LongLines = "drop"
)

// MaxLabels is the most labels a stream may have: Loki's default
// max_label_names_per_series. Prepare dead-letters the entries of streams
// with more; wharf's configuration refuses label sets that would make them.
const MaxLabels = 15

// ReasonTooManyLabels is the reason for entries whose stream has more labels
// than Loki accepts; the other reasons Prepare gives are those of Loki's own
// refusals (classify.go).
const ReasonTooManyLabels = "too_many_labels"

// Prepare checks e against the limits at time now. It returns "" to send e
// (its Line possibly replaced by a truncated copy; the original bytes are
// never modified, other sinks share them) or the reason to dead-letter it.
func (l Limits) Prepare(e *entry.Entry, now time.Time) string {
	n := now.UnixNano()
	if l.MaxAge > 0 && e.Time < n-int64(l.MaxAge) {
		return ReasonTooOld
	}
	if l.MaxFuture > 0 && e.Time > n+int64(l.MaxFuture) {
		return ReasonTooNew
	}
	if len(e.Stream.Labels) > MaxLabels {
		return ReasonTooManyLabels
	}
	if l.MaxLineBytes > 0 && len(e.Line) > l.MaxLineBytes {
		if l.LongLines == LongLinesDrop {
			return ReasonLineTooLong
		}
		e.Line = truncate(e.Line, l.MaxLineBytes)
	}
	return ""
}

// truncate returns a new line of at most max bytes: the start of line, cut
// on a UTF-8 boundary, and linecap's marker saying how much was cut. Room is
// made for the marker of the whole line's length, the longest it can be.
func truncate(line []byte, max int) []byte {
	keep := max - linecap.MarkerLen(len(line))
	if keep < 0 {
		keep = 0
	}
	for keep > 0 && keep < len(line) && !utf8.RuneStart(line[keep]) {
		keep--
	}
	out := make([]byte, 0, max)
	out = append(out, line[:keep]...)
	return linecap.AppendMarker(out, len(line)-keep)
}
