package dockerlog

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"regexp"
	"strings"
	"testing"
	"testing/iotest"
	"time"
	"unicode/utf8"
)

// lsReference parses a whole body the simple way: every line is built in
// full and cut afterwards. Stream must return the same events.
func lsReference(in []byte, tty bool, maxLine int) []lsEvent {
	if maxLine <= 0 {
		maxLine = defaultMaxLine
	}
	var ev []lsEvent
	emit := func(t int64, k StreamKind, line []byte, terminated bool) {
		if terminated && len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		e := lsEvent{Time: t, Stream: k, Line: string(line), Partial: !terminated}
		if len(line) > maxLine {
			kept := line[:maxLine]
			for i := len(kept) - 1; i >= 0 && i > len(kept)-utf8.UTFMax; i-- {
				if utf8.RuneStart(kept[i]) {
					if !utf8.FullRune(kept[i:]) {
						kept = kept[:i]
					}
					break
				}
			}
			e.Line = string(kept) + fmt.Sprintf(" …[truncated %d bytes]", len(line)-len(kept))
			e.Truncated = true
		}
		ev = append(ev, e)
	}
	stamp := func(p []byte) (int64, int) {
		var c stampCache
		return c.parsePrefix(p[:min(len(p), lsStampWindow)])
	}

	if tty {
		pos := 0
		for pos < len(in) {
			t, n := stamp(in[pos:])
			pos += n
			var line []byte
			left := partSize
			for {
				chunk := in[pos:min(len(in), pos+left)]
				if i := bytes.IndexByte(chunk, '\n'); i >= 0 {
					line = append(line, chunk[:i]...)
					pos += i + 1
					emit(t, Stdout, line, true)
					break
				}
				line = append(line, chunk...)
				pos += len(chunk)
				left -= len(chunk)
				if pos == len(in) {
					emit(t, Stdout, line, false)
					break
				}
				_, n := stamp(in[pos:])
				pos += n
				left = partSize
			}
		}
		return append(ev, lsEOF)
	}

	type pending struct {
		time int64
		data []byte
		last int
	}
	var pend [2]*pending
	pos := 0
	for {
		if pos == len(in) {
			for {
				k := -1
				for i, p := range pend {
					if p != nil && (k < 0 || p.time < pend[k].time) {
						k = i
					}
				}
				if k < 0 {
					return append(ev, lsEOF)
				}
				emit(pend[k].time, StreamKind(k+1), pend[k].data, false)
				pend[k] = nil
			}
		}
		if len(in)-pos < 8 {
			return append(ev, lsUnexpectedEOF)
		}
		h := in[pos : pos+8]
		size := int(binary.BigEndian.Uint32(h[4:]))
		if reason := lsCheckHeader(h); reason != "" {
			e := &FrameError{Offset: int64(pos), Size: uint32(size), Reason: reason}
			copy(e.Header[:], h)
			return append(ev, lsEvent{Err: e.Error()})
		}
		body := in[pos+8 : min(len(in), pos+8+size)]
		switch {
		case size == 0:
		case h[0] == 3:
			if len(body) < size {
				return append(ev, lsUnexpectedEOF)
			}
			msg := body[:min(len(body), lsDaemonMsgMax)]
			msg = bytes.TrimSuffix(msg, []byte("\n"))
			ev = append(ev, lsEvent{Err: (&DaemonError{Msg: string(msg)}).Error()})
		default:
			if len(body) < min(size, lsStampWindow) {
				return append(ev, lsUnexpectedEOF)
			}
			t, n := stamp(body)
			k := h[0] - 1
			if p := pend[k]; p != nil && t != p.time && p.last != partSize {
				emit(p.time, StreamKind(k+1), p.data, false)
				pend[k] = nil
			}
			if len(body) < size {
				return append(ev, lsUnexpectedEOF)
			}
			content := body[n:]
			if pend[k] == nil {
				pend[k] = &pending{time: t}
			}
			p := pend[k]
			p.data = append(p.data, content...)
			p.last = len(content)
			if len(content) > 0 && content[len(content)-1] == '\n' {
				emit(p.time, StreamKind(k+1), p.data[:len(p.data)-1], true)
				pend[k] = nil
			}
		}
		pos += 8 + size
	}
}

// lsFuzzReader cuts input into reads in one of several ways, chosen by how.
func lsFuzzReader(in []byte, how byte) io.Reader {
	r := bytes.NewReader(in)
	switch how % 6 {
	case 1:
		return iotest.OneByteReader(r)
	case 2:
		return iotest.HalfReader(r)
	case 3:
		return iotest.DataErrReader(r)
	case 4:
		return lsChunkReader(string(in), 1+int(how/6)*37)
	case 5:
		return lsChunkReader(string(in), partSize+int(how))
	}
	return r
}

var lsFuzzMaxLines = []int{0, 1, 2, 5, 31, 100, partSize - 1, partSize, partSize + 1, 40000}

