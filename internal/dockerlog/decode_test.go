package dockerlog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// oracle decodes a record the way Docker's own reader does (encoding/json
// into a struct with a time.Time), plus the rules Decode adds: a time must
// be present and fit int64 nanoseconds, and the stream must be stdout or
// stderr. ok=false means Decode must fail.
func oracle(line []byte) (rec Record, ok bool) {
	var v struct {
		Log    string     `json:"log"`
		Stream string     `json:"stream"`
		Time   *time.Time `json:"time"`
	}
	if json.Unmarshal(line, &v) != nil || v.Time == nil {
		return Record{}, false
	}
	if v.Time.Before(time.Unix(0, -1<<63)) || v.Time.After(time.Unix(0, 1<<63-1)) {
		return Record{}, false
	}
	if v.Stream != "stdout" && v.Stream != "stderr" {
		return Record{}, false
	}
	stream := Stdout
	if v.Stream == "stderr" {
		stream = Stderr
	}
	return Record{Time: v.Time.UnixNano(), Stream: stream, Log: []byte(v.Log)}, true
}

// checkOracle fails t when Decode and the oracle disagree on line.
func checkOracle(t testing.TB, line []byte) {
	t.Helper()
	want, wantOK := oracle(line)
	prefix := []byte("prefix")
	got, dst, err := Decode(line, prefix)
	if !bytes.Equal(dst[:len(prefix)], prefix) {
		t.Fatalf("Decode(%q) changed the bytes already in dst", line)
	}
	if (err == nil) != wantOK {
		t.Fatalf("Decode(%q): err = %v, encoding/json accepts: %v", line, err, wantOK)
	}
	if err != nil {
		if len(dst) != len(prefix) {
			t.Fatalf("Decode(%q) failed but extended dst to %q", line, dst)
		}
		if !strings.HasPrefix(err.Error(), "dockerlog: ") {
			t.Fatalf("Decode(%q): error %q lacks the package prefix", line, err)
		}
		return
	}
	if got.Time != want.Time || got.Stream != want.Stream || !bytes.Equal(got.Log, want.Log) {
		t.Fatalf("Decode(%q) = {%d %v %q}, encoding/json gives {%d %v %q}", line, got.Time, got.Stream, got.Log, want.Time, want.Stream, want.Log)
	}
	if !bytes.Equal(dst[len(prefix):], got.Log) || cap(got.Log) != len(got.Log) {
		t.Fatalf("Decode(%q): Log is not the clipped appended part of dst", line)
	}
}

func ts(s string) int64 {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UnixNano()
}

const t0 = "2026-11-26T23:35:52.891162506Z"

