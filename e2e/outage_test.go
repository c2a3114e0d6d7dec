package e2e

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wharf-logs/wharf/internal/dockertest"
	"github.com/wharf-logs/wharf/internal/lokitest"
	"github.com/wharf-logs/wharf/internal/seq"
)

// TestOutageQueueKeepsRotatedLogs takes the receiver down (connection
// refused) while a container logs 1,000 lines/s with Docker rotation
// max-size=1m,max-file=2, which keeps far less than the outage's worth of
// logs. wharf keeps reading into its disk queue, so after recovery every
// line arrives, in order per stream.
//
// The CI run is short; the long run of the "Never lose" issue is
//
//	WHARF_OUTAGE_SECONDS=600 go test ./e2e -run TestOutageQueueKeepsRotatedLogs -v -timeout 60m
func TestOutageQueueKeepsRotatedLogs(t *testing.T) {
	t.Parallel() // keeps to its own containers: see inGroup
	dockertest.Require(t)
	img := dockertest.LoggenImage(t)
	binary(t)
	outage := time.Duration(envInt("WHARF_OUTAGE_SECONDS", 45)) * time.Second
	srv := lokitest.New(lokitest.Options{KeepDuplicates: true, CountOnly: false})
	t.Cleanup(srv.Close)
	data := t.TempDir()
	cfg := inGroup(t, baseConfig(data, freePort(t))) + "buffer:\n  max_bytes: 2MiB\nloki:\n  url: " + srv.URL() + "\n  batch_wait: 200ms\n  min_backoff: 100ms\n  max_backoff: 2s\n"
	w := startWharf(t, data, cfg)

	const rate = 1000
	total := int64(rate) * int64((outage + 20*time.Second).Seconds())
	c := dockertest.Run(t, dockertest.RunOptions{Image: img, Labels: groupLabels(t),
		Args:    []string{"-lines", strconv.FormatInt(total, 10), "-rate", strconv.Itoa(rate), "-stderr", "0.25"},
		LogOpts: map[string]string{"max-size": "1m", "max-file": "2"}})
	time.Sleep(5 * time.Second)
	srv.Stop()
	t.Logf("receiver down for %v", outage)
	var peakQueue, peakRSS float64
	deadline := time.Now().Add(outage)
	for time.Now().Before(deadline) {
		m := w.metrics()
		peakQueue = max(peakQueue, m[`wharf_queue_bytes{sink="loki"}`])
		peakRSS = max(peakRSS, m["process_resident_memory_bytes"])
		time.Sleep(time.Second)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	recovered := time.Now()
	dockertest.Wait(t, c.ID)
	m := w.settled(t, "loki", 5*time.Minute)
	t.Logf("caught up %v after recovery; queue peak %.1f MiB, RSS peak %.1f MiB (now %.1f MiB)",
		time.Since(recovered).Round(time.Second), peakQueue/(1<<20), peakRSS/(1<<20), m["process_resident_memory_bytes"]/(1<<20))
	w.stop()
	if peakQueue == 0 {
		t.Error("the disk queue was never used")
	}

	var lines []string
	for _, e := range srv.Entries() {
		if strings.Contains(e.Labels, `container="`+c.Name+`"`) {
			lines = append(lines, e.Line)
		}
	}
	r := seq.CheckLines(c.Name, lines, total)
	if r.MissingCount() > 0 || len(r.OutOfOrder) > 0 || r.Unparsed > 0 {
		t.Fatalf("%s", r)
	}
	if os.Getenv("WHARF_OUTAGE_REPORT") != "" {
		fmt.Printf("outage %v: %d lines, %d duplicated, queue peak %.1f MiB, RSS peak %.1f MiB\n", outage, total, len(r.Duplicated), peakQueue/(1<<20), peakRSS/(1<<20))
	}
}

// TestDestroyedWhileQueued removes a container while its lines wait in the
// disk queue for the receiver to come back: they all arrive, and its
// position is forgotten once they are confirmed.
func TestDestroyedWhileQueued(t *testing.T) {
	dockertest.Require(t)
	img := dockertest.LoggenImage(t)
	srv := lokitest.New(lokitest.Options{KeepDuplicates: true})
	t.Cleanup(srv.Close)
	data := t.TempDir()
	// Far more than the buffer and the two batches outside it (one in
	// flight, one staged) hold, so the queue must take some.
	cfg := baseConfig(data, freePort(t)) + "buffer:\n  max_bytes: 1MiB\nloki:\n  url: " + srv.URL() + "\n  batch_size: 256KiB\n  batch_wait: 200ms\n  min_backoff: 100ms\n  max_backoff: 1s\n"
	w := startWharf(t, data, cfg)
	srv.Stop()
	c := dockertest.Run(t, dockertest.RunOptions{Image: img, Args: []string{"-lines", "20000", "-size", "200", "-stderr", "0.3"}})
	dockertest.Wait(t, c.ID)
	waitFor(t, 30*time.Second, "the container's lines to be read", func() bool {
		return sumMetric(w.metrics(), "wharf_entries_read_total{") >= 20000
	})
	// A full buffer waits up to a second for the sink before it spills
	// to the disk queue.
	waitFor(t, 10*time.Second, "lines to be queued to disk", func() bool {
		return w.metrics()[`wharf_queue_bytes{sink="loki"}`] > 0
	})
	dockertest.Remove(t, c.ID)
	time.Sleep(2 * time.Second)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	w.settled(t, "loki", 2*time.Minute)
	w.stop()
	var lines []string
	for _, e := range srv.Entries() {
		if strings.Contains(e.Labels, `container="`+c.Name+`"`) {
			lines = append(lines, e.Line)
		}
	}
	if r := seq.CheckLines(c.Name, lines, 20000); r.MissingCount() > 0 || len(r.OutOfOrder) > 0 {
		t.Fatalf("%s", r)
	}
	pos, err := os.ReadFile(data + "/positions")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(pos), c.ID) {
		t.Fatalf("the destroyed container's position is still saved:\n%s", pos)
	}
}
