package queue

import (
	"bytes"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/wharf-logs/wharf/internal/entry"
)

func containerStream(name, stream string) *entry.Stream {
	return entry.NewStream(
		entry.Labels{{Name: "container", Value: name}, {Name: "stream", Value: stream}},
		entry.Labels{{Name: "container_id", Value: "id-" + name}},
		name)
}

// equalEntries compares entries by value, streams by their contents.
func equalEntries(t *testing.T, got, want []entry.Entry) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Time != w.Time || !bytes.Equal(g.Line, w.Line) || g.Ack != nil {
			t.Fatalf("entry %d: time %d line %d bytes ack %v, want time %d line %d bytes", i, g.Time, len(g.Line), g.Ack, w.Time, len(w.Line))
		}
		gs, ws := g.Stream, w.Stream
		if gs.Key != ws.Key || gs.Hash != ws.Hash || gs.Origin != ws.Origin ||
			fmt.Sprint(gs.Labels) != fmt.Sprint(ws.Labels) || fmt.Sprint(gs.Metadata) != fmt.Sprint(ws.Metadata) {
			t.Fatalf("entry %d: stream %+v, want %+v", i, gs, ws)
		}
	}
}

func TestCodecRoundTrip(t *testing.T) {
	web, db := containerStream("web", "stdout"), containerStream("db", "stderr")
	bare := entry.NewStream(nil, nil, "")
	// Same labels as web, other metadata: a different stream to the pipeline.
	web2 := entry.NewStream(web.Labels, entry.Labels{{Name: "container_id", Value: "other"}}, "web")
	ack := entry.NewAck(nil)
	var many []entry.Entry
	for i := range 40 {
		many = append(many, entry.Entry{Time: int64(i), Line: []byte{byte(i)}, Stream: containerStream(fmt.Sprint("c", i), "stdout")})
	}
	for _, tc := range []struct {
		name    string
		entries []entry.Entry
	}{
		{"none", nil},
		{"one", []entry.Entry{{Time: 1_795_734_000_123_456_789, Line: []byte("hello"), Stream: web, Ack: ack}}},
		{"runs and interleaving", []entry.Entry{
			{Time: 10, Line: []byte("a"), Stream: web},
			{Time: 11, Line: []byte("b"), Stream: web},
			{Time: 5, Line: []byte("c"), Stream: db}, // time going back
			{Time: 12, Line: []byte("d"), Stream: web},
			{Time: -1 << 63, Line: []byte("min"), Stream: db},
			{Time: 1<<63 - 1, Line: []byte("max"), Stream: db},
		}},
		{"empty lines", []entry.Entry{{Time: 1, Line: []byte{}, Stream: web}, {Time: 2, Line: nil, Stream: web}}},
		{"1 MiB line", []entry.Entry{{Time: 1, Line: bytes.Repeat([]byte("z"), 1<<20), Stream: db}, {Time: 2, Line: []byte("after"), Stream: db}}},
		{"no labels", []entry.Entry{{Time: 1, Line: []byte("x"), Stream: bare}}},
		{"same labels, other metadata", []entry.Entry{{Time: 1, Line: []byte("x"), Stream: web}, {Time: 2, Line: []byte("y"), Stream: web2}}},
		{"more streams than the small table", many},
	} {
		t.Run(tc.name, func(t *testing.T) {
			payload := AppendEntries([]byte("prefix"), tc.entries)
			if !bytes.HasPrefix(payload, []byte("prefix")) {
				t.Fatal("AppendEntries did not append")
			}
			var d Decoder
			got, err := d.Decode(payload[len("prefix"):])
			if err != nil {
				t.Fatal(err)
			}
			equalEntries(t, got, tc.entries)
		})
	}
}

