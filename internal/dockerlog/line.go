package dockerlog

import "github.com/wharf-logs/wharf/internal/linecap"

// Limits both readers share.
const (
	// partSize is the size of every part of a split line but the last: the
	// copier's default buffer.
	partSize = 16 << 10
	// defaultMaxLine is the line cap when a reader is given none: Loki's
	// default max_line_size.
	defaultMaxLine = 256 << 10
	// markerMax holds any truncation marker.
	markerMax = 48
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
