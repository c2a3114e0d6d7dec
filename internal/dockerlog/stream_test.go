package dockerlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// lsT0 is the time of the first timestamp in the tests, as Docker prints it.
var lsT0 = time.Date(2026, 11, 26, 23, 35, 52, 891162506, time.UTC)

// lsTS returns the fixed-width timestamp i microseconds after lsT0.
func lsTS(i int) string {
	return lsT0.Add(time.Duration(i) * time.Microsecond).Format("2006-01-02T15:04:05.000000000Z07:00")
}

func lsNS(i int) int64 { return lsT0.Add(time.Duration(i) * time.Microsecond).UnixNano() }

// lsFrame returns one multiplexed frame.
func lsFrame(kind byte, body string) string {
	var h [8]byte
	h[0] = kind
	binary.BigEndian.PutUint32(h[4:], uint32(len(body)))
	return string(h[:]) + body
}

func lsMsg(kind byte, ts int, msg string) string { return lsFrame(kind, lsTS(ts)+" "+msg) }

// lsPattern returns n bytes that show where a chunk went missing.
func lsPattern(tag string, n int) string {
	b := make([]byte, n)
	copy(b, tag)
	for i := len(tag); i < n; i++ {
		b[i] = "0123456789abcdefghijklmnopqrstuvwxyz"[i%36]
	}
	return string(b[:n])
}

// lsSplit splits line (with its newline, if any) into Docker's 16 KiB parts.
func lsSplit(line string) []string {
	var parts []string
	for len(line) > partSize {
		parts = append(parts, line[:partSize])
		line = line[partSize:]
	}
	return append(parts, line)
}

// lsMuxLine returns the frames Docker writes for one line: every part stamped
// with the same time.
func lsMuxLine(kind byte, ts int, line string) string {
	var b strings.Builder
	for _, p := range lsSplit(line) {
		b.WriteString(lsMsg(kind, ts, p))
	}
	return b.String()
}

// lsRawLine is lsMuxLine for a TTY stream.
func lsRawLine(ts int, line string) string {
	var b strings.Builder
	for _, p := range lsSplit(line) {
		b.WriteString(lsTS(ts) + " " + p)
	}
	return b.String()
}

// lsEvent is one result of Next: a line or an error.
type lsEvent struct {
	Time      int64
	Stream    StreamKind
	Line      string
	Truncated bool
	Partial   bool
	Err       string
}

func (e lsEvent) String() string {
	if e.Err != "" {
		return "error " + e.Err
	}
	line := e.Line
	if len(line) > 80 {
		line = fmt.Sprintf("%s...%s (%d bytes)", line[:40], line[len(line)-30:], len(line))
	}
	return fmt.Sprintf("%d %v %q trunc=%v partial=%v", e.Time, e.Stream, line, e.Truncated, e.Partial)
}

func lsLineEvent(ts int, k StreamKind, line string) lsEvent {
	return lsEvent{Time: lsNS(ts), Stream: k, Line: line}
}

// lsTerminal reports whether err ends a stream for good.
func lsTerminal(err error) bool {
	var de *DaemonError
	return !errors.As(err, &de)
}

// lsReadAll reads s to its end, recording daemon errors and going on after
// them, and returns every line and error in order.
func lsReadAll(s *Stream) []lsEvent {
	var ev []lsEvent
	for range 1 << 20 {
		l, err := s.Next()
		if err != nil {
			ev = append(ev, lsEvent{Err: err.Error()})
			if lsTerminal(err) {
				return ev
			}
			continue
		}
		ev = append(ev, lsEvent{Time: l.Time, Stream: l.Stream, Line: string(l.Text), Truncated: l.Truncated, Partial: l.Partial})
	}
	return append(ev, lsEvent{Err: "too many events"})
}

func lsCompare(t *testing.T, got, want []lsEvent) {
	t.Helper()
	for i := 0; i < len(got) || i < len(want); i++ {
		var g, w lsEvent
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			t.Errorf("event %d:\n got  %v\n want %v", i, g, w)
		}
	}
}

var lsEOF = lsEvent{Err: io.EOF.Error()}
var lsUnexpectedEOF = lsEvent{Err: io.ErrUnexpectedEOF.Error()}

