package pipeline

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/wharf-logs/wharf/internal/entry"
	"github.com/wharf-logs/wharf/internal/entrytest"
	"github.com/wharf-logs/wharf/internal/sink"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeSink records delivered batches and fails according to its script.
type fakeSink struct {
	shards int
	mu     sync.Mutex
	// fail returns the error for the n-th attempt (from 0), or nil.
	fail     func(n int, b *entry.Batch) error
	attempts int
	inflight map[*entry.Stream]bool
	overlap  bool
	got      map[string][]int64
	batches  int
	block    chan struct{} // when set, Send waits on it
}

func newFake() *fakeSink {
	return &fakeSink{got: map[string][]int64{}, inflight: map[*entry.Stream]bool{}}
}

func (f *fakeSink) Name() string { return "fake" }
func (f *fakeSink) Shards() int  { return max(1, f.shards) }
func (f *fakeSink) Close() error { return nil }
func (f *fakeSink) Send(ctx context.Context, b *entry.Batch) error {
	f.mu.Lock()
	n := f.attempts
	f.attempts++
	for _, s := range b.Streams {
		if f.inflight[s.Stream] {
			f.overlap = true
		}
		f.inflight[s.Stream] = true
	}
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		for _, s := range b.Streams {
			delete(f.inflight, s.Stream)
		}
		f.mu.Unlock()
	}()
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	runtime.Gosched()
	if f.fail != nil {
		if err := f.fail(n, b); err != nil {
			return err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.batches++
	for _, s := range b.Streams {
		for _, e := range s.Entries {
			f.got[s.Stream.Key] = append(f.got[s.Stream.Key], e.Time)
		}
	}
	return nil
}

type fakeDead struct {
	mu      sync.Mutex
	entries int
	reasons map[string]int
}

func (d *fakeDead) DeadLetter(_, reason string, _ error, entries []entry.Entry) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.reasons == nil {
		d.reasons = map[string]int{}
	}
	d.entries += len(entries)
	d.reasons[reason] += len(entries)
	return nil
}

// stagedSinks makes testOutput wrap fake sinks in stagedFake.
var stagedSinks bool

// stagedFake is a fakeSink that is a sink.Stager: it checks that a batch is
// not changed between Stage and release, and that each is released once.
type stagedFake struct {
	*fakeSink
	mu       sync.Mutex
	staged   int
	released int
	changed  bool
}

func batchSum(b *entry.Batch) int64 {
	n := int64(b.Entries)
	for _, s := range b.Streams {
		for _, e := range s.Entries {
			n = n*31 + e.Time
		}
	}
	return n
}

func (f *stagedFake) Stage(b *entry.Batch) (func(context.Context) error, func()) {
	sum := batchSum(b)
	f.mu.Lock()
	f.staged++
	f.mu.Unlock()
	check := func() {
		if batchSum(b) != sum {
			f.mu.Lock()
			f.changed = true
			f.mu.Unlock()
		}
	}
	once := false
	return func(ctx context.Context) error { check(); return f.Send(ctx, b) },
		func() {
			check()
			f.mu.Lock()
			defer f.mu.Unlock()
			if once {
				f.changed = true
			}
			once = true
			f.released++
		}
}

func testOutput(s sink.Sink, maxBytes int64) Output {
	if fs, ok := s.(*fakeSink); ok && stagedSinks {
		sf := &stagedFake{fakeSink: fs}
		s = sf
		stagedChecks = append(stagedChecks, sf)
	}
	return Output{Sink: s, MaxBytes: maxBytes, BatchBytes: 4 << 10, BatchWait: 100 * time.Millisecond, MinBackoff: 10 * time.Millisecond, MaxBackoff: time.Second}
}

func streams(n int) []*entry.Stream {
	out := make([]*entry.Stream, n)
	for i := range out {
		out[i] = entry.NewStream(entry.Labels{{Name: "container", Value: fmt.Sprint("c", i)}}, nil, fmt.Sprint("c", i))
	}
	return out
}

// produce submits n entries per stream with increasing times, in chunks,
// all sharing one Ack per chunk.
func produce(t *testing.T, ctx context.Context, p *Pipeline, ss []*entry.Stream, n int, acks *[]*entrytest.Ack) {
	t.Helper()
	if err := submitRange(ctx, p, ss, 0, n, acks); err != nil {
		t.Errorf("submit: %v", err)
	}
}

