package filesink

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/wharf-logs/wharf/internal/entry"
)

// record is the NDJSON record as a reader parses it.
type record struct {
	Time     string            `json:"time"`
	TS       int64             `json:"ts"`
	Stream   string            `json:"stream"`
	Labels   map[string]string `json:"labels"`
	Metadata map[string]string `json:"metadata"`
	Line     string            `json:"line"`
	// Dead-letter fields.
	Sink   string `json:"sink"`
	Reason string `json:"reason"`
	Error  string `json:"error"`
}

// parseRecord decodes one record strictly: one JSON object, no unknown
// field, a single trailing newline.
func parseRecord(t *testing.T, b []byte) record {
	t.Helper()
	if !bytes.HasSuffix(b, []byte("\n")) || bytes.Count(b, []byte("\n")) != 1 {
		t.Fatalf("record is not one line: %q", b)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var r record
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("record %q: %v", b, err)
	}
	if dec.More() {
		t.Fatalf("record %q: more than one value", b)
	}
	return r
}

func stream(origin string, labels, meta entry.Labels) *entry.Stream {
	return entry.NewStream(labels, meta, origin)
}

var webStream = stream("web",
	entry.Labels{{Name: "container", Value: "web"}, {Name: "host", Value: "node-1"}, {Name: "stream", Value: "stderr"}},
	entry.Labels{{Name: "container_id", Value: "abc123"}, {Name: "image", Value: "nginx:1.27"}})

func TestAppendRecord(t *testing.T) {
	for _, tc := range []struct {
		name     string
		time     int64
		wantTime string
		line     string
		wantLine string
	}{
		{"nanoseconds kept", time.Date(2026, 11, 26, 23, 29, 16, 123456789, time.UTC).UnixNano(), "2026-11-26T23:29:16.123456789Z", "hello", "hello"},
		{"whole second keeps nine digits", time.Date(2026, 11, 26, 23, 29, 16, 0, time.UTC).UnixNano(), "2026-11-26T23:29:16.000000000Z", "x", "x"},
		{"one nanosecond", time.Date(2026, 1, 2, 3, 4, 5, 1, time.UTC).UnixNano(), "2026-01-02T03:04:05.000000001Z", "x", "x"},
		{"escapes", 1, "1970-01-01T00:00:00.000000001Z", "a \"quote\" \\ back\ttab\nnl\r\x01\x1f", "a \"quote\" \\ back\ttab\nnl\r\x01\x1f"},
		{"invalid UTF-8", 1, "1970-01-01T00:00:00.000000001Z", "bad \xff\xfe byte", "bad \ufffd\ufffd byte"},
		{"unicode kept", 1, "1970-01-01T00:00:00.000000001Z", "ünïcödé ✓ 😀 \u2028", "ünïcödé ✓ 😀 \u2028"},
		{"empty line", 1, "1970-01-01T00:00:00.000000001Z", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := entry.Entry{Time: tc.time, Line: []byte(tc.line), Stream: webStream}
			b := AppendRecord([]byte("prefix"), &e)
			if !bytes.HasPrefix(b, []byte(`prefix{"time":"`)) {
				t.Fatalf("record does not append, or does not start with time: %q", b)
			}
			r := parseRecord(t, b[len("prefix"):])
			if r.Time != tc.wantTime || r.TS != tc.time {
				t.Errorf("time %q ts %d, want %q %d", r.Time, r.TS, tc.wantTime, tc.time)
			}
			if r.Line != tc.wantLine {
				t.Errorf("line %q, want %q", r.Line, tc.wantLine)
			}
			if r.Stream != "stderr" {
				t.Errorf("stream %q, want stderr", r.Stream)
			}
			if len(r.Labels) != 3 || r.Labels["container"] != "web" || r.Labels["host"] != "node-1" || r.Labels["stream"] != "stderr" {
				t.Errorf("labels %v", r.Labels)
			}
			if len(r.Metadata) != 2 || r.Metadata["container_id"] != "abc123" || r.Metadata["image"] != "nginx:1.27" {
				t.Errorf("metadata %v", r.Metadata)
			}
		})
	}
}

func TestAppendRecordOptionalFields(t *testing.T) {
	s := stream("/var/log/app.log", entry.Labels{{Name: "job", Value: `we"ird`}}, nil)
	e := entry.Entry{Time: 5, Line: []byte("l"), Stream: s}
	b := AppendRecord(nil, &e)
	r := parseRecord(t, b)
	if r.Stream != "" || bytes.Contains(b, []byte(`"stream"`)) {
		t.Errorf("stream field without a stream label: %q", b)
	}
	if bytes.Contains(b, []byte(`"metadata"`)) {
		t.Errorf("metadata field without metadata: %q", b)
	}
	if r.Labels["job"] != `we"ird` {
		t.Errorf("labels %v", r.Labels)
	}

	// Extra fields come before the line, escaped; an odd one out is ignored.
	b = AppendRecord(nil, &e, "sink", "loki", "error", "400 \"bad\"\n", "dangling")
	r = parseRecord(t, b)
	if r.Sink != "loki" || r.Error != "400 \"bad\"\n" || r.Line != "l" {
		t.Errorf("extra fields: %+v", r)
	}
	if strings.Contains(string(b), "dangling") {
		t.Errorf("a name without value was written: %q", b)
	}
	if i, j := bytes.Index(b, []byte(`"error"`)), bytes.Index(b, []byte(`"line"`)); i > j {
		t.Errorf("extra fields after the line: %q", b)
	}
}

// Records sort as strings in time order, which is why the time has a fixed
// width.
func TestAppendRecordSortsByTime(t *testing.T) {
	times := []int64{
		time.Date(2026, 11, 26, 23, 29, 16, 0, time.UTC).UnixNano(),
		time.Date(2026, 11, 26, 23, 29, 16, 9, time.UTC).UnixNano(),
		time.Date(2026, 11, 26, 23, 29, 16, 100000000, time.UTC).UnixNano(),
		time.Date(2026, 11, 26, 23, 29, 17, 0, time.UTC).UnixNano(),
	}
	var prev string
	for _, ts := range times {
		e := entry.Entry{Time: ts, Line: []byte("x"), Stream: webStream}
		cur := parseRecord(t, AppendRecord(nil, &e)).Time
		if prev != "" && cur <= prev {
			t.Errorf("%q sorts before %q", cur, prev)
		}
		prev = cur
	}
}