func TestLogStreamMux(t *testing.T) {
	long40k := lsPattern("long40k:", 40*1024)
	split := lsPattern("split:", 30*1024)
	crSplit := lsPattern("crsplit:", partSize-1)
	tests := []struct {
		name    string
		in      string
		maxLine int
		want    []lsEvent
	}{
		{"empty", "", 0, []lsEvent{lsEOF}},
		{"lines", lsMsg(1, 0, "first\n") + lsMsg(2, 1, "err\n") + lsMsg(1, 2, "\n"), 0, []lsEvent{
			lsLineEvent(0, Stdout, "first"),
			lsLineEvent(1, Stderr, "err"),
			lsLineEvent(2, Stdout, ""),
			lsEOF,
		}},
		{"crlf and bare cr", lsMsg(1, 0, "crlf\r\n") + lsMsg(1, 1, "a\rb\n") + lsMsg(1, 2, "cr\r\r\n"), 0, []lsEvent{
			lsLineEvent(0, Stdout, "crlf"),
			lsLineEvent(1, Stdout, "a\rb"),
			lsLineEvent(2, Stdout, "cr\r"),
			lsEOF,
		}},
		{"interior newline stays in its message", lsMsg(1, 0, "two\nlines\n"), 0, []lsEvent{
			lsLineEvent(0, Stdout, "two\nlines"),
			lsEOF,
		}},
		{"40 KiB line in three parts", lsMuxLine(1, 0, long40k+"\n") + lsMsg(1, 1, "after\n"), 0, []lsEvent{
			lsLineEvent(0, Stdout, long40k),
			lsLineEvent(1, Stdout, "after"),
			lsEOF,
		}},
		{"parts stamped differently are joined at 16 KiB", lsMsg(1, 0, long40k[:partSize]) + lsMsg(1, 5, long40k[partSize:2*partSize]) + lsMsg(1, 9, long40k[2*partSize:]+"\n"), 0, []lsEvent{
			lsLineEvent(0, Stdout, long40k),
			lsEOF,
		}},
		{"stdout parts interleaved with stderr lines", lsMsg(1, 0, split[:partSize]) + lsMuxLine(2, 1, "err-1\n") + lsMsg(2, 2, "err-2-start ") + lsMsg(2, 2, "err-2-end\n") + lsMsg(1, 0, split[partSize:]+"\n"), 0, []lsEvent{
			lsLineEvent(1, Stderr, "err-1"),
			lsLineEvent(2, Stderr, "err-2-start err-2-end"),
			lsLineEvent(0, Stdout, split),
			lsEOF,
		}},
		{"both streams split at once", lsMsg(1, 0, long40k[:partSize]) + lsMsg(2, 1, split[:partSize]) + lsMsg(1, 0, long40k[partSize:2*partSize]) + lsMsg(2, 1, split[partSize:]+"\n") + lsMsg(1, 0, long40k[2*partSize:]+"\n"), 0, []lsEvent{
			lsLineEvent(1, Stderr, split),
			lsLineEvent(0, Stdout, long40k),
			lsEOF,
		}},
		{"exactly 16 KiB: a full part and a lone newline", lsMuxLine(1, 0, long40k[:partSize]+"\n"), 0, []lsEvent{
			lsLineEvent(0, Stdout, long40k[:partSize]),
			lsEOF,
		}},
		{"crlf cut between the parts", lsMuxLine(1, 0, crSplit+"\r\n"), 0, []lsEvent{
			lsLineEvent(0, Stdout, crSplit),
			lsEOF,
		}},
		{"final line without newline", lsMsg(1, 0, "first\n") + lsMsg(1, 1, "last-no-newline") + lsMsg(2, 2, "err-no-newline"), 0, []lsEvent{
			lsLineEvent(0, Stdout, "first"),
			{Time: lsNS(1), Stream: Stdout, Line: "last-no-newline", Partial: true},
			{Time: lsNS(2), Stream: Stderr, Line: "err-no-newline", Partial: true},
			lsEOF,
		}},
		{"pending lines at the end come out oldest first", lsMsg(2, 1, "err-no-newline") + lsMsg(1, 2, "out-no-newline"), 0, []lsEvent{
			{Time: lsNS(1), Stream: Stderr, Line: "err-no-newline", Partial: true},
			{Time: lsNS(2), Stream: Stdout, Line: "out-no-newline", Partial: true},
			lsEOF,
		}},
		{"a restart does not continue the last run's line", lsMsg(1, 0, "last-no-newline") + lsMsg(1, 100, "first\n"), 0, []lsEvent{
			{Time: lsNS(0), Stream: Stdout, Line: "last-no-newline", Partial: true},
			lsLineEvent(100, Stdout, "first"),
			lsEOF,
		}},
		{"a full part then a restart joins, like Docker", lsMsg(1, 0, long40k[:partSize]) + lsMsg(1, 100, "first\n"), 0, []lsEvent{
			lsLineEvent(0, Stdout, long40k[:partSize]+"first"),
			lsEOF,
		}},
		{"empty frames are skipped", lsFrame(1, "") + lsMsg(1, 0, "a") + lsFrame(2, "") + lsMsg(1, 0, "b\n"), 0, []lsEvent{
			lsLineEvent(0, Stdout, "ab"),
			lsEOF,
		}},
		{"no timestamp", lsFrame(1, "hello world\n") + lsFrame(1, "2026-13-01T00:00:00Z bad month\n"), 0, []lsEvent{
			{Stream: Stdout, Line: "hello world"},
			{Stream: Stdout, Line: "2026-13-01T00:00:00Z bad month"},
			lsEOF,
		}},
		{"truncated", lsMsg(1, 0, "0123456789abcdef\n") + lsMsg(1, 1, "0123456789\n"), 10, []lsEvent{
			{Time: lsNS(0), Stream: Stdout, Line: "0123456789 …[truncated 6 bytes]", Truncated: true},
			lsLineEvent(1, Stdout, "0123456789"),
			lsEOF,
		}},
		{"truncated after dropping the cr", lsMsg(1, 0, "0123456789\r\n") + lsMsg(1, 1, "0123456789a\r\n"), 10, []lsEvent{
			lsLineEvent(0, Stdout, "0123456789"),
			{Time: lsNS(1), Stream: Stdout, Line: "0123456789 …[truncated 1 bytes]", Truncated: true},
			lsEOF,
		}},
		{"truncation keeps whole characters", lsMsg(1, 0, "12345678é!\n") + lsMsg(1, 1, "123456789é\n"), 10, []lsEvent{
			{Time: lsNS(0), Stream: Stdout, Line: "12345678é …[truncated 1 bytes]", Truncated: true},
			{Time: lsNS(1), Stream: Stdout, Line: "123456789 …[truncated 2 bytes]", Truncated: true},
			lsEOF,
		}},
		{"truncated across parts", lsMuxLine(1, 0, long40k+"\r\n"), 100, []lsEvent{
			{Time: lsNS(0), Stream: Stdout, Line: long40k[:100] + fmt.Sprintf(" …[truncated %d bytes]", len(long40k)-100), Truncated: true},
			lsEOF,
		}},
		{"truncated partial", lsMuxLine(1, 0, long40k), 100, []lsEvent{
			{Time: lsNS(0), Stream: Stdout, Line: long40k[:100] + fmt.Sprintf(" …[truncated %d bytes]", len(long40k)-100), Truncated: true, Partial: true},
			lsEOF,
		}},
		{"daemon error, then more lines", lsMsg(1, 0, "before\n") + lsFrame(3, "Error grabbing logs: invalid character 'z'\n") + lsMsg(1, 1, "after\n"), 0, []lsEvent{
			lsLineEvent(0, Stdout, "before"),
			{Err: "dockerlog: daemon log error: Error grabbing logs: invalid character 'z'"},
			lsLineEvent(1, Stdout, "after"),
			lsEOF,
		}},
		{"daemon error larger than the buffer", lsFrame(3, strings.Repeat("x", 100<<10)) + lsMsg(1, 1, "after\n"), 0, []lsEvent{
			{Err: "dockerlog: daemon log error: " + strings.Repeat("x", lsDaemonMsgMax)},
			lsLineEvent(1, Stdout, "after"),
			lsEOF,
		}},
		{"frame larger than the buffer", lsMsg(1, 0, strings.Repeat("y", 200<<10)+"\n") + lsMsg(1, 1, "after\n"), 0, []lsEvent{
			lsLineEvent(0, Stdout, strings.Repeat("y", 200<<10)),
			lsLineEvent(1, Stdout, "after"),
			lsEOF,
		}},
		{"size beyond 1 MiB", lsMsg(1, 0, "ok\n") + "\x01\x00\x00\x00\x7f\xff\xff\xff" + "rest", 0, []lsEvent{
			lsLineEvent(0, Stdout, "ok"),
			{Err: "dockerlog: corrupt log frame at offset 42 (header 01 00 00 00 7f ff ff ff): size 2147483647 exceeds the 1048576-byte limit"},
		}},
		{"stdin stream", "\x00\x00\x00\x00\x00\x00\x00\x01x", 0, []lsEvent{
			{Err: "dockerlog: corrupt log frame at offset 0 (header 00 00 00 00 00 00 00 01): unknown stream 0"},
		}},
		{"unknown stream", "\x04\x00\x00\x00\x00\x00\x00\x01x", 0, []lsEvent{
			{Err: "dockerlog: corrupt log frame at offset 0 (header 04 00 00 00 00 00 00 01): unknown stream 4"},
		}},
		{"padding", "\x01\x00\x01\x00\x00\x00\x00\x01x", 0, []lsEvent{
			{Err: "dockerlog: corrupt log frame at offset 0 (header 01 00 01 00 00 00 00 01): non-zero padding"},
		}},
		{"a tty stream read as multiplexed", lsTS(0) + " hello\r\n", 0, []lsEvent{
			{Err: "dockerlog: corrupt log frame at offset 0 (header 32 30 32 36 2d 31 31 2d): unknown stream 50"},
		}},
		{"end inside a header", lsMsg(1, 0, "ok\n") + "\x01\x00\x00", 0, []lsEvent{
			lsLineEvent(0, Stdout, "ok"),
			lsUnexpectedEOF,
		}},
		{"end inside a body drops the pending line", lsMsg(1, 0, "pending") + lsMsg(1, 0, "more\n")[:20], 0, []lsEvent{
			lsUnexpectedEOF,
		}},
		{"end inside a daemon error", lsFrame(3, "Error grabbing logs: x\n")[:15], 0, []lsEvent{
			lsUnexpectedEOF,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lsCompare(t, lsReadAll(NewStream(strings.NewReader(tt.in), false, tt.maxLine)), tt.want)
			// Every way of cutting the input into reads gives the same lines.
			for name, r := range map[string]io.Reader{
				"one byte": iotest.OneByteReader(strings.NewReader(tt.in)),
				"half":     iotest.HalfReader(strings.NewReader(tt.in)),
				"data+eof": iotest.DataErrReader(strings.NewReader(tt.in)),
			} {
				got := lsReadAll(NewStream(r, false, tt.maxLine))
				if fmt.Sprint(got) != fmt.Sprint(tt.want) {
					t.Errorf("%s reader: got %v", name, got)
				}
			}
		})
	}
}

