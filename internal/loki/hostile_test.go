package loki_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/wharf-logs/wharf/internal/deadletter"
	"github.com/wharf-logs/wharf/internal/entry"
	"github.com/wharf-logs/wharf/internal/loki"
	"github.com/wharf-logs/wharf/internal/lokitest"
	"github.com/wharf-logs/wharf/internal/pipeline"
)

// These tests put the real delivery path (pipeline, Loki client) in front of
// a receiver that misbehaves in each way a Loki, or a proxy in front of it,
// can: every entry must arrive once, in order per stream, with no goroutine
// left behind.

// logBuffer collects log output for inspection.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Split(strings.TrimSpace(l.buf.String()), "\n")
}

// newFaultHarness is newHarness with the client's timeout set and the
// pipeline's log kept.
func newFaultHarness(t *testing.T, opts lokitest.Options, shards int, timeout time.Duration, log *logBuffer) *harness {
	t.Helper()
	h := &harness{srv: lokitest.New(opts), m: pipeline.NewMetrics(), dlDir: t.TempDir(), done: make(chan error, 1)}
	t.Cleanup(h.srv.Close)
	cfg := loki.Config{URL: h.srv.URL(), Parallelism: shards, Timeout: timeout, StructuredMetadata: true}
	h.rt = &attemptTimes{next: http.DefaultTransport.(*http.Transport).Clone()}
	logger := slog.New(slog.NewTextHandler(log, nil))
	client, err := loki.New(cfg, loki.Deps{Logger: logger, Transport: h.rt})
	if err != nil {
		t.Fatal(err)
	}
	dl := deadletter.New(deadletter.Config{Dir: h.dlDir, MaxFileBytes: 1 << 20, MaxFiles: 3}, deadletter.Deps{})
	t.Cleanup(func() { dl.Close() })
	h.pipe, err = pipeline.New([]pipeline.Output{{
		Sink: client, MaxBytes: 4 << 20, BatchBytes: 16 << 10, BatchWait: 20 * time.Millisecond,
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
	}}, pipeline.Deps{Metrics: h.m, DeadLetter: dl, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- h.pipe.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-h.done
		client.Close()
		h.rt.next.(*http.Transport).CloseIdleConnections()
	})
	return h
}

func TestReceiverFaults(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault lokitest.Fault
		n     int
		// retries says whether each faulty answer is retried; a 200 is a
		// delivery whatever its body.
		retries bool
		// log is what the retry warning must say.
		log string
	}{
		{"500 storm", lokitest.Fault{Status: 500}, 40, true, "status 500: lokitest: injected 500"},
		{"429 without Retry-After", lokitest.Fault{Status: 429}, 10, true, "status 429: Ingestion rate limit exceeded"},
		{"503 with Retry-After", lokitest.Fault{Status: 503, RetryAfter: "1"}, 2, true, "status 503"},
		{"hang until the client's timeout", lokitest.Fault{Hang: true}, 4, true, "timed out after 300ms"},
		{"reset in the request body", lokitest.Fault{ResetInBody: true}, 10, true, "loki: push to"},
		{"reset in the answer's headers after ingesting", lokitest.Fault{ResetInHeaders: true}, 10, true, "loki: push to"},
		{"reset in the body of a 503", lokitest.Fault{ResetInAnswer: true, Status: 503}, 10, true, "status 503"},
		{"proxy's HTML 502 page", lokitest.Fault{HTML: true}, 10, true, `status 502: html page: 502 Bad Gateway`},
		{"10 MiB body on a 500", lokitest.Fault{BodyBytes: 10 << 20}, 10, true, "status 500: xxxx"},
		{"200 with a garbage body", lokitest.Fault{SuccessBody: "\x00\x01<<garbage>>\xff"}, 10, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Registered first, so it runs after the harness is torn down.
			ignore := goleak.IgnoreCurrent()
			t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
			testReceiverFault(t, tc.fault, tc.n, tc.retries, tc.log)
		})
	}
}

