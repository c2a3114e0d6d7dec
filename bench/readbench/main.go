// Command readbench measures how wharf reads container logs: the same
// json-file read through the Engine API and from disk, into a counting
// Loki-protocol receiver (internal/lokitest, which decodes every push) on
// loopback, reporting throughput, wharf's and dockerd's CPU seconds per GiB
// of json-file, and wharf's peak RSS. A light-load run measures wharf's CPU
// share and RSS with a few slow containers.
//
//	go run ./bench/readbench -gib 1 -modes file,api -procs 1
//	go run ./bench/readbench -light 8 -light-rate 50 -light-seconds 60
//
// It builds wharf and the log generator image itself, labels every container
// it creates (wharf.test=1) and removes them. Needs Docker and root (or
// read access to /var/lib/docker/containers and to dockerd's /proc entry).
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wharf-logs/wharf/bench/internal/host"
	"github.com/wharf-logs/wharf/internal/dockertest"
	"github.com/wharf-logs/wharf/internal/lokitest"
)

func main() {
	// The receiver runs in this process: keep it to one core, as wharf is
	// kept to -procs, so the two do not take each other's.
	runtime.GOMAXPROCS(1)
	gib := flag.Float64("gib", 1, "json-file size to generate for the throughput runs, in GiB (0 skips them)")
	modes := flag.String("modes", "file,api", "read modes to measure: file, api")
	procs := flag.Int("procs", 1, "GOMAXPROCS for wharf (cores it may use)")
	size := flag.Int("size", 265, "line length in bytes")
	light := flag.Int("light", 0, "containers in the light-load run (0 skips it)")
	lightRate := flag.Int("light-rate", 50, "lines per second per container in the light-load run")
	lightSecs := flag.Int("light-seconds", 60, "length of the light-load run")
	flag.IntVar(&dockerdPID, "dockerd-pid", 0, "PID of the Docker daemon DOCKER_HOST points at (default: the dockerd holding its socket)")
	profile := flag.String("cpuprofile", "", "write a CPU profile of wharf's first seconds of each throughput run to this directory")
	flag.Parse()
	profileDir = *profile
	if err := run(*gib, strings.Split(*modes, ","), *procs, *size, *light, *lightRate, *lightSecs); err != nil {
		fmt.Fprintln(os.Stderr, "readbench:", err)
		os.Exit(1)
	}
}

type env struct {
	profile string // directory for CPU profiles of the throughput runs
	dir     string
	wharf   string
	image   string
	runID   string
	dockerd int
}

