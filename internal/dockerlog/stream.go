package dockerlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/wharf-logs/wharf/internal/linecap"
)

// ErrCorruptFrame is matched by errors.Is for every *FrameError.
var ErrCorruptFrame = errors.New("dockerlog: corrupt log frame")

// FrameError reports a frame header that Docker cannot have written: an
// unknown stream byte, non-zero padding or a size beyond 1 MiB. Whatever
// follows cannot be framed again, so the stream is over.
type FrameError struct {
	// Offset is the position of the header in the stream.
	Offset int64
	Header [8]byte
	// Size is the body size the header announces.
	Size   uint32
	Reason string
}

func (e *FrameError) Error() string {
	return fmt.Sprintf("dockerlog: corrupt log frame at offset %d (header % x): %s", e.Offset, e.Header[:], e.Reason)
}

// Is makes errors.Is(err, ErrCorruptFrame) true.
func (e *FrameError) Is(target error) bool { return target == ErrCorruptFrame }

// DaemonError is an error the daemon reported inside the log stream (a
// frame of stream 3), such as a log file it could not decode. The daemon goes
// on streaming after it, and so can the caller: Next may be called again.
type DaemonError struct {
	// Msg is the daemon's message without its newline, at most 4 KiB.
	Msg string
}

func (e *DaemonError) Error() string { return "dockerlog: daemon log error: " + e.Msg }

const (
	lsHeaderLen = 8
	// lsMaxFrame bounds a frame body. Docker's are at most 16415 bytes; the
	// margin admits drivers with larger parts and the details option, and
	// still rejects a desynchronised stream before it can allocate.
	lsMaxFrame = 1 << 20
	// lsStampWindow is the longest timestamp prefix, with its space:
	// 2006-01-02T15:04:05.999999999-07:00 plus one.
	lsStampWindow = 36
	// lsBufSize holds several whole frames and any whole TTY message, so
	// ordinary lines are copied once, from this buffer to the caller.
	lsBufSize      = 64 << 10
	lsDaemonMsgMax = 4 << 10
)

// Stream reads log lines from the body of an Engine API logs request made
// with timestamps=1. It reads the body through a buffer of its own, so the
// caller must not read from it as well, and it never closes it: the code that
// opened the body closes it, which is also how a blocked Next is interrupted.
//
// A frame is one message: should one hold a newline before its end, which
// Docker's copier never writes, the newline stays in the line.
//
// Memory is bounded whatever the input: a 64 KiB read buffer, plus, per
// stream, the first maxLine bytes of a line that spans several messages.
//
// A Stream is not safe for concurrent use.
type Stream struct {
	r       io.Reader
	tty     bool
	maxLine int

	buf        []byte
	rpos, wpos int
	base       int64 // stream offset of buf[0]
	eof        bool  // r has reported io.EOF
	rerr       error // a read error that came with data, returned once that is used
	err        error // io.EOF, io.ErrUnexpectedEOF or a *FrameError, for good

	// The message being consumed. Multiplexed: the rest of a frame body.
	// TTY: the rest of the current part, up to the next possible cut.
	open     bool
	kind     byte  // the frame's stream byte, 3 for a daemon error
	left     int   // multiplexed: body bytes not yet consumed
	size     int   // multiplexed: content bytes of the frame
	stamp    int64 // multiplexed: the frame's timestamp
	partLeft int   // TTY: bytes before the next possible 16 KiB cut

	lines  [2]pendingLine // per stream: stdout, stderr; TTY uses lines[0]
	sysMsg []byte
	stamps stampCache
}

// lsOut is a line ready to be copied out; kept aliases the Stream's
// buffers and is valid until the next call.
type lsOut struct {
	time    int64
	kind    StreamKind
	kept    []byte
	dropped int
	partial bool
}

// NewStream returns a Stream reading r, which is multiplexed unless tty
// is set (the container's Config.Tty). Lines longer than maxLine bytes are cut
// to their first maxLine bytes (fewer when that would split a UTF-8
// character) followed by the truncation marker; maxLine <= 0 means 256 KiB.
func NewStream(r io.Reader, tty bool, maxLine int) *Stream {
	if maxLine <= 0 {
		maxLine = defaultMaxLine
	}
	return &Stream{r: r, tty: tty, maxLine: maxLine, buf: make([]byte, lsBufSize)}
}

