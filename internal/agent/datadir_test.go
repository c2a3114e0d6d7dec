package agent

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharf-logs/wharf/internal/config"
	"github.com/wharf-logs/wharf/internal/lokitest"
	"github.com/wharf-logs/wharf/internal/positions"
)

// syncBuffer is a log destination a test may read while the agent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fileAgentConfig is an agent reading the plain file logPath from its
// beginning and shipping to the Loki at url, with data under dataDir.
func fileAgentConfig(dataDir, logPath, url string) config.Config {
	cfg := config.Default()
	cfg.DataDir = dataDir
	cfg.Listen = "127.0.0.1:0"
	cfg.Docker.Enabled = false
	cfg.Files = []config.FileSource{{
		Paths:        []string{logPath},
		StartAt:      "beginning",
		MaxLineBytes: 256 * config.KiB,
		Multiline:    config.Multiline{MaxWait: 3 * time.Second, MaxLines: 500, MaxBytes: config.MiB},
	}}
	cfg.Loki.URL = url
	cfg.Loki.BatchWait = 50 * time.Millisecond
	cfg.Loki.MinBackoff = 50 * time.Millisecond
	cfg.Loki.MaxBackoff = 200 * time.Millisecond
	return cfg
}

// runAgent starts a; the test's cleanup stops it and reports a failed
// shutdown.
func runAgent(t *testing.T, a *Agent) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
}

// appendLines appends lines to the file at path.
func appendLines(t *testing.T, path string, lines ...string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lines {
		fmt.Fprintln(f, l)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds, failing the test with what() after 15 s.
func waitFor(t *testing.T, what func() string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s", what())
		}
	}
}

// received returns the lines the server accepted that start with prefix.
func received(srv *lokitest.Server, prefix string) []string {
	var out []string
	for _, e := range srv.Entries() {
		if strings.HasPrefix(e.Line, prefix) {
			out = append(out, e.Line)
		}
	}
	return out
}

// fileAgentDirs starts a Loki-behaving server and returns it with a data
// directory and a plain log file's path, for fileAgentConfig.
func fileAgentDirs(t *testing.T) (srv *lokitest.Server, data, logPath string) {
	srv = lokitest.New(lokitest.Options{})
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	return srv, filepath.Join(dir, "data"), filepath.Join(dir, "app.log")
}

// exported gathers the agent's metric name: each series' value by its label
// pairs ("sink=loki"; "" for a series without labels).
func exported(t *testing.T, a *Agent, name string) map[string]float64 {
	t.Helper()
	mfs, err := a.metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, s := range mf.GetMetric() {
			var labels []string
			for _, l := range s.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			out[strings.Join(labels, ",")] = s.GetCounter().GetValue()
		}
	}
	return out
}

