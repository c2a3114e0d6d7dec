package dockerlog

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// Record is one json-file record.
type Record struct {
	// Time is the record's "time" in Unix nanoseconds: when Docker read the
	// start of the line it belongs to.
	Time int64
	// Stream is Stdout or Stderr, as "stream" says.
	Stream StreamKind
	// Log is the unescaped "log" text, with its trailing "\n" unless the
	// record is a part of a longer line. It aliases the dst given to
	// decode.
	Log []byte
}

// decode parses one json-file record: one line of the file without its
// "\n". It appends the unescaped log text to dst and returns the record, whose
// Log is the appended part of dst (its capacity clipped, so appending to Log
// never overwrites what follows), and the extended dst. The caller owns dst
// throughout; decode keeps no reference to line or dst. stamps caches the
// last time's date and hour.
//
// Any JSON object is accepted, with its keys in any order and extra keys
// ignored, as long as "time" is an RFC 3339 string within the range of
// int64 nanoseconds (1677 to 2262) and "stream" is "stdout" or "stderr".
// The text is exactly what encoding/json would decode: invalid UTF-8 in the
// line becomes U+FFFD, and so does a lone UTF-16 surrogate escape. Records
// laid out as Docker writes them take a fast path; anything else goes
// through encoding/json, with the same result, over twenty times slower.
//
// On error dst is returned as it was, and the error says what is wrong.
func decode(line, dst []byte, stamps *stampCache) (Record, []byte, error) {
	start := len(dst)
	if rec, out, ok := decodeFast(line, dst, stamps); ok {
		return rec, out, nil
	}
	rec, out, err := decodeSlow(line, dst[:start])
	if err != nil {
		return Record{}, dst[:start], err
	}
	return rec, out, nil
}

// Layout of a record as Docker writes it.
const (
	fastPrefix  = `{"log":"`
	fastStdout  = `","stream":"stdout",`
	fastStderr  = `","stream":"stderr",`
	fastTimeKey = `"time":"`
	fastAttrs   = `"attrs":{`
	// fastMin is the shortest record the fast path can match: empty log
	// and a time without fraction.
	fastMin = len(fastPrefix) + len(fastStdout) + len(fastTimeKey) + len("2006-01-02T15:04:05Z") + len(`"}`)
)

// decodeFast parses a record laid out as Docker writes it. It returns
// ok=false for anything else, including every invalid record, and then dst
// may hold a partial result past its original length.
func decodeFast(line, dst []byte, stamps *stampCache) (Record, []byte, bool) {
	if len(line) < fastMin || string(line[:len(fastPrefix)]) != fastPrefix ||
		line[len(line)-1] != '}' || line[len(line)-2] != '"' {
		return Record{}, dst, false
	}
	start := len(dst)
	dst, n, ok := unquote(dst, line[len(fastPrefix):])
	if !ok {
		return Record{}, dst, false
	}
	// rest starts at the closing quote of "log".
	rest := line[len(fastPrefix)+n:]
	stream := Stdout
	switch {
	case len(rest) >= len(fastStdout) && string(rest[:len(fastStdout)]) == fastStdout:
	case len(rest) >= len(fastStderr) && string(rest[:len(fastStderr)]) == fastStderr:
		stream = Stderr
	default:
		return Record{}, dst, false
	}
	rest = rest[len(fastStdout):]
	if len(rest) >= len(fastAttrs) && string(rest[:len(fastAttrs)]) == fastAttrs {
		n, ok := skipStringObject(rest[len(fastAttrs)-1:])
		if !ok {
			return Record{}, dst, false
		}
		rest = rest[len(fastAttrs)-1+n:]
		if len(rest) == 0 || rest[0] != ',' {
			return Record{}, dst, false
		}
		rest = rest[1:]
	}
	if len(rest) < len(fastTimeKey)+len(`"}`) || string(rest[:len(fastTimeKey)]) != fastTimeKey {
		return Record{}, dst, false
	}
	t, ok := stamps.parseExact(rest[len(fastTimeKey) : len(rest)-len(`"}`)])
	if !ok {
		return Record{}, dst, false
	}
	return Record{Time: t, Stream: stream, Log: dst[start:len(dst):len(dst)]}, dst, true
}

