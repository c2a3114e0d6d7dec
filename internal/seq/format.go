// Package seq describes the lines that cmd/loggen writes and checks that a
// log pipeline delivered them: every line carries a per-process sequence
// number, so a test can prove each line arrived exactly once.
//
// A text line is
//
//	seq=<n> stream=<out|err> sent=<unix nanos, 19 digits> <padding>
//
// and with JSON output
//
//	{"seq":<n>,"stream":"<out|err>","sent":<unix nanos>,"msg":"<padding>"}
//
// Apart from the sent time, a line is a pure function of its [Format] and its
// sequence number, so tests can compute the exact line they expect.
package seq

import (
	"strconv"
)

// Stream names used in the header of a line.
const (
	StreamOut = "out"
	StreamErr = "err"
)

// sentWidth is the width of the zero-padded sent field. Unix nanoseconds have
// 19 digits from 2001 to 2286; a fixed width keeps line lengths independent
// of the clock.
const sentWidth = 19

// filler is the readable text lines are padded with. It holds no quote,
// backslash or control byte, so it needs no escaping in JSON.
const filler = "the quick brown fox jumps over the lazy dog while five boxing wizards jump quickly and " +
	"pack my box with five dozen liquor jugs as a wharf crane swings the next crate ashore; "

// wordStarts holds the offset of every word of filler.
var wordStarts = func() []int {
	starts := []int{0}
	for i := 1; i < len(filler); i++ {
		if filler[i-1] == ' ' {
			starts = append(starts, i)
		}
	}
	return starts
}()

// ANSI colour prefixes put at the start of the padding with Format.ANSI.
// In JSON output the escape byte is written as \u001b so lines stay valid JSON.
const (
	ansiOut     = "\x1b[32mINFO\x1b[0m "
	ansiErr     = "\x1b[31mWARN\x1b[0m "
	ansiOutJSON = `\u001b[32mINFO\u001b[0m `
	ansiErrJSON = `\u001b[31mWARN\u001b[0m `
)

// Format describes the lines of one loggen process. The zero value writes
// bare headers to stdout.
type Format struct {
	// Size is the length of a line in bytes, header included and newline
	// excluded. A line is never shorter than its header.
	Size int
	// StderrFraction is the share of lines written to stderr, from 0 to 1.
	// Lines are assigned deterministically and evenly spread.
	StderrFraction float64
	// LongEvery makes every LongEvery-th line (seq divisible by it) LongSize
	// bytes long instead of Size; 0 disables long lines.
	LongEvery int64
	// LongSize is the length of long lines, header included.
	LongSize int
	// JSON writes each line as a one-line JSON object.
	JSON bool
	// ANSI starts the padding with a colour escape sequence.
	ANSI bool
}

// Args returns the loggen flags that produce f, so a test can describe its
// lines once and both run loggen and compute what to expect:
//
//	f := seq.Format{Size: 200, StderrFraction: 0.2}
//	args := append(f.Args(), "-lines", "1000")
func (f Format) Args() []string {
	args := []string{
		"-size", strconv.Itoa(f.Size),
		"-stderr", strconv.FormatFloat(f.StderrFraction, 'g', -1, 64),
	}
	if f.LongEvery > 0 {
		args = append(args, "-long-every", strconv.FormatInt(f.LongEvery, 10), "-long-size", strconv.Itoa(f.LongSize))
	}
	if f.JSON {
		args = append(args, "-json")
	}
	if f.ANSI {
		args = append(args, "-ansi")
	}
	return args
}

// Stream reports which stream line n goes to: StreamOut or StreamErr.
func (f Format) Stream(n int64) string {
	if f.isErr(n) {
		return StreamErr
	}
	return StreamOut
}

// isErr spreads stderr lines evenly: line n goes to stderr when the running
// total floor(n*F) steps up at n.
func (f Format) isErr(n int64) bool {
	if f.StderrFraction <= 0 {
		return false
	}
	if f.StderrFraction >= 1 {
		return true
	}
	return int64(float64(n)*f.StderrFraction) > int64(float64(n-1)*f.StderrFraction)
}

// Len returns the length of line n in bytes, newline excluded.
func (f Format) Len(n int64) int {
	size := f.size(n)
	if h := f.overhead(n); size < h {
		return h
	}
	return size
}

func (f Format) size(n int64) int {
	if f.LongEvery > 0 && n%f.LongEvery == 0 {
		return f.LongSize
	}
	return f.Size
}

// overhead is the number of bytes of line n that are not padding.
func (f Format) overhead(n int64) int {
	digits := len(strconv.FormatInt(n, 10))
	if f.JSON {
		// {"seq":N,"stream":"out","sent":S,"msg":"PAD"}
		return len(`{"seq":`) + digits + len(`,"stream":"out","sent":`) + sentWidth + len(`,"msg":"`) + len(`"}`)
	}
	return len("seq=") + digits + len(" stream=out sent=") + sentWidth + len(" ")
}

