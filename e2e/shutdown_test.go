package e2e

import (
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wharf-logs/wharf/internal/dockertest"
	"github.com/wharf-logs/wharf/internal/lokitest"
)

// TestShutdownWithLokiDown stops wharf while Loki refuses connections: the
// first signal waits up to shutdown_timeout and exits 1 saying data was left
// undelivered; a second signal exits at once.
func TestShutdownWithLokiDown(t *testing.T) {
	dockertest.Require(t)
	img := dockertest.LoggenImage(t)
	srv := lokitest.New(lokitest.Options{})
	t.Cleanup(srv.Close)

	for _, tc := range []struct {
		name      string
		timeout   string
		signals   int
		minWait   time.Duration
		maxWait   time.Duration
		logSubstr string
	}{
		{"timeout", "3s", 1, 2500 * time.Millisecond, 15 * time.Second, "undelivered"},
		{"second signal", "5m", 2, 0, 5 * time.Second, "second signal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := t.TempDir()
			cfg := baseConfig(data, freePort(t)) + "loki:\n  url: " + srv.URL() + "\n  batch_wait: 100ms\n  min_backoff: 50ms\n  max_backoff: 200ms\n"
			cfg = strings.Replace(cfg, "shutdown_timeout: 20s", "shutdown_timeout: "+tc.timeout, 1)
			w := startWharf(t, data, cfg)
			srv.Stop() // connection refused from now on
			c := dockertest.Run(t, dockertest.RunOptions{Image: img, Args: []string{"-lines", "100"}})
			dockertest.Wait(t, c.ID)
			waitFor(t, 20*time.Second, "a failing push", func() bool {
				return w.metrics()[`wharf_sink_up{sink="loki"}`] == 0
			})
			start := time.Now()
			for range tc.signals {
				w.cmd.Process.Signal(syscall.SIGTERM)
				time.Sleep(300 * time.Millisecond)
			}
			var err error
			select {
			case err = <-w.done:
			case <-time.After(tc.maxWait + 5*time.Second):
				t.Fatalf("wharf still running %v after the signal", tc.maxWait+5*time.Second)
			}
			took := time.Since(start)
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("exit %v, want status 1\n%s", err, tail(w.logPath, 20))
			}
			if took < tc.minWait || took > tc.maxWait {
				t.Fatalf("exited after %v, want between %v and %v", took, tc.minWait, tc.maxWait)
			}
			if log := tail(w.logPath, 20); !strings.Contains(log, tc.logSubstr) {
				t.Fatalf("log lacks %q:\n%s", tc.logSubstr, log)
			}
		})
	}
}