// Buffered returns the number of bytes read from the body but not yet parsed.
// When it is 0, the next call to Next reads the body and may block; when it
// is not, Next blocks only if those bytes end inside a frame or a line.
func (s *Stream) Buffered() int { return s.wpos - s.rpos }

// NextAppend returns the next line appended to dst, and the extended
// slice; Text is the appended part, with its capacity clipped. Passing the
// returned slice back in packs many lines into few allocations: the caller
// owns dst and its lines, and may reuse it (as dst[:0]) once it no longer
// needs any line that was appended to it. On error dst is returned as it was.
func (s *Stream) NextAppend(dst []byte) (Line, []byte, error) {
	o, err := s.next()
	if err != nil {
		return Line{}, dst, err
	}
	start := len(dst)
	dst = append(dst, o.kept...)
	dst = linecap.AppendMarker(dst, o.dropped)
	line := dst[start:len(dst):len(dst)]
	return Line{Time: o.time, Stream: o.kind, Text: line, Truncated: o.dropped > 0, Partial: o.partial}, dst, nil
}

func (s *Stream) next() (lsOut, error) {
	if s.err != nil {
		return lsOut{}, s.err
	}
	var o lsOut
	var err error
	if s.tty {
		o, err = s.nextRaw()
	} else {
		o, err = s.nextMux()
	}
	if err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF || errors.Is(err, ErrCorruptFrame) {
			s.err = err
		}
		return lsOut{}, err
	}
	if o.dropped > 0 {
		o.kept, o.dropped = linecap.Cut(o.kept, o.dropped)
	}
	return o, nil
}

// nextMux parses frames. A frame that is whole in the buffer and completes a
// line by itself is handed out directly; anything else goes through the
// stream's pending line.
func (s *Stream) nextMux() (lsOut, error) {
	for {
		if s.open {
			if o, done, err := s.frameBody(); done || err != nil {
				return o, err
			}
			continue
		}

		// At a frame header.
		if s.wpos-s.rpos < lsHeaderLen {
			if err := s.fill(); err != nil {
				if err == io.EOF && s.wpos == s.rpos {
					return s.flushPartial()
				}
				return lsOut{}, lsUnexpected(err)
			}
			continue
		}
		h := s.buf[s.rpos : s.rpos+lsHeaderLen]
		size := int(binary.BigEndian.Uint32(h[4:]))
		if reason := lsCheckHeader(h); reason != "" {
			e := &FrameError{Offset: s.base + int64(s.rpos), Size: uint32(size), Reason: reason}
			copy(e.Header[:], h)
			return lsOut{}, e
		}
		kind := h[0]
		if size == 0 {
			s.rpos += lsHeaderLen
			continue
		}
		if kind == 3 {
			s.rpos += lsHeaderLen
			s.open, s.kind, s.left = true, kind, size
			s.sysMsg = s.sysMsg[:0]
			continue
		}
		// Nothing is consumed until the frame can be handled, so that a
		// read error leaves the stream at the header.
		win := min(size, lsStampWindow)
		if s.wpos-s.rpos < lsHeaderLen+win {
			if err := s.fill(); err != nil {
				return lsOut{}, lsUnexpected(err)
			}
			continue
		}
		t, n := s.stamps.parsePrefix(s.buf[s.rpos+lsHeaderLen : s.rpos+lsHeaderLen+win])
		l := &s.lines[kind-1]
		if l.active && !l.continuedBy(t) {
			// Not the rest of the pending line, which is therefore the
			// last line of an earlier run of the container.
			s.rpos += lsHeaderLen + n
			s.open, s.kind, s.left, s.size, s.stamp = true, kind, size-n, size-n, t
			kept, dropped := l.finish(false)
			return lsOut{time: l.time, kind: StreamKind(kind), kept: kept, dropped: dropped, partial: true}, nil
		}
		// Wait for the whole frame when it fits: the daemon writes a frame
		// at once, and a whole frame needs no staging.
		if s.wpos-s.rpos < lsHeaderLen+min(size, len(s.buf)-lsHeaderLen) {
			if err := s.fill(); err != nil {
				return lsOut{}, lsUnexpected(err)
			}
			continue
		}
		s.rpos += lsHeaderLen + n
		content := size - n
		if !l.active && content > 0 && content <= s.wpos-s.rpos && s.buf[s.rpos+content-1] == '\n' {
			line := s.buf[s.rpos : s.rpos+content-1]
			s.rpos += content
			return lsDirect(StreamKind(kind), t, line, s.maxLine), nil
		}
		s.open, s.kind, s.left, s.size, s.stamp = true, kind, content, content, t
	}
}

