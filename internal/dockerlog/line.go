package dockerlog

import (
	"strconv"

	"github.com/wharf-logs/wharf/internal/linecap"
)

// StreamKind says which output of a container a log line came from. Its
// values are the stream bytes of the Engine's frame header.
type StreamKind uint8

// The streams a Line can come from. With a TTY everything is Stdout.
const (
	Stdout StreamKind = 1
	Stderr StreamKind = 2
)

// String returns "stdout" or "stderr", the values of the stream label.
func (k StreamKind) String() string {
	switch k {
	case Stdout:
		return "stdout"
	case Stderr:
		return "stderr"
	}
	return "stream(" + strconv.Itoa(int(k)) + ")"
}

// Line is one log line, rejoined from the parts Docker split it into, as
// both readers return it: a FileReader from a json-file, a Stream from an
// Engine API logs body.
type Line struct {
	// Time is the time of the line's first part in Unix nanoseconds: when
	// Docker read the start of the line. From a Stream it is 0 when the
	// message had no valid RFC 3339 timestamp prefix; the whole message is
	// then in Text.
	Time   int64
	Stream StreamKind
	// Text is the line without its "\n" and without a "\r" just before it.
	// It belongs to the caller: see the readers' Next and NextAppend.
	Text []byte
	// Truncated reports that the line was longer than the reader's maximum
	// and was cut; the marker " …[truncated N bytes]" ends Text, which is
	// therefore up to 41 bytes longer than the maximum.
	Truncated bool
	// Partial reports that the line has no newline: the container stopped
	// in the middle of it, as a later part of the same stream with another
	// time showed, or the data ended (a FileReader's Flush, the end of a
	// Stream's body) before the rest came. Every part of a split line
	// carries Time, so a logs request with since=Time returns the whole
	// line again.
	Partial bool
	// Pos is where the line is in its json-file; a Stream leaves it zero.
	Pos FilePosition
}

// Limits both readers share.
const (
	// partSize is the size of every part of a split line but the last: the
	// copier's default buffer.
	partSize = 16 << 10
	// defaultMaxLine is the line cap when a reader is given none: Loki's
	// default max_line_size.
	defaultMaxLine = 256 << 10
	// maxEmptyReads is how many reads may return nothing, and no error,
	// before a reader gives up with io.ErrNoProgress.
	maxEmptyReads = 100
)

// pendingLine is a line of one stream (stdout or stderr) that Docker split
// into parts, while the parts are joined: a json-file's records or a log
// stream's messages. Its text is kept to the reader's maximum in a
// linecap.Builder. It belongs to its reader.
type pendingLine struct {
	active  bool
	time    int64 // the time of the first part, which every part carries
	start   int64 // FileReader: file offset of the first record
	end     int64 // FileReader: file offset after the latest record
	partLen int   // text bytes of the latest part
	text    linecap.Builder
}

// begin starts a line whose first part has time t and, in a file, starts
// at offset start. At most max bytes of its text are kept.
func (l *pendingLine) begin(t, start int64, max int) {
	l.active, l.time, l.start, l.end, l.partLen = true, t, start, 0, 0
	l.text.Reset(max)
}

// continuedBy reports whether the next part of the line's stream, stamped
// t, continues the line. A part without newline is continued by the next
// message of its stream when that message has the same time, or when the
// part is a full 16384 bytes (the copier cut the line there, so more of it
// follows); otherwise it was the last words of a run of the container, and
// the next message starts the next run.
func (l *pendingLine) continuedBy(t int64) bool {
	return t == l.time || l.partLen == partSize
}

// add appends text to the line.
func (l *pendingLine) add(p []byte) { l.text.Add(p) }

// finish ends the line and returns its kept bytes and the number of bytes
// dropped beyond them, as linecap.Builder.End does; kept aliases l until
// the line is begun again. stripCR drops the "\r" of a "\r\n" ending.
func (l *pendingLine) finish(stripCR bool) (kept []byte, dropped int) {
	l.active = false
	return l.text.End(stripCR)
}