// rec formats a record as Docker does, with the log already escaped.
func rec(escapedLog, stream, tm string) string {
	return `{"log":"` + escapedLog + `","stream":"` + stream + `","time":"` + tm + `"}`
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name   string
		line   string
		log    string
		time   string // RFC 3339; t0 when empty
		stderr bool
		fast   bool   // Docker's layout: must take the fast path
		err    string // a substring of the error; the record is invalid
	}{
		{name: "plain", line: rec(`hello world\n`, "stdout", t0), log: "hello world\n", fast: true},
		{name: "stderr", line: rec(`oops\n`, "stderr", t0), log: "oops\n", stderr: true, fast: true},
		{name: "partial", line: rec(`no newline`, "stdout", t0), log: "no newline", fast: true},
		{name: "empty log text", line: rec(``, "stdout", t0), log: "", fast: true},
		{name: "quote backslash slash", line: rec(`a\"b\\c\/d\n`, "stdout", t0), log: "a\"b\\c/d\n", fast: true},
		{name: "short escapes", line: rec(`\b\f\n\r\t`, "stdout", t0), log: "\b\f\n\r\t", fast: true},
		{name: "html escapes", line: rec(`\u003cb\u003e \u0026amp;`, "stdout", t0), log: "<b> &amp;", fast: true},
		{name: "control escapes", line: rec(`\u0000\u0009\u001b[31m\u007f`, "stdout", t0), log: "\x00\t\x1b[31m\x7f", fast: true},
		{name: "upper-case hex", line: rec(`\u00E9\u00e9`, "stdout", t0), log: "éé", fast: true},
		{name: "line separators", line: rec(`a\u2028b\u2029c`, "stdout", t0), log: "a\u2028b\u2029c", fast: true},
		{name: "replacement char escape", line: rec(`\ufffd`, "stdout", t0), log: "\uFFFD", fast: true},
		{name: "surrogate pair", line: rec(`\ud83d\ude00!`, "stdout", t0), log: "😀!", fast: true},
		{name: "lone high surrogate", line: rec(`\ud83dx`, "stdout", t0), log: "\uFFFDx", fast: true},
		{name: "lone high surrogate at end", line: rec(`\ud83d`, "stdout", t0), log: "\uFFFD", fast: true},
		{name: "lone low surrogate", line: rec(`\ude00x`, "stdout", t0), log: "\uFFFDx", fast: true},
		{name: "high surrogate then non-surrogate", line: rec(`\ud83d\u0041`, "stdout", t0), log: "\uFFFDA", fast: true},
		{name: "two highs then low", line: rec(`\ud83d\ud83d\ude00`, "stdout", t0), log: "\uFFFD😀", fast: true},
		{name: "raw UTF-8", line: rec(`héllo wörld 😀 日本`, "stdout", t0), log: "héllo wörld 😀 日本", fast: true},
		{name: "raw U+FFFD", line: rec("\uFFFD", "stdout", t0), log: "\uFFFD", fast: true},
		{name: "invalid UTF-8 byte", line: rec("a\xffb", "stdout", t0), log: "a\uFFFDb", fast: true},
		{name: "UTF-8 surrogate bytes", line: rec("\xed\xa0\x80", "stdout", t0), log: "\uFFFD\uFFFD\uFFFD", fast: true},
		{name: "truncated UTF-8 before quote", line: rec("x\xe2\x82", "stdout", t0), log: "x\uFFFD\uFFFD", fast: true},
		{name: "overlong UTF-8", line: rec("\xc0\xaf", "stdout", t0), log: "\uFFFD\uFFFD", fast: true},
		{name: "raw DEL", line: rec("\x7f", "stdout", t0), log: "\x7f", fast: true},
		{name: "escapes at word boundaries", line: rec(`1234567\n1234567\"12345678\\`, "stdout", t0), log: "1234567\n1234567\"12345678\\", fast: true},
		{name: "long plain", line: rec(strings.Repeat("x", 1000)+`\n`, "stdout", t0), log: strings.Repeat("x", 1000) + "\n", fast: true},

		// Times: RFC3339Nano drops trailing zeros, and the dot with them.
		{name: "trimmed fraction", line: rec(`x`, "stdout", "2026-11-27T01:30:28.0544469Z"), log: "x", time: "2026-11-27T01:30:28.054446900Z", fast: true},
		{name: "one fraction digit", line: rec(`x`, "stdout", "2026-11-27T01:30:28.5Z"), log: "x", time: "2026-11-27T01:30:28.500000000Z", fast: true},
		{name: "no fraction", line: rec(`x`, "stdout", "2026-11-27T01:30:28Z"), log: "x", time: "2026-11-27T01:30:28Z", fast: true},
		{name: "positive offset", line: rec(`x`, "stdout", "2026-11-27T01:30:28.123+02:00"), log: "x", time: "2026-11-26T23:30:28.123Z", fast: true},
		{name: "negative offset", line: rec(`x`, "stdout", "2026-11-26T16:05:52.891162506-07:30"), log: "x", time: "2026-11-26T23:35:52.891162506Z", fast: true},
		{name: "leap day", line: rec(`x`, "stdout", "2024-02-29T00:00:00.000000001Z"), log: "x", time: "2024-02-29T00:00:00.000000001Z", fast: true},
		{name: "before 1970", line: rec(`x`, "stdout", "1969-12-31T23:59:59.999999999Z"), log: "x", time: "1969-12-31T23:59:59.999999999Z", fast: true},
		{name: "latest time", line: rec(`x`, "stdout", "2262-04-11T23:47:16.854775807Z"), log: "x", time: "2262-04-11T23:47:16.854775807Z", fast: true},
		{name: "earliest time", line: rec(`x`, "stdout", "1677-09-21T00:12:43.145224192Z"), log: "x", time: "1677-09-21T00:12:43.145224192Z", fast: true},
		{name: "fraction beyond nanoseconds", line: rec(`x`, "stdout", "2026-11-27T01:30:28.1234567891Z"), log: "x", time: "2026-11-27T01:30:28.123456789Z"},
		{name: "comma fraction", line: rec(`x`, "stdout", "2026-11-27T01:30:28,5Z"), log: "x", time: "2026-11-27T01:30:28.5Z"},

		// Other layouts go through encoding/json.
		{name: "attrs", line: `{"log":"x\n","stream":"stdout","attrs":{"tag":"web","com.example":"\u003cv\u003e"},"time":"` + t0 + `"}`, log: "x\n", fast: true},
		{name: "empty attrs", line: `{"log":"x\n","stream":"stdout","attrs":{},"time":"` + t0 + `"}`, log: "x\n", fast: true},
		{name: "nested attrs", line: `{"log":"x\n","stream":"stdout","attrs":{"a":{"b":1}},"time":"` + t0 + `"}`, log: "x\n"},
		{name: "time first", line: `{"time":"` + t0 + `","stream":"stderr","log":"x\n"}`, log: "x\n", stderr: true},
		{name: "stream first", line: `{"stream":"stdout","log":"x\n","time":"` + t0 + `"}`, log: "x\n"},
		{name: "extra keys", line: `{"log":"x\n","stream":"stdout","time":"` + t0 + `","n":[1,{"a":null}],"b":true}`, log: "x\n"},
		{name: "spaces", line: `{ "log" : "x\n" , "stream" : "stdout" , "time" : "` + t0 + `" }`, log: "x\n"},
		{name: "trailing space", line: rec(`x`, "stdout", t0) + " ", log: "x"},
		{name: "missing log", line: `{"stream":"stdout","time":"` + t0 + `"}`, log: ""},
		{name: "null log", line: `{"log":null,"stream":"stdout","time":"` + t0 + `"}`, log: ""},
		{name: "upper-case key", line: `{"LOG":"x","stream":"stdout","time":"` + t0 + `"}`, log: "x"},
		{name: "duplicate log", line: `{"log":"a","log":"b","stream":"stdout","time":"` + t0 + `"}`, log: "b"},
		{name: "duplicate time", line: `{"log":"a","stream":"stdout","time":null,"time":"` + t0 + `"}`, log: "a"},

		// Invalid records.
		{name: "empty line", line: ``, err: "bad JSON"},
		{name: "not JSON", line: `hello`, err: "bad JSON"},
		{name: "cut record", line: rec(`x`, "stdout", t0)[:40], err: "bad JSON"},
		{name: "array", line: `["x"]`, err: "bad record: a JSON array, not an object"},
		{name: "missing time", line: `{"log":"x","stream":"stdout"}`, err: "missing time"},
		{name: "null time", line: `{"log":"x","stream":"stdout","time":null}`, err: "missing time"},
		{name: "numeric time", line: `{"log":"x","stream":"stdout","time":1}`, err: "bad time"},
		{name: "bad month", line: rec(`x`, "stdout", "2026-13-27T01:30:28Z"), err: "bad time"},
		{name: "bad day", line: rec(`x`, "stdout", "2026-02-29T01:30:28Z"), err: "bad time"},
		{name: "no zone", line: rec(`x`, "stdout", "2026-11-27T01:30:28"), err: "bad time"},
		{name: "lower-case zone", line: rec(`x`, "stdout", "2026-11-27T01:30:28z"), err: "bad time"},
		{name: "empty fraction", line: rec(`x`, "stdout", "2026-11-27T01:30:28.Z"), err: "bad time"},
		{name: "year 1500", line: rec(`x`, "stdout", "1500-01-01T00:00:00Z"), err: "out of range"},
		{name: "year 2300", line: rec(`x`, "stdout", "2300-01-01T00:00:00Z"), err: "out of range"},
		{name: "just after the latest time", line: rec(`x`, "stdout", "2262-04-11T23:47:16.854775808Z"), err: "out of range"},
		{name: "bad stream", line: rec(`x`, "stdin", t0), err: `bad stream "stdin"`},
		{name: "missing stream", line: `{"log":"x","time":"` + t0 + `"}`, err: "missing stream"},
		{name: "numeric log", line: `{"log":1,"stream":"stdout","time":"` + t0 + `"}`, err: "bad log: a JSON number, not a string"},
		{name: "duplicate time, bad first", line: `{"log":"x","stream":"stdout","time":"x","time":"` + t0 + `"}`, err: "bad time"},
		{name: "duplicate time, null last", line: `{"log":"x","stream":"stdout","time":"` + t0 + `","time":null}`, err: "missing time"},
		{name: "raw newline in log", line: rec("a\nb", "stdout", t0), err: "bad JSON"},
		{name: "raw tab in log", line: rec("a\tb", "stdout", t0), err: "bad JSON"},
		{name: "bad escape", line: rec(`\x41`, "stdout", t0), err: "bad JSON"},
		{name: "short unicode escape", line: rec(`\u12`, "stdout", t0), err: "bad JSON"},
		{name: "bad hex after surrogate", line: rec(`\ud83d\uzzzz`, "stdout", t0), err: "bad JSON"},
		{name: "unterminated log", line: `{"log":"abc`, err: "bad JSON"},
		{name: "trailing garbage", line: rec(`x`, "stdout", t0) + "x", err: "bad JSON"},
		{name: "two records", line: rec(`x`, "stdout", t0) + rec(`y`, "stdout", t0), err: "bad JSON"},
		{name: "bad attrs", line: `{"log":"x\n","stream":"stdout","attrs":{"a":"b",},"time":"` + t0 + `"}`, err: "bad JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			line := []byte(tt.line)
			checkOracle(t, line)
			got, _, err := Decode(line, nil)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one about %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := tt.time
			if want == "" {
				want = t0
			}
			if got.Time != ts(want) || (got.Stream == Stderr) != tt.stderr || string(got.Log) != tt.log {
				t.Errorf("got {%s %v %q}, want {%s %v %q}", time.Unix(0, got.Time).UTC().Format(time.RFC3339Nano), got.Stream == Stderr, got.Log, want, tt.stderr, tt.log)
			}
			if _, _, fast := decodeFast(line, nil, new(stampCache)); fast != tt.fast {
				t.Errorf("fast path taken: %v, want %v", fast, tt.fast)
			}
		})
	}
}