// frameBody consumes what the buffer holds of the open frame's body, into
// its stream's pending line or the daemon's message, and reads more when
// the body goes on. done reports a line the frame completed, in o; without
// it, and without an error, the caller goes on.
func (s *Stream) frameBody() (o lsOut, done bool, err error) {
	if s.kind == 3 {
		return lsOut{}, false, s.daemonMessage()
	}
	l := &s.lines[s.kind-1]
	if !l.active {
		l.begin(s.stamp, 0, s.maxLine)
	}
	if n := min(s.left, s.wpos-s.rpos); n > 0 {
		p := s.buf[s.rpos : s.rpos+n]
		s.rpos += n
		s.left -= n
		if s.left == 0 && p[n-1] == '\n' {
			l.add(p[:n-1])
			s.open = false
			kept, dropped := l.finish(true)
			return lsOut{time: l.time, kind: StreamKind(s.kind), kept: kept, dropped: dropped}, true, nil
		}
		l.add(p)
	}
	if s.left == 0 {
		s.open = false
		l.partLen = s.size
		return lsOut{}, false, nil
	}
	return lsOut{}, false, lsUnexpected(s.fill())
}

// daemonMessage consumes a stream-3 frame, keeping the start of its message.
// It returns nil while more of the frame is to come.
func (s *Stream) daemonMessage() error {
	n := min(s.left, s.wpos-s.rpos)
	if room := lsDaemonMsgMax - len(s.sysMsg); room > 0 {
		s.sysMsg = append(s.sysMsg, s.buf[s.rpos:s.rpos+min(n, room)]...)
	}
	s.rpos += n
	s.left -= n
	if s.left > 0 {
		return lsUnexpected(s.fill())
	}
	s.open = false
	msg := s.sysMsg
	if len(msg) > 0 && msg[len(msg)-1] == '\n' {
		msg = msg[:len(msg)-1]
	}
	return &DaemonError{Msg: string(msg)}
}

// nextRaw parses a TTY stream: messages back to back, each ending at "\n" or,
// when the line was split, after 16384 bytes where the next part's timestamp
// follows.
func (s *Stream) nextRaw() (lsOut, error) {
	l := &s.lines[0]
	for {
		if !s.open {
			// At the start of a line.
			if err := s.fillStamp(); err != nil {
				if err == io.EOF && s.wpos == s.rpos {
					return s.flushPartial()
				}
				if err != io.EOF {
					return lsOut{}, err
				}
			}
			t, n := s.stamps.parsePrefix(s.buf[s.rpos:min(s.wpos, s.rpos+lsStampWindow)])
			// Wait for the whole part when it can still come: it normally
			// fits in the buffer and then needs no staging. Nothing is
			// consumed until then, so a read error leaves the line start.
			for scanned := 0; ; {
				start := s.rpos + n
				w := s.buf[start:min(s.wpos, start+partSize)]
				if i := bytes.IndexByte(w[scanned:], '\n'); i >= 0 {
					i += scanned
					s.rpos = start + i + 1
					return lsDirect(Stdout, t, w[:i], s.maxLine), nil
				}
				scanned = len(w)
				if len(w) == partSize || s.eof {
					break
				}
				if err := s.fill(); err != nil {
					if err == io.EOF {
						break
					}
					return lsOut{}, err
				}
			}
			s.rpos += n
			s.open, s.partLeft = true, partSize
			l.begin(t, 0, s.maxLine)
		}
		if s.partLeft == 0 {
			// A 16 KiB cut: the next part of the line starts with its own
			// timestamp. Anything else is more of the same message.
			if err := s.fillStamp(); err != nil && err != io.EOF {
				return lsOut{}, err
			}
			_, n := s.stamps.parsePrefix(s.buf[s.rpos:min(s.wpos, s.rpos+lsStampWindow)])
			s.rpos += n
			s.partLeft = partSize
		}
		w := s.buf[s.rpos:min(s.wpos, s.rpos+s.partLeft)]
		if i := bytes.IndexByte(w, '\n'); i >= 0 {
			l.add(w[:i])
			s.rpos += i + 1
			s.open = false
			kept, dropped := l.finish(true)
			return lsOut{time: l.time, kind: Stdout, kept: kept, dropped: dropped}, nil
		}
		l.add(w)
		s.rpos += len(w)
		s.partLeft -= len(w)
		if s.partLeft == 0 {
			continue
		}
		if err := s.fill(); err != nil {
			if err != io.EOF {
				return lsOut{}, err
			}
			s.open = false
			kept, dropped := l.finish(false)
			return lsOut{time: l.time, kind: Stdout, kept: kept, dropped: dropped, partial: true}, nil
		}
	}
}

