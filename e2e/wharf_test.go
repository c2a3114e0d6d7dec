// Package e2e runs the wharf binary against the real Docker daemon and a
// real Loki-protocol store (VictoriaLogs) and checks what arrives. The tests
// skip when no Docker daemon answers, and fail instead when WHARF_E2E=1.
package e2e

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wharf-logs/wharf/internal/dockertest"
)

// TestMain removes any container this run left behind. The tests that run
// in parallel (see inGroup) mostly wait, on timers and on Docker, not on the
// CPU: unless -parallel says otherwise, all of them run at once rather than
// GOMAXPROCS at a time.
func TestMain(m *testing.M) {
	flag.Parse()
	parallelSet := false
	flag.Visit(func(f *flag.Flag) { parallelSet = parallelSet || f.Name == "test.parallel" })
	if !parallelSet {
		flag.Set("test.parallel", "8")
	}
	code := m.Run()
	if err := dockertest.Cleanup(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	if wharfBin != "" {
		os.RemoveAll(filepath.Dir(wharfBin))
	}
	os.Exit(code)
}

var (
	buildOnce sync.Once
	wharfBin  string
	buildErr  error
)

// binary builds cmd/wharf once per test process.
func binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "wharf-e2e-bin")
		if err != nil {
			buildErr = err
			return
		}
		wharfBin = filepath.Join(dir, "wharf")
		cmd := exec.Command("go", "build", "-o", wharfBin, "../cmd/wharf")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return wharfBin
}

func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// proc is a running wharf process.
type proc struct {
	t       testing.TB
	cmd     *exec.Cmd
	admin   string
	dataDir string
	logPath string
	done    chan error
}

// baseConfig returns a config collecting only this test run's containers,
// read as the default (auto) says.
func baseConfig(dataDir, listen string) string {
	return modeConfig(dataDir, listen, "auto")
}

// modeConfig is baseConfig with docker.read_from set.
func modeConfig(dataDir, listen, readFrom string) string {
	return configHead(dataDir, listen) + fmt.Sprintf(`docker:
  read_from: %s
  include:
    - label: wharf.test.run=%s
`, readFrom, dockertest.RunID())
}

// filesConfig returns a config shipping no container but the plain files
// that glob matches, from their beginning, labelled job; the caller may add
// to the files entry, then the loki section.
func filesConfig(dataDir, listen, glob, job string) string {
	return configHead(dataDir, listen) + fmt.Sprintf(`docker:
  enabled: false
files:
  - paths: [%q]
    start_at: beginning
    labels: {job: %s}
`, glob, job)
}

// configHead is what every test's config starts with.
func configHead(dataDir, listen string) string {
	return fmt.Sprintf(`data_dir: %s
listen: %s
shutdown_timeout: 20s
log:
  level: debug
`, dataDir, listen)
}

// startWharf runs wharf with the given config (baseConfig plus extra YAML
// appended by the caller) and waits until it reports ready.
func startWharf(t testing.TB, dataDir, config string, args ...string) *proc {
	t.Helper()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "wharf.yaml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	listen := ""
	for _, l := range strings.Split(config, "\n") {
		if v, ok := strings.CutPrefix(l, "listen: "); ok {
			listen = v
		}
	}
	p := &proc{t: t, admin: "http://" + listen, dataDir: dataDir, logPath: filepath.Join(dir, "wharf.log"), done: make(chan error, 1)}
	logf, err := os.Create(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(binary(t), append([]string{"run", "--config", cfgPath}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait(); logf.Close() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("wharf log (last lines):\n%s", tail(p.logPath, 40))
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-p.done:
			t.Fatalf("wharf exited at start: %v\n%s", err, tail(p.logPath, 40))
		default:
		}
		if resp, err := http.Get(p.admin + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("wharf not ready after 30s\n%s", tail(p.logPath, 40))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM and requires a clean exit.
func (p *proc) stop() {
	p.t.Helper()
	if _, err := p.stopTimed(); err != nil {
		p.t.Fatalf("wharf exited with %v\n%s", err, tail(p.logPath, 40))
	}
}

// stopTimed sends SIGTERM and returns how long wharf took to exit and how
// it exited; it fails the test if wharf has not exited after a minute.
func (p *proc) stopTimed() (time.Duration, error) {
	p.t.Helper()
	start := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		return time.Since(start), err
	case <-time.After(time.Minute):
		p.cmd.Process.Kill()
		p.t.Fatalf("wharf did not stop within a minute of SIGTERM\n%s", tail(p.logPath, 40))
		return 0, nil
	}
}

// metrics scrapes /metrics into "name{labels}" -> value.
func (p *proc) metrics() map[string]float64 {
	p.t.Helper()
	resp, err := http.Get(p.admin + "/metrics")
	if err != nil {
		p.t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// settled waits until wharf has confirmed everything it read: entries read
// equal entries sent (per sink) and nothing is buffered, stable for a while.
func (p *proc) settled(t testing.TB, sinkName string, timeout time.Duration) map[string]float64 {
	t.Helper()
	var m map[string]float64
	stableSince := time.Time{}
	last := -1.0
	defer func() {
		if t.Failed() {
			for k, v := range m {
				if strings.HasPrefix(k, "wharf_") {
					t.Logf("  %s %v", k, v)
				}
			}
		}
	}()
	waitFor(t, timeout, "wharf to deliver everything it read", func() bool {
		m = p.metrics()
		read := sumMetric(m, "wharf_entries_read_total{")
		sent := m[`wharf_entries_sent_total{sink="`+sinkName+`"}`]
		for k, v := range m {
			if strings.HasPrefix(k, "wharf_entries_dropped_total{") && strings.Contains(k, `sink="`+sinkName+`"`) {
				sent += v
			}
		}
		if read != sent || m[`wharf_sink_queue_bytes{sink="`+sinkName+`"}`] != 0 || read != last {
			last = read
			stableSince = time.Time{}
			return false
		}
		if stableSince.IsZero() {
			stableSince = time.Now()
		}
		return time.Since(stableSince) > time.Second
	})
	return m
}

// sumMetric adds up every series whose name and labels start with prefix.
func sumMetric(m map[string]float64, prefix string) float64 {
	var n float64
	for k, v := range m {
		if strings.HasPrefix(k, prefix) {
			n += v
		}
	}
	return n
}

func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	data, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

var _ = context.Background

// Tests that run in parallel keep to their own containers: each labels what
// it starts with its own group, and its wharf collects only that group.
const labelGroup = "wharf.test.group"

// group is t's group: the run's id and the test's name.
func group(t testing.TB) string {
	return dockertest.RunID() + "-" + strings.ReplaceAll(t.Name(), "/", "-")
}

// groupLabels labels a container as t's.
func groupLabels(t testing.TB) map[string]string {
	return map[string]string{labelGroup: group(t)}
}

// inGroup makes a config from baseConfig or modeConfig collect only t's
// group instead of the whole run.
func inGroup(t testing.TB, config string) string {
	run := "label: " + dockertest.LabelRun + "=" + dockertest.RunID()
	if !strings.Contains(config, run) {
		t.Fatalf("config does not collect the run's containers:\n%s", config)
	}
	return strings.Replace(config, run, "label: "+labelGroup+"="+group(t), 1)
}