func TestDecoderInternsStreamsAcrossPayloads(t *testing.T) {
	web, db := containerStream("web", "stdout"), containerStream("db", "stdout")
	web2 := entry.NewStream(web.Labels, entry.Labels{{Name: "container_id", Value: "other"}}, "web")
	var d Decoder
	a, err := d.Decode(AppendEntries(nil, []entry.Entry{{Line: []byte("1"), Stream: web}, {Line: []byte("2"), Stream: db}, {Line: []byte("3"), Stream: web}}))
	if err != nil {
		t.Fatal(err)
	}
	b, err := d.Decode(AppendEntries(nil, []entry.Entry{{Line: []byte("4"), Stream: db}, {Line: []byte("5"), Stream: web}, {Line: []byte("6"), Stream: web2}}))
	if err != nil {
		t.Fatal(err)
	}
	if a[0].Stream != a[2].Stream || a[0].Stream != b[1].Stream || a[1].Stream != b[0].Stream {
		t.Error("entries of one stream do not share one *Stream")
	}
	if a[0].Stream == a[1].Stream || b[2].Stream == b[1].Stream {
		t.Error("different streams share a *Stream")
	}
}

func TestDecodedLinesDoNotOverlap(t *testing.T) {
	s := containerStream("web", "stdout")
	var d Decoder
	got, err := d.Decode(AppendEntries(nil, []entry.Entry{{Line: []byte("first"), Stream: s}, {Line: []byte("second"), Stream: s}}))
	if err != nil {
		t.Fatal(err)
	}
	_ = append(got[0].Line, "XXXXXXXX"...)
	if string(got[1].Line) != "second" {
		t.Fatalf("appending to one line changed the next: %q", got[1].Line)
	}
}

// Every truncation and every single-byte change of a valid payload decodes
// to an error or to entries, never to a panic.
func TestDecodeCorruptPayloads(t *testing.T) {
	payload := AppendEntries(nil, []entry.Entry{
		{Time: 1, Line: []byte("hello"), Stream: containerStream("web", "stdout")},
		{Time: 2, Line: []byte("world"), Stream: containerStream("db", "stderr")},
	})
	var d Decoder
	for n := range len(payload) {
		if _, err := d.Decode(payload[:n]); err == nil {
			t.Errorf("payload cut at %d of %d bytes decoded without error", n, len(payload))
		} else if !strings.HasPrefix(err.Error(), "queue: ") {
			t.Errorf("error %q lacks the package prefix", err)
		}
	}
	if _, err := d.Decode(append(payload, 0)); err == nil {
		t.Error("trailing byte accepted")
	}
	for i := range payload {
		for _, v := range []byte{0, 0x7f, 0x80, 0xff} {
			b := bytes.Clone(payload)
			b[i] = v
			d.Decode(b)
		}
	}
	b := bytes.Clone(payload)
	b[0] = 9
	if _, err := d.Decode(b); err == nil || !strings.Contains(err.Error(), "version 9") {
		t.Errorf("unknown version: %v", err)
	}
}

func TestDecodeBoundsAllocationByPayload(t *testing.T) {
	// A count claiming 2^62 entries in a few bytes.
	b := []byte{payloadVersion, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40}
	var d Decoder
	if _, err := d.Decode(b); err == nil {
		t.Fatal("absurd entry count accepted")
	}
	// TotalAlloc counts the whole process, so average over many rejections:
	// a runtime or test-framework allocation meanwhile is then noise.
	const runs = 1000
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		d.Decode(b)
	}
	runtime.ReadMemStats(&after)
	if n := (after.TotalAlloc - before.TotalAlloc) / runs; n > 4<<10 {
		t.Errorf("%d bytes allocated on average to reject a lying count", n)
	}
}

func TestNilStreamIsEncodedAsEmpty(t *testing.T) {
	var d Decoder
	got, err := d.Decode(AppendEntries(nil, []entry.Entry{{Time: 3, Line: []byte("x")}}))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Stream == nil || len(got[0].Stream.Labels) != 0 || string(got[0].Line) != "x" {
		t.Fatalf("%+v", got)
	}
}
