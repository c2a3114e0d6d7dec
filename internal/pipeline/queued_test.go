package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wharf-logs/wharf/internal/entry"
	"github.com/wharf-logs/wharf/internal/entrytest"
	"github.com/wharf-logs/wharf/internal/queue"
	"github.com/wharf-logs/wharf/internal/sink"
)

func openQueue(t *testing.T, dir string) *queue.Queue {
	t.Helper()
	q, err := queue.Open(dir, queue.Options{MaxBytes: 64 << 20, SyncInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// TestSpillKeepsSourcesReadingThroughAnOutage: with the sink down and a tiny
// memory buffer, Submit keeps accepting (entries go to the disk queue and
// are confirmed to their source once fsynced); when the sink recovers every
// entry arrives once, in order per stream, and the output returns to memory.
func TestSpillKeepsSourcesReadingThroughAnOutage(t *testing.T) {
	for _, shards := range []int{1, 3} {
		t.Run(fmt.Sprint("shards=", shards), func(t *testing.T) {
			f := newFake()
			f.shards = shards
			var down atomic.Bool
			down.Store(true)
			f.fail = func(int, *entry.Batch) error {
				if down.Load() {
					return sink.Retryable(errors.New("connection refused"), 0)
				}
				return nil
			}
			out := testOutput(f, 8<<10)
			out.Queue = openQueue(t, t.TempDir())
			p, err := New([]Output{out}, Deps{})
			if err != nil {
				t.Fatal(err)
			}
			wait := run(t, p)
			ss := streams(5)
			var acks []*entrytest.Ack
			// 5 streams x 2,000 entries of 100 bytes: 1 MB, far over 8 KiB.
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			produce(t, ctx, p, ss, 2000, &acks)
			deadline := time.Now().Add(10 * time.Second)
			for _, a := range acks[len(acks)/2:] {
				for !a.Resolved() {
					if time.Now().After(deadline) {
						t.Fatal("queued entries not confirmed to their source while the sink is down")
					}
					time.Sleep(time.Millisecond)
				}
			}
			if out.Queue.Bytes() == 0 {
				t.Fatal("nothing in the disk queue")
			}
			down.Store(false)
			// Close leaves the disk queue for the next start, so wait for
			// the replay to finish first.
			deadline = time.Now().Add(20 * time.Second)
			for !out.Queue.Empty() || p.BufferedBytes() > 0 {
				if time.Now().After(deadline) {
					t.Fatal("queue not replayed after the sink recovered")
				}
				time.Sleep(5 * time.Millisecond)
			}
			if err := wait(); err != nil {
				t.Fatal(err)
			}
			wantInOrder(t, f, ss, 2000)
		})
	}
}

// TestQueueLeftByAPreviousRunGoesFirst closes a pipeline with entries still
// queued and opens a new one on the same queue: the old entries are sent
// before anything submitted later, and none is lost.
func TestQueueLeftByAPreviousRunGoesFirst(t *testing.T) {
	dir := t.TempDir()
	ss := streams(2)
	{
		f := newFake()
		f.fail = func(int, *entry.Batch) error { return sink.Retryable(errors.New("down"), 0) }
		out := testOutput(f, 4<<10)
		out.Queue = openQueue(t, dir)
		p, _ := New([]Output{out}, Deps{})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		produce(t, ctx, p, ss, 500, nil)
		time.Sleep(100 * time.Millisecond) // group commit
		p.Close()
		cancel() // the sink never recovers: abandon what is in memory
		<-done
	}
	f := newFake()
	out := testOutput(f, 4<<10)
	out.Queue = openQueue(t, dir)
	if out.Queue.Empty() {
		t.Fatal("the first run left nothing queued")
	}
	p, _ := New([]Output{out}, Deps{})
	wait := run(t, p)
	// New entries, later in time, for the same streams.
	line := make([]byte, 100)
	for _, s := range ss {
		if err := p.Submit(t.Context(), []entry.Entry{{Time: 1000, Line: line, Stream: s}}); err != nil {
			t.Fatal(err)
		}
	}
	// Close leaves the disk queue for the next start, so wait for delivery.
	deadline := time.Now().Add(10 * time.Second)
	for !out.Queue.Empty() || p.BufferedBytes() > 0 {
		if time.Now().After(deadline) {
			t.Fatal("queue not replayed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range ss {
		got := f.got[s.Key]
		if len(got) < 2 || got[len(got)-1] != 1000 {
			t.Fatalf("%s: the new entry is not last: %v", s.Key, got[max(0, len(got)-3):])
		}
		for i := 1; i < len(got); i++ {
			if got[i] < got[i-1] {
				t.Fatalf("%s: time %d after %d: queued entries not sent first", s.Key, got[i], got[i-1])
			}
		}
	}
}
