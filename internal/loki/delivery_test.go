package loki_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharf-logs/wharf/internal/deadletter"
	"github.com/wharf-logs/wharf/internal/entry"
	"github.com/wharf-logs/wharf/internal/entrytest"
	"github.com/wharf-logs/wharf/internal/loki"
	"github.com/wharf-logs/wharf/internal/lokitest"
	"github.com/wharf-logs/wharf/internal/pipeline"
)

// These tests run the real delivery path (pipeline, Loki client, dead-letter
// writer) against the Loki-behaving test server.

// attemptTimes records when each request was sent.
type attemptTimes struct {
	mu    sync.Mutex
	times []time.Time
	next  http.RoundTripper
}

func (a *attemptTimes) RoundTrip(r *http.Request) (*http.Response, error) {
	a.mu.Lock()
	a.times = append(a.times, time.Now())
	a.mu.Unlock()
	return a.next.RoundTrip(r)
}

type harness struct {
	srv    *lokitest.Server
	pipe   *pipeline.Pipeline
	m      *pipeline.Metrics
	dlDir  string
	rt     *attemptTimes
	done   chan error
	cancel context.CancelFunc
}

func newHarness(t *testing.T, opts lokitest.Options, shards int, minBackoff, maxBackoff time.Duration) *harness {
	t.Helper()
	return newHarnessWith(t, opts, func(c *loki.Config) { c.Parallelism = shards }, func(o *pipeline.Output) {
		o.MinBackoff, o.MaxBackoff = minBackoff, maxBackoff
	}, nil)
}

