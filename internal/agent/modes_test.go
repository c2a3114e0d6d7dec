package agent

import (
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestDataDirModes: every directory wharf makes under its data directory is
// 0700 and every file 0600, whatever the umask (0 here, which grants all
// that is asked): positions, disk queues, dead letters and the file sink's
// logs alike.
func TestDataDirModes(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	srv, data, logPath := fileAgentDirs(t)
	cfg := fileAgentConfig(data, logPath, srv.URL())
	on := true
	cfg.File.Enabled = &on
	appendLines(t, logPath, "accepted 0")
	a, err := New(cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	runAgent(t, a)
	waitFor(t, func() string { return "the first line was not delivered" }, func() bool { return len(received(srv, "accepted")) == 1 })
	srv.FailNext(1, http.StatusBadRequest)
	appendLines(t, logPath, "refused 0")
	written := a.metrics.Pipeline.DeadLettered.WithLabelValues("loki", "invalid")
	waitFor(t, func() string { return "the refused line was not dead-lettered" }, func() bool { return testutil.ToFloat64(written) == 1 })
	waitFor(t, func() string { return "the positions file was never written" }, func() bool {
		_, err := os.Stat(filepath.Join(data, "positions"))
		return err == nil
	})

	seen := map[string]bool{}
	err = filepath.WalkDir(data, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(data, path)
		seen[rel] = true
		want := os.FileMode(0o600)
		if d.IsDir() {
			want = os.ModeDir | 0o700
		}
		if fi.Mode() != want {
			t.Errorf("%s has mode %v, want %v", rel, fi.Mode(), want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{".", "positions", "dead-letter", "dead-letter/loki.ndjson", "logs", "queue", "queue/loki", "queue/file"} {
		if !seen[p] {
			t.Errorf("%s was not made; the test checks nothing there (seen %v)", p, seen)
		}
	}
}
