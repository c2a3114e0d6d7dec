package agent

import (
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestMisconfiguredSinkShowsOnReadyz: while Loki answers 401, wharf keeps
// what it read, /readyz answers 503 naming the status and the URL,
// wharf_sink_up is 0, nothing is dead-lettered, and the log says so once;
// when Loki accepts again, every line is delivered and wharf is ready.
func TestMisconfiguredSinkShowsOnReadyz(t *testing.T) {
	srv, data, logPath := fileAgentDirs(t)
	srv.FailAll(http.StatusUnauthorized)
	var logs syncBuffer
	a, err := New(fileAgentConfig(data, logPath, srv.URL()), Deps{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	runAgent(t, a)
	appendLines(t, logPath, "line 0", "line 1", "line 2")
	refused := func() int { return srv.Counts().Statuses[http.StatusUnauthorized] }
	deadLetters := filepath.Join(data, "dead-letter", "loki.ndjson")
	waitFor(t, func() string { return fmt.Sprintf("%d pushes refused", refused()) }, func() bool {
		_, err := os.Stat(deadLetters)
		return refused() >= 5 || err == nil // the second: given up
	})

	code, body := readyz(t, a)
	t.Logf("/readyz: %d %s", code, body)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "401") || !strings.Contains(body, srv.URL()) {
		t.Errorf("/readyz while Loki answers 401: %d %q, want 503 naming the status and %s", code, body, srv.URL())
	}
	if up := testutil.ToFloat64(a.metrics.Pipeline.SinkUp.WithLabelValues("loki")); up != 0 {
		t.Errorf("wharf_sink_up{sink=loki} = %v while Loki answers 401", up)
	}
	if n := testutil.CollectAndCount(a.metrics.Pipeline.EntriesDropped); n != 0 {
		t.Errorf("wharf_entries_dropped_total has %d series while Loki answers 401", n)
	}
	if _, err := os.Stat(deadLetters); err == nil {
		t.Error("lines were dead-lettered while Loki answers 401")
	}
	if n := strings.Count(logs.String(), "sink misconfigured"); n != 1 {
		t.Errorf("%d log lines say the sink is misconfigured over %d refused pushes, want 1:\n%s", n, refused(), logs.String())
	}

	srv.ClearFaults()
	want := []string{"line 0", "line 1", "line 2"}
	waitFor(t, func() string { return fmt.Sprintf("delivered %q, want %q", received(srv, "line"), want) }, func() bool {
		return len(received(srv, "line")) == len(want)
	})
	if got := received(srv, "line"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("delivered %q, want %q", got, want)
	}
	waitFor(t, func() string { _, body := readyz(t, a); return "/readyz after recovery: " + body }, func() bool {
		code, _ := readyz(t, a)
		return code == http.StatusOK
	})
	if up := testutil.ToFloat64(a.metrics.Pipeline.SinkUp.WithLabelValues("loki")); up != 1 {
		t.Errorf("wharf_sink_up{sink=loki} = %v after delivery", up)
	}
	if _, err := os.Stat(deadLetters); err == nil {
		t.Error("lines were dead-lettered")
	}
}
