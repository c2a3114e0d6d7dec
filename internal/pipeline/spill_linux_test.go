package pipeline

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wharf-logs/wharf/internal/diskfull"
	"github.com/wharf-logs/wharf/internal/entry"
	"github.com/wharf-logs/wharf/internal/sink"
)

// TestUnwritableQueueDoesNotHoldTheSourceBack: entries were queued while the
// sink was down, then the queue's disk filled up (a tmpfs: root only). Once the sink
// is back and has taken what was queued, new entries go through memory: the
// source is held back only while the queue still has entries to send, and
// every entry arrives once, in order.
func TestUnwritableQueueDoesNotHoldTheSourceBack(t *testing.T) {
	f := newFake()
	var down atomic.Bool
	down.Store(true)
	f.fail = func(int, *entry.Batch) error {
		if down.Load() {
			return sink.Retryable(errors.New("connection refused"), 0)
		}
		return nil
	}
	out := testOutput(f, 8<<10)
	dir := diskfull.Tmpfs(t, "2m")
	out.Queue = openQueue(t, dir)
	p, err := New([]Output{out}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	wait := run(t, p)
	ss := streams(3)
	submit := func(ctx context.Context, from, to int) error {
		line := make([]byte, 100)
		for i := from; i < to; i += 10 {
			var chunk []entry.Entry
			for j := i; j < min(i+10, to); j++ {
				for _, s := range ss {
					chunk = append(chunk, entry.Entry{Time: int64(j + 1), Line: line, Stream: s})
				}
			}
			if err := p.Submit(ctx, chunk); err != nil {
				return err
			}
		}
		return nil
	}
	if err := submit(t.Context(), 0, 1000); err != nil {
		t.Fatal(err)
	}
	if out.Queue.Bytes() == 0 {
		t.Fatal("nothing was queued while the sink was down")
	}
	diskfull.Fill(t, dir) // every append to the queue fails from now on
	down.Store(false)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	began := time.Now()
	if err := submit(ctx, 1000, 2000); err != nil {
		t.Fatalf("submitting after the sink came back, with the queue unwritable: %v after %v", err, time.Since(began).Round(time.Millisecond))
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range ss {
		got := f.got[s.Key]
		if len(got) != 2000 {
			t.Fatalf("%s: %d entries delivered, want 2000", s.Key, len(got))
		}
		for i, tm := range got {
			if tm != int64(i+1) {
				t.Fatalf("%s: entry %d has time %d: out of order", s.Key, i, tm)
			}
		}
	}
}