// TestDecodeEveryByte runs every byte value, raw and escaped, through the
// fast path and the oracle, at every position within a SWAR word.
func TestDecodeEveryByte(t *testing.T) {
	for c := range 256 {
		for pad := range 9 {
			p := strings.Repeat("a", pad)
			checkOracle(t, []byte(rec(p+string([]byte{byte(c)})+"tail", "stdout", t0)))
			checkOracle(t, []byte(rec(p+fmt.Sprintf(`\u%04x`, c)+"tail", "stdout", t0)))
		}
	}
}

// TestDecodeDockerEscaping encodes text the way Docker does and checks
// that Decode gives it back, with invalid UTF-8 replaced as Docker does.
func TestDecodeDockerEscaping(t *testing.T) {
	var all []byte
	for c := range 256 {
		all = append(all, byte(c))
	}
	texts := [][]byte{
		all,
		[]byte("plain text\n"),
		[]byte("<html> & \"quotes\" \\ back\tslash\r\n"),
		[]byte("emoji 😀 and \u2028\u2029 and \uFFFD and invalid \xff\xfe\xed\xa0\x80\n"),
	}
	for _, text := range texts {
		line := appendDockerRecord(nil, text, "stderr", time.Unix(0, ts(t0)), "")
		got, _, err := Decode(line, nil)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		want := dockerSanitize(text)
		if !bytes.Equal(got.Log, want) || got.Stream != Stderr || got.Time != ts(t0) {
			t.Errorf("%q: got %q, want %q", line, got.Log, want)
		}
		if _, _, fast := decodeFast(line, nil, new(stampCache)); !fast {
			t.Errorf("%q: not decoded by the fast path", line)
		}
		checkOracle(t, line)
	}
}

