package spill

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/wharf-logs/wharf/internal/entry"
	"github.com/wharf-logs/wharf/internal/entrytest"
	"github.com/wharf-logs/wharf/internal/queue"
	"github.com/wharf-logs/wharf/internal/ratelog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeMemory takes every push at once and, with deliver set, confirms the
// entries as a sink would.
type fakeMemory struct {
	room    atomic.Bool
	deliver atomic.Bool

	mu  sync.Mutex
	got []int64 // entry times, in push order
}

func (f *fakeMemory) Push(ctx context.Context, entries []entry.Entry) error {
	f.mu.Lock()
	for _, e := range entries {
		f.got = append(f.got, e.Time)
	}
	f.mu.Unlock()
	if f.deliver.Load() {
		entry.AckEntries(entries)
	}
	return nil
}

func (f *fakeMemory) WaitRoom(ctx context.Context, wait time.Duration) bool { return f.room.Load() }

func (f *fakeMemory) times() []int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int64(nil), f.got...)
}

func openQueue(t *testing.T, dir string) *queue.Queue {
	t.Helper()
	q, err := queue.Open(dir, queue.Options{MaxBytes: 64 << 20, SyncInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func newSpool(q *queue.Queue, mem Memory) *Spool {
	log := slog.New(slog.DiscardHandler)
	return New(Config{Name: "test", Queue: q, After: -1}, Deps{
		Memory:      mem,
		Logger:      log,
		Metrics:     NewMetrics(),
		Dropped:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dropped"}, []string{"reason"}),
		QueueErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "queue_errors"}, []string{"kind"}),
		Warn:        ratelog.New(log, time.Second),
	})
}

// start runs s until the returned stop is called, as the pipeline does: the
// replay stops first, then the group commits.
func start(t *testing.T, s *Spool) (stop func()) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	return func() { s.Stop(); cancel(); <-done }
}

var stream = entry.NewStream(entry.Labels{{Name: "a", Value: "b"}}, nil, "test")

// submit submits entries with times from..to-1, one Ack for all, and
// returns the Ack after releasing the caller's hold.
func submit(t *testing.T, s *Spool, from, to int64) *entrytest.Ack {
	t.Helper()
	ack := entrytest.NewAck()
	var es []entry.Entry
	for i := from; i < to; i++ {
		es = append(es, entry.Entry{Time: i, Line: []byte("line"), Stream: stream, Ack: ack.Ack})
	}
	ack.Add(len(es))
	if err := s.Submit(t.Context(), es); err != nil {
		t.Fatal(err)
	}
	ack.Done(1)
	return ack
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(what)
		}
		time.Sleep(time.Millisecond)
	}
}

func wantTimes(t *testing.T, got []int64, n int64) {
	t.Helper()
	if int64(len(got)) != n {
		t.Fatalf("memory got %d entries, want %d", len(got), n)
	}
	for i, v := range got {
		if v != int64(i) {
			t.Fatalf("entry %d has time %d: out of order", i, v)
		}
	}
}

// TestSpillsWhileMemoryIsFullAndReplaysInOrder: with no room in memory,
// submissions go to the queue and are confirmed once fsynced; the replayer
// pushes them to memory in order; once it has caught up, submissions go to
// memory again, after everything queued.
func TestSpillsWhileMemoryIsFullAndReplaysInOrder(t *testing.T) {
	q := openQueue(t, t.TempDir())
	mem := &fakeMemory{}
	s := newSpool(q, mem)
	stop := start(t, s)
	defer stop()

	ack := submit(t, s, 0, 100)
	waitFor(t, "queued entries not confirmed once fsynced", func() bool { return ack.Resolved() })
	waitFor(t, "queued entries not replayed to memory", func() bool { return len(mem.times()) == 100 })
	if q.Bytes() == 0 {
		t.Fatal("the record was committed before memory confirmed its entries")
	}

	mem.room.Store(true)
	mem.deliver.Store(true)
	ack = submit(t, s, 100, 200)
	if !ack.Resolved() {
		t.Fatal("entries pushed to memory were not confirmed by it")
	}
	wantTimes(t, mem.times(), 200)
	if n := q.Stats().Appends; n != 1 {
		t.Fatalf("%d records appended, want 1: the second submission should have gone to memory", n)
	}
	m := s.deps.Metrics
	if w, r := testutil.ToFloat64(m.EntriesWritten.WithLabelValues("test")), testutil.ToFloat64(m.EntriesReplayed.WithLabelValues("test")); w != 100 || r != 100 {
		t.Errorf("entries written to the queue %v, replayed %v; want 100 each", w, r)
	}
}

// TestQueueLeftByAPreviousRunGoesFirst: a queue that is not empty at New
// is replayed before anything submitted, even with room in memory, and its
// records are committed once memory confirms them.
func TestQueueLeftByAPreviousRunGoesFirst(t *testing.T) {
	dir := t.TempDir()
	{
		q := openQueue(t, dir)
		s := newSpool(q, &fakeMemory{})
		stop := start(t, s)
		submit(t, s, 0, 50) // memory never confirms them: they stay queued
		stop()
	}
	q := openQueue(t, dir)
	if q.Empty() {
		t.Fatal("the first run left nothing queued")
	}
	mem := &fakeMemory{}
	mem.room.Store(true)
	mem.deliver.Store(true)
	s := newSpool(q, mem)
	stop := start(t, s)
	submit(t, s, 50, 60)
	waitFor(t, "queue not replayed", func() bool { return len(mem.times()) >= 60 })
	stop()
	wantTimes(t, mem.times(), 60)

	q = openQueue(t, dir)
	defer q.Close()
	if !q.Empty() {
		t.Fatal("records confirmed by memory were not committed")
	}
}

func TestSubmitAfterRunFails(t *testing.T) {
	q := openQueue(t, t.TempDir())
	s := newSpool(q, &fakeMemory{})
	stop := start(t, s)
	stop()
	err := s.Submit(t.Context(), []entry.Entry{{Line: []byte("x"), Stream: stream}})
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("submit after Run returned: %v, want ErrClosed", err)
	}
}