func TestLogStreamRaw(t *testing.T) {
	long40k := lsPattern("long40k:", 40*1024)
	crSplit := lsPattern("crsplit:", partSize-1)
	tests := []struct {
		name    string
		in      string
		maxLine int
		want    []lsEvent
	}{
		{"empty", "", 0, []lsEvent{lsEOF}},
		{"crlf", lsTS(0) + " first\r\n" + lsTS(1) + " a\rb\r\n" + lsTS(2) + " \r\n" + lsTS(3) + " lf only\n", 0, []lsEvent{
			lsLineEvent(0, Stdout, "first"),
			lsLineEvent(1, Stdout, "a\rb"),
			lsLineEvent(2, Stdout, ""),
			lsLineEvent(3, Stdout, "lf only"),
			lsEOF,
		}},
		{"40 KiB line in three parts", lsRawLine(0, long40k+"\r\n") + lsTS(1) + " after\r\n", 0, []lsEvent{
			lsLineEvent(0, Stdout, long40k),
			lsLineEvent(1, Stdout, "after"),
			lsEOF,
		}},
		{"parts stamped differently", lsTS(0) + " " + long40k[:partSize] + lsTS(7) + " " + long40k[partSize:] + "\r\n", 0, []lsEvent{
			lsLineEvent(0, Stdout, long40k),
			lsEOF,
		}},
		{"crlf cut between the parts", lsRawLine(0, crSplit+"\r\n") + lsTS(1) + " next\r\n", 0, []lsEvent{
			lsLineEvent(0, Stdout, crSplit),
			lsLineEvent(1, Stdout, "next"),
			lsEOF,
		}},
		{"no timestamp at 16 KiB is content", lsTS(0) + " " + long40k + "\r\n", 0, []lsEvent{
			lsLineEvent(0, Stdout, long40k),
			lsEOF,
		}},
		{"final line without newline", lsTS(0) + " first\r\n" + lsTS(1) + " err-no-newlinelast-no-newline", 0, []lsEvent{
			lsLineEvent(0, Stdout, "first"),
			{Time: lsNS(1), Stream: Stdout, Line: "err-no-newlinelast-no-newline", Partial: true},
			lsEOF,
		}},
		{"final line of exactly 16 KiB", lsTS(0) + " " + long40k[:partSize], 0, []lsEvent{
			{Time: lsNS(0), Stream: Stdout, Line: long40k[:partSize], Partial: true},
			lsEOF,
		}},
		{"a final cr stays", lsTS(0) + " progress\r", 0, []lsEvent{
			{Time: lsNS(0), Stream: Stdout, Line: "progress\r", Partial: true},
			lsEOF,
		}},
		{"frames are bytes like any other", lsMsg(1, 0, "x\n"), 0, []lsEvent{
			{Line: strings.TrimSuffix(lsMsg(1, 0, "x\n"), "\n")},
			lsEOF,
		}},
		{"no timestamp", "hello world\r\n\r\n", 0, []lsEvent{
			{Stream: Stdout, Line: "hello world"},
			{Stream: Stdout, Line: ""},
			lsEOF,
		}},
		{"truncated", lsRawLine(0, long40k+"\r\n") + lsTS(1) + " 0123456789\r\n", 10, []lsEvent{
			{Time: lsNS(0), Stream: Stdout, Line: long40k[:10] + fmt.Sprintf(" …[truncated %d bytes]", len(long40k)-10), Truncated: true},
			lsLineEvent(1, Stdout, "0123456789"),
			lsEOF,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i := range tt.want {
				if tt.want[i].Err == "" {
					tt.want[i].Stream = Stdout
				}
			}
			lsCompare(t, lsReadAll(NewStream(strings.NewReader(tt.in), true, tt.maxLine)), tt.want)
			for name, r := range map[string]io.Reader{
				"one byte": iotest.OneByteReader(strings.NewReader(tt.in)),
				"half":     iotest.HalfReader(strings.NewReader(tt.in)),
				"data+eof": iotest.DataErrReader(strings.NewReader(tt.in)),
			} {
				got := lsReadAll(NewStream(r, true, tt.maxLine))
				if fmt.Sprint(got) != fmt.Sprint(tt.want) {
					t.Errorf("%s reader: got %v", name, got)
				}
			}
		})
	}
}

