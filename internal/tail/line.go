package tail

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sync"
	"time"

	"github.com/wharf-logs/wharf/internal/linecap"
)

// Line limits and defaults.
const (
	// DefaultMaxLine is the line cap when LineOptions.MaxLine is 0: Loki's
	// default max_line_size, beyond which Loki rejects a line.
	DefaultMaxLine = 256 << 10
	// DefaultMaxWait is how long a multiline entry waits for its next line
	// when LineOptions.MaxWait is 0, as Promtail's multiline stage does.
	DefaultMaxWait = 3 * time.Second

	// lineBufSize is a busy reader's buffer, taken from bufPool while
	// lines come and given back when the reader waits.
	lineBufSize = 128 << 10
	// idleBufSize is the buffer a reader keeps, and waits with, while its
	// file does not grow; larger ones are dropped then.
	idleBufSize = 2 << 10
)

// bufPool holds the large read buffers of readers that are waiting, for
// readers that have lines to read.
var bufPool = sync.Pool{New: func() any { b := make([]byte, lineBufSize); return &b }}

// passed is a deadline in the past: a read that does not wait.
var passed = time.Unix(0, 1)

// LineOptions configures a LineReader.
type LineOptions struct {
	// MaxLine caps a line, not counting its "\n" or "\r\n". A longer line
	// keeps its first MaxLine bytes (fewer when that would split a UTF-8
	// character) followed by the marker " …[truncated N bytes]", N being the
	// bytes dropped, as internal/docker does; the rest of it is read and
	// dropped in bounded memory. 0 means DefaultMaxLine.
	MaxLine int
	// Start, if set, joins lines into multiline entries: a line matching
	// Start begins an entry, and a line that does not is appended, after a
	// "\n", to the entry before it.
	Start *regexp.Regexp
	// MaxWait is how long an entry waits for a next line after its last
	// one before it is returned anyway, so the last entry of a burst is not
	// held until the next burst. 0 means DefaultMaxWait.
	MaxWait time.Duration
	// MaxBytes caps an entry: a line that would take it past MaxBytes
	// begins a new entry instead. 0 means MaxLine, so an entry fits where
	// a line does.
	MaxBytes int
	// MaxLines caps the lines of an entry: the line after the last one
	// allowed begins a new entry. 0 means no cap.
	MaxLines int
}

// Line is a line of a log file or, when LineOptions.Start is set, a
// multiline entry.
type Line struct {
	// Bytes is the line without its "\n" (or "\r\n"), or the entry's lines
	// joined by "\n". It belongs to the LineReader and is valid until the
	// next call to Next or NextBefore.
	Bytes []byte
	// End is the position right after the line's "\n" (after its last byte
	// for a partial line): a Follower opened there reads the next line.
	End Position
	// Truncated reports that a line (of the entry) was cut at MaxLine.
	Truncated bool
	// Partial reports that the (last) line had no "\n": its file ended
	// there, or Stop was called while it was the last thing written.
	Partial bool
	// Lines counts the lines joined: 1 without Start.
	Lines int
}

// byteSource is what a LineReader reads: a Follower, or a fake in tests.
type byteSource interface {
	read(ctx context.Context, p []byte, deadline time.Time) (int, error)
	Position() Position
}