func testReceiverFault(t *testing.T, fault lokitest.Fault, n int, retries bool, wantLog string) {
	var log logBuffer
	h := newFaultHarness(t, lokitest.Options{}, 2, 300*time.Millisecond, &log)
	h.srv.Inject(fault, n)

	streams := []*entry.Stream{stream("a"), stream("b"), stream("c")}
	const perStream = 600
	base := time.Now().UnixNano()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	for i := 0; i < perStream; i += 50 {
		var es []entry.Entry
		for j := i; j < i+50; j++ {
			for _, st := range streams {
				es = append(es, entry.Entry{Time: base + int64(j), Line: fmt.Appendf(nil, "%s %06d %s", st.Origin, j, strings.Repeat("z", 100)), Stream: st})
			}
		}
		submit(t, h.pipe, es)
	}
	h.drain(t)
	runtime.ReadMemStats(&after)
	took := time.Since(start)

	for _, st := range streams {
		lines := h.srv.Lines(st.Key)
		if len(lines) != perStream {
			t.Fatalf("%s: %d lines, want %d", st.Origin, len(lines), perStream)
		}
		for j, l := range lines {
			if !strings.HasPrefix(l, fmt.Sprintf("%s %06d ", st.Origin, j)) {
				t.Fatalf("%s: line %d is %.20q: out of order", st.Origin, j, l)
			}
		}
	}
	// The only copies sent are of pushes the server handled without the
	// client learning of it: those whose answer was cut before its status.
	// Each is sent once more (and may be cut again).
	faulty, ingestedUnknown := 0, 0
	for _, r := range h.srv.Requests() {
		if r.Fault {
			faulty++
			if r.Status == 0 && r.Entries > 0 {
				ingestedUnknown += r.Entries
			}
		}
	}
	c := h.srv.Counts()
	if c.Duplicates > ingestedUnknown {
		t.Errorf("%d duplicate entries; only the %d of pushes cut after ingesting may come twice", c.Duplicates, ingestedUnknown)
	}
	if faulty != n {
		t.Fatalf("%d requests met the fault, want %d", faulty, n)
	}
	wantRetries := 0
	if retries {
		wantRetries = n
	}
	if got := testutil.ToFloat64(h.m.PushRetries.WithLabelValues("loki")); int(got) != wantRetries {
		t.Errorf("wharf_push_retries_total = %v, want %d", got, wantRetries)
	}
	if got := testutil.ToFloat64(h.m.EntriesSent.WithLabelValues("loki")); int(got) != len(streams)*perStream {
		t.Errorf("wharf_entries_sent_total = %v, want %d", got, len(streams)*perStream)
	}
	if _, err := os.Stat(filepath.Join(h.dlDir, "loki.ndjson")); err == nil {
		t.Error("entries were dead-lettered")
	}

	// The retry warning quotes a short excerpt of the answer.
	var warn string
	for _, l := range log.lines() {
		if strings.Contains(l, "delivery failed, will retry") {
			warn = l
			break
		}
	}
	if warn != "" {
		t.Logf("retry warning, %d bytes: %.240s", len(warn), warn)
	}
	switch {
	case !retries && warn != "":
		t.Errorf("a delivered push was logged as failed: %s", warn)
	case retries && !strings.Contains(warn, wantLog):
		t.Errorf("retry warning %q does not say %q", warn, wantLog)
	case len(warn) > 1024 || strings.Contains(warn, "<html") || strings.Contains(warn, "<center>"):
		t.Errorf("retry warning of %d bytes quotes too much: %.300s", len(warn), warn)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d faulty answers, %d duplicates, %v, %.1f MiB allocated", n, c.Duplicates, took.Round(time.Millisecond), float64(alloc)/(1<<20))
	if fault.BodyBytes > 0 && alloc > uint64(n)*(2<<20) {
		// Reading each 10 MiB body whole would allocate 10 MiB per answer;
		// the client keeps 64 KiB and discards at most 1 MiB.
		t.Errorf("%d MiB allocated for %d answers of %d MiB", alloc>>20, n, fault.BodyBytes>>20)
	}
}
