package loki_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/klauspost/compress/s2"

	"github.com/wharf-logs/wharf/internal/entry"
	"github.com/wharf-logs/wharf/internal/jsonenc"
	"github.com/wharf-logs/wharf/internal/loki"
	"github.com/wharf-logs/wharf/internal/lokitest"
)

func labels(kv ...string) entry.Labels {
	var l entry.Labels
	for i := 0; i+1 < len(kv); i += 2 {
		l = append(l, entry.Label{Name: kv[i], Value: kv[i+1]})
	}
	return l
}

// batchOf builds a batch from (stream, time, line) triples.
type line struct {
	s    *entry.Stream
	t    int64
	line string
}

func batchOf(lines ...line) *entry.Batch {
	b := &entry.Batch{}
	for _, l := range lines {
		b.Add(entry.Entry{Time: l.t, Line: []byte(l.line), Stream: l.s})
	}
	return b
}

// expected is what decoding an encoded b must give. For JSON, invalid UTF-8
// comes back with each bad byte replaced by U+FFFD, as encoding/json does.
func expected(b *entry.Batch, viaJSON bool) []lokitest.PushedStream {
	fix := func(s string) string {
		if !viaJSON {
			return s
		}
		return replaceInvalid(s)
	}
	var out []lokitest.PushedStream
	for _, s := range b.Streams {
		ps := lokitest.PushedStream{Labels: s.Stream.Key}
		if viaJSON {
			var l entry.Labels
			for _, p := range s.Stream.Labels {
				l = append(l, entry.Label{Name: fix(p.Name), Value: fix(p.Value)})
			}
			ps.Labels = l.String()
		}
		for _, e := range s.Entries {
			pe := lokitest.PushedEntry{Time: e.Time, Line: fix(string(e.Line))}
			for _, p := range s.Stream.Metadata {
				pe.Metadata = append(pe.Metadata, entry.Label{Name: fix(p.Name), Value: fix(p.Value)})
			}
			ps.Entries = append(ps.Entries, pe)
		}
		out = append(out, ps)
	}
	return out
}

func replaceInvalid(s string) string {
	var b strings.Builder
	for len(s) > 0 {
		r, size := utf8.DecodeRuneInString(s)
		if r == utf8.RuneError && size == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[:size])
		}
		s = s[size:]
	}
	return b.String()
}

func uvarint(x uint64) []byte { return binary.AppendUvarint(nil, x) }

func field(tag byte, body ...[]byte) []byte {
	v := bytes.Join(body, nil)
	return append(append([]byte{tag}, uvarint(uint64(len(v)))...), v...)
}

// TestAppendProtobufBytes checks the wire bytes of a tiny batch against an
// encoding built by hand from the field numbers of logproto.PushRequest.
func TestAppendProtobufBytes(t *testing.T) {
	s := entry.NewStream(labels("app", "web"), labels("container_id", "c1"), "web")
	bare := entry.NewStream(labels("app", "db"), nil, "db")
	b := batchOf(
		line{s, 1_700_000_000_123_456_789, "hi"},
		line{s, 5, ""}, // zero seconds and empty line are omitted
		line{bare, -1, "x"},
	)

	ts := func(sec, nsec []byte) []byte {
		var parts [][]byte
		if sec != nil {
			parts = append(parts, []byte{0x08}, sec)
		}
		if nsec != nil {
			parts = append(parts, []byte{0x10}, nsec)
		}
		return field(0x0a, parts...) // EntryAdapter.timestamp = 1
	}
	md := field(0x1a, field(0x0a, []byte("container_id")), field(0x12, []byte("c1")))
	want := bytes.Join([][]byte{
		field(0x0a, // PushRequest.streams = 1
			field(0x0a, []byte(`{app="web"}`)), // StreamAdapter.labels = 1
			field(0x12, // StreamAdapter.entries = 2
				ts(uvarint(1_700_000_000), uvarint(123_456_789)),
				field(0x12, []byte("hi")), // EntryAdapter.line = 2
				md,                        // EntryAdapter.structuredMetadata = 3
			),
			field(0x12, ts(nil, uvarint(5)), md),
		),
		field(0x0a,
			field(0x0a, []byte(`{app="db"}`)),
			// -1ns is -1s + 999999999ns; a negative int64 is a 10-byte varint.
			field(0x12, ts(uvarint(math.MaxUint64), uvarint(999_999_999)), field(0x12, []byte("x"))),
		),
	}, nil)

	got := loki.AppendProtobuf([]byte("prefix"), b)
	if !bytes.HasPrefix(got, []byte("prefix")) {
		t.Fatalf("dst prefix lost: %q", got[:6])
	}
	if got := got[len("prefix"):]; !bytes.Equal(got, want) {
		t.Fatalf("encoding differs\n got %x\nwant %x", got, want)
	}
}