// dockerSanitize is what Docker's escaping does to text: every byte that
// does not start a valid UTF-8 sequence becomes U+FFFD.
func dockerSanitize(text []byte) []byte {
	var out []byte
	for len(text) > 0 {
		r, size := utf8.DecodeRune(text)
		if r == utf8.RuneError && size == 1 {
			out = append(out, "\uFFFD"...)
		} else {
			out = append(out, text[:size]...)
		}
		text = text[size:]
	}
	return out
}

// appendDockerRecord appends a record laid out and escaped as Docker's
// json-file driver writes it (jsonlog.JSONLogs.MarshalJSONBuf), without the
// newline that follows it in the file. attrs, when not empty, is the
// already encoded attrs object.
func appendDockerRecord(dst, text []byte, stream string, t time.Time, attrs string) []byte {
	dst = append(dst, '{')
	if len(text) > 0 {
		dst = append(dst, `"log":`...)
		dst = appendDockerString(dst, text)
		dst = append(dst, ',')
	}
	dst = append(dst, `"stream":`...)
	dst = appendDockerString(dst, []byte(stream))
	if attrs != "" {
		dst = append(dst, `,"attrs":`...)
		dst = append(dst, attrs...)
	}
	dst = append(dst, `,"time":"`...)
	dst = t.UTC().AppendFormat(dst, time.RFC3339Nano)
	return append(dst, `"}`...)
}