// fillStamp reads until the buffer holds enough to tell whether a timestamp
// prefix starts at rpos. It stops early at a byte no timestamp contains, so a
// TTY stream without timestamps is not held back waiting for more output.
func (s *Stream) fillStamp() error {
	for checked := 0; ; {
		w := s.buf[s.rpos:min(s.wpos, s.rpos+lsStampWindow)]
		for ; checked < len(w); checked++ {
			if !stampByte(w[checked]) {
				return nil
			}
		}
		if len(w) == lsStampWindow {
			return nil
		}
		if err := s.fill(); err != nil {
			return err
		}
	}
}

// flushPartial returns, at the clean end of the body, the pending lines that
// never got their newline, the earlier first, and then io.EOF.
func (s *Stream) flushPartial() (lsOut, error) {
	var l *pendingLine
	var kind StreamKind
	for i := range s.lines {
		if c := &s.lines[i]; c.active && (l == nil || c.time < l.time) {
			l, kind = c, StreamKind(i+1)
		}
	}
	if l == nil {
		return lsOut{}, io.EOF
	}
	kept, dropped := l.finish(false)
	return lsOut{time: l.time, kind: kind, kept: kept, dropped: dropped, partial: true}, nil
}

// fill reads once more into the buffer, first sliding the unread bytes to
// its start. It returns io.EOF when the body has ended and nothing was added.
func (s *Stream) fill() error {
	if s.rerr != nil {
		err := s.rerr
		s.rerr = nil
		return err
	}
	if s.eof {
		return io.EOF
	}
	if s.rpos > 0 {
		s.base += int64(s.rpos)
		s.wpos = copy(s.buf, s.buf[s.rpos:s.wpos])
		s.rpos = 0
	}
	if s.wpos == len(s.buf) {
		return errors.New("dockerlog: log stream buffer full") // unreachable: callers ask for less than the buffer
	}
	for range maxEmptyReads {
		n, err := s.r.Read(s.buf[s.wpos:])
		if n < 0 || n > len(s.buf)-s.wpos {
			return fmt.Errorf("dockerlog: log stream reader returned %d bytes for a %d-byte buffer", n, len(s.buf)-s.wpos)
		}
		s.wpos += n
		if err == io.EOF {
			s.eof = true
		} else if err != nil && n > 0 {
			s.rerr = err
			err = nil
		}
		if n > 0 {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return io.ErrNoProgress
}

// lsUnexpected turns the end of the body inside a frame into
// io.ErrUnexpectedEOF; other errors pass unchanged.
func lsUnexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// lsCheckHeader returns why h cannot be a frame header Docker wrote, or "".
func lsCheckHeader(h []byte) string {
	switch {
	case h[0] == 0 || h[0] > 3:
		return "unknown stream " + strconv.Itoa(int(h[0]))
	case h[1]|h[2]|h[3] != 0:
		return "non-zero padding"
	}
	if size := binary.BigEndian.Uint32(h[4:]); size > lsMaxFrame {
		return "size " + strconv.FormatUint(uint64(size), 10) + " exceeds the " + strconv.Itoa(lsMaxFrame) + "-byte limit"
	}
	return ""
}

// lsDirect hands out a line that is whole in the read buffer.
func lsDirect(kind StreamKind, t int64, line []byte, limit int) lsOut {
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	o := lsOut{time: t, kind: kind, kept: line}
	if len(line) > limit {
		o.kept, o.dropped = line[:limit], len(line)-limit
	}
	return o
}