func TestAppendProtobufGrowsOnce(t *testing.T) {
	s := entry.NewStream(labels("app", "web"), labels("container_id", "c1", "image", "nginx"), "web")
	var lines []line
	for i := range 1000 {
		lines = append(lines, line{s, int64(i) * 1e6, strings.Repeat("x", i%300)})
	}
	b := batchOf(lines...)
	// With a buffer of exactly the output size, an underestimate would grow
	// it while appending and an overestimate in slices.Grow: either
	// allocates.
	dst := make([]byte, 0, len(loki.AppendProtobuf(nil, b)))
	if n := testing.AllocsPerRun(10, func() { dst = loki.AppendProtobuf(dst[:0], b) }); n != 0 {
		t.Fatalf("%v allocations with an exact buffer: the size was not computed exactly", n)
	}
}

func TestAppendJSONShape(t *testing.T) {
	s := entry.NewStream(labels("app", "web", "host", "h1"), labels("container_id", "c1"), "web")
	bare := entry.NewStream(labels("app", "db"), nil, "db")
	b := batchOf(line{s, 1, "a\"b"}, line{s, 2, "c"}, line{bare, 3, "d"})
	got := string(loki.AppendJSON(nil, b))
	want := `{"streams":[` +
		`{"stream":{"app":"web","host":"h1"},"values":[["1","a\"b",{"container_id":"c1"}],["2","c",{"container_id":"c1"}]]},` +
		`{"stream":{"app":"db"},"values":[["3","d"]]}]}`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if !json.Valid([]byte(got)) {
		t.Fatal("not valid JSON")
	}
	if got := string(loki.AppendJSON(nil, &entry.Batch{})); got != `{"streams":[]}` {
		t.Fatalf("empty batch: %s", got)
	}
}

// stdJSON is encoding/json's encoding of s without HTML escaping.
func stdJSON(t testing.TB, s string) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	var all strings.Builder
	for c := range 256 {
		all.WriteByte(byte(c))
	}
	for _, s := range []string{
		"", "plain", `quote " backslash \ slash /`, "\x00\x01\x1f\x7f", "\b\f\n\r\t",
		"héllo wörld 日本語 🎉", "\u2028\u2029", "bad \xff\xfe utf8", "\xe2\x82", "\xed\xa0\x80 surrogate",
		"<html>&amp;</html>", all.String(),
	} {
		want := stdJSON(t, s)
		if got := string(jsonenc.AppendString(nil, s)); got != want {
			t.Errorf("string %q:\n got %s\nwant %s", s, got, want)
		}
		if got := string(jsonenc.AppendString(nil, []byte(s))); got != want {
			t.Errorf("bytes %q:\n got %s\nwant %s", s, got, want)
		}
	}
}