// lsRead reads s to its end like lsReadAll, and checks that its memory stays
// within the bounds its documentation promises.
func lsRead(t *testing.T, s *Stream) []lsEvent {
	ev := lsReadAll(s)
	if len(s.buf) != lsBufSize || cap(s.buf) != lsBufSize {
		t.Fatalf("read buffer grew to %d", cap(s.buf))
	}
	for i := range s.lines {
		if c := s.lines[i].text.Cap(); c > 2*s.maxLine+64 {
			t.Fatalf("pending line holds %d bytes for a %d-byte maximum", c, s.maxLine)
		}
	}
	if cap(s.sysMsg) > 2*lsDaemonMsgMax {
		t.Fatalf("daemon message holds %d bytes", cap(s.sysMsg))
	}
	return ev
}

func lsFuzzSeeds(f *testing.F, tty bool) {
	long := lsPattern("long:", 40*1024)
	var seeds []string
	if tty {
		seeds = []string{
			"",
			lsTS(0) + " hello\r\n",
			lsRawLine(0, long+"\r\n") + lsTS(1) + " tail",
			lsTS(0) + " " + long[:partSize] + lsTS(1) + " \n",
			"no stamp\n2026-11-26T23:35:52Z x\r\n2026-11-26T23:35:52.5+01:00 y",
		}
	} else {
		seeds = []string{
			"",
			lsMsg(1, 0, "hello\n") + lsMsg(2, 1, "err\r\n"),
			lsMuxLine(1, 0, long+"\n") + lsMsg(2, 1, "x"),
			lsMsg(1, 0, long[:partSize]) + lsMsg(2, 1, "e\n") + lsMsg(1, 0, "\n"),
			lsMsg(1, 0, "last") + lsMsg(1, 9, "first\n") + lsFrame(3, "Error grabbing logs: x\n"),
			"\x01\x00\x00\x00\x00\x10\x00\x01",
			lsMsg(1, 0, "ok\n")[:20],
		}
	}
	for i, s := range seeds {
		f.Add([]byte(s), uint8(i), uint8(i))
	}
}

// FuzzLogStreamMux feeds arbitrary bytes to a multiplexed Stream, in
// arbitrary reads: it must not panic, stay within its memory bounds, and
// agree with lsReference.
func FuzzLogStreamMux(f *testing.F) {
	lsFuzzSeeds(f, false)
	f.Fuzz(func(t *testing.T, in []byte, maxSel, how uint8) {
		maxLine := lsFuzzMaxLines[int(maxSel)%len(lsFuzzMaxLines)]
		want := lsReference(in, false, maxLine)
		got := lsRead(t, NewStream(lsFuzzReader(in, how), false, maxLine))
		lsCompare(t, got, want)
	})
}

// FuzzLogStreamRaw is FuzzLogStreamMux for TTY streams.
func FuzzLogStreamRaw(f *testing.F) {
	lsFuzzSeeds(f, true)
	f.Fuzz(func(t *testing.T, in []byte, maxSel, how uint8) {
		maxLine := lsFuzzMaxLines[int(maxSel)%len(lsFuzzMaxLines)]
		want := lsReference(in, true, maxLine)
		got := lsRead(t, NewStream(lsFuzzReader(in, how), true, maxLine))
		lsCompare(t, got, want)
	})
}

// lsGenLines turns fuzz bytes into log lines shaped like real ones: lengths
// around the 16 KiB cut, carriage returns, multi-byte characters, and lines
// without newline. Content never holds a digit, so no timestamp can hide in
// it, nor a newline.
func lsGenLines(prog []byte) (lines []string, ended []bool) {
	alphabet := []string{"a", "b", "c", " ", "\r", "\t", "é", "€", "x"}
	sizes := []int{0, 1, 2, 100, 265, partSize - 2, partSize - 1, partSize, partSize + 1, 2*partSize - 1, 2 * partSize, 40 * 1024}
	for len(prog) >= 2 && len(lines) < 40 {
		op, arg := prog[0], prog[1]
		prog = prog[2:]
		n := sizes[int(op>>4)%len(sizes)] + int(arg%8)
		var b strings.Builder
		for i := 0; b.Len() < n; i++ {
			b.WriteString(alphabet[(int(arg)+i*int(op|1))%len(alphabet)])
		}
		lines = append(lines, b.String())
		ended = append(ended, op&1 == 0)
	}
	return lines, ended
}

