package dockerlog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/wharf-logs/wharf/internal/linecap"
)

const (
	// MaxRecord bounds a record, newline included. Docker's are at most
	// about 100 KiB (16 KiB of text, each byte escaped to six in the worst
	// case, plus attrs); anything longer is not a record it wrote and is
	// skipped rather than buffered.
	MaxRecord = 1 << 20

	// The read buffer starts small, for the many containers that log
	// little, and doubles while reads fill it, up to bufSize.
	initialBufSize = 4 << 10
	bufSize        = 64 << 10
)

// ErrCorruptRecord is matched by errors.Is for every *CorruptRecordError.
var ErrCorruptRecord = errors.New("dockerlog: corrupt record")

var errRecordTooLong = fmt.Errorf("dockerlog: record longer than %d bytes", MaxRecord)

// CorruptRecordError reports a record the FileReader skipped: not valid JSON,
// without a valid time or stream, or longer than MaxRecord. The FileReader goes
// on after it: Next may be called again.
type CorruptRecordError struct {
	// Offset is the file offset of the record.
	Offset int64
	// Len is its length in bytes, without its newline.
	Len int64
	// Err says what is wrong with it.
	Err error
}

func (e *CorruptRecordError) Error() string {
	return fmt.Sprintf("dockerlog: corrupt record at offset %d (%d bytes): %s",
		e.Offset, e.Len, strings.TrimPrefix(e.Err.Error(), "dockerlog: "))
}

// Unwrap returns Err.
func (e *CorruptRecordError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrCorruptRecord) true.
func (e *CorruptRecordError) Is(target error) bool { return target == ErrCorruptRecord }

// FilePosition locates a line in a json-file log. Stored by a checkpoint once
// the line and every line before it are delivered, it lets NewFileReaderAt
// return exactly the lines after it: none lost, none repeated.
type FilePosition struct {
	// End is the file offset just after the line's last record.
	End int64
	// Seen is the offset the FileReader had read up to when the line was
	// known to be complete: End, except for a Partial line, whose end is
	// only known at the next record of its stream (Seen is where that
	// record starts) or at Flush (the end of the data). Seen never
	// decreases from one line to the next. Lines can share a Seen: a line
	// ended by the record just before the one that shows the other
	// stream's line to be over; lines returned by one Flush.
	Seen int64
	// Resume is the file offset to read again from: Seen, unless the
	// other stream then had a line in progress (a split line whose first
	// parts were read), in which case it is the offset of that line's first
	// record. Resume never decreases from one line to the next.
	Resume int64
}

// before reports whether the line at p was returned before the line at q
// by a FileReader: lines come in the order of Seen, and, among those sharing a
// Seen, of decreasing End.
func (p FilePosition) before(q FilePosition) bool {
	return p.Seen < q.Seen || p.Seen == q.Seen && p.End > q.End
}

// FileReader reads log lines from a json-file log. It reads through a buffer of
// its own, so the caller must not read from r as well, and it never closes
// r: the code that opened the file closes it.
//
// When the data ends, Next returns io.EOF without consuming an unfinished
// record or line, and reads on from there when called again: a file that
// grows can be followed by calling Next whenever it has grown. Flush ends
// what is left when the file is known to be complete.
//
// # Checkpoints
//
// A line's Pos, stored once it is delivered, is a checkpoint: open the file
// at Pos.Resume and read it with NewFileReaderAt(f, pos, maxLine). Resume is
// before any line the other stream had in progress, so none loses its
// first parts; the FileReader then drops what it reads again up to the stored
// line, including the last parts of a line that began before Resume, which
// would otherwise come back as a line of their own.
//
// Memory is bounded whatever the input: a read buffer of 4 to 64 KiB (up to
// MaxRecord while a record does not fit in it), plus, per stream, the first
// maxLine bytes of a line split over several records.
//
// Its errors do not name the file, which it does not know: the caller
// wraps them with the path. A FileReader is not safe for concurrent use.
type FileReader struct {
	r       io.Reader
	maxLine int

	buf        []byte
	rpos, wpos int
	base       int64 // file offset of buf[0]
	scanned    int   // bytes from rpos known to hold no '\n'
	rerr       error // a read error that came with data, returned once that is used
	filled     bool  // the last read filled the buffer: there is more to read

	// A record longer than MaxRecord whose bytes are being dropped up to
	// its newline.
	discarding   bool
	discardStart int64

	stamps stampCache
	lines  [2]pendingLine // per stream: stdout, stderr
	out    []byte         // Flush's staging buffer
	// delivered is the checkpoint resumed from: lines up to it, and
	// corrupt records before its Seen, were handed out already.
	delivered FilePosition
}

// NewFileReader returns a FileReader of r, which starts at a record boundary at
// file offset offset, normally 0. Lines longer than maxLine bytes are cut to
// their first maxLine bytes (fewer when that would split a UTF-8
// character) followed by the truncation marker; maxLine <= 0 means 256 KiB.
func NewFileReader(r io.Reader, offset int64, maxLine int) *FileReader {
	if maxLine <= 0 {
		maxLine = defaultMaxLine
	}
	return &FileReader{r: r, maxLine: maxLine, base: offset, buf: make([]byte, initialBufSize)}
}

