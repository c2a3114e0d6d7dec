package pipeline

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wharf-logs/wharf/internal/diskfulltest"
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
	dir := diskfulltest.Tmpfs(t, "2m")
	out.Queue = openQueue(t, dir)
	p, err := New([]Output{out}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	wait := run(t, p)
	ss := streams(3)
	if err := submitRange(t.Context(), p, ss, 0, 1000, nil); err != nil {
		t.Fatal(err)
	}
	if out.Queue.Bytes() == 0 {
		t.Fatal("nothing was queued while the sink was down")
	}
	diskfulltest.Fill(t, dir) // every append to the queue fails from now on
	down.Store(false)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	began := time.Now()
	if err := submitRange(ctx, p, ss, 1000, 2000, nil); err != nil {
		t.Fatalf("submitting after the sink came back, with the queue unwritable: %v after %v", err, time.Since(began).Round(time.Millisecond))
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	wantInOrder(t, f, ss, 2000)
}
