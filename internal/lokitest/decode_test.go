package lokitest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"

	"github.com/wharf-logs/wharf/internal/entry"
	"github.com/wharf-logs/wharf/internal/loki"
)

func labels(kv ...string) entry.Labels {
	var l entry.Labels
	for i := 0; i+1 < len(kv); i += 2 {
		l = append(l, entry.Label{Name: kv[i], Value: kv[i+1]})
	}
	return l
}

func uvarint(x uint64) []byte { return binary.AppendUvarint(nil, x) }

// field is a length-delimited protobuf field: tag, length, body.
func field(tag byte, body ...[]byte) []byte {
	v := bytes.Join(body, nil)
	return append(append([]byte{tag}, uvarint(uint64(len(v)))...), v...)
}

func gzipped(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDecodePushJSON(t *testing.T) {
	body := `{"streams":[{"stream":{"b":"2","a":"1"},"values":[
		["1700000000000000001","line one"],
		["2","two",{"z":"last","container_id":"abc"}]
	], "unknown": [1, {"x": null}]}], "extra": {"ignored": true}}`
	got, err := DecodePush([]byte(body), "application/json; charset=utf-8", "")
	if err != nil {
		t.Fatal(err)
	}
	want := []PushedStream{{
		Labels: `{a="1", b="2"}`,
		Entries: []PushedEntry{
			{Time: 1700000000000000001, Line: "line one"},
			{Time: 2, Line: "two", Metadata: labels("container_id", "abc", "z", "last")},
		},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	// Loki reads a body without Content-Type as JSON, gzipped or not.
	got, err = DecodePush(gzipped(t, []byte(body)), "", "gzip")
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("gzip, no content type: got %+v, %v", got, err)
	}
}

func TestDecodePushErrors(t *testing.T) {
	const proto, js = loki.ContentTypeProtobuf, loki.ContentTypeJSON
	snappy := func(raw []byte) []byte { return s2.EncodeSnappy(nil, raw) }
	// A snappy header claiming more than the limit, and nothing else.
	hugeHeader := binary.AppendUvarint(nil, MaxDecodedBytes+1)
	bomb := gzipped(t, make([]byte, MaxDecodedBytes+1))
	// Lower the limit so the test stays quick under the race detector.
	defer func(n int) { maxItems = n }(maxItems)
	maxItems = 1000
	manyEntries := func() []byte {
		// Each empty entry is two bytes: the cheapest way to ask for memory.
		entries := bytes.Repeat([]byte{0x12, 0x00}, maxItems)
		return snappy(field(0x0a, entries))
	}()
	manyJSON := `{"streams":[{"stream":{"a":"b"},"values":[` + strings.Repeat(`["1",""],`, maxItems) + `["1",""]]}]}`

	for _, tc := range []struct {
		name      string
		body      []byte
		ctype     string
		encoding  string
		wantIs    error
		wantMatch string
	}{
		{"garbage snappy", []byte("not snappy at all"), proto, "", nil, "snappy"},
		{"snappy size over limit", hugeHeader, proto, "", ErrBodyTooLarge, ""},
		{"gzip bomb", bomb, js, "gzip", ErrBodyTooLarge, ""},
		{"bad gzip", []byte("nope"), js, "gzip", nil, "gzip"},
		{"truncated protobuf", snappy([]byte{0x0a, 0x05, 0x0a}), proto, "", nil, "protobuf"},
		{"bad varint", snappy(append([]byte{0x0a, 0x0b}, bytes.Repeat([]byte{0xff}, 11)...)), proto, "", nil, "protobuf"},
		{"nanos out of range", snappy(field(0x0a, field(0x12, field(0x0a, []byte{0x10}, uvarint(1e9))))), proto, "", nil, "out of range"},
		{"too many protobuf items", manyEntries, proto, "", ErrTooManyItems, ""},
		{"too many json items", []byte(manyJSON), js, "", ErrTooManyItems, ""},
		{"unsupported type", []byte("{}"), "text/plain", "", nil, "content type"},
		{"unsupported encoding", []byte("{}"), js, "br", nil, "content encoding"},
		{"bad json", []byte(`{"streams":[{"stream":{"a":1}}]}`), js, "", nil, "json"},
		{"json timestamp not a number", []byte(`{"streams":[{"stream":{"a":"b"},"values":[["soon","x"]]}]}`), js, "", nil, "Unix nanoseconds"},
		{"json value too short", []byte(`{"streams":[{"stream":{"a":"b"},"values":[["1"]]}]}`), js, "", nil, "json"},
		{"json trailing data", []byte(`{"streams":[]} {}`), js, "", nil, "after"},
		{"json truncated", []byte(`{"streams":[{"stream":`), js, "", nil, "json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodePush(tc.body, tc.ctype, tc.encoding)
			if err == nil {
				t.Fatalf("no error; decoded %d streams", len(got))
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Fatalf("error %v, want %v", err, tc.wantIs)
			}
			if !strings.Contains(err.Error(), tc.wantMatch) || !strings.HasPrefix(err.Error(), "lokitest: ") {
				t.Fatalf("error %q does not start with lokitest: and mention %q", err, tc.wantMatch)
			}
		})
	}
}

func TestDecodePushSkipsUnknownProtobufFields(t *testing.T) {
	raw := bytes.Join([][]byte{
		{0x18, 0x07}, // an unknown varint field 3 in PushRequest
		field(0x0a,
			field(0x0a, []byte(`{a="b"}`)),
			[]byte{0x18, 0x2a}, // StreamAdapter.hash, which wharf never sends
			field(0x12, field(0x0a, []byte{0x08, 0x01}), field(0x12, []byte("x")), []byte{0x25, 1, 2, 3, 4}),
		),
	}, nil)
	got, err := DecodePush(s2.EncodeSnappy(nil, raw), loki.ContentTypeProtobuf, "")
	if err != nil {
		t.Fatal(err)
	}
	want := []PushedStream{{Labels: `{a="b"}`, Entries: []PushedEntry{{Time: 1e9, Line: "x"}}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestParseLabels(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    entry.Labels
		wantErr string
	}{
		{`{}`, nil, ""},
		{` { } `, nil, ""},
		{`{a="b"}`, labels("a", "b"), ""},
		{`{c="d", a="b"}`, labels("a", "b", "c", "d"), ""},
		{`{a="q\"uote\\ \n \u00e9 \xff", b=` + "`raw\\n`" + `}`, labels("a", "q\"uote\\ \n é \xff", "b", `raw\n`), ""},
		{`{_x9="", Y_="}"}`, labels("Y_", "}", "_x9", ""), ""},
		{``, nil, "want '{'"},
		{`{a="b"`, nil, "want '}'"},
		{`{a="b",}`, nil, "label name"},
		{`{9a="b"}`, nil, "label name"},
		{`{a=b}`, nil, "quoted value"},
		{`{a="b}`, nil, "unterminated"},
		{`{a="\q"}`, nil, "bad value"},
		{`{a="b", a="c"}`, nil, "duplicate"},
		{`{a="b"} x`, nil, "after the closing brace"},
		{`{a-b="c"}`, nil, "want '='"},
	} {
		got, err := ParseLabels(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseLabels(%q) error %v, want one mentioning %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseLabels(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseLabelsInvertsString(t *testing.T) {
	for _, l := range []entry.Labels{
		labels("a", ""),
		labels("app", "web", "host", "h1", "stream", "stdout"),
		labels("k", "\x00\x01\xff\u2028日本 \"q\" \\ `b`"),
	} {
		got, err := ParseLabels(l.String())
		if err != nil || !reflect.DeepEqual(got, l) {
			t.Errorf("ParseLabels(%s) = %v, %v", l.String(), got, err)
		}
	}
}