// NewFileReaderAt returns a FileReader that resumes after the line at p, a
// Pos a FileReader of the same file returned: r starts at file offset
// p.Resume. The lines up to the one at p, and the corrupt records before it,
// are read again but not returned.
func NewFileReaderAt(r io.Reader, p FilePosition, maxLine int) *FileReader {
	rd := NewFileReader(r, p.Resume, maxLine)
	rd.delivered = p
	return rd
}

// Release gives back the memory the FileReader grew while it read a
// backlog: its read buffer returns to its initial 4 KiB when what it holds
// unread fits in half of that, and the staging buffer of Flush and the
// buffers of split lines not in progress go. Call it when the data has ended
// for now and the reader may wait a while, so that a reader of a quiet log
// holds a few KiB whatever it read before. It changes nothing the FileReader
// returns.
func (r *FileReader) Release() {
	if len(r.buf) > initialBufSize && r.wpos-r.rpos <= initialBufSize/2 {
		buf := make([]byte, initialBufSize)
		r.wpos = copy(buf, r.buf[r.rpos:r.wpos])
		r.base += int64(r.rpos)
		r.rpos = 0
		r.buf = buf
		r.filled = false
	}
	r.out = nil
	for i := range r.lines {
		if !r.lines[i].active {
			r.lines[i].text.Release()
		}
	}
}

// NextAppend returns the next line appended to dst, and the extended
// slice; Text is the appended part, with its capacity clipped. Passing the
// returned slice back in packs many lines into few allocations: the caller
// owns dst and its lines, and may reuse it (as dst[:0]) once it no longer
// needs any line that was appended to it. On error dst is returned as it was.
func (r *FileReader) NextAppend(dst []byte) (Line, []byte, error) {
	return r.next(dst, false)
}

// Flush is Next for data known to be complete: a rotated file, or the log
// of a container that is gone. At the end of the data it takes an
// unterminated last record as whole, then returns the lines still waiting
// for their end, with Partial set (the one whose last record is later
// first), and only then io.EOF.
func (r *FileReader) Flush() (Line, error) {
	l, out, err := r.next(r.out[:0], true)
	r.out = out[:0]
	if err != nil {
		return Line{}, err
	}
	l.Text = bytes.Clone(l.Text)
	return l, nil
}

// next returns the next line appended to dst. With final set, the end of
// the data is the end of the file.
func (r *FileReader) next(dst []byte, final bool) (Line, []byte, error) {
	for {
		nl := -1
		if r.rpos < r.wpos {
			nl = bytes.IndexByte(r.buf[r.rpos+r.scanned:r.wpos], '\n')
		}
		if nl >= 0 {
			end := r.rpos + r.scanned + nl
			r.scanned = 0
			if r.discarding {
				r.discarding = false
				r.rpos = end + 1
				if err := r.corrupt(r.discardStart, r.base+int64(end), r.base+int64(end+1), errRecordTooLong); err != nil {
					return Line{}, dst, err
				}
				continue
			}
			if l, out, ok, err := r.take(dst, r.rpos, end, end+1); ok || err != nil {
				return l, out, err
			}
			continue
		}

		r.scanned = r.wpos - r.rpos
		if r.discarding || r.scanned >= MaxRecord {
			if !r.discarding {
				r.discarding, r.discardStart = true, r.base+int64(r.rpos)
			}
			r.base += int64(r.wpos)
			r.rpos, r.wpos, r.scanned = 0, 0, 0
		}
		err := r.fill()
		if err == nil {
			continue
		}
		if err != io.EOF || !final {
			return Line{}, dst, err
		}

		// The data is complete: what is left ends here.
		if r.discarding {
			r.discarding = false
			end := r.base + int64(r.wpos)
			if err := r.corrupt(r.discardStart, end, end, errRecordTooLong); err != nil {
				return Line{}, dst, err
			}
			continue
		}
		if r.rpos < r.wpos {
			r.scanned = 0
			if l, out, ok, err := r.take(dst, r.rpos, r.wpos, r.wpos); ok || err != nil {
				return l, out, err
			}
			continue
		}
		// The order of FilePosition.before.
		k := -1
		for i := range r.lines {
			if c := &r.lines[i]; c.active && (k < 0 || c.end > r.lines[k].end) {
				k = i
			}
		}
		if k < 0 {
			return Line{}, dst, io.EOF
		}
		if l, out, ok := r.emit(dst, k, r.base+int64(r.rpos), true); ok {
			return l, out, nil
		}
	}
}

