package e2e

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wharf-logs/wharf/internal/dockertest"
	"github.com/wharf-logs/wharf/internal/lokitest"
	"github.com/wharf-logs/wharf/internal/seq"
)

// receiverFaults is the cycle TestReceiverFaultsEndToEnd runs through: each
// fault is applied to the next n pushes (n < 0: to all, for a while).
var receiverFaults = []struct {
	name  string
	fault lokitest.Fault
	n     int
}{
	{"500 storm (3 s)", lokitest.Fault{Status: 500}, -1},
	{"429 without Retry-After", lokitest.Fault{Status: 429}, 10},
	{"429 with Retry-After: 1", lokitest.Fault{Status: 429, RetryAfter: "1"}, 2},
	{"hang past loki.timeout", lokitest.Fault{Hang: true}, 3},
	{"reset in the request body", lokitest.Fault{ResetInBody: true}, 5},
	{"reset in the answer's headers after ingesting", lokitest.Fault{ResetInHeaders: true}, 5},
	{"reset in the body of a 503", lokitest.Fault{ResetInAnswer: true, Status: 503}, 5},
	{"proxy's HTML 502 page", lokitest.Fault{HTML: true}, 5},
	{"10 MiB body on a 500", lokitest.Fault{BodyBytes: 10 << 20}, 5},
	{"200 with a garbage body", lokitest.Fault{SuccessBody: "\x00\x01<<not json>>\xff"}, 5},
}

// lowGoroutines is wharf's lowest go_goroutines over a few samples.
func lowGoroutines(w *proc) float64 {
	low := -1.0
	for range 12 {
		if g := w.metrics()["go_goroutines"]; low < 0 || g < low {
			low = g
		}
		time.Sleep(250 * time.Millisecond)
	}
	return low
}

// TestReceiverFaultsEndToEnd ships a container's sequence-numbered lines to
// lokitest while the receiver cycles through every way it can misbehave:
// every line must arrive, in order per stream, the copies being only those
// of pushes cut after the receiver ingested them; /metrics shows the
// retries, and the goroutine count comes back to where it was.
func TestReceiverFaultsEndToEnd(t *testing.T) {
	t.Parallel() // keeps to its own containers: see inGroup
	dockertest.Require(t)
	img := dockertest.LoggenImage(t)
	binary(t)
	srv := lokitest.New(lokitest.Options{KeepDuplicates: true})
	t.Cleanup(srv.Close)
	data := t.TempDir()
	cfg := inGroup(t, baseConfig(data, freePort(t))) + "loki:\n  url: " + srv.URL() +
		"\n  timeout: 1s\n  batch_wait: 200ms\n  min_backoff: 50ms\n  max_backoff: 500ms\n"
	w := startWharf(t, data, cfg)
	before := lowGoroutines(w)

	const rate, total = 400, 16000 // 40 s
	c := dockertest.Run(t, dockertest.RunOptions{Image: img, Labels: groupLabels(t),
		Args: []string{"-lines", strconv.Itoa(total), "-rate", strconv.Itoa(rate), "-stderr", "0.25"}})
	time.Sleep(2 * time.Second)
	for _, f := range receiverFaults {
		start := srv.Counts().Requests
		srv.Inject(f.fault, f.n)
		if f.n < 0 {
			time.Sleep(3 * time.Second)
			srv.ClearFaults()
		} else {
			waitFor(t, 20*time.Second, f.name+" to be met", func() bool { return srv.Counts().Requests >= start+f.n })
		}
		t.Logf("%-46s %3d requests", f.name, srv.Counts().Requests-start)
		time.Sleep(time.Second)
	}
	dockertest.Wait(t, c.ID)
	m := w.settled(t, "loki", 2*time.Minute)
	after := lowGoroutines(w)

	r := seq.CheckLines(c.Name, receiverLines(srv, c.Name), total)
	if r.MissingCount() > 0 || len(r.OutOfOrder) > 0 || r.Unparsed > 0 || r.Unexpected > 0 {
		t.Fatalf("%s", r)
	}
	cut := 0
	for _, q := range srv.Requests() {
		if q.Fault && q.Status == 0 && q.Entries > 0 {
			cut += q.Entries
		}
	}
	if len(r.Duplicated) > cut {
		t.Errorf("%d lines duplicated; only the %d of pushes cut after ingesting may come twice", len(r.Duplicated), cut)
	}
	retries := m[`wharf_push_retries_total{sink="loki"}`]
	for _, status := range []string{"500", "429", "503", "502", "error", "200", "204"} {
		if m[`wharf_push_requests_total{sink="loki",status="`+status+`"}`] == 0 {
			t.Errorf("wharf_push_requests_total shows no %s", status)
		}
	}
	var statuses []string
	for k, v := range m {
		if strings.HasPrefix(k, "wharf_push_requests_total{") {
			statuses = append(statuses, strings.TrimPrefix(k, "wharf_push_requests_total")+"="+strconv.FormatFloat(v, 'f', -1, 64))
		}
	}
	t.Logf("%d lines, %d duplicated (%d entries in pushes cut after ingesting), %v retries; requests %v; goroutines %v -> %v",
		total, len(r.Duplicated), cut, retries, statuses, before, after)
	if retries == 0 {
		t.Error("wharf_push_retries_total is 0")
	}
	if m[`wharf_entries_dropped_total{reason="invalid",sink="loki"}`] > 0 {
		t.Error("entries were dropped")
	}
	if after > before+3 {
		t.Errorf("goroutines %v -> %v", before, after)
	}
	w.stop()
}