// Append appends line n, stamped with sent (unix nanoseconds), to dst and
// returns the extended slice. It appends no newline.
func (f Format) Append(dst []byte, n, sent int64) []byte {
	stream := f.Stream(n)
	if f.JSON {
		dst = append(dst, `{"seq":`...)
		dst = strconv.AppendInt(dst, n, 10)
		dst = append(dst, `,"stream":"`...)
		dst = append(dst, stream...)
		dst = append(dst, `","sent":`...)
		dst = appendSent(dst, sent)
		dst = append(dst, `,"msg":"`...)
	} else {
		dst = append(dst, "seq="...)
		dst = strconv.AppendInt(dst, n, 10)
		dst = append(dst, " stream="...)
		dst = append(dst, stream...)
		dst = append(dst, " sent="...)
		dst = appendSent(dst, sent)
		dst = append(dst, ' ')
	}
	pad := f.Len(n) - f.overhead(n)
	if f.ANSI {
		p := f.ansiPrefix(stream)
		if len(p) <= pad {
			dst = append(dst, p...)
			pad -= len(p)
		}
	}
	// Start the filler at a word that depends on n so neighbouring lines
	// differ, which keeps compression ratios realistic.
	off := wordStarts[n%int64(len(wordStarts))]
	for pad > 0 {
		chunk := filler[off:]
		if len(chunk) > pad {
			chunk = chunk[:pad]
		}
		dst = append(dst, chunk...)
		pad -= len(chunk)
		off = 0
	}
	if f.JSON {
		dst = append(dst, `"}`...)
	}
	return dst
}

// Line returns line n stamped with sent, without a newline.
func (f Format) Line(n, sent int64) string {
	return string(f.Append(make([]byte, 0, f.Len(n)), n, sent))
}

func (f Format) ansiPrefix(stream string) string {
	switch {
	case f.JSON && stream == StreamErr:
		return ansiErrJSON
	case f.JSON:
		return ansiOutJSON
	case stream == StreamErr:
		return ansiErr
	default:
		return ansiOut
	}
}

func appendSent(dst []byte, sent int64) []byte {
	if sent < 0 {
		sent = 0
	}
	var buf [20]byte
	s := strconv.AppendInt(buf[:0], sent, 10)
	for i := len(s); i < sentWidth; i++ {
		dst = append(dst, '0')
	}
	return append(dst, s...)
}

// ParseLine parses the header of a loggen line in either the text or the JSON
// form. A trailing "\n" or "\r\n" is ignored, so lines read from a TTY
// container parse too. It reports ok=false for anything else, including a
// line cut before the end of its header.
func ParseLine(line string) (seq int64, stream string, sent int64, ok bool) {
	line = trimEOL(line)
	if rest, found := cutPrefix(line, "seq="); found {
		if seq, rest, ok = parseUint(rest); !ok {
			return 0, "", 0, false
		}
		if rest, ok = cutPrefix(rest, " stream="); !ok {
			return 0, "", 0, false
		}
		if stream, rest, ok = parseStream(rest); !ok {
			return 0, "", 0, false
		}
		if rest, ok = cutPrefix(rest, " sent="); !ok {
			return 0, "", 0, false
		}
		if sent, rest, ok = parseUint(rest); !ok {
			return 0, "", 0, false
		}
		if rest != "" && rest[0] != ' ' {
			return 0, "", 0, false
		}
		return seq, stream, sent, true
	}
	if rest, found := cutPrefix(line, `{"seq":`); found {
		if seq, rest, ok = parseUint(rest); !ok {
			return 0, "", 0, false
		}
		if rest, ok = cutPrefix(rest, `,"stream":"`); !ok {
			return 0, "", 0, false
		}
		if stream, rest, ok = parseStream(rest); !ok {
			return 0, "", 0, false
		}
		if rest, ok = cutPrefix(rest, `","sent":`); !ok {
			return 0, "", 0, false
		}
		if sent, rest, ok = parseUint(rest); !ok {
			return 0, "", 0, false
		}
		if rest == "" || (rest[0] != ',' && rest[0] != '}') {
			return 0, "", 0, false
		}
		return seq, stream, sent, true
	}
	return 0, "", 0, false
}

func trimEOL(s string) string {
	if n := len(s); n > 0 && s[n-1] == '\n' {
		s = s[:n-1]
	}
	if n := len(s); n > 0 && s[n-1] == '\r' {
		s = s[:n-1]
	}
	return s
}

func cutPrefix(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && s[:len(prefix)] == prefix {
		return s[len(prefix):], true
	}
	return s, false
}

func parseStream(s string) (stream, rest string, ok bool) {
	if r, found := cutPrefix(s, StreamOut); found {
		return StreamOut, r, true
	}
	if r, found := cutPrefix(s, StreamErr); found {
		return StreamErr, r, true
	}
	return "", s, false
}

// parseUint parses a run of 1 to 19 decimal digits, which always fits int64.
func parseUint(s string) (v int64, rest string, ok bool) {
	i := 0
	for i < len(s) && i < 19 && s[i] >= '0' && s[i] <= '9' {
		v = v*10 + int64(s[i]-'0')
		i++
	}
	if i == 0 || (i < len(s) && s[i] >= '0' && s[i] <= '9') {
		return 0, s, false
	}
	return v, s[i:], true
}