// submitRange is produce for the entries with times from+1 to to, returning
// the first error of Submit.
func submitRange(ctx context.Context, p *Pipeline, ss []*entry.Stream, from, to int, acks *[]*entrytest.Ack) error {
	line := make([]byte, 100)
	for i := from; i < to; i += 10 {
		a := entrytest.NewAck()
		var chunk []entry.Entry
		for j := i; j < min(i+10, to); j++ {
			for _, s := range ss {
				chunk = append(chunk, entry.Entry{Time: int64(j + 1), Line: line, Stream: s, Ack: a.Ack})
			}
		}
		if err := p.Submit(ctx, chunk); err != nil {
			return err
		}
		a.Done(1)
		if acks != nil {
			*acks = append(*acks, a)
		}
	}
	return nil
}

// wantInOrder fails t unless the fake got n entries of each stream, with
// times 1 to n in that order.
func wantInOrder(t *testing.T, f *fakeSink, ss []*entry.Stream, n int) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range ss {
		got := f.got[s.Key]
		if len(got) != n {
			t.Fatalf("%s: %d entries delivered, want %d", s.Key, len(got), n)
		}
		for i, tm := range got {
			if tm != int64(i+1) {
				t.Fatalf("%s: entry %d has time %d: out of order", s.Key, i, tm)
			}
		}
	}
}

func run(t *testing.T, p *Pipeline) (wait func() error) {
	done := make(chan error, 1)
	go func() { done <- p.Run(t.Context()) }()
	return func() error { p.Close(); return <-done }
}

func TestDeliversEveryEntryInOrderPerStream(t *testing.T) {
	for _, shards := range []int{1, 3} {
		t.Run(fmt.Sprint("shards=", shards), func(t *testing.T) {
			f := newFake()
			f.shards = shards
			p, err := New([]Output{testOutput(f, 64<<10)}, Deps{})
			if err != nil {
				t.Fatal(err)
			}
			wait := run(t, p)
			ss := streams(7)
			var acks []*entrytest.Ack
			produce(t, t.Context(), p, ss, 500, &acks)
			if err := wait(); err != nil {
				t.Fatal(err)
			}
			wantInOrder(t, f, ss, 500)
			if f.overlap {
				t.Fatal("a stream was in two sends at once")
			}
			for i, a := range acks {
				if !a.Resolved() {
					t.Fatalf("ack %d not resolved after delivery", i)
				}
			}
		})
	}
}

func TestRetriesUntilDeliveredAndAcksOnlyThen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		var down atomic.Bool
		down.Store(true)
		f.fail = func(n int, b *entry.Batch) error {
			if down.Load() {
				return sink.Retryable(errors.New("connection refused"), 0)
			}
			return nil
		}
		m := NewMetrics()
		p, _ := New([]Output{testOutput(f, 1<<20)}, Deps{Metrics: m})
		ctx := t.Context()
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		a := entrytest.NewAck()
		ss := streams(1)
		if err := p.Submit(ctx, []entry.Entry{{Time: 1, Line: []byte("x"), Stream: ss[0], Ack: a.Ack}}); err != nil {
			t.Fatal(err)
		}
		a.Done(1)
		time.Sleep(10 * time.Minute) // many retries, all failing
		synctest.Wait()
		if a.Resolved() {
			t.Fatal("ack resolved while the sink is down: entries confirmed before delivery")
		}
		if len(p.Failing()) != 1 {
			t.Fatal("sink not reported failing")
		}
		retries := testutil.ToFloat64(m.PushRetries.WithLabelValues("fake"))
		if retries < 500 || retries > 1300 { // 600 s at 0.5 to 1 s per wait
			t.Fatalf("retries in 10 minutes = %v; backoff not bounded as configured", retries)
		}
		down.Store(false)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if !a.Resolved() {
			t.Fatal("ack not resolved after recovery")
		}
		if got := testutil.ToFloat64(m.EntriesSent.WithLabelValues("fake")); got != 1 {
			t.Fatalf("sent = %v", got)
		}
		p.Close()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