// appendDockerString escapes s as Docker's ffjsonWriteJSONBytesAsString
// does: '"', '\\', "\n" and "\r" with a backslash, other control bytes and
// '<', '>', '&' as \u00XX, invalid UTF-8 as \ufffd, U+2028 and U+2029 as
// escapes, and everything else verbatim.
func appendDockerString(dst, s []byte) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for len(s) > 0 {
		c := s[0]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, `\n`...)
			case c == '\r':
				dst = append(dst, `\r`...)
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				dst = append(dst, c)
			}
			s = s[1:]
			continue
		}
		r, size := utf8.DecodeRune(s)
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			dst = append(dst, s[:size]...)
		}
		s = s[size:]
	}
	return append(dst, '"')
}

func TestDecodeNeverAllocatesOnTheFastPath(t *testing.T) {
	line := []byte(rec(`the quick brown fox \u003cjumps\u003e\n`, "stdout", t0))
	dst := make([]byte, 0, 256)
	allocs := testing.AllocsPerRun(100, func() {
		_, d, err := Decode(line, dst[:0])
		if err != nil {
			t.Fatal(err)
		}
		dst = d
	})
	if allocs != 0 {
		t.Errorf("Decode allocates %v times per record", allocs)
	}
}

// TestParseTime formats random instants as Docker does (RFC3339Nano, UTC,
// trailing zeros of the fraction dropped) and with offsets and fixed-width
// fractions, and checks the fast parser gets every one to the nanosecond,
// with and without its cache of the hour.
func TestParseTime(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	zones := []*time.Location{time.UTC, time.FixedZone("", 2*3600), time.FixedZone("", -(7*3600 + 30*60)), time.FixedZone("", 23*3600+59*60)}
	var cache stampCache
	for i := range 100000 {
		ns := rng.Int64()
		if i%3 == 0 {
			ns = -ns // back to 1677
		}
		if i%2 == 0 {
			ns = 1.7e18 + rng.Int64N(1e17) // around now
		}
		switch i % 5 {
		case 1:
			ns -= ns % 1e9 // no fraction
		case 2:
			ns -= ns % 1e3 // trailing zeros
		}
		tm := time.Unix(0, ns).In(zones[i%len(zones)])
		layout := time.RFC3339Nano
		if i%7 == 0 {
			layout = "2006-01-02T15:04:05.000000000Z07:00"
		}
		s := []byte(tm.Format(layout))
		var fresh stampCache
		got, ok := fresh.parseExact(s)
		got2, ok2 := cache.parseExact(s)
		if !ok || !ok2 || got != ns || got2 != ns {
			t.Fatalf("%s: got %d %v (cached %d %v), want %d", s, got, ok, got2, ok2, ns)
		}
	}
}