// FuzzLogStreamFrames generates valid Docker streams, both TTY and
// multiplexed, with two streams interleaved at part boundaries, and checks
// that every line comes back whole, with the time of its first part.
func FuzzLogStreamFrames(f *testing.F) {
	f.Add([]byte{0x00, 1, 0x51, 2, 0x70, 3, 0x91, 4, 0xb0, 5}, []byte{1, 0, 1, 1, 0}, uint8(0), uint8(0))
	f.Add([]byte{0xb0, 0, 0x70, 1, 0x81, 2, 0x20, 3}, []byte{0, 1, 0, 1, 0, 1, 0, 1}, uint8(3), uint8(2))
	f.Add([]byte{0x60, 7, 0x61, 7, 0x10, 1}, []byte{}, uint8(7), uint8(5))
	f.Fuzz(func(t *testing.T, prog, order []byte, maxSel, how uint8) {
		maxLine := lsFuzzMaxLines[int(maxSel)%len(lsFuzzMaxLines)]
		if maxLine == 0 {
			maxLine = defaultMaxLine
		}
		lines, ended := lsGenLines(prog)
		expect := func(i int, k StreamKind) lsEvent {
			line := lines[i]
			if ended[i] {
				line += "\n"
			}
			return lsReference([]byte(lsMsg(byte(k), i, line)), false, maxLine)[0]
		}

		// TTY: one stream; a line without newline can only be the last.
		var raw strings.Builder
		var wantRaw []lsEvent
		for i, line := range lines {
			last := i == len(lines)-1
			if !ended[i] && !last {
				continue
			}
			if !ended[i] && line == "" {
				break
			}
			if ended[i] {
				raw.WriteString(lsRawLine(i, line+"\n"))
			} else {
				raw.WriteString(lsRawLine(i, line))
			}
			wantRaw = append(wantRaw, expect(i, Stdout))
		}
		wantRaw = append(wantRaw, lsEOF)
		got := lsRead(t, NewStream(lsFuzzReader([]byte(raw.String()), how), true, maxLine))
		lsCompare(t, got, wantRaw)

		// Multiplexed: line i goes to stream 1+i%2 (or as order says), and
		// the two streams' messages are merged at message boundaries. A line
		// without newline is followed by a later line of its stream, as
		// after a restart, unless its last part is a full 16 KiB, which
		// Docker itself would join.
		var msgs [2][]string
		var want [2][]lsEvent
		for i, line := range lines {
			k := i % 2
			if i < len(order) {
				k = int(order[i] % 2)
			}
			if !ended[i] && (line == "" || len(line)%partSize == 0) {
				continue
			}
			if ended[i] {
				line += "\n"
			}
			for _, p := range lsSplit(line) {
				msgs[k] = append(msgs[k], lsMsg(byte(k+1), i, p))
			}
			want[k] = append(want[k], expect(i, StreamKind(k+1)))
		}
		var mux strings.Builder
		for j := 0; len(msgs[0])+len(msgs[1]) > 0; j++ {
			k := 0
			if len(msgs[0]) == 0 || len(msgs[1]) > 0 && j < len(order) && order[j]&2 != 0 {
				k = 1
			}
			mux.WriteString(msgs[k][0])
			msgs[k] = msgs[k][1:]
		}
		var byStream [2][]lsEvent
		events := lsRead(t, NewStream(lsFuzzReader([]byte(mux.String()), how), false, maxLine))
		for _, e := range events[:len(events)-1] {
			if e.Err != "" {
				t.Fatalf("error %s before the end", e.Err)
			}
			byStream[e.Stream-1] = append(byStream[e.Stream-1], e)
		}
		if last := events[len(events)-1]; last != lsEOF {
			t.Errorf("ended with %v", last)
		}
		lsCompare(t, byStream[0], want[0])
		lsCompare(t, byStream[1], want[1])
	})
}

// lsRFC3339 is the grammar the parser accepts. time.Parse accepts more: its
// fallback takes offset minutes up to 99 and fractions of any length.
var lsRFC3339 = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$`)

// FuzzLogStreamTimestamp checks the timestamp parser against time.Parse.
func FuzzLogStreamTimestamp(f *testing.F) {
	for _, s := range []string{
		"2026-11-26T23:35:52.891162506Z", "2026-11-26T23:35:52Z", "2026-11-26T23:35:52.5+01:00",
		"1677-09-21T00:12:43.145224192Z", "2262-04-11T23:47:16.854775807Z", "2024-02-29T23:59:59-23:59",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var c stampCache
		ns, n := c.parsePrefix([]byte(s + " "))
		if n != 0 {
			stamp := s[:n-1]
			ref, err := time.Parse(time.RFC3339Nano, stamp)
			if err != nil || ref.UnixNano() != ns || ref.Before(time.Unix(0, -1<<63)) || ref.After(time.Unix(0, 1<<63-1)) {
				t.Fatalf("parse(%q) = %d, %d; time.Parse(%q): %v, %v", s, ns, n, stamp, ref, err)
			}
		}
		ref, err := time.Parse(time.RFC3339Nano, s)
		inRange := err == nil && !ref.Before(time.Unix(0, -1<<63)) && !ref.After(time.Unix(0, 1<<63-1))
		if inRange && lsRFC3339.MatchString(s) && n != len(s)+1 {
			t.Fatalf("parse(%q) = %d, %d; time.Parse: %v", s, ns, n, ref)
		}
		// The cache must not change a result.
		c.parsePrefix([]byte("2026-11-26T23:35:52Z "))
		if ns2, n2 := c.parsePrefix([]byte(s + " ")); ns2 != ns || n2 != n {
			t.Fatalf("parse(%q) after the cache was primed = %d, %d; want %d, %d", s, ns2, n2, ns, n)
		}
	})
}
