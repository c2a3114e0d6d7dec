package e2e

import (
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wharf-logs/wharf/internal/diskfulltest"
	"github.com/wharf-logs/wharf/internal/dockertest"
	"github.com/wharf-logs/wharf/internal/lokitest"
	"github.com/wharf-logs/wharf/internal/seq"
)

// readyz returns /readyz's status and body.
func (p *proc) readyz() (int, string) {
	p.t.Helper()
	resp, err := http.Get(p.admin + "/readyz")
	if err != nil {
		p.t.Fatalf("readyz: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// TestDataDirFullEndToEnd fills the file system of wharf's data directory
// (a 32 MiB tmpfs) while the receiver is down and wharf is queueing to disk,
// so the disk queue and the positions file cannot be written. wharf keeps
// running and says so on /readyz, in /metrics and in its log; when the
// receiver is back and space returns, every line arrives.
//
// A full disk is the fault that can be made here: wharf runs as root, which
// chmod does not stop, and a tmpfs cannot be remounted read-only while wharf
// holds files open for writing (the kernel answers EBUSY).
func TestDataDirFullEndToEnd(t *testing.T) {
	t.Parallel() // keeps to its own containers: see inGroup
	dockertest.Require(t)
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	img := dockertest.LoggenImage(t)
	binary(t)
	data := diskfulltest.Tmpfs(t, "32m")
	srv := lokitest.New(lokitest.Options{KeepDuplicates: true})
	t.Cleanup(srv.Close)
	cfg := inGroup(t, baseConfig(data, freePort(t))) + "buffer:\n  max_bytes: 1MiB\nqueue:\n  max_bytes: 16MiB\nloki:\n  url: " + srv.URL() +
		"\n  batch_size: 256KiB\n  batch_wait: 200ms\n  min_backoff: 100ms\n  max_backoff: 1s\n"
	w := startWharf(t, data, cfg)

	const rate, total = 500, 25000 // 50 s
	c := dockertest.Run(t, dockertest.RunOptions{Image: img, Labels: groupLabels(t),
		Args: []string{"-lines", strconv.Itoa(total), "-rate", strconv.Itoa(rate), "-stderr", "0.25", "-size", "200"}})
	time.Sleep(3 * time.Second)

	// waitReady waits for /readyz to answer want, with every one of the
	// reasons, and returns its body.
	waitReady := func(what string, want int, reasons ...string) string {
		t.Helper()
		var body string
		waitFor(t, 60*time.Second, what, func() bool {
			code, b := w.readyz()
			body = b
			if code != want {
				return false
			}
			for _, r := range reasons {
				if !strings.Contains(b, r) {
					return false
				}
			}
			return true
		})
		return body
	}

	// A: the receiver is up, the positions file cannot be written. Lines
	// keep flowing; their positions stay in memory.
	filler := diskfulltest.Fill(t, data)
	t.Log("A: data directory full, receiver up")
	body := waitReady("/readyz to report the positions", http.StatusServiceUnavailable, "positions:", "no space left on device")
	t.Logf("A: /readyz: %s", body)
	sent := w.metrics()[`wharf_entries_sent_total{sink="loki"}`]
	time.Sleep(3 * time.Second)
	if now := w.metrics()[`wharf_entries_sent_total{sink="loki"}`]; now <= sent {
		t.Errorf("delivery stopped while the positions could not be written (%v -> %v)", sent, now)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	freed := time.Now()
	waitReady("/readyz to recover from A", http.StatusOK)
	t.Logf("A: ready again %v after space returned", time.Since(freed).Round(100*time.Millisecond))

	// B: the receiver goes down, wharf queues to disk, then the disk fills.
	srv.Stop()
	waitFor(t, 30*time.Second, "wharf to queue to disk", func() bool { return w.metrics()[`wharf_queue_bytes{sink="loki"}`] > 0 })
	filler = diskfulltest.Fill(t, data)
	t.Log("B: data directory full, receiver down")
	body = waitReady("/readyz to report the queue", http.StatusServiceUnavailable, "queue:", "no space left on device")
	t.Logf("B: /readyz: %s", body)
	time.Sleep(5 * time.Second)
	m := w.metrics()
	if n := m[`wharf_source_errors_total{kind="write",source="queue"}`]; n == 0 {
		t.Error("wharf_source_errors_total{source=queue,kind=write} is 0 while the queue cannot be written")
	}
	log := tail(w.logPath, 1000)
	for _, want := range []string{"cannot write the disk queue", "cannot write positions", "positions written again"} {
		if !strings.Contains(log, want) {
			t.Errorf("the log does not say %q", want)
		}
	}
	if w.cmd.ProcessState != nil {
		t.Fatal("wharf exited while the disk was full")
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	freed = time.Now()
	waitReady("/readyz to recover from B", http.StatusOK)
	t.Logf("B: ready again %v after space and receiver returned", time.Since(freed).Round(100*time.Millisecond))
	dockertest.Wait(t, c.ID)
	m = w.settled(t, "loki", 3*time.Minute)
	w.stop()

	r := seq.CheckLines(c.Name, receiverLines(srv, c.Name), total)
	if r.MissingCount() > 0 || len(r.OutOfOrder) > 0 || r.Unparsed > 0 {
		t.Fatalf("%s", r)
	}
	t.Logf("%d lines, %d duplicated; queue write errors %v", total, len(r.Duplicated), m[`wharf_source_errors_total{kind="write",source="queue"}`])
}