func TestLogStreamTimestamps(t *testing.T) {
	tests := []struct {
		stamp string
		want  time.Time
	}{
		{"2026-11-26T23:35:52.891162506Z", time.Date(2026, 11, 26, 23, 35, 52, 891162506, time.UTC)},
		{"2026-11-26T23:35:52.000000000Z", time.Date(2026, 11, 26, 23, 35, 52, 0, time.UTC)},
		{"2026-11-26T23:35:52Z", time.Date(2026, 11, 26, 23, 35, 52, 0, time.UTC)},
		{"2026-11-26T23:35:52.5Z", time.Date(2026, 11, 26, 23, 35, 52, 500000000, time.UTC)},
		{"2026-11-26T23:35:52.891+01:00", time.Date(2026, 11, 26, 22, 35, 52, 891000000, time.UTC)},
		{"2026-11-26T23:35:52.000000001-07:30", time.Date(2026, 11, 27, 7, 5, 52, 1, time.UTC)},
		{"2024-02-29T00:00:00Z", time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)},
		{"2000-02-29T23:59:59.999999999Z", time.Date(2000, 2, 29, 23, 59, 59, 999999999, time.UTC)},
		{"1970-01-01T00:00:00Z", time.Unix(0, 0)},
		{"1969-12-31T23:59:59.999999999Z", time.Unix(0, -1)},
		{"1700-03-01T00:00:00Z", time.Date(1700, 3, 1, 0, 0, 0, 0, time.UTC)},
		{"2262-04-11T23:47:16.854775807Z", time.Unix(0, 1<<63-1)},
		{"1677-09-21T00:12:43.145224192Z", time.Unix(0, -1<<63)},
	}
	for _, tt := range tests {
		var c stampCache
		ns, n := c.parsePrefix([]byte(tt.stamp + " x"))
		if n != len(tt.stamp)+1 || ns != tt.want.UnixNano() {
			t.Errorf("parse(%q) = %d, %d; want %d, %d", tt.stamp, ns, n, tt.want.UnixNano(), len(tt.stamp)+1)
		}
		// And again from the cache, after a different hour.
		c.parsePrefix([]byte("2001-01-01T01:00:00Z "))
		c.parsePrefix([]byte(tt.stamp + " "))
		if ns2, _ := c.parsePrefix([]byte(tt.stamp + " ")); ns2 != ns {
			t.Errorf("cached parse(%q) = %d, want %d", tt.stamp, ns2, ns)
		}
	}
	for _, bad := range []string{
		"", "2026-11-26T23:35:52Z", "2026-11-26T23:35:52.Z ", "2026-11-26T23:35:52.0000000001Z ",
		"2026-11-26 23:35:52Z ", "2026-11-26t23:35:52Z ", "2026-11-26T23:35:52z ", "2026-11-26T24:00:00Z ",
		"2026-11-26T23:60:00Z ", "2026-11-26T23:59:60Z ", "2026-02-29T00:00:00Z ", "2026-00-10T00:00:00Z ",
		"2026-11-00T00:00:00Z ", "2026-11-26T23:35:52+0100 ", "2026-11-26T23:35:52+24:00 ", "2026-11-26T23:35:52+01:60 ",
		"2026-11-26T23:35:52Zx", "1600-01-01T00:00:00Z ", "2263-01-01T00:00:00Z ", "2262-04-11T23:47:16.854775808Z ",
		"1677-09-21T00:12:43.145224191Z ",
		"+026-11-26T23:35:52Z ", "2026-11-26T23:35:52.89116250Z\n",
	} {
		var c stampCache
		if ns, n := c.parsePrefix([]byte(bad)); n != 0 || ns != 0 {
			t.Errorf("parse(%q) = %d, %d; want 0, 0", bad, ns, n)
		}
	}
}