// LineReader splits what a Follower reads into lines and, optionally,
// multiline entries, each with the Position after it. Lines never span
// files: at a file's end (ErrFileEnd) a pending line without "\n" is
// returned with Partial set, and so is the pending entry.
//
// Its memory is bounded by about 128 KiB plus MaxLine for reading, plus
// MaxBytes for an entry, while lines come. A LineReader that waits for its
// file to grow, with no line or entry pending, keeps only a 2 KiB buffer:
// the large one goes back to a pool shared by all readers, and buffers
// grown for a long line or a big entry are dropped. The LineReader owns the
// Follower's reading (the caller must not Read from it too) but not the
// Follower itself, which the caller closes. It is not safe for concurrent
// use.
type LineReader struct {
	src byteSource
	max int

	buf    []byte
	small  []byte   // the idle buffer; buf is small, or pooled's, or grown
	pooled *[]byte  // buf's from bufPool, to give back
	grow   bool     // the last read filled the small buffer: more is waiting
	r, w   int      // unread bytes are buf[r:w]; buf[w] is at base
	base   Position // src.Position() after the last read
	scan   int      // buf[r:scan] holds no '\n'
	pend   error    // io.EOF or ErrFileEnd, returned after the partial line before it

	// A line longer than max, being read to its '\n': long keeps its first
	// max bytes and counts the rest.
	skipping bool
	long     linecap.Builder
	out      []byte

	start    *regexp.Regexp
	maxWait  time.Duration
	maxBytes int
	maxLines int
	ent      Line // the entry being joined; Bytes owned here
	hasEnt   bool
	lastAt   time.Time // when the entry's last line came
	held     Line      // a line that begins the next entry
	hasHeld  bool
}

// NewLineReader returns a LineReader reading from f.
func NewLineReader(f *Follower, opts LineOptions) (*LineReader, error) {
	return newLineReader(f, opts)
}

func newLineReader(src byteSource, opts LineOptions) (*LineReader, error) {
	if opts.MaxLine < 0 || opts.MaxWait < 0 || opts.MaxBytes < 0 || opts.MaxLines < 0 {
		return nil, fmt.Errorf("tail: negative line option: max line %d, max wait %v, max bytes %d, max lines %d", opts.MaxLine, opts.MaxWait, opts.MaxBytes, opts.MaxLines)
	}
	r := &LineReader{src: src, max: opts.MaxLine, start: opts.Start, maxWait: opts.MaxWait, maxBytes: opts.MaxBytes, maxLines: opts.MaxLines}
	if r.max == 0 {
		r.max = DefaultMaxLine
	}
	if r.maxWait == 0 {
		r.maxWait = DefaultMaxWait
	}
	if r.maxBytes == 0 {
		r.maxBytes = r.max
	}
	return r, nil
}

// Next returns the next line or entry. It blocks at the end of the live file
// as Follower.Read does, and returns io.EOF there after Stop, ctx.Err() when
// ctx ends. A line without "\n" at the end of the live file is held until
// its "\n" comes, its file ends, or Stop; an entry is held until the next
// entry begins, MaxWait passes without a new line, it reaches MaxBytes, or
// its file ends. Nothing held is lost when Next returns an error: a later
// call goes on.
func (r *LineReader) Next(ctx context.Context) (Line, error) {
	return r.next(ctx, time.Time{})
}

// NextBefore is Next that waits for the file to grow only until deadline,
// then returns ErrIdle. With a deadline that has passed it never waits, so
// a caller can hand off what it has collected before it would block.
func (r *LineReader) NextBefore(ctx context.Context, deadline time.Time) (Line, error) {
	if deadline.IsZero() {
		deadline = time.Unix(0, 1)
	}
	return r.next(ctx, deadline)
}

func (r *LineReader) next(ctx context.Context, deadline time.Time) (Line, error) {
	if r.start != nil {
		return r.nextEntry(ctx, deadline)
	}
	for {
		l, err := r.nextLine(ctx, deadline)
		if err == ErrFileEnd {
			continue
		}
		return l, err
	}
}