// readyz returns the status and body of the agent's /readyz.
func readyz(t *testing.T, a *Agent) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + a.AdminAddr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestNewerDataFilesAreMovedAside: after a downgrade the data directory
// holds a positions file and a disk queue (segment and head) from a newer
// wharf. wharf starts, moves each aside as .newer-<time> (not .corrupt-: it
// is whole, only unreadable here), says so in its log, counts it as
// newer_version, and delivers what is read.
func TestNewerDataFilesAreMovedAside(t *testing.T) {
	srv, data, logPath := fileAgentDirs(t)

	// Positions: this build's encoding with the version raised, as a newer
	// wharf would write it (a whole file, checksum intact).
	posPath := filepath.Join(data, "positions")
	enc := string(positions.Encode(map[string]string{"file/" + logPath: "something newer"}))
	newer := strings.Replace(enc, fmt.Sprintf("wharf-positions %d ", positions.Version), fmt.Sprintf("wharf-positions %d ", positions.Version+1), 1)
	// Disk queue: segment and head files whose header carries format
	// version 2 ("WQSG"/"WQHD", then a little-endian uint16), with bytes of
	// a layout this wharf cannot know after it.
	queueDir := filepath.Join(data, "queue", "loki")
	segment := filepath.Join(queueDir, "00000000000000000000.seg")
	head := filepath.Join(queueDir, "head")
	for path, content := range map[string]string{
		posPath: newer,
		segment: "WQSG\x02\x00" + strings.Repeat("\x5a", 4090),
		head:    "WQHD\x02\x00" + strings.Repeat("\x00", 30),
	} {
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	appendLines(t, logPath, "before start 0", "before start 1")

	var logs syncBuffer
	a, err := New(fileAgentConfig(data, logPath, srv.URL()), Deps{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatalf("New with files from a newer wharf: %v", err)
	}
	runAgent(t, a)
	appendLines(t, logPath, "after start 0", "after start 1", "after start 2")

	want := []string{"before start 0", "before start 1", "after start 0", "after start 1", "after start 2"}
	waitFor(t, func() string { return fmt.Sprintf("delivered %q, want %q", received(srv, ""), want) }, func() bool {
		return len(received(srv, "")) >= len(want)
	})
	if got := received(srv, ""); !slices.Equal(got, want) {
		t.Errorf("delivered %q, want %q", got, want)
	}

	for _, orig := range []string{posPath, segment, head} {
		aside, _ := filepath.Glob(orig + ".newer-*")
		if len(aside) != 1 {
			t.Errorf("%s not moved aside as .newer-: %v", orig, aside)
			continue
		}
		if !strings.Contains(logs.String(), aside[0]) {
			t.Errorf("the log does not say %s was moved to %s:\n%s", orig, aside[0], logs.String())
		}
	}
	if corrupt, _ := filepath.Glob(filepath.Join(data, "*.corrupt-*")); len(corrupt) != 0 {
		t.Errorf("moved aside as corrupt: %v", corrupt)
	}
	if corrupt, _ := filepath.Glob(filepath.Join(queueDir, "*.corrupt-*")); len(corrupt) != 0 {
		t.Errorf("moved aside as corrupt: %v", corrupt)
	}
	for _, msg := range []string{"positions file written by a newer wharf", "disk queue files written by a newer wharf"} {
		if !strings.Contains(logs.String(), msg) {
			t.Errorf("the log lacks %q:\n%s", msg, logs.String())
		}
	}
	m := a.metrics
	for _, c := range []struct {
		source string
		want   float64
	}{{"positions", 1}, {"queue", 2}} {
		if got := testutil.ToFloat64(m.Source.Errors.WithLabelValues(c.source, "newer_version")); got != c.want {
			t.Errorf(`wharf_source_errors_total{source=%q,kind="newer_version"} = %v, want %v`, c.source, got, c.want)
		}
		if got := testutil.ToFloat64(m.Source.Errors.WithLabelValues(c.source, "corrupt")); got != 0 {
			t.Errorf(`wharf_source_errors_total{source=%q,kind="corrupt"} = %v, want 0`, c.source, got)
		}
	}
}

// TestDeadLetterFailureShowsOnReadyz: while the last dead-letter write
// failed, /readyz answers 503 naming the directory and the error; a dead
// letter written afterwards makes it ready again.
func TestDeadLetterFailureShowsOnReadyz(t *testing.T) {
	srv, data, logPath := fileAgentDirs(t)
	deadDir := filepath.Join(data, "dead-letter")
	// A file where the dead-letter directory goes makes every write fail.
	if err := os.MkdirAll(data, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(deadDir, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	appendLines(t, logPath, "accepted 0")

	a, err := New(fileAgentConfig(data, logPath, srv.URL()), Deps{})
	if err != nil {
		t.Fatal(err)
	}
	runAgent(t, a)
	waitFor(t, func() string { return "the first line was not delivered" }, func() bool { return len(received(srv, "accepted")) == 1 })
	if code, body := readyz(t, a); code != http.StatusOK {
		t.Fatalf("/readyz before any dead letter: %d %s", code, body)
	}

	srv.FailNext(1, http.StatusBadRequest)
	appendLines(t, logPath, "refused 0")
	failed := a.metrics.Pipeline.EntriesDropped.WithLabelValues("loki", "dead_letter_failed")
	waitFor(t, func() string { return "the refused line was not counted as dead_letter_failed" }, func() bool { return testutil.ToFloat64(failed) == 1 })
	code, body := readyz(t, a)
	if want := "deadletter: cannot write in " + deadDir + ": "; code != http.StatusServiceUnavailable || !strings.Contains(body, want) || !strings.Contains(body, "not a directory") {
		t.Fatalf("/readyz after a failed dead letter: %d %q, want 503 with %q and the error", code, body, want)
	}

	if err := os.Remove(deadDir); err != nil {
		t.Fatal(err)
	}
	srv.FailNext(1, http.StatusBadRequest)
	appendLines(t, logPath, "refused 1")
	written := a.metrics.Pipeline.DeadLettered.WithLabelValues("loki", "invalid")
	waitFor(t, func() string { return "the second refused line was not dead-lettered" }, func() bool { return testutil.ToFloat64(written) == 1 })
	if code, body := readyz(t, a); code != http.StatusOK {
		t.Fatalf("/readyz after a dead letter was written: %d %s", code, body)
	}
}

// TestQueueSyncErrorsAreExported: each sink's disk queue reports its failed
// fsyncs (queue.Stats.SyncErrors, provoked in internal/queue's tests).
func TestQueueSyncErrorsAreExported(t *testing.T) {
	dir := t.TempDir()
	cfg := fileAgentConfig(filepath.Join(dir, "data"), filepath.Join(dir, "app.log"), "http://127.0.0.1:1/loki/api/v1/push")
	on := true
	cfg.File.Enabled = &on
	a, err := New(cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.closeSinks()
	got := exported(t, a, "wharf_queue_sync_errors_total")
	if want := map[string]float64{"sink=file": 0, "sink=loki": 0}; !maps.Equal(got, want) {
		t.Fatalf("wharf_queue_sync_errors_total: %v, want %v", got, want)
	}
}

// TestPositionsWriteErrorsAreExported: while the positions file cannot be
// written, delivery goes on, /readyz answers 503 naming it and
// wharf_positions_write_errors_total counts the failed writes; once it can
// be written again, /readyz is 200.
func TestPositionsWriteErrorsAreExported(t *testing.T) {
	srv, data, logPath := fileAgentDirs(t)
	positions := filepath.Join(data, "positions")
	appendLines(t, logPath, "line 0")
	a, err := New(fileAgentConfig(data, logPath, srv.URL()), Deps{})
	if err != nil {
		t.Fatal(err)
	}
	runAgent(t, a)
	waitFor(t, func() string { return "the first line was not delivered" }, func() bool { return len(received(srv, "line")) == 1 })
	writeErrors := func() float64 {
		n, ok := exported(t, a, "wharf_positions_write_errors_total")[""]
		if !ok {
			t.Fatal("wharf_positions_write_errors_total is not exported")
		}
		return n
	}
	if n := writeErrors(); n != 0 {
		t.Fatalf("wharf_positions_write_errors_total = %v before any failure", n)
	}

	// A non-empty directory where the file goes makes the rename fail.
	waitFor(t, func() string { return "the positions file was never written" }, func() bool {
		_, err := os.Stat(positions)
		return err == nil
	})
	if err := os.Remove(positions); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(positions, "x"), 0o750); err != nil {
		t.Fatal(err)
	}
	appendLines(t, logPath, "line 1")
	waitFor(t, func() string { return "no failed positions write was counted" }, func() bool { return writeErrors() > 0 })
	if got := received(srv, "line"); len(got) != 2 {
		t.Errorf("delivered %q while the positions could not be written", got)
	}
	if code, body := readyz(t, a); code != http.StatusServiceUnavailable || !strings.Contains(body, "positions: ") {
		t.Errorf("/readyz while the positions cannot be written: %d %q", code, body)
	}

	if err := os.RemoveAll(positions); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() string { return "/readyz did not recover" }, func() bool {
		code, _ := readyz(t, a)
		return code == http.StatusOK
	})
}
