package e2e

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wharf-logs/wharf/internal/dockertest"
	"github.com/wharf-logs/wharf/internal/seq"
)

// TestChurnLeavesNoLeak starts and removes 200 short-lived containers while
// wharf runs, then checks that go_goroutines and process_open_fds are back
// within 2 of their values before the churn, and that every line arrived.
func TestChurnLeavesNoLeak(t *testing.T) {
	t.Parallel() // keeps to its own containers: see inGroup
	dockertest.Require(t)
	img := dockertest.LoggenImage(t)
	data := t.TempDir()
	w := startWharf(t, data, inGroup(t, baseConfig(data, freePort(t))))

	// One long-lived container keeps a reader open through the churn.
	steady := dockertest.Run(t, dockertest.RunOptions{Image: img, Labels: groupLabels(t), Args: []string{"-rate", "20"}})

	// Idle connections to the daemon and idle file-sink files close after
	// 10 s; measure once
	// they have, so the baseline is the steady state.
	baseline := stableCounts(t, w)
	t.Logf("baseline: goroutines %v, fds %v", baseline[0], baseline[1])

	const n, parallel = 200, 8
	churnStart := time.Now()
	names := make(chan dockertest.Container, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, parallel)
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			args := []string{"-lines", "5", "-stderr", "0.4"}
			if i%10 == 0 {
				args = []string{"-lines", "50", "-rate", "500"}
			}
			c := dockertest.Run(t, dockertest.RunOptions{Image: img, Labels: groupLabels(t), Args: args})
			dockertest.Wait(t, c.ID)
			names <- c
		})
	}
	wg.Wait()
	close(names)
	var churned []dockertest.Container
	for c := range names {
		churned = append(churned, c)
	}
	waitFor(t, 60*time.Second, "every line of the churned containers", func() bool {
		for _, c := range churned {
			if len(readRecords(t, data+"/logs", c.Name)) < 5 {
				return false
			}
		}
		return true
	})
	t.Logf("%d containers ran and were collected in %v", n, time.Since(churnStart).Round(time.Second))
	for _, c := range churned {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			dockertest.Remove(t, c.ID)
		})
	}
	wg.Wait()
	t.Logf("removed in %v", time.Since(churnStart).Round(time.Second))
	waitFor(t, 30*time.Second, "destroyed containers to be forgotten", func() bool {
		return sumMetric(w.metrics(), "wharf_containers_watched{") == 1
	})
	after := stableCounts(t, w)
	t.Logf("after churn: goroutines %v, fds %v; containers discovered %v", after[0], after[1], w.metrics()["wharf_containers_discovered_total"])
	if d := after[0] - baseline[0]; d > 2 || d < -2 {
		t.Errorf("go_goroutines %v -> %v after %d containers", baseline[0], after[0], n)
	}
	if d := after[1] - baseline[1]; d > 2 || d < -2 {
		t.Errorf("process_open_fds %v -> %v after %d containers", baseline[1], after[1], n)
	}
	dockertest.Remove(t, steady.ID)
	w.stop()

	for _, c := range churned {
		want := int64(5)
		recs := readRecords(t, data+"/logs", c.Name)
		var lines []string
		for _, r := range recs {
			lines = append(lines, r.Line)
		}
		if len(lines) > 0 && strings.Contains(lines[0], "seq=1 ") && len(lines) == 50 {
			want = 50
		}
		if r := seq.CheckLines(c.Name, lines, want); !r.OK() {
			t.Errorf("%s", r)
		}
	}
	if t.Failed() {
		return
	}
	fmt.Printf("churn: %d containers, goroutines %v -> %v, fds %v -> %v\n", n, baseline[0], after[0], baseline[1], after[1])
}

// stableCounts returns goroutines and open descriptors at rest: the lowest
// values seen over 5 s, after idle connections and files had time to close.
// Transient ones (a positions write, a scrape's own connection) come and
// go; a leak raises the floor.
func stableCounts(t *testing.T, w *proc) [2]float64 {
	t.Helper()
	time.Sleep(12 * time.Second)
	low := [2]float64{-1, -1}
	for range 20 {
		m := w.metrics()
		for i, v := range []float64{m["go_goroutines"], m["process_open_fds"]} {
			if low[i] < 0 || v < low[i] {
				low[i] = v
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	return low
}