// nextLine returns the next line, or ErrFileEnd at the end of a file.
func (r *LineReader) nextLine(ctx context.Context, deadline time.Time) (Line, error) {
	if r.pend != nil {
		err := r.pend
		r.pend = nil
		return Line{}, err
	}
	for {
		if !r.skipping {
			if i := bytes.IndexByte(r.buf[r.scan:r.w], '\n'); i >= 0 {
				e := r.scan + i
				line := r.buf[r.r:e]
				r.r, r.scan = e+1, e+1
				return r.emit(line, r.posAt(e+1), false), nil
			}
			r.scan = r.w
			if r.w-r.r > r.max {
				r.long.Reset(r.max)
				r.long.Add(r.buf[r.r:r.w])
				r.skipping = true
				r.r, r.scan = r.w, r.w
			}
		} else {
			if i := bytes.IndexByte(r.buf[r.r:r.w], '\n'); i >= 0 {
				e := r.r + i
				r.long.Add(r.buf[r.r:e])
				r.r, r.scan = e+1, e+1
				return r.emitLong(r.posAt(e+1), false), nil
			}
			r.long.Add(r.buf[r.r:r.w])
			r.r, r.scan = r.w, r.w
		}
		err := r.fill(ctx, deadline)
		if err == nil {
			continue
		}
		if (err == ErrFileEnd || err == io.EOF) && (r.skipping || r.r < r.w) {
			r.pend = err
			if r.skipping {
				return r.emitLong(r.posAt(r.w), true), nil
			}
			line := r.buf[r.r:r.w]
			r.r, r.scan = r.w, r.w
			return r.emit(line, r.posAt(r.w), true), nil
		}
		return Line{}, err
	}
}

// fill reads more into buf, making room first. With nothing pending and a
// large buffer, it first looks for more without waiting; when there is
// none and the caller would wait, it waits with the small buffer instead,
// so that a reader idle for hours holds no large one.
func (r *LineReader) fill(ctx context.Context, deadline time.Time) error {
	switch {
	case r.buf == nil:
		r.shrink()
	case r.r == r.w:
		r.r, r.w, r.scan = 0, 0, 0
		if r.onSmall() {
			if !r.grow {
				r.trim()
			}
			break
		}
		if err := r.read(ctx, passed); !errors.Is(err, ErrIdle) {
			return err
		}
		if !deadline.IsZero() && !time.Now().Before(deadline) {
			return ErrIdle // the caller does not wait either
		}
		r.shrink()
	case r.r > 0 && len(r.buf)-r.w < len(r.buf)/8:
		// Keep reads large: move the start of the pending line down.
		n := copy(r.buf, r.buf[r.r:r.w])
		r.scan -= r.r
		r.r, r.w = 0, n
	}
	if r.w == len(r.buf) || r.grow {
		r.enlarge()
	}
	return r.read(ctx, deadline)
}

// read reads into the free end of buf.
func (r *LineReader) read(ctx context.Context, deadline time.Time) error {
	room := len(r.buf) - r.w
	n, err := r.src.read(ctx, r.buf[r.w:], deadline)
	r.grow = n == room && r.onSmall()
	r.w += n
	r.base = r.src.Position()
	if n > 0 {
		return nil
	}
	return err
}

// enlarge moves what buf holds to a larger buffer: the pool's, from the
// small one; otherwise twice the size, up to max+1 bytes, for a pending
// line that fills the buffer but is within max (else it would be
// skipping).
func (r *LineReader) enlarge() {
	r.grow = false
	var nb []byte
	if r.onSmall() {
		r.pooled = bufPool.Get().(*[]byte)
		nb = *r.pooled
	} else {
		nb = make([]byte, max(min(2*len(r.buf), r.max+1), r.w+1))
	}
	copy(nb, r.buf[:r.w])
	if r.pooled != nil && &nb[0] != &(*r.pooled)[0] {
		bufPool.Put(r.pooled)
		r.pooled = nil
	}
	r.buf = nb
}

// shrink makes the small buffer the one to read into, with nothing pending
// in buf, and trims. The Line returned last, which may point into what it
// drops, is no longer in use: shrink is called from the next call.
func (r *LineReader) shrink() {
	if r.pooled != nil {
		bufPool.Put(r.pooled)
		r.pooled = nil
	}
	if r.small == nil {
		r.small = make([]byte, idleBufSize)
	}
	r.buf, r.grow = r.small, false
	r.trim()
}