func run(gib float64, modes []string, procs, size, light, lightRate, lightSecs int) error {
	dir, err := os.MkdirTemp("", "readbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	e := &env{profile: profileDir, dir: dir, runID: strconv.FormatInt(time.Now().UnixNano(), 36)}
	defer e.cleanup()
	ctx := context.Background()
	e.wharf = filepath.Join(dir, "wharf")
	if err := host.Build(ctx, "", "./cmd/wharf", e.wharf); err != nil {
		return err
	}
	if e.image, _, err = dockertest.BuildLoggen(ctx); err != nil {
		return err
	}
	e.dockerd = dockerdPID
	if e.dockerd == 0 {
		e.dockerd = host.DockerdPID()
	}
	hostname, _ := os.Hostname()
	fmt.Printf("# readbench on %s: %s, %d CPUs, wharf GOMAXPROCS=%d\n", hostname, host.CPUModel(), host.NumCPU(), procs)

	if gib > 0 {
		lines := int64(gib * (1 << 30) / float64(size+80))
		fmt.Printf("generating about %.2f GiB of json-file (%d lines of %d bytes)...\n", gib, lines, size)
		id, logPath, err := e.generate(lines, size)
		if err != nil {
			return err
		}
		st, err := os.Stat(logPath)
		if err != nil {
			return fmt.Errorf("the json-file is not readable here (run as root): %w", err)
		}
		fmt.Printf("json-file: %s, %.1f MiB\n\n", logPath, float64(st.Size())/(1<<20))
		fmt.Println("| mode | lines | json-file MiB | seconds, first line to last | sustained MiB/s | sustained lines/s | wharf CPU-s/GiB | dockerd CPU-s/GiB | receiver CPU-s/GiB | wharf peak RSS MiB |")
		fmt.Println("|---|---|---|---|---|---|---|---|---|---|")
		for _, mode := range modes {
			r, err := e.throughput(mode, id, lines, st.Size(), procs)
			if err != nil {
				return fmt.Errorf("%s: %w", mode, err)
			}
			gibs := float64(st.Size()) / (1 << 30)
			perLine := float64(st.Size()) / float64(lines)
			fmt.Printf("| %s | %d | %.0f | %.1f | %.0f | %.0f | %.2f | %.2f | %.2f | %.1f |\n", mode, lines, float64(st.Size())/(1<<20), r.secs,
				r.sustained*perLine/(1<<20), r.sustained, r.wharfCPU/gibs, r.dockerdCPU/gibs, r.receiverCPU/gibs, r.peakRSS/(1<<20))
		}
	}
	if light > 0 {
		fmt.Println("\n| mode | load | seconds | lines delivered | wharf % of a core | dockerd % of a core (logging included) | wharf RSS MiB | wharf peak RSS MiB |")
		fmt.Println("|---|---|---|---|---|---|---|---|")
		for _, mode := range modes {
			if err := e.lightLoad(mode, light, lightRate, lightSecs, procs); err != nil {
				return fmt.Errorf("light load, %s: %w", mode, err)
			}
		}
	}
	return nil
}

var (
	profileDir string
	dockerdPID int
)

type result struct {
	secs, wharfCPU, dockerdCPU, receiverCPU, peakRSS float64
	sustained                                        float64 // lines/s between 5 % and 95 %
}

// throughput runs wharf on the generated container's log from its first
// line until the receiver has every line.
func (e *env) throughput(mode, id string, lines, fileBytes int64, procs int) (result, error) {
	srv := lokitest.New(lokitest.Options{CountOnly: true})
	defer srv.Close()
	data := filepath.Join(e.dir, "data-"+mode)
	os.RemoveAll(data)
	p, err := e.startWharf(data, mode, e.runID, srv.URL(), true, procs)
	if err != nil {
		return result{}, err
	}
	defer p.kill()
	if e.profile != "" {
		go fetchProfile(p.listen, filepath.Join(e.profile, "wharf-"+mode+".pprof"), 5)
		go fetchTrace(p.listen, filepath.Join(e.profile, "wharf-"+mode+".trace"))
	}
	start := time.Now()
	cpu0, dcpu0, rcpu0 := cpuSeconds(p.pid), cpuSeconds(e.dockerd), cpuSeconds(os.Getpid())
	deadline := start.Add(30 * time.Minute)
	// The clock starts at the first line received, so wharf's start-up
	// (discovery, inspecting the container) is not counted as reading
	// time; the CPU figures include it.
	for srv.Counts().Entries == 0 {
		if time.Now().After(deadline) {
			return result{}, errors.New("no line after 30 minutes")
		}
		if err := p.exited(); err != nil {
			return result{}, err
		}
		time.Sleep(time.Millisecond)
	}
	start = time.Now()
	// The sustained rate is taken between 5 % and 95 % of the lines, away
	// from start-up and from the last batch, which waits loki.batch_wait
	// to fill.
	var t5, t95 time.Time
	var n5, n95 int64
	for {
		n := int64(srv.Counts().Entries)
		if t5.IsZero() && n >= lines/20 {
			t5, n5 = time.Now(), n
		}
		if t95.IsZero() && n >= lines-lines/20 {
			t95, n95 = time.Now(), n
		}
		if n >= lines {
			break
		}
		if time.Now().After(deadline) {
			return result{}, fmt.Errorf("only %d of %d lines after 30 minutes", n, lines)
		}
		if err := p.exited(); err != nil {
			return result{}, err
		}
		time.Sleep(2 * time.Millisecond)
	}
	r := result{sustained: float64(n95-n5) / t95.Sub(t5).Seconds(), secs: time.Since(start).Seconds(), wharfCPU: cpuSeconds(p.pid) - cpu0, dockerdCPU: cpuSeconds(e.dockerd) - dcpu0, receiverCPU: cpuSeconds(os.Getpid()) - rcpu0, peakRSS: peakRSS(p.pid)}
	return r, nil
}

// lightLoad runs n containers at rate lines/s each for secs, read the
// given way, and reports wharf's and dockerd's CPU share and wharf's RSS.
func (e *env) lightLoad(mode string, n, rate, secs, procs int) error {
	srv := lokitest.New(lokitest.Options{CountOnly: true})
	defer srv.Close()
	data := filepath.Join(e.dir, "data-light-"+mode)
	p, err := e.startWharf(data, mode, e.runID+"-"+mode, srv.URL(), false, procs)
	if err != nil {
		return err
	}
	defer p.kill()
	for i := range n {
		if err := docker("run", "-d", "--network", "none", "--label", "wharf.test=1", "--label", "wharf.bench="+e.runID+"-"+mode, "--name", fmt.Sprintf("wharf-bench-%s-light-%s-%d", e.runID, mode, i),
			e.image, "-rate", strconv.Itoa(rate), "-size", "265", "-exit-after", strconv.Itoa(secs+20)+"s"); err != nil {
			return err
		}
	}
	time.Sleep(10 * time.Second) // warm up
	if e.profile != "" {
		go fetchProfile(p.listen, filepath.Join(e.profile, "wharf-light-"+mode+".pprof"), secs)
	}
	cpu0, dcpu0, t0 := cpuSeconds(p.pid), cpuSeconds(e.dockerd), time.Now()
	c0 := srv.Counts().Entries
	time.Sleep(time.Duration(secs) * time.Second)
	cpu, dcpu, el := cpuSeconds(p.pid)-cpu0, cpuSeconds(e.dockerd)-dcpu0, time.Since(t0).Seconds()
	got := srv.Counts().Entries - c0
	fmt.Printf("| %s | %d x %d lines/s | %.0f | %d | %.2f | %.2f | %.1f | %.1f |\n",
		mode, n, rate, el, got, 100*cpu/el, 100*dcpu/el, rss(p.pid)/(1<<20), peakRSS(p.pid)/(1<<20))
	return nil
}

type proc struct {
	cmd    *exec.Cmd
	pid    int
	listen string // the admin server's address
	done   chan error
}

// startWharf starts wharf with its data in data, reading the containers
// labelled wharf.bench=bench the given way (mode) and pushing to url. whole
// reads each log from its first line, however old (the throughput runs);
// otherwise a container already running is read from its end.
func (e *env) startWharf(data, mode, bench, url string, whole bool, procs int) (*proc, error) {
	listen, err := host.FreeAddr()
	if err != nil {
		return nil, err
	}
	path := filepath.Join(e.dir, "wharf.yaml")
	if err := os.WriteFile(path, []byte(e.wharfConfig(data, listen, mode, bench, url, whole)), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(e.wharf, "run", "--config", path)
	cmd.Env = append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(procs))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, pid: cmd.Process.Pid, listen: listen, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	return p, nil
}

// wharfConfig is startWharf's configuration, with the admin server (and
// pprof when profiling) on listen.
func (e *env) wharfConfig(data, listen, mode, bench, url string, whole bool) string {
	startAt, maxAge := "", ""
	if whole {
		startAt, maxAge = "  start_at: beginning\n", "  max_age: 87600h\n"
	}
	return fmt.Sprintf(`data_dir: %s
listen: %s
admin:
  pprof: %v
log:
  level: warn
docker:
  read_from: %s
%s  include:
    - label: wharf.bench=%s
loki:
  url: %s
%s`, data, listen, e.profile != "", mode, startAt, bench, url, maxAge)
}

func (p *proc) exited() error {
	select {
	case err := <-p.done:
		p.done <- err
		return fmt.Errorf("wharf exited: %v", err)
	default:
		return nil
	}
}

func (p *proc) kill() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// fetchProfile saves a CPU profile of the given seconds from wharf's admin
// server once it answers.
func fetchProfile(addr, path string, secs int) {
	for range 100 {
		resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, secs))
		if err != nil {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode == http.StatusOK {
			err = os.WriteFile(path, data, 0o644)
		}
		if err != nil || resp.StatusCode != http.StatusOK {
			fmt.Fprintln(os.Stderr, "readbench: profile:", resp.Status, err)
		}
		// And what is live on the heap, if wharf is still running.
		if resp, err := http.Get("http://" + addr + "/debug/pprof/heap"); err == nil {
			if data, err := io.ReadAll(resp.Body); err == nil && resp.StatusCode == http.StatusOK {
				os.WriteFile(strings.TrimSuffix(path, ".pprof")+".heap.pprof", data, 0o644)
			}
			resp.Body.Close()
		}
		return
	}
}

