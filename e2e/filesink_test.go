package e2e

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wharf-logs/wharf/internal/dockertest"
	"github.com/wharf-logs/wharf/internal/seq"
)

// TestFileSinkClosesIdleFiles runs 60 short-lived containers, each writing a
// few lines to its own file-sink file, and then lets wharf sit with nothing
// to write: within the file sink's idle timeout (10 s) process_open_fds must
// be back at its value before the containers, although no later batch comes
// to close the files on its way.
func TestFileSinkClosesIdleFiles(t *testing.T) {
	t.Parallel() // keeps to its own containers: see inGroup
	dockertest.Require(t)
	img := dockertest.LoggenImage(t)
	data := t.TempDir()
	w := startWharf(t, data, inGroup(t, baseConfig(data, freePort(t))))
	baseline := stableCounts(t, w)
	t.Logf("baseline: goroutines %v, fds %v", baseline[0], baseline[1])

	const n, parallel = 60, 8
	cs := make([]dockertest.Container, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, parallel)
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			cs[i] = dockertest.Run(t, dockertest.RunOptions{Image: img, Labels: groupLabels(t), Args: []string{"-lines", "5"}})
			dockertest.Wait(t, cs[i].ID)
		})
	}
	wg.Wait()
	waitFor(t, 60*time.Second, "every line of the containers", func() bool {
		for _, c := range cs {
			if len(readRecords(t, data+"/logs", c.Name)) < 5 {
				return false
			}
		}
		return true
	})
	written := time.Now()
	peak := w.metrics()["process_open_fds"]
	for _, c := range cs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			dockertest.Remove(t, c.ID)
		})
	}
	wg.Wait()
	waitFor(t, 30*time.Second, "removed containers to be forgotten", func() bool {
		return sumMetric(w.metrics(), "wharf_containers_watched{") == 0
	})

	// The last file was written at about `written`; give the idle timeout
	// and a few seconds of slack (Docker connections closing, scrapes).
	var fds float64
	deadline := written.Add(10*time.Second + 5*time.Second)
	for {
		fds = w.metrics()["process_open_fds"]
		if fds <= baseline[1]+2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("fds: baseline %v, %v after the containers wrote, %v %v after the last write", baseline[1], peak, fds, time.Since(written).Round(100*time.Millisecond))
	if fds > baseline[1]+2 {
		t.Errorf("process_open_fds %v, %v above the baseline %v, %v after the last line was written", fds, fds-baseline[1], baseline[1], time.Since(written).Round(time.Second))
	}
	w.stop()
	for _, c := range cs {
		var lines []string
		for _, r := range readRecords(t, data+"/logs", c.Name) {
			lines = append(lines, r.Line)
		}
		if r := seq.CheckLines(c.Name, lines, 5); !r.OK() {
			t.Errorf("%s", r)
		}
	}
	if !t.Failed() {
		fmt.Printf("file sink idle: %d containers, fds %v -> %v -> %v\n", n, baseline[1], peak, fds)
	}
}

// TestFileSinkTotalCapUnderNameChurn runs 40 containers, each with a name
// of its own, writing about 4 MiB to the file sink in all with
// file.max_total_bytes at 1 MiB: the directory must stay under the cap, the
// removals must be counted, and the container that wrote last must have all
// its lines.
func TestFileSinkTotalCapUnderNameChurn(t *testing.T) {
	t.Parallel() // keeps to its own containers: see inGroup
	dockertest.Require(t)
	img := dockertest.LoggenImage(t)
	data := t.TempDir()
	const limit = 1 << 20
	cfg := inGroup(t, baseConfig(data, freePort(t))) + "file:\n  max_file_bytes: 64KiB\n  max_total_bytes: 1MiB\n"
	w := startWharf(t, data, cfg)

	const n, parallel, lines = 40, 8, 200
	args := []string{"-lines", fmt.Sprint(lines), "-size", "200", "-rate", "2000"}
	var wg sync.WaitGroup
	sem := make(chan struct{}, parallel)
	for range n - 1 {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c := dockertest.Run(t, dockertest.RunOptions{Image: img, Labels: groupLabels(t), Args: args})
			dockertest.Wait(t, c.ID)
		})
	}
	wg.Wait()
	w.settled(t, "file", 60*time.Second)
	last := dockertest.Run(t, dockertest.RunOptions{Image: img, Labels: groupLabels(t), Args: args})
	dockertest.Wait(t, last.ID)
	m := w.settled(t, "file", 60*time.Second)

	var onDisk int64
	ents, err := os.ReadDir(data + "/logs")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		onDisk += info.Size()
	}
	removedFiles := m[`wharf_file_sink_files_removed_total{reason="max_total_bytes"}`]
	removedBytes := m[`wharf_file_sink_bytes_removed_total{reason="max_total_bytes"}`]
	rotated := m[`wharf_file_sink_files_removed_total{reason="max_files"}`]
	t.Logf("%d containers, %.0f lines sent; %d files, %d bytes left in logs/; removed for the cap: %.0f files, %.0f bytes; by max_files: %.0f",
		n, m[`wharf_entries_sent_total{sink="file"}`], len(ents), onDisk, removedFiles, removedBytes, rotated)
	if onDisk > limit {
		t.Errorf("logs/ holds %d bytes, over file.max_total_bytes (%d)", onDisk, limit)
	}
	if removedFiles == 0 || removedBytes < float64(2*limit) {
		t.Errorf("removed for the cap: %v files, %v bytes; want the 3 MiB or so above the cap", removedFiles, removedBytes)
	}
	if got := m["wharf_file_sink_disk_bytes"]; got != float64(onDisk) {
		t.Errorf("wharf_file_sink_disk_bytes %v, logs/ holds %d", got, onDisk)
	}
	var got []string
	for _, r := range readRecords(t, data+"/logs", last.Name) {
		got = append(got, r.Line)
	}
	if r := seq.CheckLines(last.Name, got, lines); !r.OK() {
		t.Errorf("the container that wrote last: %s", r)
	}
	if log := tail(w.logPath, 1000); !strings.Contains(log, "file.max_total_bytes") {
		t.Errorf("no warning about removals in the log")
	}
	w.stop()
	if !t.Failed() {
		fmt.Printf("file sink cap: %d containers, %.0f bytes removed in %.0f files, %d bytes left (cap %d)\n", n, removedBytes, removedFiles, onDisk, limit)
	}
}
