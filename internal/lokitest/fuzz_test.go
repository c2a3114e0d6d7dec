package lokitest

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/klauspost/compress/s2"

	"github.com/wharf-logs/wharf/internal/entry"
	"github.com/wharf-logs/wharf/internal/loki"
)

// Seeds beyond those added here live in testdata/fuzz/<FuzzName>.

// line is one entry of a batch: its stream, time and text.
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

func seedBatch() *entry.Batch {
	s := entry.NewStream(labels("app", "web", "host", "h1"), labels("container_id", "c1", "image", "nginx"), "web")
	d := entry.NewStream(labels("app", "db"), nil, "db")
	return batchOf(line{s, 1_700_000_000_123_456_789, "GET / 200"}, line{s, -1, "\xff\u2028"}, line{d, 0, ""})
}

// FuzzDecodePushProtobuf feeds uncompressed protobuf to the decoder through a
// valid snappy block, so the fuzzer explores the protobuf parser rather than
// snappy's checks.
func FuzzDecodePushProtobuf(f *testing.F) {
	f.Add(loki.AppendProtobuf(nil, seedBatch()))
	f.Add([]byte{0x0a, 0x00})
	f.Add([]byte{0x0a, 0x04, 0x12, 0x02, 0x0a, 0x00})
	f.Fuzz(func(t *testing.T, raw []byte) {
		streams, err := DecodePush(s2.EncodeSnappy(nil, raw), loki.ContentTypeProtobuf, "")
		if err != nil {
			return
		}
		// What decodes must survive our own encoding unchanged.
		for _, s := range streams {
			for _, e := range s.Entries {
				st := entry.NewStream(nil, e.Metadata, "")
				st.Key = s.Labels
				b := batchOf(line{st, e.Time, e.Line})
				again, err := DecodePush(s2.EncodeSnappy(nil, loki.AppendProtobuf(nil, b)), loki.ContentTypeProtobuf, "")
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
	f.Add(string(loki.AppendJSON(nil, seedBatch())))
	f.Add(`{"streams":[{"stream":{"a":"b"},"values":[["1","x",{"k":"v"}]]}]}`)
	f.Add(`{"streams":[{"stream":{},"values":[]}],"x":[1,{"y":null}]}`)
	f.Add(`{"streams":[{"stream":{"a":"\ud800"},"values":[["-9223372036854775808","\u0000"]]}]}`)
	f.Fuzz(func(t *testing.T, body string) {
		streams, err := DecodePush([]byte(body), loki.ContentTypeJSON, "")
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
				again, err := DecodePush(loki.AppendJSON(nil, b), loki.ContentTypeJSON, "")
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
	enc, _ := loki.NewEncoder(loki.FormatProtobuf, false)
	f.Add(append([]byte(nil), enc.Encode(seedBatch()).Body...), uint8(0))
	enc, _ = loki.NewEncoder(loki.FormatJSON, true)
	f.Add(append([]byte(nil), enc.Encode(seedBatch()).Body...), uint8(3))
	f.Add([]byte("\xff\xff\xff\xff\x0f"), uint8(0))
	f.Fuzz(func(t *testing.T, body []byte, kind uint8) {
		ctype := []string{loki.ContentTypeProtobuf, loki.ContentTypeJSON}[kind%2]
		encoding := []string{"", loki.EncodingGzip}[kind/2%2]
		_, _ = DecodePush(body, ctype, encoding)
	})
}

func FuzzParseLabels(f *testing.F) {
	f.Add(`{a="b", c="d"}`)
	f.Add("{a=`raw`,b=\"\\u00e9\"}")
	f.Add(`{}`)
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLabels(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "lokitest: parse labels") {
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