// TestLogStreamOwnership checks that lines stay intact while the stream
// reuses its buffers, and that NextAppend's lines do not overlap.
func TestLogStreamOwnership(t *testing.T) {
	var in strings.Builder
	var want []string
	for i := range 2000 {
		line := lsPattern(fmt.Sprintf("line-%d:", i), 10+i*37%400)
		if i%100 == 7 {
			line = lsPattern(fmt.Sprintf("long-%d:", i), 20000+i)
		}
		want = append(want, line)
		in.WriteString(lsMuxLine(byte(1+i%2), i, line+"\n"))
	}
	s := NewStream(strings.NewReader(in.String()), false, 0)
	var lines []Line
	for {
		l, err := s.Next()
		if err != nil {
			break
		}
		lines = append(lines, l)
	}
	s = NewStream(strings.NewReader(in.String()), false, 0)
	var arena []byte
	var appended []Line
	for {
		l, next, err := s.NextAppend(arena)
		if err != nil {
			if len(next) != len(arena) {
				t.Fatalf("NextAppend changed dst on error")
			}
			break
		}
		if cap(l.Text) != len(l.Text) {
			t.Fatalf("line capacity %d not clipped to its length %d", cap(l.Text), len(l.Text))
		}
		arena = next
		appended = append(appended, l)
	}
	if len(lines) != len(want) || len(appended) != len(want) {
		t.Fatalf("got %d and %d lines, want %d", len(lines), len(appended), len(want))
	}
	for i := range want {
		if string(lines[i].Text) != want[i] || string(appended[i].Text) != want[i] {
			t.Fatalf("line %d changed after later reads", i)
		}
	}
}