func TestRetryAfterIsHonoured(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		var times []time.Time
		f.fail = func(n int, b *entry.Batch) error {
			times = append(times, time.Now())
			if n < 2 {
				return sink.Retryable(errors.New("429"), 7*time.Second)
			}
			return nil
		}
		p, _ := New([]Output{testOutput(f, 1<<20)}, Deps{})
		wait := run(t, p)
		ss := streams(1)
		if err := p.Submit(t.Context(), []entry.Entry{{Time: 1, Line: []byte("x"), Stream: ss[0]}}); err != nil {
			t.Fatal(err)
		}
		if err := wait(); err != nil {
			t.Fatal(err)
		}
		if len(times) != 3 {
			t.Fatalf("%d attempts", len(times))
		}
		for i := 1; i < len(times); i++ {
			if d := times[i].Sub(times[i-1]); d < 7*time.Second {
				t.Fatalf("attempt %d came %v after the previous; Retry-After asked 7s", i, d)
			}
		}
	})
}

func TestRejectedBatchIsDeadLetteredNotResent(t *testing.T) {
	f := newFake()
	f.fail = func(n int, b *entry.Batch) error {
		return &sink.RejectedError{Err: errors.New("400"), Reason: "too_old", Rejected: map[string]int{"too_old": 2}}
	}
	dead := &fakeDead{}
	m := NewMetrics()
	p, _ := New([]Output{testOutput(f, 1<<20)}, Deps{Metrics: m, DeadLetter: dead})
	wait := run(t, p)
	ss := streams(1)
	a := entrytest.NewAck()
	var es []entry.Entry
	for i := range 5 {
		es = append(es, entry.Entry{Time: int64(i), Line: []byte("x"), Stream: ss[0], Ack: a.Ack})
	}
	if err := p.Submit(t.Context(), es); err != nil {
		t.Fatal(err)
	}
	a.Done(1)
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	if f.attempts != 1 {
		t.Fatalf("%d attempts; a rejected batch must not be resent", f.attempts)
	}
	if dead.entries != 5 {
		t.Fatalf("dead-lettered %d entries, want the whole batch (5)", dead.entries)
	}
	if got := testutil.ToFloat64(m.EntriesDropped.WithLabelValues("fake", "too_old")); got != 2 {
		t.Fatalf("dropped{too_old} = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.EntriesSent.WithLabelValues("fake")); got != 3 {
		t.Fatalf("sent = %v, want the 3 entries Loki kept", got)
	}
	if !a.Resolved() {
		t.Fatal("rejected entries must be confirmed (they are in the dead-letter file)")
	}
}

type preparingSink struct{ *fakeSink }

func (p preparingSink) Prepare(e *entry.Entry, now time.Time) string {
	if e.Time < 0 {
		return "too_old"
	}
	return ""
}

func TestPrepareDeadLettersBeforeSending(t *testing.T) {
	f := newFake()
	dead := &fakeDead{}
	p, _ := New([]Output{testOutput(preparingSink{f}, 1<<20)}, Deps{DeadLetter: dead})
	wait := run(t, p)
	ss := streams(1)
	a := entrytest.NewAck()
	es := []entry.Entry{{Time: -5, Line: []byte("old"), Stream: ss[0], Ack: a.Ack}, {Time: 5, Line: []byte("ok"), Stream: ss[0], Ack: a.Ack}}
	if err := p.Submit(t.Context(), es); err != nil {
		t.Fatal(err)
	}
	a.Done(1)
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	if len(f.got[ss[0].Key]) != 1 || dead.reasons["too_old"] != 1 || !a.Resolved() {
		t.Fatalf("sent %v, dead %v, resolved %v", f.got[ss[0].Key], dead.reasons, a.Resolved())
	}
}

func TestBackpressureBlocksInsteadOfDropping(t *testing.T) {
	f := newFake()
	f.block = make(chan struct{})
	p, _ := New([]Output{testOutput(f, 8<<10)}, Deps{})
	wait := run(t, p)
	ss := streams(1)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	line := make([]byte, 1000)
	submitted := 0
	var err error
	for i := 0; i < 1000 && err == nil; i++ {
		err = p.Submit(ctx, []entry.Entry{{Time: int64(i), Line: line, Stream: ss[0]}})
		if err == nil {
			submitted++
		}
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("submit did not block on a full buffer: %v", err)
	}
	// Budget 8 KiB + one 4 KiB batch in flight: about 12 entries of 1 KiB.
	if submitted > 20 {
		t.Fatalf("%d entries admitted into an 8 KiB buffer", submitted)
	}
	close(f.block)
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	if len(f.got[ss[0].Key]) != submitted {
		t.Fatalf("delivered %d of %d admitted entries", len(f.got[ss[0].Key]), submitted)
	}
}

func TestAbandonedOnDeadlineLeavesEntriesUnconfirmed(t *testing.T) {
	f := newFake()
	f.fail = func(int, *entry.Batch) error { return sink.Retryable(errors.New("down"), 0) }
	p, _ := New([]Output{testOutput(f, 1<<20)}, Deps{})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	a := entrytest.NewAck()
	ss := streams(1)
	if err := p.Submit(ctx, []entry.Entry{{Time: 1, Line: []byte("x"), Stream: ss[0], Ack: a.Ack}}); err != nil {
		t.Fatal(err)
	}
	a.Done(1)
	p.Close()
	time.Sleep(50 * time.Millisecond)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	if a.Resolved() {
		t.Fatal("resolved: undelivered entries must stay unconfirmed")
	}
}

// TestGoroutinesFlatThroughFailures pushes thousands of failing attempts and
// checks that the goroutine count does not move: retries are timers in the
// shard's loop, not goroutines.
func TestGoroutinesFlatThroughFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		f.shards = 4
		f.fail = func(n int, b *entry.Batch) error { return sink.Retryable(errors.New("500"), 0) }
		out := testOutput(f, 1<<20)
		out.MaxBackoff = 20 * time.Millisecond
		p, _ := New([]Output{out}, Deps{})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		produce(t, ctx, p, streams(16), 20, nil)
		time.Sleep(time.Second)
		synctest.Wait()
		before := runtime.NumGoroutine()
		time.Sleep(time.Minute)
		synctest.Wait()
		if f.attempts < 10000 {
			t.Fatalf("only %d attempts", f.attempts)
		}
		if after := runtime.NumGoroutine(); after > before {
			t.Fatalf("goroutines %d -> %d across %d failed attempts", before, after, f.attempts)
		}
		cancel()
		<-done
	})
}

