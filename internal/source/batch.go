package source

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wharf-logs/wharf/internal/entry"
)

// Hand-off limits: a reader hands its entries over when it holds this many,
// or this many bytes of lines, or sooner when no more input is waiting.
const (
	handOffEntries = 1024
	handOffBytes   = 512 << 10
)

// Batch is what one reader holds between two hand-offs to its Submitter:
// the entries read since the last one, counted as read when they are handed
// over. It belongs to the reader's goroutine.
type Batch struct {
	out Submitter
	// The source's counters, looked up once.
	entriesRead, bytesRead, linesTruncated prometheus.Counter

	held      []entry.Entry // nil after a hand-off, until the next Add
	hint      int           // the length of the last batch handed off
	bytes     int           // of the lines held
	truncated int           // lines held that were cut
}

// NewBatch returns a Batch handing over to out and counting in m under the
// source label given (docker_api, docker_file, file).
func NewBatch(out Submitter, m *Metrics, source string) *Batch {
	return &Batch{
		out:            out,
		entriesRead:    m.EntriesRead.WithLabelValues(source),
		bytesRead:      m.BytesRead.WithLabelValues(source),
		linesTruncated: m.LinesTruncated.WithLabelValues(source),
	}
}

// Add holds e, whose line must not change afterwards; truncated says the
// line was cut. It reports whether the batch is full and should be handed
// over now.
func (b *Batch) Add(e entry.Entry, truncated bool) (full bool) {
	if b.held == nil {
		b.held = make([]entry.Entry, 0, max(b.hint, 1))
	}
	b.held = append(b.held, e)
	b.bytes += len(e.Line)
	if truncated {
		b.truncated++
	}
	return len(b.held) >= handOffEntries || b.bytes >= handOffBytes
}

// Len is the number of entries held.
func (b *Batch) Len() int { return len(b.held) }

// HandOff submits the entries held, each with ack (nil for none), counts
// them as read, and releases the caller's hold on ack once Submit has
// returned, so ack resolves only when every entry is confirmed. The
// Submitter owns the entries from then on; the batch holds none until the
// next Add, which allocates for as many as the last batch had, so that a
// reader waiting for input holds no slice.
func (b *Batch) HandOff(ctx context.Context, ack *entry.Ack) error {
	if ack != nil {
		defer ack.Done(1)
	}
	if len(b.held) == 0 {
		return nil
	}
	b.entriesRead.Add(float64(len(b.held)))
	b.bytesRead.Add(float64(b.bytes))
	if b.truncated > 0 {
		b.linesTruncated.Add(float64(b.truncated))
	}
	for i := range b.held {
		b.held[i].Ack = ack
	}
	err := b.out.Submit(ctx, b.held)
	b.hint, b.held = len(b.held), nil
	b.bytes, b.truncated = 0, 0
	return err
}
