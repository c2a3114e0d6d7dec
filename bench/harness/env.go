//go:build linux

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wharf-logs/wharf/bench/internal/host"
	"github.com/wharf-logs/wharf/internal/seq"
)

// Labels on every container the harness creates. wharf.test=1 marks test
// artefacts (as internal/dockertest does); wharf.bench carries the run's id,
// which wharf's include rule and the final clean-up select on.
const (
	labelTest  = "wharf.test"
	labelBench = "wharf.bench"
)

// env is what every scenario shares: the binaries, the image, the ids.
type env struct {
	tmp     string // binaries and wharf data directories
	out     string // results
	wharf   string // wharf binary; "" when measuring an external shipper
	image   string // loggen image
	runID   string
	dockerd int // dockerd's PID, 0 if not found
	log     io.Writer
}

func newRunID() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// moduleRoot asks the go command for the directory of the main module.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run the harness inside the wharf module (go env GOMOD is empty)")
	}
	return filepath.Dir(mod), nil
}

// dockerOut runs the docker CLI and returns its trimmed standard output.
func dockerOut(ctx context.Context, args ...string) (string, error) {
	const timeout = 2 * time.Minute
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(tctx, "docker", args...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() == nil && tctx.Err() != nil {
			return "", fmt.Errorf("docker %s: the daemon did not answer within %v", args[0], timeout)
		}
		return "", fmt.Errorf("docker %s: %v: %s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

// loggen describes the generator a container runs.
type loggen struct {
	rate   float64 // lines per second; 0 is as fast as possible
	lines  int64   // 0 writes until stopped
	size   int
	stderr float64
	delay  time.Duration // before the first line
}

func (g loggen) args() []string {
	f := seq.Format{Size: g.size, StderrFraction: g.stderr}
	args := append(f.Args(), "-rate", strconv.FormatFloat(g.rate, 'f', -1, 64))
	if g.lines > 0 {
		args = append(args, "-lines", strconv.FormatInt(g.lines, 10))
	}
	if g.delay > 0 {
		args = append(args, "-start-delay", g.delay.String())
	}
	return args
}

// runContainer starts a labelled loggen container and returns its id. The
// generator needs no network: without one, starting and removing containers
// costs dockerd less (no bridge endpoint to set up and release), which
// keeps its share out of the measurement.
func (e *env) runContainer(ctx context.Context, name string, g loggen) (string, error) {
	args := []string{"run", "-d", "--name", name, "--label", labelTest + "=1", "--label", labelBench + "=" + e.runID,
		"--network", "none", "--log-driver", "json-file", e.image}
	return dockerOut(ctx, append(args, g.args()...)...)
}

// stopContainers stops containers (loggen flushes and exits on SIGTERM).
func stopContainers(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := dockerOut(ctx, append([]string{"stop", "--time", "10"}, ids...)...)
	return err
}

// removeContainers force-removes containers by id.
func removeContainers(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := dockerOut(ctx, append([]string{"rm", "--force", "--volumes"}, ids...)...)
	if err != nil && strings.Contains(strings.ToLower(err.Error()), "no such container") {
		return nil
	}
	return err
}

// cleanup removes every container of this run, and only those.
func (e *env) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := dockerOut(ctx, "ps", "--all", "--quiet", "--no-trunc", "--filter", "label="+labelBench+"="+e.runID)
	if err != nil {
		fmt.Fprintln(e.log, "harness: clean-up:", err)
		return
	}
	if err := removeContainers(ctx, strings.Fields(out)); err != nil {
		fmt.Fprintln(e.log, "harness: clean-up:", err)
	}
}

// written returns how many lines a stopped loggen container wrote, as
// Docker recorded them: the highest sequence number among the last lines of
// its log.
func written(ctx context.Context, id string) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", "logs", "--tail", "200", id)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("docker logs %s: %v: %.200s", id, err, out.String())
	}
	var n int64
	for _, l := range strings.Split(out.String(), "\n") {
		if s, _, _, ok := seq.ParseLine(l); ok {
			n = max(n, s)
		}
	}
	return n, nil
}

// shipper is the process being measured: wharf started by the harness, or
// an external process given by its PID.
type shipper struct {
	pid        int
	metricsURL string // Prometheus exposition, "" if none
	cmd        *exec.Cmd
	done       chan error
	logPath    string
	exitErr    error
	stopped    bool
}

// startWharf runs wharf with cfg (YAML) and waits until /readyz answers
// 200. Its output goes to logPath.
func (e *env) startWharf(ctx context.Context, cfg, name, listen string, procs int) (*shipper, error) {
	path := filepath.Join(e.tmp, name+".yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	logPath := filepath.Join(e.out, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(e.wharf, "run", "--config", path)
	if procs > 0 {
		cmd.Env = append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(procs))
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	s := &shipper{pid: cmd.Process.Pid, metricsURL: "http://" + listen + "/metrics", cmd: cmd, done: make(chan error, 1), logPath: logPath}
	go func() { s.done <- cmd.Wait(); logf.Close() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if err := s.exited(); err != nil {
			return nil, fmt.Errorf("%w\n%s", err, tail(logPath, 20))
		}
		resp, err := scrapeClient.Get("http://" + listen + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			s.stop(5 * time.Second)
			return nil, fmt.Errorf("wharf not ready after 60 s\n%s", tail(logPath, 20))
		}
		select {
		case <-ctx.Done():
			s.stop(5 * time.Second)
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// exited returns an error once a started wharf has exited.
func (s *shipper) exited() error {
	if s.cmd == nil {
		if !host.Alive(s.pid) {
			return fmt.Errorf("the shipper (PID %d) is gone", s.pid)
		}
		return nil
	}
	if s.stopped {
		return s.exitErr
	}
	select {
	case err := <-s.done:
		s.stopped, s.exitErr = true, fmt.Errorf("wharf exited: %v", err)
		return s.exitErr
	default:
		return nil
	}
}

// stop sends SIGTERM to a wharf the harness started and waits for it,
// killing it after grace. It returns wharf's exit error (nil for status 0).
// An external shipper is left alone.
func (s *shipper) stop(grace time.Duration) error {
	if s.cmd == nil {
		return nil
	}
	if s.stopped {
		return s.exitErr
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		s.stopped, s.exitErr = true, err
	case <-time.After(grace):
		s.cmd.Process.Kill()
		<-s.done
		s.stopped, s.exitErr = true, fmt.Errorf("did not stop within %v of SIGTERM; killed", grace)
	}
	return s.exitErr
}

func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// parallel runs fn for each item, at most n at a time, and joins the
// errors.
func parallel[T any](items []T, n int, fn func(T) error) error {
	var mu sync.Mutex
	var errs []error
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	for _, it := range items {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := fn(it); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
