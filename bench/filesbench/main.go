// Command filesbench measures what wharf holds for many plain log files
// that are followed but idle: it writes a few lines to each of -files files,
// runs wharf (built from this tree, or the binary -wharf names) on them with
// Docker off, waits until a counting Loki-protocol receiver (internal/lokitest)
// on loopback has every line, lets wharf settle, and then reports, over
// -idle seconds without a write, wharf's RSS, its heap as its /metrics shows
// it, its share of a core and the garbage collections it ran.
//
//	go run ./bench/filesbench -files 2000
//	go run ./bench/filesbench -files 2000 -wharf /tmp/wharf-old
//
// It needs no Docker and no root; the files live in a temporary directory
// that is removed afterwards. wharf needs a descriptor per file: the
// process's RLIMIT_NOFILE must allow -files plus a few dozen.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
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
	"github.com/wharf-logs/wharf/internal/lokitest"
)

func main() {
	runtime.GOMAXPROCS(1) // the receiver; wharf gets -procs
	o := options{}
	flag.IntVar(&o.files, "files", 2000, "plain log files to follow")
	flag.IntVar(&o.lines, "lines", 4, "lines written to each file before the idle time")
	flag.IntVar(&o.size, "size", 200, "line length in bytes")
	flag.DurationVar(&o.settle, "settle", 10*time.Second, "time after the last line arrives before measuring")
	flag.DurationVar(&o.idle, "idle", 30*time.Second, "idle time measured")
	flag.IntVar(&o.procs, "procs", 1, "GOMAXPROCS for wharf (cores it may use)")
	flag.StringVar(&o.wharf, "wharf", "", "wharf binary to run (default: build ./cmd/wharf)")
	flag.StringVar(&o.maxFiles, "max-followed-files", "", `value of max_followed_files in wharf's configuration ("" leaves it out, for builds without it)`)
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "filesbench:", err)
		os.Exit(1)
	}
}

type options struct {
	files, lines, size, procs int
	settle, idle              time.Duration
	wharf, maxFiles           string
}

func run(o options) error {
	dir, err := os.MkdirTemp("", "filesbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := o.wharf
	if bin == "" {
		bin = filepath.Join(dir, "wharf")
		if err := host.Build(context.Background(), "", "./cmd/wharf", bin); err != nil {
			return err
		}
	}
	logs := filepath.Join(dir, "logs")
	if err := os.Mkdir(logs, 0o755); err != nil {
		return err
	}
	line := strings.Repeat("x", max(o.size-1, 0)) + "\n"
	for i := range o.files {
		var b strings.Builder
		for range o.lines {
			b.WriteString(line)
		}
		if err := os.WriteFile(filepath.Join(logs, fmt.Sprintf("app-%05d.log", i)), []byte(b.String()), 0o644); err != nil {
			return err
		}
	}

	srv := lokitest.New(lokitest.Options{CountOnly: true})
	defer srv.Close()
	listen, err := host.FreeAddr()
	if err != nil {
		return err
	}
	cfg := fmt.Sprintf(`data_dir: %s
listen: %s
log:
  level: warn
docker:
  enabled: false
loki:
  url: %s
files:
  - paths: [%q]
    start_at: beginning
`, filepath.Join(dir, "data"), listen, srv.URL(), filepath.Join(logs, "*.log"))
	if o.maxFiles != "" {
		cfg += "max_followed_files: " + o.maxFiles + "\n"
	}
	cfgPath := filepath.Join(dir, "wharf.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return err
	}
	cmd := exec.Command(bin, "run", "--config", cfgPath)
	cmd.Env = append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(o.procs))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}()
	pid := cmd.Process.Pid

	want := o.files * o.lines
	start := time.Now()
	for srv.Counts().Entries < want {
		select {
		case err := <-done:
			done <- err
			return fmt.Errorf("wharf exited: %v", err)
		default:
		}
		if time.Since(start) > 5*time.Minute {
			return fmt.Errorf("%d of %d lines after 5 minutes", srv.Counts().Entries, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
	readAll := time.Since(start)
	time.Sleep(o.settle)

	m0, err := scrape(listen)
	if err != nil {
		return err
	}
	cpu0, t0 := host.CPUSeconds(pid), time.Now()
	time.Sleep(o.idle)
	cpu, el := host.CPUSeconds(pid)-cpu0, time.Since(t0).Seconds()
	m1, err := scrape(listen)
	if err != nil {
		return err
	}
	if got := srv.Counts().Entries; got != want {
		return fmt.Errorf("the receiver has %d lines, want %d", got, want)
	}

	hostname, _ := os.Hostname()
	fmt.Printf("# filesbench on %s: %s, %d CPUs, wharf GOMAXPROCS=%d, %s; load average %s\n",
		hostname, host.CPUModel(), host.NumCPU(), o.procs, bin, host.LoadAvg())
	fmt.Println("| files | lines read in | files watched | goroutines | RSS MiB | peak RSS MiB | heap in use MiB | heap allocated MiB | stacks MiB | from the OS MiB | % of a core, idle | GCs per minute, idle |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|---|")
	fmt.Printf("| %d | %.1f s | %.0f | %.0f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.2f | %.1f |\n",
		o.files, readAll.Seconds(), m1["wharf_files_watched"], m1["go_goroutines"],
		host.RSS(pid)/(1<<20), host.PeakRSS(pid)/(1<<20),
		m1["go_memstats_heap_inuse_bytes"]/(1<<20), m1["go_memstats_heap_alloc_bytes"]/(1<<20),
		m1["go_memstats_stack_inuse_bytes"]/(1<<20), m1["go_memstats_sys_bytes"]/(1<<20),
		100*cpu/el, 60*(m1["go_gc_duration_seconds_count"]-m0["go_gc_duration_seconds_count"])/el)
	return nil
}

// scrape reads the unlabelled samples of wharf's /metrics, by name.
func scrape(addr string) (map[string]float64, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, errors.New("/metrics: " + resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 || strings.HasPrefix(f[0], "#") || strings.Contains(f[0], "{") {
			continue
		}
		if v, err := strconv.ParseFloat(f[1], 64); err == nil && !math.IsNaN(v) {
			out[f[0]] = v
		}
	}
	return out, sc.Err()
}
