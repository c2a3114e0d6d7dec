package queue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/wharf-logs/wharf/internal/entry"
)

const seedMagic = 0x5eed1e55

// seedSegments are segment files of the kinds a disk may hold: whole, torn,
// corrupt, empty, from a newer format.
func seedSegments() [][]byte {
	whole := appendSegHeader(nil, seedMagic)
	for _, p := range []string{"one", "", "three", "a longer record with more bytes in it"} {
		whole = appendFrame(whole, seedMagic, []byte(p))
	}
	corrupt := bytes.Clone(whole)
	corrupt[segHeaderLen+frameLen+5] ^= 1
	badHeader := bytes.Clone(whole)
	badHeader[13] ^= 1
	newer := bytes.Clone(whole)
	newer[4] = 2
	lying := appendSegHeader(nil, seedMagic)
	lying = le.AppendUint32(lying, seedMagic)
	lying = le.AppendUint32(lying, 1<<31)
	lying = le.AppendUint32(lying, 0)
	return [][]byte{
		whole,
		whole[:len(whole)-3],
		whole[:segHeaderLen],
		whole[:7],
		corrupt,
		badHeader,
		newer,
		lying,
		{},
	}
}

// FuzzRecordReader reads arbitrary bytes as a segment file: records come
// back within bounds, the reader always makes progress, and it never
// panics.
func FuzzRecordReader(f *testing.F) {
	for _, s := range seedSegments() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const maxRec = 1 << 16
		magic, st := parseSegHeader(data)
		if st != headerOK {
			magic = seedMagic
		}
		rr := recordReader{r: bytes.NewReader(data), magic: magic, maxRec: maxRec}
		// Claim a little more than the file holds, as metadata of a file
		// truncated behind the queue's back would.
		end := int64(len(data)) + 5
		for p := int64(segHeaderLen); p < end; {
			payload, start, stop, found, err := rr.next(p, end, nil)
			if err != nil {
				t.Fatal(err)
			}
			if start < p || stop > end || stop <= p {
				t.Fatalf("next(%d, %d) = [%d, %d)", p, end, start, stop)
			}
			if found && (stop != start+frameLen+int64(len(payload)) || len(payload) > maxRec || stop > int64(len(data))) {
				t.Fatalf("record [%d, %d) of %d bytes in a %d-byte file", start, stop, len(payload), len(data))
			}
			if !found && (start != end || stop != end) {
				t.Fatalf("no record but [%d, %d)", start, stop)
			}
			p = stop
		}
	})
}

// FuzzOpenSegment opens a queue directory holding one arbitrary segment
// file: Open recovers instead of failing, the records it reads are the same
// after a reopen, and the queue keeps working.
func FuzzOpenSegment(f *testing.F) {
	for _, s := range seedSegments() {
		f.Add(s)
	}
	opts := Options{MaxBytes: 1 << 20, MaxRecordBytes: 1 << 16, SyncInterval: time.Hour}
	readAll := func(t *testing.T, q *Queue, limit int) [][]byte {
		var out [][]byte
		for {
			p, _, err := q.next(context.Background(), false)
			if errors.Is(err, errEmpty) {
				return out
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(p) > limit {
				t.Fatalf("%d-byte record from a %d-byte file", len(p), limit)
			}
			out = append(out, p)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, segName(0)), data, 0o640); err != nil {
			t.Fatal(err)
		}
		q, err := Open(dir, opts)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		first := readAll(t, q, len(data))
		if err := q.Append(t.Context(), []byte("after"), nil); err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, q, 5); len(got) != 1 || string(got[0]) != "after" {
			t.Fatalf("appended record read back as %q", got)
		}
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}
		q, err = Open(dir, opts)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		defer q.Close()
		again := readAll(t, q, max(len(data), 5))
		if want := append(first, []byte("after")); !slices.EqualFunc(again, want, bytes.Equal) {
			t.Fatalf("after reopening read %q, want %q", again, want)
		}
	})
}

func seedPayloads() [][]byte {
	web := entry.NewStream(entry.Labels{{Name: "container", Value: "web"}}, entry.Labels{{Name: "container_id", Value: "abc"}}, "web")
	db := entry.NewStream(entry.Labels{{Name: "container", Value: "db"}, {Name: "stream", Value: "stderr"}}, nil, "")
	two := AppendEntries(nil, []entry.Entry{
		{Time: 1_795_734_000_000_000_001, Line: []byte("hello"), Stream: web},
		{Time: 1_795_734_000_000_000_000, Line: []byte{}, Stream: db},
		{Time: 1_795_734_000_000_000_002, Line: []byte("world"), Stream: web},
	})
	return [][]byte{
		two,
		two[:len(two)/2],
		AppendEntries(nil, nil),
		{payloadVersion, 1, 0, 0, 0, 1, 0, 0, 0},
		{payloadVersion, 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
	}
}

// FuzzDecode decodes arbitrary payloads: an error or entries, never a panic,
// and entries that survive encoding again.
func FuzzDecode(f *testing.F) {
	for _, p := range seedPayloads() {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		var d Decoder
		entries, err := d.Decode(payload)
		if err != nil {
			return
		}
		if len(entries) > len(payload)/minEntryLen {
			t.Fatalf("%d entries from %d bytes", len(entries), len(payload))
		}
		again, err := d.Decode(AppendEntries(nil, entries))
		if err != nil {
			t.Fatalf("re-encoded entries: %v", err)
		}
		if len(again) != len(entries) {
			t.Fatalf("%d entries after re-encoding, want %d", len(again), len(entries))
		}
		for i := range entries {
			a, b := entries[i], again[i]
			// Streams are compared by contents: a payload may spell a varint
			// in more bytes than needed, so its streams' encoded forms, and
			// the pointers interned by them, can differ from a re-encoding's.
			if a.Time != b.Time || !bytes.Equal(a.Line, b.Line) || a.Stream.Key != b.Stream.Key ||
				a.Stream.Origin != b.Stream.Origin || fmt.Sprint(a.Stream.Metadata) != fmt.Sprint(b.Stream.Metadata) {
				t.Fatalf("entry %d changed by re-encoding", i)
			}
		}
	})
}