func roundTrip(t testing.TB, format loki.Format, gz bool, b *entry.Batch) []lokitest.PushedStream {
	t.Helper()
	enc, err := loki.NewEncoder(format, gz)
	if err != nil {
		t.Fatal(err)
	}
	p := enc.Encode(b)
	got, err := lokitest.DecodePush(p.Body, p.ContentType, p.ContentEncoding)
	if err != nil {
		t.Fatalf("%s gzip=%v: decode: %v", format, gz, err)
	}
	return got
}

func TestRoundTrip(t *testing.T) {
	web := entry.NewStream(labels("app", "web", "host", "h1"), labels("container_id", "0123456789ab", "image", "nginx:1.27"), "web")
	bare := entry.NewStream(labels("app", "db"), nil, "db")
	odd := entry.NewStream(labels("app", "odd\"\\\n\xff", "z", ""), labels("", "empty name", "k", "v\x00\xfe"), "odd")
	many := func() *entry.Batch {
		b := &entry.Batch{}
		for i := range 500 {
			s := entry.NewStream(labels("app", fmt.Sprint("s", i)), labels("n", fmt.Sprint(i)), "")
			for j := range 3 {
				b.Add(entry.Entry{Time: int64(i*10 + j), Line: []byte(fmt.Sprintf("line %d of %d", j, i)), Stream: s})
			}
		}
		return b
	}

	cases := map[string]*entry.Batch{
		"empty":        {},
		"metadata":     batchOf(line{web, 1_700_000_000_000_000_001, "GET / 200"}, line{web, 1_700_000_000_000_000_000, "earlier, kept in batch order"}),
		"no metadata":  batchOf(line{bare, 1, "a"}, line{bare, 2, "b"}),
		"unicode":      batchOf(line{web, 1, "héllo 日本語 🎉 \u2028\u2029"}),
		"invalid utf8": batchOf(line{web, 1, "bad \xff\xfe\xed\xa0\x80 end \xe2\x82"}),
		"controls":     batchOf(line{web, 1, "\x00\x01\t\n\r\b\f\x1b[31mred\x1b[0m\x7f"}),
		"escaped":      batchOf(line{odd, 1, `{"json":"in a line","n":[1,2]}`}),
		"empty line":   batchOf(line{web, 1, ""}),
		"extreme time": batchOf(line{bare, math.MinInt64, "min"}, line{bare, math.MaxInt64, "max"}, line{bare, 0, "zero"}, line{bare, -1_500_000_000, "negative"}),
		"long line":    batchOf(line{web, 1, strings.Repeat("0123456789abcdef", 1<<16)}),
		"many streams": many(),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			for _, tc := range []struct {
				format loki.Format
				gzip   bool
			}{{loki.FormatProtobuf, false}, {loki.FormatJSON, false}, {loki.FormatJSON, true}} {
				got := roundTrip(t, tc.format, tc.gzip, b)
				want := expected(b, tc.format == loki.FormatJSON)
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s gzip=%v:\n got %+v\nwant %+v", tc.format, tc.gzip, trim(got), trim(want))
				}
			}
		})
	}
}

// trim shortens long lines for failure messages.
func trim(ss []lokitest.PushedStream) []lokitest.PushedStream {
	out := make([]lokitest.PushedStream, len(ss))
	for i, s := range ss {
		out[i] = lokitest.PushedStream{Labels: s.Labels}
		for _, e := range s.Entries {
			if len(e.Line) > 80 {
				e.Line = e.Line[:80] + "..."
			}
			out[i].Entries = append(out[i].Entries, e)
		}
		if len(out[i].Entries) > 5 {
			out[i].Entries = out[i].Entries[:5]
		}
	}
	if len(out) > 5 {
		out = out[:5]
	}
	return out
}

