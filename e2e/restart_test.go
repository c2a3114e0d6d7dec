package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wharf-logs/wharf/internal/dockertest"
	"github.com/wharf-logs/wharf/internal/seq"
	"github.com/wharf-logs/wharf/internal/vlogstest"
)

// TestContainersStartedWhileStopped: wharf (default start_at: end) is
// stopped with SIGTERM; meanwhile one container writes 50 lines and exits
// and another writes 50 lines and keeps running; wharf is started again on
// the same data directory. All 100 lines must be in VictoriaLogs, each
// exactly once.
func TestContainersStartedWhileStopped(t *testing.T) {
	dockertest.Require(t)
	img := dockertest.LoggenImage(t)
	binary(t)
	t.Parallel()
	vl := vlogstest.Start(t)
	data := t.TempDir()
	cfg := inGroup(t, baseConfig(data, freePort(t))) + fmt.Sprintf("loki:\n  url: %s\n  batch_wait: 200ms\n", vl.PushURL())

	w := startWharf(t, data, cfg)
	w.stop()

	const lines = 50
	exited := dockertest.Run(t, dockertest.RunOptions{Image: img, Labels: groupLabels(t), Wait: true,
		Args: []string{"-lines", fmt.Sprint(lines), "-stderr", "0.2"}})
	running := dockertest.Run(t, dockertest.RunOptions{Image: img, Labels: groupLabels(t),
		Args: []string{"-lines", fmt.Sprint(lines), "-stderr", "0.2", "-sleep-before-exit", "1h"}})
	waitFor(t, 30*time.Second, "the running container to write its lines", func() bool {
		stdout, stderr := dockertest.Logs(t, running.ID)
		return strings.Count(stdout, "\n")+strings.Count(stderr, "\n") >= lines
	})

	w = startWharf(t, data, cfg)
	w.settled(t, "loki", 60*time.Second)
	m := w.metrics()
	w.stop()
	noDrops(t, m)
	vl.Flush(t)
	for _, c := range []dockertest.Container{exited, running} {
		var got []string
		for _, row := range vl.StreamRows(t, `{container="`+c.Name+`"}`) {
			got = append(got, row["_msg"])
		}
		if r := seq.CheckLines(c.Name, got, lines); !r.OK() || r.Lines != lines {
			t.Errorf("%s: %d rows in VictoriaLogs; %s", c.Name, len(got), r)
		}
	}
}

// TestRemovedWhileStoppedIsCounted: a container that runs and is removed
// (docker run --rm) while wharf is stopped cannot be read any more; the
// next start counts it in wharf_entries_dropped_total{reason="removed_unread"}
// and names it in the log.
func TestRemovedWhileStoppedIsCounted(t *testing.T) {
	dockertest.Require(t)
	img := dockertest.LoggenImage(t)
	binary(t)
	t.Parallel()
	data := t.TempDir()
	cfg := inGroup(t, baseConfig(data, freePort(t)))
	w := startWharf(t, data, cfg)
	w.stop()

	gone := dockertest.Run(t, dockertest.RunOptions{Image: img, Labels: groupLabels(t), Rm: true, Wait: true, Args: []string{"-lines", "20"}})

	w = startWharf(t, data, cfg)
	key := `wharf_entries_dropped_total{reason="removed_unread",sink="none"}`
	waitFor(t, 30*time.Second, "the removed container to be counted", func() bool { return w.metrics()[key] >= 1 })
	if got := w.metrics()[key]; got != 1 {
		t.Errorf("%s = %v, want 1", key, got)
	}
	w.stop()
	if log := tail(w.logPath, 200); !strings.Contains(log, "removed before its log was read") || !strings.Contains(log, gone.Name) {
		t.Errorf("the loss of %s is not in the log:\n%s", gone.Name, log)
	}
}