// onSmall reports whether buf is the small buffer.
func (r *LineReader) onSmall() bool {
	return len(r.buf) > 0 && len(r.small) > 0 && &r.buf[0] == &r.small[0]
}

// trim lets go of what only long lines and big entries needed, when none
// is pending.
func (r *LineReader) trim() {
	if cap(r.out) > idleBufSize {
		r.out = nil
	}
	if !r.skipping && r.long.Cap() > idleBufSize {
		r.long = linecap.Builder{}
	}
	if !r.hasEnt && !r.hasHeld && cap(r.ent.Bytes) > idleBufSize {
		r.ent.Bytes = nil
	}
}

// posAt returns the Position of buf[i].
func (r *LineReader) posAt(i int) Position {
	p := r.base
	p.Offset -= int64(r.w - i)
	return p
}

// emit returns line, cut to max if it is longer.
func (r *LineReader) emit(line []byte, end Position, partial bool) Line {
	if n := len(line); !partial && n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	if len(line) <= r.max {
		return Line{Bytes: line, End: end, Partial: partial, Lines: 1}
	}
	kept, dropped := linecap.Cut(line[:r.max], len(line)-r.max)
	r.out = linecap.AppendMarker(append(r.out[:0], kept...), dropped)
	return Line{Bytes: r.out, End: end, Truncated: true, Partial: partial, Lines: 1}
}

// emitLong returns the line kept in long and ends skipping. The '\r' of a
// "\r\n" ending is not content.
func (r *LineReader) emitLong(end Position, partial bool) Line {
	r.skipping = false
	line, truncated := r.long.EndMarked(!partial)
	return Line{Bytes: line, End: end, Truncated: truncated, Partial: partial, Lines: 1}
}

// nextEntry joins lines into multiline entries.
func (r *LineReader) nextEntry(ctx context.Context, deadline time.Time) (Line, error) {
	for {
		var l Line
		if r.hasHeld {
			l, r.hasHeld = r.held, false
		} else {
			d := deadline
			if r.hasEnt {
				if due := r.lastAt.Add(r.maxWait); d.IsZero() || due.Before(d) {
					d = due
				}
			}
			var err error
			l, err = r.nextLine(ctx, d)
			if err != nil {
				flush := err == ErrFileEnd || err == io.EOF ||
					errors.Is(err, ErrIdle) && !time.Now().Before(r.lastAt.Add(r.maxWait))
				if r.hasEnt && flush {
					if err == io.EOF {
						r.pend = err
					}
					return r.takeEntry(), nil
				}
				if err == ErrFileEnd {
					continue
				}
				return Line{}, err
			}
		}
		if !r.hasEnt {
			r.ent.Bytes = append(r.ent.Bytes[:0], l.Bytes...)
			r.ent.End, r.ent.Truncated, r.ent.Partial, r.ent.Lines = l.End, l.Truncated, l.Partial, 1
			r.hasEnt, r.lastAt = true, time.Now()
			continue
		}
		if r.start.Match(l.Bytes) || len(r.ent.Bytes)+1+len(l.Bytes) > r.maxBytes ||
			r.maxLines > 0 && r.ent.Lines >= r.maxLines {
			// l stays valid until the next nextLine call, which comes
			// after it has been copied into the next entry.
			r.held, r.hasHeld = l, true
			return r.takeEntry(), nil
		}
		r.ent.Bytes = append(append(r.ent.Bytes, '\n'), l.Bytes...)
		r.ent.End, r.ent.Partial = l.End, l.Partial
		r.ent.Truncated = r.ent.Truncated || l.Truncated
		r.ent.Lines++
		r.lastAt = time.Now()
	}
}

// takeEntry hands out the pending entry; its bytes stay in r.ent.Bytes until
// the next entry begins.
func (r *LineReader) takeEntry() Line {
	r.hasEnt = false
	return r.ent
}
