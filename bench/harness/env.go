//go:build linux

package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

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
	root    string // module root
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

// build compiles a static binary of pkg (relative to the module root).
func (e *env) build(ctx context.Context, pkg, name string, extraEnv ...string) (string, error) {
	out := filepath.Join(e.tmp, name)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-o", out, pkg)
	cmd.Dir = e.root
	cmd.Env = append(append(os.Environ(), "CGO_ENABLED=0"), extraEnv...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v: %s", pkg, err, bytes.TrimSpace(b))
	}
	return out, nil
}

// loggenImage builds cmd/loggen into an image FROM scratch with docker
// import, tagged with the binary's hash. It is built as internal/dockertest
// builds it (same flags, same tag, same lock), so the tests and the harness
// share one image, imported only when loggen changes and left in place.
func (e *env) loggenImage(ctx context.Context) (string, error) {
	cache := filepath.Join(e.root, ".cache")
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(cache, "loggen-image.lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("lock: %w", err)
	}
	arch := runtime.GOARCH
	if out, err := dockerOut(ctx, "version", "--format", "{{.Server.Arch}}"); err == nil && out != "" {
		arch = out
	}
	dir, err := os.MkdirTemp(cache, "loggen-build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "loggen")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s", "-o", bin, "./cmd/loggen")
	cmd.Dir = e.root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/loggen: %v: %s", err, bytes.TrimSpace(b))
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	ref := "wharf-loggen:" + hex.EncodeToString(sum[:])[:12]
	if _, err := dockerOut(ctx, "image", "inspect", "--format", "{{.Id}}", ref); err == nil {
		return ref, nil
	}
	var archive bytes.Buffer
	tw := tar.NewWriter(&archive)
	if err := tw.WriteHeader(&tar.Header{Name: "loggen", Mode: 0o755, Size: int64(len(data)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}); err != nil {
		return "", err
	}
	if _, err := tw.Write(data); err != nil {
		return "", err
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	imp := exec.CommandContext(ctx, "docker", "import", "--change", `ENTRYPOINT ["/loggen"]`, "--change", "LABEL "+labelTest+"=1",
		"--message", "wharf test log generator", "-", ref)
	imp.Stdin = &archive
	if b, err := imp.CombinedOutput(); err != nil {
		return "", fmt.Errorf("docker import: %v: %s", err, bytes.TrimSpace(b))
	}
	return ref, nil
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
		if !alive(s.pid) {
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

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// dockerdPID finds the dockerd serving the docker CLI: the dockerd holding
// the listening socket of DOCKER_HOST (/var/run/docker.sock by default), as
// another daemon may run beside it. It returns 0 when there is none, or
// when DOCKER_HOST is not a local socket and several dockerd run.
func dockerdPID() int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if comm, err := os.ReadFile("/proc/" + e.Name() + "/comm"); err == nil && strings.TrimSpace(string(comm)) == "dockerd" {
			pids = append(pids, pid)
		}
	}
	if len(pids) <= 1 {
		if len(pids) == 1 {
			return pids[0]
		}
		return 0
	}
	sock := "/var/run/docker.sock"
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		path, ok := strings.CutPrefix(h, "unix://")
		if !ok {
			return 0
		}
		sock = path
	}
	inodes := socketInodes(sock)
	for _, pid := range pids {
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		for _, fd := range fds {
			link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
			if err == nil && inodes[link] {
				return pid
			}
		}
	}
	return 0
}

// socketInodes returns the "socket:[inode]" names of the unix sockets bound
// to path (the listener and its accepted connections share the path).
func socketInodes(path string) map[string]bool {
	out := map[string]bool{}
	data, err := os.ReadFile("/proc/net/unix")
	if err != nil {
		return out
	}
	resolved, err := filepath.EvalSymlinks(path)
	if err != nil {
		resolved = path
	}
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		// Num RefCount Protocol Flags Type St Inode Path
		if len(f) >= 8 && (f[7] == path || f[7] == resolved) {
			out["socket:["+f[6]+"]"] = true
		}
	}
	return out
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