// fetchTrace saves a 2-second execution trace of wharf, taken a second
// into the run (go tool trace).
func fetchTrace(addr, path string) {
	time.Sleep(time.Second)
	resp, err := http.Get("http://" + addr + "/debug/pprof/trace?seconds=2")
	if err != nil {
		return
	}
	defer resp.Body.Close()
	if data, err := io.ReadAll(resp.Body); err == nil && resp.StatusCode == http.StatusOK {
		os.WriteFile(path, data, 0o644)
	}
}

// generate runs the log generator as fast as it goes and returns its
// container id and json-file path once every line is written. The container
// stays running (idle), as wharf reads the logs of running containers.
func (e *env) generate(lines int64, size int) (id, logPath string, err error) {
	name := "wharf-bench-" + e.runID + "-gen"
	// One file big enough for everything, whatever the daemon's default
	// log options.
	maxSize := fmt.Sprintf("%dm", lines*int64(size+120)>>20+16)
	if err := docker("run", "-d", "--network", "none", "--label", "wharf.test=1", "--label", "wharf.bench="+e.runID, "--name", name,
		"--log-driver", "json-file", "--log-opt", "max-size="+maxSize, "--log-opt", "max-file=1",
		e.image, "-lines", strconv.FormatInt(lines, 10), "-size", strconv.Itoa(size), "-stderr", "0.1", "-burst",
		"-sleep-before-exit", "24h"); err != nil {
		return "", "", err
	}
	out, err := exec.Command("docker", "inspect", "--format", "{{.Id}} {{.LogPath}}", name).Output()
	if err != nil {
		return "", "", fmt.Errorf("docker inspect: %w", err)
	}
	f := strings.Fields(string(out))
	if len(f) != 2 {
		return "", "", errors.New("docker inspect: unexpected output")
	}
	id, logPath = f[0], f[1]
	last := []byte(fmt.Sprintf("seq=%d ", lines))
	for deadline := time.Now().Add(30 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			return "", "", errors.New("the generator did not finish in 30 minutes")
		}
		if tailHas(logPath, last) {
			return id, logPath, nil
		}
	}
}

