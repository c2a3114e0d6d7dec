package loki_test

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharf-logs/wharf/internal/entry"
	"github.com/wharf-logs/wharf/internal/loki"
	"github.com/wharf-logs/wharf/internal/lokitest"
	"github.com/wharf-logs/wharf/internal/pipeline"
)

// eventually polls cond until it holds, failing the test with what() after
// 20 s.
func eventually(t *testing.T, what func() string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s", what())
		}
	}
}

// sequenced returns n entries for each of streams, their lines
// "<origin> <i>", interleaved across streams and increasing in time.
func sequenced(streams []*entry.Stream, n, lineBytes int) []entry.Entry {
	base := time.Now().UnixNano()
	var es []entry.Entry
	for i := range n {
		for _, st := range streams {
			l := fmt.Appendf(nil, "%s %06d ", st.Origin, i)
			l = append(l, bytes.Repeat([]byte("x"), max(0, lineBytes-len(l)))...)
			es = append(es, entry.Entry{Time: base + int64(i), Line: l, Stream: st})
		}
	}
	return es
}

// wantEachOnce fails t unless the server holds, for each stream, the lines
// of want of that stream once each, in order.
func wantEachOnce(t *testing.T, srv *lokitest.Server, streams []*entry.Stream, want []entry.Entry) {
	t.Helper()
	for _, st := range streams {
		var lines []string
		for _, e := range want {
			if e.Stream == st {
				lines = append(lines, string(e.Line))
			}
		}
		got := srv.Lines(st.Key)
		if len(got) != len(lines) {
			t.Fatalf("%s: %d lines stored, want %d, each once", st.Origin, len(got), len(lines))
		}
		for i := range got {
			if got[i] != lines[i] {
				t.Fatalf("%s: line %d is %.30q, want %.30q: out of order", st.Origin, i, got[i], lines[i])
			}
		}
	}
}

// deadLetterCount returns the records in the harness's dead-letter file,
// 0 when there is none.
func deadLetterCount(t *testing.T, h *harness) int {
	t.Helper()
	if _, err := os.Stat(filepath.Join(h.dlDir, "loki.ndjson")); errors.Is(err, os.ErrNotExist) {
		return 0
	}
	return len(deadLetters(t, h.dlDir))
}

// TestMisconfiguredReceiverLosesNothing: a receiver that refuses wharf's
// requests for a reason no batch can change (credentials, tenant, a wrong
// URL or method, a redirect, a status Loki never sends) has ingested nothing.
// wharf keeps every entry and retries, unconfirmed, with the sink down and
// nothing dead-lettered or dropped; when the receiver starts accepting,
// every entry arrives once, in order per stream.
func TestMisconfiguredReceiverLosesNothing(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault lokitest.Fault
	}{
		{"401", lokitest.Fault{Status: http.StatusUnauthorized, Body: "invalid credentials"}},
		{"403", lokitest.Fault{Status: http.StatusForbidden, Body: "tenant not allowed"}},
		{"404", lokitest.Fault{Status: http.StatusNotFound, Body: "404 page not found"}},
		{"405", lokitest.Fault{Status: http.StatusMethodNotAllowed}},
		{"302", lokitest.Fault{Status: http.StatusFound, Header: http.Header{"Location": {"https://loki.example/loki/api/v1/push"}}}},
		{"418", lokitest.Fault{Status: http.StatusTeapot}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarnessWith(t, lokitest.Options{}, func(c *loki.Config) { c.Parallelism = 2 }, func(o *pipeline.Output) {
				o.MinBackoff, o.MaxBackoff = 5*time.Millisecond, 50*time.Millisecond
			}, nil)
			h.srv.Inject(tc.fault, -1)
			streams := []*entry.Stream{stream("a"), stream("b"), stream("c")}
			es := sequenced(streams, 50, 100)
			a := submit(t, h.pipe, append([]entry.Entry(nil), es...))
			refused := func() int { return h.srv.Counts().Statuses[tc.fault.Status] }
			eventually(t, func() string { return fmt.Sprintf("%d requests refused", refused()) }, func() bool {
				return refused() >= 10 || deadLetterCount(t, h) > 0 // the second: given up
			})

			if a.Resolved() {
				t.Fatal("entries confirmed while the receiver refuses every request")
			}
			if n := deadLetterCount(t, h); n != 0 {
				t.Fatalf("%d entries dead-lettered; nothing was refused for good", n)
			}
			if n := testutil.CollectAndCount(h.m.EntriesDropped); n != 0 {
				t.Fatalf("wharf_entries_dropped_total has %d series; nothing was dropped", n)
			}
			if up := testutil.ToFloat64(h.m.SinkUp.WithLabelValues("loki")); up != 0 {
				t.Fatalf("wharf_sink_up = %v while every request is refused", up)
			}

			h.srv.ClearFaults()
			h.drain(t)
			wantEachOnce(t, h.srv, streams, es)
			if !a.Resolved() {
				t.Fatal("entries not confirmed after delivery")
			}
			if n := deadLetterCount(t, h); n != 0 {
				t.Fatalf("%d entries dead-lettered", n)
			}
			if up := testutil.ToFloat64(h.m.SinkUp.WithLabelValues("loki")); up != 1 {
				t.Fatalf("wharf_sink_up = %v after delivery", up)
			}
		})
	}
}

// TestTooLargeBatchIsSplit: behind a proxy with a body limit (413), a batch
// is split in halves until each part gets through; only an entry too large
// on its own is dead-lettered, as too_large. Every other entry arrives once,
// in order per stream.
func TestTooLargeBatchIsSplit(t *testing.T) {
	const limit = 8 << 10
	h := newHarnessWith(t, lokitest.Options{MaxBodyBytes: limit}, func(c *loki.Config) { c.Format = loki.FormatJSON }, func(o *pipeline.Output) {
		o.BatchBytes, o.BatchWait = 256<<10, 200*time.Millisecond
	}, nil)
	streams := []*entry.Stream{stream("web"), stream("db")}
	es := sequenced(streams, 100, 200) // 40 KB of lines in all
	big := entry.Entry{Time: es[100].Time, Line: bytes.Repeat([]byte("B"), 2*limit), Stream: streams[0]}
	all := append(append(append([]entry.Entry(nil), es[:101]...), big), es[101:]...)
	a := submit(t, h.pipe, all)
	h.drain(t)

	wantEachOnce(t, h.srv, streams, es)
	if h.srv.Counts().Statuses[http.StatusRequestEntityTooLarge] == 0 {
		t.Fatal("the receiver answered no 413: the test sent nothing too large")
	}
	dl := deadLetters(t, h.dlDir)
	if len(dl) != 1 || dl[0]["reason"] != loki.ReasonTooLarge || !strings.HasPrefix(fmt.Sprint(dl[0]["line"]), "BBBB") {
		t.Fatalf("%d dead letters, want only the entry too large on its own, as too_large", len(dl))
	}
	if got := testutil.ToFloat64(h.m.EntriesDropped.WithLabelValues("loki", loki.ReasonTooLarge)); got != 1 {
		t.Fatalf("dropped{too_large} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(h.m.EntriesSent.WithLabelValues("loki")); got != float64(len(es)) {
		t.Fatalf("sent = %v, want %d", got, len(es))
	}
	if !a.Resolved() {
		t.Fatal("entries not confirmed")
	}
}
