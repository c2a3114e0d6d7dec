package e2e

import (
	"fmt"
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