// SWAR constants: a byte value repeated in every byte of a word.
const (
	swarLow7  = 0x7F7F7F7F7F7F7F7F
	swarHighs = 0x8080808080808080
	swar60    = 0x6060606060606060
	swarQuote = 0x2222222222222222 // '"'
	swarBack  = 0x5C5C5C5C5C5C5C5C // '\\'
)

// special returns a mask with the high bit set in each byte of w that a JSON
// string cannot copy verbatim: '"', '\\', a control byte or a byte of a
// multi-byte UTF-8 sequence. Byte i of the word is s[i] of the slice it was
// loaded from (little-endian).
//
// Only the low seven bits of each byte take part in the additions, so no
// carry crosses into the next byte and the mask is exact: x+0x60 stays
// below 0x80 only for x below 0x20, and (x^c)+0x7F only for x equal to c;
// bytes of 0x80 and more are flagged by their own high bit.
func special(w uint64) uint64 {
	lo := w & swarLow7
	return (w | ^((lo + swar60) & ((lo ^ swarQuote) + swarLow7) & ((lo ^ swarBack) + swarLow7))) & swarHighs
}

// plainPrefix returns a length, a multiple of 8, up to which s holds no
// special byte; the first special byte, if any, is less than 8 bytes after
// it. bytes.IndexByte finds quotes and backslashes many bytes per cycle;
// what is left to check word by word is that every byte is within 0x20 to
// 0x7F, which takes fewer instructions than special. Subtracting 0x20 from
// every byte sets a high bit, or borrows, only where a byte is below 0x20,
// and a borrow flags bytes above one that is: the mask is 0 exactly when
// all bytes are in range.
func plainPrefix(s []byte) int {
	q := bytes.IndexByte(s, '"')
	if q < 0 {
		q = len(s)
	}
	if b := bytes.IndexByte(s[:q], '\\'); b >= 0 {
		q = b
	}
	const c20 = 0x2020202020202020
	i := 0
	for ; i+32 <= q; i += 32 {
		b := s[i : i+32]
		w0, w1 := binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[8:])
		w2, w3 := binary.LittleEndian.Uint64(b[16:]), binary.LittleEndian.Uint64(b[24:])
		if ((w0-c20)|w0|(w1-c20)|w1|(w2-c20)|w2|(w3-c20)|w3)&swarHighs != 0 {
			break
		}
	}
	for ; i+8 <= q; i += 8 {
		if w := binary.LittleEndian.Uint64(s[i:]); ((w-c20)|w)&swarHighs != 0 {
			break
		}
	}
	return i
}