// newHarnessWith is newHarness with the client's configuration and the
// pipeline's output changed by the given functions (either may be nil),
// logging to log (nil discards).
func newHarnessWith(t *testing.T, opts lokitest.Options, client func(*loki.Config), out func(*pipeline.Output), log *slog.Logger) *harness {
	t.Helper()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &harness{srv: lokitest.New(opts), m: pipeline.NewMetrics(), dlDir: t.TempDir(), done: make(chan error, 1)}
	t.Cleanup(h.srv.Close)
	cfg := loki.Config{URL: h.srv.URL(), Parallelism: 1, Timeout: 5 * time.Second, StructuredMetadata: true}
	if client != nil {
		client(&cfg)
	}
	h.rt = &attemptTimes{next: http.DefaultTransport.(*http.Transport).Clone()}
	c, err := loki.New(cfg, loki.Deps{Logger: log, Transport: h.rt})
	if err != nil {
		t.Fatal(err)
	}
	dl := deadletter.New(deadletter.Config{Dir: h.dlDir, MaxFileBytes: 1 << 20, MaxFiles: 3}, deadletter.Deps{})
	t.Cleanup(func() { dl.Close() })
	o := pipeline.Output{
		Sink: c, MaxBytes: 4 << 20, BatchBytes: 64 << 10, BatchWait: 50 * time.Millisecond,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
	}
	if out != nil {
		out(&o)
	}
	h.pipe, err = pipeline.New([]pipeline.Output{o}, pipeline.Deps{Metrics: h.m, DeadLetter: dl, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	h.cancel = cancel
	go func() { h.done <- h.pipe.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-h.done
		c.Close()
		h.rt.next.(*http.Transport).CloseIdleConnections()
	})
	return h
}

// drain closes the pipeline and waits until everything is delivered.
func (h *harness) drain(t *testing.T) {
	t.Helper()
	h.pipe.Close()
	select {
	case err := <-h.done:
		if err != nil {
			t.Fatal(err)
		}
		h.done <- nil
	case <-time.After(60 * time.Second):
		t.Fatal("pipeline did not drain in 60s")
	}
}

func stream(name string) *entry.Stream {
	return entry.NewStream(entry.Labels{{Name: "container", Value: name}}, entry.Labels{{Name: "container_id", Value: "abc"}}, name)
}

func submit(t *testing.T, p *pipeline.Pipeline, entries []entry.Entry) *entrytest.Ack {
	t.Helper()
	a := entrytest.NewAck()
	for i := range entries {
		entries[i].Ack = a.Ack
	}
	if err := p.Submit(t.Context(), entries); err != nil {
		t.Fatal(err)
	}
	a.Done(1)
	return a
}

func deadLetters(t *testing.T, dir string) []map[string]any {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "loki.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r map[string]any
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func TestPartialSuccessIsNotResentAndIsDeadLettered(t *testing.T) {
	h := newHarness(t, lokitest.Options{MaxAge: time.Hour}, 1, 10*time.Millisecond, 100*time.Millisecond)
	st := stream("web")
	now := time.Now()
	var es []entry.Entry
	for i := range 10 {
		tm := now.Add(time.Duration(i) * time.Millisecond)
		if i%3 == 0 {
			tm = now.Add(-2 * time.Hour) // Loki refuses these as too old
		}
		es = append(es, entry.Entry{Time: tm.UnixNano(), Line: fmt.Appendf(nil, "line %d", i), Stream: st})
	}
	a := submit(t, h.pipe, es)
	h.drain(t)

	if n := len(h.srv.Requests()); n != 1 {
		t.Fatalf("%d requests; a 400 must never be resent", n)
	}
	if got := len(h.srv.Lines(st.Key)); got != 6 {
		t.Fatalf("server kept %d entries, want the 6 valid ones", got)
	}
	if got := testutil.ToFloat64(h.m.EntriesDropped.WithLabelValues("loki", loki.ReasonTooOld)); got != 4 {
		t.Fatalf("dropped{too_old} = %v, want 4", got)
	}
	if got := testutil.ToFloat64(h.m.EntriesSent.WithLabelValues("loki")); got != 6 {
		t.Fatalf("sent = %v, want 6", got)
	}
	dl := deadLetters(t, h.dlDir)
	if len(dl) != 10 {
		t.Fatalf("%d dead letters, want the whole refused batch (10)", len(dl))
	}
	for _, r := range dl {
		if r["reason"] != loki.ReasonTooOld || r["sink"] != "loki" || r["error"] == "" {
			t.Fatalf("dead letter %v", r)
		}
	}
	if !a.Resolved() {
		t.Fatal("refused entries must be confirmed once dead-lettered")
	}
}

func TestRetryAfterIsRespected(t *testing.T) {
	h := newHarness(t, lokitest.Options{}, 1, 10*time.Millisecond, 50*time.Millisecond)
	h.srv.Inject(lokitest.Fault{Status: 429, RetryAfter: "2"}, 2)
	st := stream("web")
	submit(t, h.pipe, []entry.Entry{{Time: time.Now().UnixNano(), Line: []byte("x"), Stream: st}})
	h.drain(t)
	h.rt.mu.Lock()
	times := h.rt.times
	h.rt.mu.Unlock()
	if len(times) != 3 {
		t.Fatalf("%d attempts, want 3 (two 429s, then success)", len(times))
	}
	for i := 1; i < 3; i++ {
		if d := times[i].Sub(times[i-1]); d < 2*time.Second {
			t.Fatalf("attempt %d came %v after the previous; Retry-After said 2s (max_backoff is 50ms)", i+1, d)
		}
	}
	if got := len(h.srv.Lines(st.Key)); got != 1 {
		t.Fatalf("%d entries stored", got)
	}
}

func TestNothingLostAcrossA500Storm(t *testing.T) {
	h := newHarness(t, lokitest.Options{KeepDuplicates: true}, 3, 5*time.Millisecond, 20*time.Millisecond)
	h.srv.FailNext(60, 500)
	streams := []*entry.Stream{stream("a"), stream("b"), stream("c"), stream("d")}
	const perStream = 2000
	base := time.Now().UnixNano()
	for i := 0; i < perStream; i += 100 {
		var es []entry.Entry
		for j := i; j < i+100; j++ {
			for _, st := range streams {
				es = append(es, entry.Entry{Time: base + int64(j), Line: fmt.Appendf(nil, "%s %06d", st.Origin, j), Stream: st})
			}
		}
		submit(t, h.pipe, es)
	}
	h.drain(t)
	for _, st := range streams {
		lines := h.srv.Lines(st.Key)
		if len(lines) != perStream {
			t.Fatalf("%s: %d lines, want %d (no loss, no duplicate)", st.Origin, len(lines), perStream)
		}
		for j, l := range lines {
			if want := fmt.Sprintf("%s %06d", st.Origin, j); l != want {
				t.Fatalf("%s: line %d is %q, want %q: out of order", st.Origin, j, l, want)
			}
		}
	}
	if got := h.srv.Counts().Statuses[500]; got != 60 {
		t.Fatalf("%d answers were 500, want 60", got)
	}
}

// TestGoroutinesFlatThrough10000FailedPushes: retries are timers in the
// shard's loop, so the goroutine count does not move however many pushes
// fail.
func TestGoroutinesFlatThrough10000FailedPushes(t *testing.T) {
	if testing.Short() {
		t.Skip("pushes 10,000 failing requests")
	}
	h := newHarness(t, lokitest.Options{CountOnly: true}, 4, time.Microsecond, time.Microsecond)
	h.srv.FailAll(503)
	for i := range 8 {
		submit(t, h.pipe, []entry.Entry{{Time: time.Now().UnixNano(), Line: []byte("x"), Stream: stream(fmt.Sprint("s", i))}})
	}
	waitRequests := func(n int) {
		deadline := time.Now().Add(2 * time.Minute)
		for h.srv.Counts().Requests < n {
			if time.Now().After(deadline) {
				t.Fatalf("only %d requests after 2 minutes", h.srv.Counts().Requests)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// The floor of a few samples: a connection being torn down while
	// another is opened shows for a moment; a leak stays.
	floor := func() int {
		n := runtime.NumGoroutine()
		for range 10 {
			time.Sleep(20 * time.Millisecond)
			n = min(n, runtime.NumGoroutine())
		}
		return n
	}
	waitRequests(200)
	before := floor()
	waitRequests(10200)
	after := floor()
	// Connections are kept alive and reused, but under constant traffic
	// the pool may replace one it had just returned, or open one more for a
	// shard whose last connection is not back yet (up to
	// MaxIdleConnsPerHost): allow each of the four shards one extra
	// connection, three goroutines each (the transport's read and write
	// loops, the test server's handler). A goroutine per push or per retry
	// would show as thousands.
	if after > before+4*3 {
		t.Fatalf("goroutines %d -> %d across 10,000 failed pushes", before, after)
	}
	h.srv.ClearFaults()
	h.drain(t)
	if got := h.srv.Counts().Entries; got != 8 {
		t.Fatalf("%d entries delivered after the failures, want 8", got)
	}
}
