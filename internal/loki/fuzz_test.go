package loki

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/klauspost/compress/s2"

	"github.com/wharf-logs/wharf/internal/entry"
	"github.com/wharf-logs/wharf/internal/jsonenc"
)

// Seeds beyond those added here live in testdata/fuzz/<FuzzName>.

func seedBatch() *entry.Batch {
	s := entry.NewStream(labels("app", "web", "host", "h1"), labels("container_id", "c1", "image", "nginx"), "web")
	d := entry.NewStream(labels("app", "db"), nil, "db")
	return batchOf(line{s, 1_700_000_000_123_456_789, "GET / 200"}, line{s, -1, "\xff\u2028"}, line{d, 0, ""})
}

// FuzzDecodePushProtobuf feeds uncompressed protobuf to the decoder through a
// valid snappy block, so the fuzzer explores the protobuf parser rather than
// snappy's checks.
func FuzzDecodePushProtobuf(f *testing.F) {
	f.Add(AppendProtobuf(nil, seedBatch()))
	f.Add([]byte{0x0a, 0x00})
	f.Add([]byte{0x0a, 0x04, 0x12, 0x02, 0x0a, 0x00})
	f.Fuzz(func(t *testing.T, raw []byte) {
		streams, err := DecodePush(s2.EncodeSnappy(nil, raw), ContentTypeProtobuf, "")
		if err != nil {
			return
		}
		// What decodes must survive our own encoding unchanged.
		for _, s := range streams {
			for _, e := range s.Entries {
				st := entry.NewStream(nil, e.Metadata, "")
				st.Key = s.Labels
				b := batchOf(line{st, e.Time, e.Line})
				again, err := DecodePush(s2.EncodeSnappy(nil, AppendProtobuf(nil, b)), ContentTypeProtobuf, "")
				if err != nil {
					t.Fatalf("re-encoded entry does not decode: %v", err)
				}
				want := PushedStream{Labels: s.Labels, Entries: []PushedEntry{e}}
				if len(again) != 1 || !reflect.DeepEqual(normalise(again[0]), normalise(want)) {
					t.Fatalf("re-encoded entry decodes as %+v, want %+v", again, want)
				}
			}
		}
	})
}

// normalise makes empty and nil metadata compare equal.
func normalise(s PushedStream) PushedStream {
	for i := range s.Entries {
		if len(s.Entries[i].Metadata) == 0 {
			s.Entries[i].Metadata = nil
		}
	}
	return s
}

func FuzzDecodePushJSON(f *testing.F) {
	f.Add(string(AppendJSON(nil, seedBatch())))
	f.Add(`{"streams":[{"stream":{"a":"b"},"values":[["1","x",{"k":"v"}]]}]}`)
	f.Add(`{"streams":[{"stream":{},"values":[]}],"x":[1,{"y":null}]}`)
	f.Add(`{"streams":[{"stream":{"a":"\ud800"},"values":[["-9223372036854775808","\u0000"]]}]}`)
	f.Fuzz(func(t *testing.T, body string) {
		streams, err := DecodePush([]byte(body), ContentTypeJSON, "")
		if err != nil {
			return
		}
		if !json.Valid([]byte(body)) {
			t.Fatalf("decoded invalid JSON %q", body)
		}
		// Re-encoding what was decoded and decoding again is stable.
		for _, s := range streams {
			l, err := ParseLabels(s.Labels)
			if err != nil || l.String() != s.Labels {
				// JSON label names need not be valid Loki names, so the
				// selector built from them need not parse back.
				continue
			}
			for _, e := range s.Entries {
				b := batchOf(line{entry.NewStream(l, e.Metadata, ""), e.Time, e.Line})
				again, err := DecodePush(AppendJSON(nil, b), ContentTypeJSON, "")
				if err != nil {
					t.Fatalf("re-encoded entry does not decode: %v", err)
				}
				want := PushedStream{Labels: s.Labels, Entries: []PushedEntry{e}}
				if len(again) != 1 || !reflect.DeepEqual(normalise(again[0]), normalise(want)) {
					t.Fatalf("re-encoded entry decodes as %+v, want %+v", again, want)
				}
			}
		}
	})
}

// FuzzDecodePushBody throws arbitrary bytes at every content type and
// encoding combination.
func FuzzDecodePushBody(f *testing.F) {
	enc, _ := NewEncoder(FormatProtobuf, false)
	f.Add(append([]byte(nil), enc.Encode(seedBatch()).Body...), uint8(0))
	enc, _ = NewEncoder(FormatJSON, true)
	f.Add(append([]byte(nil), enc.Encode(seedBatch()).Body...), uint8(3))
	f.Add([]byte("\xff\xff\xff\xff\x0f"), uint8(0))
	f.Fuzz(func(t *testing.T, body []byte, kind uint8) {
		ctype := []string{ContentTypeProtobuf, ContentTypeJSON}[kind%2]
		encoding := []string{"", EncodingGzip}[kind/2%2]
		_, _ = DecodePush(body, ctype, encoding)
	})
}

// FuzzRoundTrip encodes fuzzed entries in every format and checks that they
// decode to what was sent.
func FuzzRoundTrip(f *testing.F) {
	f.Add("web", "GET / 200", int64(1_700_000_000_123_456_789), "c1", "second line", int64(-1))
	f.Add("\xff\"", "\x00\u2028\xe2\x82", int64(0), "", "", int64(1<<62))
	f.Fuzz(func(t *testing.T, labelValue, line1 string, t1 int64, mdValue, line2 string, t2 int64) {
		s := entry.NewStream(labels("app", labelValue), labels("container_id", mdValue), "")
		bare := entry.NewStream(labels("app", labelValue, "stream", "stderr"), nil, "")
		b := batchOf(line{s, t1, line1}, line{bare, t2, line2}, line{s, t2, line2 + line1})
		for _, tc := range []struct {
			format Format
			gzip   bool
		}{{FormatProtobuf, false}, {FormatJSON, false}, {FormatJSON, true}} {
			got := roundTrip(t, tc.format, tc.gzip, b)
			if want := expected(b, tc.format == FormatJSON); !reflect.DeepEqual(got, want) {
				t.Fatalf("%s gzip=%v:\n got %+v\nwant %+v", tc.format, tc.gzip, got, want)
			}
		}
	})
}

func FuzzParseLabels(f *testing.F) {
	f.Add(`{a="b", c="d"}`)
	f.Add("{a=`raw`,b=\"\\u00e9\"}")
	f.Add(`{}`)
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLabels(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "loki: parse labels") {
				t.Fatalf("error %q lacks the prefix", err)
			}
			return
		}
		again, err := ParseLabels(l.String())
		if err != nil || !reflect.DeepEqual(again, l) {
			t.Fatalf("ParseLabels(%q) = %v; its String %s parses as %v, %v", s, l, l.String(), again, err)
		}
	})
}

func FuzzAppendJSONString(f *testing.F) {
	f.Add("plain")
	f.Add("\x00\"\\\u2028\xff")
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := string(jsonenc.AppendString(nil, s)), stdJSON(t, s); got != want {
			t.Fatalf("jsonenc.AppendString(%q) = %s, encoding/json gives %s", s, got, want)
		}
	})
}
