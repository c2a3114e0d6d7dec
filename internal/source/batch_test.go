package source

import (
	"context"
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharf-logs/wharf/internal/entry"
	"github.com/wharf-logs/wharf/internal/entrytest"
)

// submitter records what it is handed and fails when told to.
type submitter struct {
	got  [][]entry.Entry
	fail error
}

func (s *submitter) Submit(_ context.Context, entries []entry.Entry) error {
	s.got = append(s.got, entries)
	// As the pipeline does: one confirmation per entry, released later.
	for i := range entries {
		if a := entries[i].Ack; a != nil {
			a.Add(1)
		}
	}
	return s.fail
}

func TestBatchFullAtEntriesOrBytes(t *testing.T) {
	b := NewBatch(&submitter{}, NewMetrics(), "file")
	st := entry.NewStream(nil, nil, "x")
	for i := 1; i <= handOffEntries; i++ {
		if full := b.Add(entry.Entry{Line: []byte("a"), Stream: st}, false); full != (i == handOffEntries) {
			t.Fatalf("entry %d: full %v", i, full)
		}
	}
	b = NewBatch(&submitter{}, NewMetrics(), "file")
	big := make([]byte, handOffBytes/2)
	if b.Add(entry.Entry{Line: big, Stream: st}, false) {
		t.Fatal("full after half the bytes")
	}
	if !b.Add(entry.Entry{Line: big, Stream: st}, false) {
		t.Fatal("not full at the byte limit")
	}
}

// TestBatchHandOff: the entries go over with the ack, are counted as read
// once, and the ack resolves only when the Submitter's confirmations are in.
func TestBatchHandOff(t *testing.T) {
	m := NewMetrics()
	out := &submitter{}
	b := NewBatch(out, m, "docker_file")
	st := entry.NewStream(nil, nil, "x")
	b.Add(entry.Entry{Line: []byte("one"), Stream: st}, true)
	b.Add(entry.Entry{Line: []byte("three"), Stream: st}, false)
	ack := entrytest.NewAck()
	if err := b.HandOff(t.Context(), ack.Ack); err != nil {
		t.Fatal(err)
	}
	if len(out.got) != 1 || len(out.got[0]) != 2 || out.got[0][0].Ack != ack.Ack || out.got[0][1].Ack != ack.Ack {
		t.Fatalf("handed %v", out.got)
	}
	if b.Len() != 0 {
		t.Fatalf("still holds %d", b.Len())
	}
	if ack.Resolved() {
		t.Fatal("resolved before the Submitter confirmed the entries")
	}
	entry.AckEntries(out.got[0])
	if !ack.Resolved() {
		t.Fatal("not resolved once every entry was confirmed")
	}
	for name, c := range map[string]float64{
		"entries":   testutil.ToFloat64(m.EntriesRead.WithLabelValues("docker_file")),
		"bytes":     testutil.ToFloat64(m.BytesRead.WithLabelValues("docker_file")),
		"truncated": testutil.ToFloat64(m.LinesTruncated.WithLabelValues("docker_file")),
	} {
		if want := map[string]float64{"entries": 2, "bytes": 8, "truncated": 1}[name]; c != want {
			t.Errorf("%s read: %v, want %v", name, c, want)
		}
	}

	// An empty hand-off only releases the hold; a failed one is returned.
	empty := entrytest.NewAck()
	if err := b.HandOff(t.Context(), empty.Ack); err != nil || !empty.Resolved() {
		t.Fatalf("empty hand-off: %v, resolved %v (the caller's hold must be released)", err, empty.Resolved())
	}
	out.fail = errors.New("closed")
	b.Add(entry.Entry{Line: []byte("x"), Stream: st}, false)
	if err := b.HandOff(t.Context(), nil); err == nil {
		t.Fatal("the Submitter's error was lost")
	}
}