func TestSubmitAfterCloseFails(t *testing.T) {
	f := newFake()
	p, _ := New([]Output{testOutput(f, 1<<20)}, Deps{})
	wait := run(t, p)
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	if err := p.Submit(t.Context(), []entry.Entry{{Line: []byte("x"), Stream: streams(1)[0]}}); err == nil {
		t.Fatal("submit after close accepted")
	}
}

// stagedChecks are the stagedFakes of the running test.
var stagedChecks []*stagedFake

// TestWithStagedSink runs the delivery tests again with a sink that stages
// its batches, so each is encoded while the one before it is in flight.
func TestWithStagedSink(t *testing.T) {
	stagedSinks = true
	defer func() { stagedSinks = false }()
	for name, test := range map[string]func(*testing.T){
		"InOrder":       TestDeliversEveryEntryInOrderPerStream,
		"Retries":       TestRetriesUntilDeliveredAndAcksOnlyThen,
		"RetryAfter":    TestRetryAfterIsHonoured,
		"Rejected":      TestRejectedBatchIsDeadLetteredNotResent,
		"Backpressure":  TestBackpressureBlocksInsteadOfDropping,
		"Abandoned":     TestAbandonedOnDeadlineLeavesEntriesUnconfirmed,
		"Goroutines":    TestGoroutinesFlatThroughFailures,
		"Spill":         TestSpillKeepsSourcesReadingThroughAnOutage,
		"QueueFirst":    TestQueueLeftByAPreviousRunGoesFirst,
		"Misconfigured": TestMisconfiguredSinkKeepsTheBatch,
		"TooLarge":      TestTooLargeBatchIsSentInHalves,
	} {
		stagedChecks = nil
		t.Run(name, test)
		if len(stagedChecks) == 0 {
			t.Fatalf("%s: no staged sink was used", name)
		}
		for _, f := range stagedChecks {
			f.mu.Lock()
			staged, released, changed := f.staged, f.released, f.changed
			f.mu.Unlock()
			if changed {
				t.Errorf("%s: a batch changed between Stage and release, or was released twice", name)
			}
			if staged == 0 || staged != released {
				t.Errorf("%s: %d batches staged, %d released", name, staged, released)
			}
		}
	}
}