func TestEncoderHeadersAndReuse(t *testing.T) {
	web := entry.NewStream(labels("app", "web"), nil, "web")
	big := batchOf(line{web, 1, strings.Repeat("a", 10000)})
	small := batchOf(line{web, 2, "b"})
	for _, tc := range []struct {
		format   loki.Format
		gzip     bool
		ctype    string
		encoding string
	}{
		{loki.FormatProtobuf, false, "application/x-protobuf", ""},
		{loki.FormatProtobuf, true, "application/x-protobuf", ""}, // snappy already
		{loki.FormatJSON, false, "application/json", ""},
		{loki.FormatJSON, true, "application/json", "gzip"},
	} {
		enc, err := loki.NewEncoder(tc.format, tc.gzip)
		if err != nil {
			t.Fatal(err)
		}
		p := enc.Encode(big)
		if p.ContentType != tc.ctype || p.ContentEncoding != tc.encoding {
			t.Errorf("%s gzip=%v: headers %q %q, want %q %q", tc.format, tc.gzip, p.ContentType, p.ContentEncoding, tc.ctype, tc.encoding)
		}
		// A second, smaller batch must not carry bytes of the first.
		p = enc.Encode(small)
		got, err := lokitest.DecodePush(p.Body, p.ContentType, p.ContentEncoding)
		if err != nil {
			t.Fatal(err)
		}
		if want := expected(small, tc.format == loki.FormatJSON); !reflect.DeepEqual(got, want) {
			t.Errorf("%s gzip=%v: after reuse got %+v, want %+v", tc.format, tc.gzip, got, want)
		}
	}
	if _, err := loki.NewEncoder("xml", false); err == nil {
		t.Fatal("NewEncoder accepted format xml")
	}
}

func TestProtobufIsSnappyBlock(t *testing.T) {
	web := entry.NewStream(labels("app", "web"), nil, "web")
	b := batchOf(line{web, 1, strings.Repeat("abc", 100)})
	enc, _ := loki.NewEncoder(loki.FormatProtobuf, false)
	body := enc.Encode(b).Body
	// A snappy block, not the framed stream format: it starts with the
	// uvarint of the decoded length.
	raw, err := s2.Decode(nil, body)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := binary.Uvarint(body); int(n) != len(raw) || !bytes.Equal(raw, loki.AppendProtobuf(nil, b)) {
		t.Fatal("body is not a snappy block of the protobuf encoding")
	}
}

// withoutMetadata is b with each stream swapped for a copy without
// structured metadata: what a push without metadata must hold.
func withoutMetadata(b *entry.Batch) *entry.Batch {
	c := *b
	c.Streams = slices.Clone(b.Streams)
	for i := range c.Streams {
		s := c.Streams[i].Stream
		c.Streams[i].Stream = entry.NewStream(s.Labels, nil, s.Origin)
	}
	return &c
}

// TestEncodeWithoutMetadata: with structured metadata off, a body is byte
// for byte the one the same batch without metadata makes.
func TestEncodeWithoutMetadata(t *testing.T) {
	web := entry.NewStream(labels("app", "web"), labels("container_id", "c1", "image", "nginx:1.27"), "web")
	db := entry.NewStream(labels("app", "db"), nil, "db")
	b := batchOf(line{web, 1, "a"}, line{db, 2, "b"}, line{web, 3, "c"})
	for _, tc := range []struct {
		format loki.Format
		gzip   bool
	}{{loki.FormatProtobuf, false}, {loki.FormatJSON, false}, {loki.FormatJSON, true}} {
		with, _ := loki.NewEncoder(tc.format, tc.gzip)
		without, _ := loki.NewEncoder(tc.format, tc.gzip)
		loki.OmitMetadata(without)
		want := bytes.Clone(with.Encode(withoutMetadata(b)).Body)
		if bytes.Equal(with.Encode(b).Body, want) {
			t.Fatalf("%s gzip=%v: the batch's metadata makes no difference", tc.format, tc.gzip)
		}
		if got := without.Encode(b).Body; !bytes.Equal(got, want) {
			t.Errorf("%s gzip=%v: body without metadata differs from the batch without metadata", tc.format, tc.gzip)
		}
	}
}