// skipNonASCII returns the index of the first quote, backslash or control
// byte at or after i, or len(s): special's test, less its high bit.
func skipNonASCII(s []byte, i int) int {
	for ; i+8 <= len(s); i += 8 {
		w := binary.LittleEndian.Uint64(s[i:])
		lo := w & swarLow7
		if m := ^(w | ((lo + swar60) & ((lo ^ swarQuote) + swarLow7) & ((lo ^ swarBack) + swarLow7))) & swarHighs; m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	for ; i < len(s) && (s[i] >= 0x80 || plain[s[i]]); i++ {
	}
	return i
}

// plain marks the bytes special does not flag.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// skipPlain returns the index of the first byte at or after i that is not
// plain, or len(s).
func skipPlain(s []byte, i int) int {
	for ; i+8 <= len(s); i += 8 {
		if m := special(binary.LittleEndian.Uint64(s[i:])); m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	for ; i < len(s) && plain[s[i]]; i++ {
	}
	return i
}

// unquote unescapes the JSON string whose body starts s, up to its closing
// quote, and appends it to dst exactly as encoding/json would: invalid
// UTF-8 becomes U+FFFD byte by byte, and so does a UTF-16 surrogate escape
// that is not half of a valid pair. It returns the extended dst and the
// index of the closing quote, or ok=false when the string is not valid
// JSON or not closed.
//
// It works on words of eight bytes. A word is written to buf whole, even
// when only its first bytes belong there: later writes overwrite the rest.
// For that, buf always has room for the rest of s plus a word: no escape
// makes the text longer, and invalid UTF-8, which does, grows buf first.
//
// It is one function of about a hundred lines on purpose: the word loop
// and the escapes share i, w and buf, which stay in registers only while
// they stay in one function, and every record's text passes through here.
func unquote(dst, s []byte) (_ []byte, end int, ok bool) {
	buf := slices.Grow(dst, len(s)+8)
	// Most text has long runs without escapes: find the first stretch that
	// may have one with fewer instructions per byte, and copy up to it in
	// one move.
	i := plainPrefix(s)
	buf = append(buf, s[:i]...)
	w := len(buf)
	buf = buf[:cap(buf)]
	for {
		for i+8 <= len(s) {
			word := binary.LittleEndian.Uint64(s[i:])
			binary.LittleEndian.PutUint64(buf[w:], word)
			if m := special(word); m != 0 {
				n := bits.TrailingZeros64(m) >> 3
				i += n
				w += n
				goto found
			}
			i += 8
			w += 8
		}
		for ; i < len(s) && plain[s[i]]; i++ {
			buf[w] = s[i]
			w++
		}
		if i >= len(s) {
			return buf[:w], 0, false
		}
	found:
		switch c := s[i]; {
		case c == '"':
			return buf[:w], i, true
		case c == '\\':
			if i+1 >= len(s) {
				return buf[:w], 0, false
			}
			if b := unescapeByte[s[i+1]]; b != 0 {
				buf[w] = b
				w++
				i += 2
				continue
			}
			if s[i+1] != 'u' {
				return buf[:w], 0, false
			}
			r := hex4(s[i+2:])
			if r < 0 {
				return buf[:w], 0, false
			}
			i += 6
			if r < utf8.RuneSelf {
				buf[w] = byte(r)
				w++
				continue
			}
			if utf16.IsSurrogate(r) {
				// Like encoding/json: a valid pair makes one rune;
				// anything else makes this half U+FFFD and leaves what
				// follows alone.
				r2 := rune(-1)
				if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
					r2 = hex4(s[i+2:])
				}
				if p := utf16.DecodeRune(r, r2); p != utf8.RuneError {
					r = p
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			w += utf8.EncodeRune(buf[w:], r)
		case c < 0x20:
			return buf[:w], 0, false
		default:
			// Non-ASCII: check the stretch up to the next quote, backslash
			// or control byte at once. Valid UTF-8, the usual case, is
			// copied as it is.
			if j := skipNonASCII(s, i); utf8.Valid(s[i:j]) {
				w += copy(buf[w:], s[i:j])
				i = j
				continue
			}
			r, size := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && size == 1 {
				// Three bytes for one: keep room for the rest.
				if need := w + 3 + len(s) - i - 1 + 8; need > len(buf) {
					buf = slices.Grow(buf[:w], need-w)
					buf = buf[:cap(buf)]
				}
				w += copy(buf[w:], "\uFFFD")
				i++
				continue
			}
			w += copy(buf[w:], s[i:i+size])
			i += size
		}
	}
}

// unescapeByte maps the character after a backslash to the byte it stands
// for, or to 0 for 'u' and invalid escapes.
var unescapeByte = [256]byte{'"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}

// hex4 parses the four hex digits that start s, or returns -1.
func hex4(s []byte) rune {
	if len(s) < 4 {
		return -1
	}
	var r rune
	for _, c := range s[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

// skipString returns the length of the JSON string at the start of s
// (s[0] is its opening quote), quotes included, after checking its syntax.
func skipString(s []byte) (int, bool) {
	for i := 1; ; {
		i = skipPlain(s, i)
		if i >= len(s) {
			return 0, false
		}
		switch c := s[i]; {
		case c == '"':
			return i + 1, true
		case c == '\\':
			if i+1 >= len(s) {
				return 0, false
			}
			switch s[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if hex4(s[i+2:]) < 0 {
					return 0, false
				}
				i += 6
			default:
				return 0, false
			}
		case c < 0x20:
			return 0, false
		default:
			// Any other byte is valid in a string, even invalid UTF-8:
			// encoding/json replaces it rather than rejecting the record.
			i++
		}
	}
}

// skipStringObject returns the length of the JSON object at the start of s
// (s[0] is '{') when it holds only string members and no spaces, as
// "attrs" does when Docker writes it; ok=false means "not that", not
// "invalid".
func skipStringObject(s []byte) (int, bool) {
	i := 1
	if i < len(s) && s[i] == '}' {
		return i + 1, true
	}
	for {
		if i >= len(s) || s[i] != '"' {
			return 0, false
		}
		n, ok := skipString(s[i:])
		if !ok {
			return 0, false
		}
		i += n
		if i+1 >= len(s) || s[i] != ':' || s[i+1] != '"' {
			return 0, false
		}
		i++
		if n, ok = skipString(s[i:]); !ok {
			return 0, false
		}
		i += n
		if i >= len(s) {
			return 0, false
		}
		switch s[i] {
		case ',':
			i++
		case '}':
			return i + 1, true
		default:
			return 0, false
		}
	}
}

// slowRecord is the shape Docker's own reader (jsonlog.JSONLog) decodes a
// record into, less the attrs, which are not needed.
type slowRecord struct {
	Log    string   `json:"log"`
	Stream string   `json:"stream"`
	Time   slowTime `json:"time"`
}

// slowTime decodes as a *time.Time field would (null unsets it, a later
// key replaces an earlier one), but marks its errors as being about the
// time.
type slowTime struct {
	t   time.Time
	set bool
}

type timeError struct{ err error }

func (e *timeError) Error() string { return e.err.Error() }

func (s *slowTime) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*s = slowTime{}
		return nil
	}
	if err := s.t.UnmarshalJSON(b); err != nil {
		return &timeError{err}
	}
	s.set = true
	return nil
}

// Bounds of the times int64 nanoseconds can hold.
var (
	minTime = time.Unix(0, -1<<63)
	maxTime = time.Unix(0, 1<<63-1)
)

// decodeSlow decodes any record with encoding/json.
func decodeSlow(line, dst []byte) (Record, []byte, error) {
	var v slowRecord
	if err := json.Unmarshal(line, &v); err != nil {
		var syntax *json.SyntaxError
		var badTime *timeError
		var badType *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syntax):
			return Record{}, dst, fmt.Errorf("dockerlog: bad JSON: %v", err)
		case errors.As(err, &badTime):
			return Record{}, dst, fmt.Errorf("dockerlog: bad time: %v", badTime)
		case errors.As(err, &badType) && badType.Field != "":
			return Record{}, dst, fmt.Errorf("dockerlog: bad %s: a JSON %s, not a string", badType.Field, badType.Value)
		case errors.As(err, &badType):
			return Record{}, dst, fmt.Errorf("dockerlog: bad record: a JSON %s, not an object", badType.Value)
		}
		return Record{}, dst, fmt.Errorf("dockerlog: bad record: %v", err)
	}
	if !v.Time.set {
		return Record{}, dst, errors.New("dockerlog: missing time")
	}
	if t := v.Time.t; t.Before(minTime) || t.After(maxTime) {
		return Record{}, dst, fmt.Errorf("dockerlog: time %s out of range", t.UTC().Format(time.RFC3339Nano))
	}
	stream := Stdout
	switch v.Stream {
	case "stdout":
	case "stderr":
		stream = Stderr
	case "":
		return Record{}, dst, errors.New("dockerlog: missing stream")
	default:
		return Record{}, dst, fmt.Errorf("dockerlog: bad stream %q", v.Stream)
	}
	start := len(dst)
	dst = append(dst, v.Log...)
	return Record{Time: v.Time.t.UnixNano(), Stream: stream, Log: dst[start:len(dst):len(dst)]}, dst, nil
}