// tailHas reports whether the last 64 KiB of the file at path contain b.
func tailHas(path string, b []byte) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return false
	}
	n := min(st.Size(), 64<<10)
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, st.Size()-n); err != nil {
		return false
	}
	return bytes.Contains(buf, b)
}

func (e *env) cleanup() {
	var ids []string
	for _, l := range []string{e.runID, e.runID + "-file", e.runID + "-api"} {
		out, _ := exec.Command("docker", "ps", "-aq", "--filter", "label=wharf.bench="+l).Output()
		ids = append(ids, strings.Fields(string(out))...)
	}
	for _, id := range ids {
		exec.Command("docker", "rm", "-f", id).Run()
	}
}

func docker(args ...string) error {
	if out, err := exec.Command("docker", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("docker %s: %v: %s", args[0], err, out)
	}
	return nil
}

// cpuSeconds, rss and peakRSS are host's readings with 0 for one that
// cannot be taken (a dockerd not found), as readbench's tables show it.
func cpuSeconds(pid int) float64 { return orZero(host.CPUSeconds(pid)) }
func rss(pid int) float64        { return orZero(host.RSS(pid)) }
func peakRSS(pid int) float64    { return orZero(host.PeakRSS(pid)) }

func orZero(v float64) float64 {
	if math.IsNaN(v) {
		return 0
	}
	return v
}