// take handles the record buf[s:e], which ends at buf[next] (after its
// newline, if it has one). It reports whether it produced a line or an
// error; when it does not, the record was consumed into a pending line or
// skipped.
func (r *FileReader) take(dst []byte, s, e, next int) (Line, []byte, bool, error) {
	start := len(dst)
	rec, dst, err := decode(r.buf[s:e], dst, &r.stamps)
	if err != nil {
		r.rpos = next
		return Line{}, dst, false, r.corrupt(r.base+int64(s), r.base+int64(e), r.base+int64(next), err)
	}
	k := int(rec.Stream) - 1
	p := &r.lines[k]
	if p.active && !p.continuedBy(rec.Time) {
		// Not the rest of the pending line, which is therefore the end of
		// an earlier run of the container. The record is taken again by
		// the next call.
		l, out, ok := r.emit(dst[:start], k, r.base+int64(s), true)
		return l, out, ok, nil
	}
	r.rpos = next
	end := r.base + int64(next)
	text := rec.Log
	if len(text) == 0 {
		// Docker never writes an empty record: it omits "log" only when
		// empty. It carries nothing, not even the end of a line.
		return Line{}, dst[:start], false, nil
	}
	last := text[len(text)-1] == '\n'
	if last && !p.active {
		// A whole line in one record, decoded in place: the common case.
		pos := FilePosition{End: end, Seen: end, Resume: r.resume(end)}
		if !r.delivered.before(pos) {
			return Line{}, dst[:start], false, nil
		}
		text = text[:len(text)-1]
		if n := len(text); n > 0 && text[n-1] == '\r' {
			text = text[:n-1]
		}
		dropped := 0
		if len(text) > r.maxLine {
			text, dropped = linecap.Cut(text[:r.maxLine], len(text)-r.maxLine)
		}
		dst = linecap.AppendMarker(dst[:start+len(text)], dropped)
		return Line{
			Time:      rec.Time,
			Stream:    rec.Stream,
			Text:      dst[start:len(dst):len(dst)],
			Truncated: dropped > 0,
			Pos:       pos,
		}, dst, true, nil
	}
	if !p.active {
		p.begin(rec.Time, r.base+int64(s), r.maxLine)
	}
	p.end = end
	if last {
		p.add(text[:len(text)-1])
		l, out, ok := r.emit(dst[:start], k, end, false)
		return l, out, ok, nil
	}
	p.add(text)
	p.partLen = len(text)
	return Line{}, dst[:start], false, nil
}

// emit ends the pending line of stream k, known complete at file offset
// seen, and appends it to dst, unless it was delivered before.
func (r *FileReader) emit(dst []byte, k int, seen int64, partial bool) (Line, []byte, bool) {
	p := &r.lines[k]
	kept, dropped := p.finish(!partial)
	pos := FilePosition{End: p.end, Seen: seen, Resume: r.resume(seen)}
	if !r.delivered.before(pos) {
		return Line{}, dst, false
	}
	if dropped > 0 {
		kept, dropped = linecap.Cut(kept, dropped)
	}
	start := len(dst)
	dst = append(dst, kept...)
	dst = linecap.AppendMarker(dst, dropped)
	return Line{
		Time:      p.time,
		Stream:    StreamKind(k + 1),
		Text:      dst[start:len(dst):len(dst)],
		Truncated: dropped > 0,
		Partial:   partial,
		Pos:       pos,
	}, dst, true
}

// resume returns where to read again from once the lines known complete at
// offset seen are delivered: before any line still in progress.
func (r *FileReader) resume(seen int64) int64 {
	for i := range r.lines {
		if l := &r.lines[i]; l.active && l.start < seen {
			seen = l.start
		}
	}
	return seen
}

// corrupt counts and reports the corrupt record at file offsets [off, end),
// followed by its newline up to after, unless it was reported before the
// checkpoint being resumed from.
func (r *FileReader) corrupt(off, end, after int64, err error) error {
	if after <= r.delivered.Seen {
		return nil
	}
	return &CorruptRecordError{Offset: off, Len: end - off, Err: err}
}

// fill reads once more into the buffer, first sliding the unread bytes to
// its start, and growing it when they fill it. It returns io.EOF when the
// data has ended for now and nothing was added.
func (r *FileReader) fill() error {
	if r.rerr != nil {
		err := r.rerr
		r.rerr = nil
		return err
	}
	if r.rpos > 0 {
		r.base += int64(r.rpos)
		r.wpos = copy(r.buf, r.buf[r.rpos:r.wpos])
		r.rpos = 0
	}
	// Grow when one unfinished record fills the buffer (next never lets it
	// reach MaxRecord, so doubling stays within it), or when the data comes
	// faster than the buffer takes it.
	if r.wpos == len(r.buf) || r.filled && len(r.buf) < bufSize {
		buf := make([]byte, min(2*len(r.buf), MaxRecord))
		copy(buf, r.buf[:r.wpos])
		r.buf = buf
	}
	for range maxEmptyReads {
		n, err := r.r.Read(r.buf[r.wpos:])
		if n < 0 || n > len(r.buf)-r.wpos {
			return fmt.Errorf("dockerlog: reader returned %d bytes for a %d-byte buffer", n, len(r.buf)-r.wpos)
		}
		r.filled = n == len(r.buf)-r.wpos
		r.wpos += n
		if n > 0 {
			if err != nil && err != io.EOF {
				r.rerr = err
			}
			return nil
		}
		if err != nil {
			return err
		}
	}
	return io.ErrNoProgress
}