// lsGenReader produces frames (or TTY messages) of one endless line without
// newline, so a test can read gigabytes without holding them.
type lsGenReader struct {
	tty   bool
	left  int // bytes of line still to produce
	chunk []byte
	pos   int
}

func newLsGenReader(tty bool, total int) *lsGenReader {
	part := lsTS(0) + " " + strings.Repeat("z", partSize)
	if !tty {
		part = lsFrame(1, part)
	}
	return &lsGenReader{tty: tty, left: total, chunk: []byte(part), pos: len(part)}
}

func (g *lsGenReader) Read(p []byte) (int, error) {
	if g.pos == len(g.chunk) {
		if g.left <= 0 {
			return 0, io.EOF
		}
		g.left -= partSize
		g.pos = 0
	}
	n := copy(p, g.chunk[g.pos:])
	g.pos += n
	return n, nil
}

// TestLogStreamBoundedMemory reads a 10 MiB line without newline (and 64 MiB
// in total) and checks that the stream allocates about maxLine, not the line.
func TestLogStreamBoundedMemory(t *testing.T) {
	for _, tty := range []bool{false, true} {
		t.Run(fmt.Sprintf("tty=%v", tty), func(t *testing.T) {
			const maxLine = 64 << 10
			total := 10 << 20
			s := NewStream(newLsGenReader(tty, total), tty, maxLine)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			l, err := s.Next()
			runtime.ReadMemStats(&after)
			if err != nil {
				t.Fatal(err)
			}
			if !l.Partial || !l.Truncated || !bytes.HasSuffix(l.Text, []byte(fmt.Sprintf(" …[truncated %d bytes]", total-maxLine))) {
				t.Fatalf("got partial=%v truncated=%v, line ending %q", l.Partial, l.Truncated, l.Text[max(0, len(l.Text)-40):])
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4*maxLine {
				t.Errorf("reading a %d-byte line allocated %d bytes", total, alloc)
			}
			if _, err := s.Next(); err != io.EOF {
				t.Errorf("after the partial line: %v, want io.EOF", err)
			}
		})
	}
}

// lsZeroReader never returns data nor an error.
type lsZeroReader struct{}

func (lsZeroReader) Read([]byte) (int, error) { return 0, nil }

// lsBadReader claims more bytes than it was given.
type lsBadReader struct{}

func (lsBadReader) Read(p []byte) (int, error) { return len(p) + 1, nil }

func TestLogStreamReaderFaults(t *testing.T) {
	in := lsMsg(1, 0, "one\n") + lsMuxLine(1, 1, lsPattern("long:", 40000)+"\n") + lsMsg(2, 2, "two\n")
	want := lsReadAll(NewStream(strings.NewReader(in), false, 0))

	t.Run("timeout", func(t *testing.T) {
		// TimeoutReader fails its second read once; Next passes the error
		// on and picks up where it was on the next call.
		s := NewStream(iotest.TimeoutReader(iotest.HalfReader(strings.NewReader(in))), false, 0)
		var got []lsEvent
		timeouts := 0
		for range 100 {
			l, err := s.Next()
			if errors.Is(err, iotest.ErrTimeout) {
				timeouts++
				continue
			}
			if err != nil {
				got = append(got, lsEvent{Err: err.Error()})
				break
			}
			got = append(got, lsEvent{Time: l.Time, Stream: l.Stream, Line: string(l.Text)})
		}
		if timeouts != 1 {
			t.Errorf("saw %d timeouts, want 1", timeouts)
		}
		lsCompare(t, got, want)
	})
	t.Run("error with data", func(t *testing.T) {
		boom := errors.New("boom")
		r := io.MultiReader(iotest.DataErrReader(strings.NewReader(in[:20])), iotest.ErrReader(boom))
		s := NewStream(r, false, 0)
		if _, err := s.Next(); err != boom {
			t.Fatalf("got %v, want boom", err)
		}
	})
	t.Run("tty timeout", func(t *testing.T) {
		raw := lsTS(0) + " one\r\n" + lsRawLine(1, lsPattern("long:", 40000)+"\r\n") + lsTS(2) + " two\r\n"
		want := lsReadAll(NewStream(strings.NewReader(raw), true, 0))
		for _, chunk := range []int{1, 7, 100, 5000} {
			s := NewStream(iotest.TimeoutReader(lsChunkReader(raw, chunk)), true, 0)
			var got []lsEvent
			for range 100000 {
				l, err := s.Next()
				if errors.Is(err, iotest.ErrTimeout) {
					continue
				}
				if err != nil {
					got = append(got, lsEvent{Err: err.Error()})
					break
				}
				got = append(got, lsEvent{Time: l.Time, Stream: l.Stream, Line: string(l.Text)})
			}
			lsCompare(t, got, want)
		}
	})
	t.Run("no progress", func(t *testing.T) {
		for _, tty := range []bool{false, true} {
			if _, err := NewStream(lsZeroReader{}, tty, 0).Next(); err != io.ErrNoProgress {
				t.Errorf("tty=%v: got %v, want io.ErrNoProgress", tty, err)
			}
		}
	})
	t.Run("bad count", func(t *testing.T) {
		if _, err := NewStream(lsBadReader{}, false, 0).Next(); err == nil || !strings.HasPrefix(err.Error(), "dockerlog: ") {
			t.Errorf("got %v, want a docker: error", err)
		}
	})
	t.Run("errors are sticky", func(t *testing.T) {
		s := NewStream(strings.NewReader("\x09\x00\x00\x00\x00\x00\x00\x00"), false, 0)
		_, err1 := s.Next()
		_, err2 := s.Next()
		var fe *FrameError
		if !errors.Is(err1, ErrCorruptFrame) || !errors.As(err1, &fe) || err2 != err1 || fe.Size != 0 || fe.Header[0] != 9 {
			t.Errorf("got %v then %v", err1, err2)
		}
	})
}

// lsChunkReader returns s in reads of at most n bytes.
func lsChunkReader(s string, n int) io.Reader {
	return &lsChunked{s: s, n: n}
}

type lsChunked struct {
	s string
	n int
}

func (c *lsChunked) Read(p []byte) (int, error) {
	if len(c.s) == 0 {
		return 0, io.EOF
	}
	k := copy(p[:min(len(p), c.n)], c.s)
	c.s = c.s[k:]
	return k, nil
}

func TestLogStreamBuffered(t *testing.T) {
	in := lsMsg(1, 0, "a\n") + lsMsg(1, 1, "b\n")
	s := NewStream(strings.NewReader(in), false, 0)
	if s.Buffered() != 0 {
		t.Fatalf("Buffered before reading = %d", s.Buffered())
	}
	s.Next()
	if got, want := s.Buffered(), len(lsMsg(1, 1, "b\n")); got != want {
		t.Errorf("Buffered after one line = %d, want %d", got, want)
	}
	s.Next()
	if s.Buffered() != 0 {
		t.Errorf("Buffered after both lines = %d", s.Buffered())
	}
}

func TestLogStreamAllocs(t *testing.T) {
	var in strings.Builder
	for i := range 1000 {
		in.WriteString(lsMsg(1, i, lsPattern("x", 265)+"\n"))
	}
	data := in.String()
	r := strings.NewReader(data)
	s := NewStream(r, false, 0)
	perLine := testing.AllocsPerRun(10, func() {
		r.Reset(data)
		*s = *NewStream(r, false, 0)
		for {
			if _, err := s.Next(); err != nil {
				break
			}
		}
	}) / 1000
	if perLine > 1.01 {
		t.Errorf("Next: %.2f allocations per line, want 1", perLine)
	}
	arena := make([]byte, 0, len(data))
	perLine = testing.AllocsPerRun(10, func() {
		r.Reset(data)
		*s = *NewStream(r, false, 0)
		dst := arena[:0]
		for {
			var err error
			if _, dst, err = s.NextAppend(dst); err != nil {
				break
			}
		}
	}) / 1000
	if perLine > 0.01 {
		t.Errorf("NextAppend: %.2f allocations per line, want 0", perLine)
	}
}
