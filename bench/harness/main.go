//go:build linux

// Command harness is wharf's benchmark and soak harness. It builds wharf
// from this tree and a log-generator image (cmd/loggen, FROM scratch, no
// registry), runs both on this machine against a counting Loki-protocol
// receiver on loopback (internal/lokitest), samples wharf's goroutines,
// descriptors, RSS and CPU, and checks every line by its sequence number.
//
//	go run ./bench/harness -scenario soak -modes file,api                 # 8 x 50 lines/s for 10 minutes
//	go run ./bench/harness -scenario churn -modes file,api                # a container a second for 5 minutes
//	go run ./bench/harness -scenario throughput -modes file,api           # stepped load until the lag grows
//	go run ./bench/harness -scenario outage -modes file,api               # receiver answers 503 for 2 minutes
//	go run ./bench/harness -scenario all -modes file,api -duration 30s    # everything, short
//	go run ./bench/harness -scenario fleet -modes file                    # 1,000 containers x 1 line/s: RSS and CPU
//
// Another shipper is measured the same way: start it so that it collects
// the containers labelled wharf.bench=<run id> (or every container: lines
// of others are counted apart) and pushes to the receiver's fixed address
// with the container name in a stream label, then pass its PID:
//
//	go run ./bench/harness -run-id ext1 -shipper-pid 1234 -listen 127.0.0.1:3100 -container-label container
//
// Results go to -out: summary.md (also printed), samples.csv, delivery.csv,
// <scenario>.svg and wharf's log of each run. The exit status is 0 when
// every check passed, 1 when one failed (a missing line, a growing series,
// counts not back to baseline), 2 when the harness could not run. Needs
// Linux, Docker and, for the file read mode and dockerd's CPU, root.
// Every container it creates is labelled wharf.test=1 and removed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/wharf-logs/wharf/bench/internal/host"
	"github.com/wharf-logs/wharf/internal/dockertest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the harness; it returns the exit status. Progress goes to
// stderr, the summary to stdout.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseOptions(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "harness:", err)
		return 2
	}
	scrapeToken = o.metricsToken
	code, err := harness(ctx, o, args, stdout, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "harness:", err)
		return 2
	}
	return code
}

// harness builds what the runs need, runs every scenario in every mode,
// and writes the results. It returns the exit status, or an error when it
// could not run or write them.
func harness(ctx context.Context, o *options, args []string, stdout, stderr io.Writer) (int, error) {
	root, err := moduleRoot()
	if err != nil {
		return 0, err
	}
	dockerVersion, err := dockerOut(ctx, "version", "--format", "{{.Server.Version}}")
	if err != nil {
		return 0, fmt.Errorf("no Docker daemon: %w", err)
	}
	if o.out, err = outDir(o.out); err != nil {
		return 0, err
	}
	tmp, err := os.MkdirTemp("", "wharf-harness-work-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)
	e := &env{tmp: tmp, out: o.out, runID: o.runID, log: stderr}
	if e.runID == "" {
		e.runID = newRunID()
	}
	defer e.cleanup()

	fmt.Fprintf(stderr, "harness: run id %s (containers labelled %s=1, %s=%s); results in %s\n", e.runID, labelTest, labelBench, e.runID, o.out)
	if err := e.prepare(ctx, root, o); err != nil {
		return 0, err
	}
	h := newHeader(root, dockerVersion, o, args)
	results := runAll(ctx, e, o)
	h.loadEnd = host.LoadAvg()
	text, err := writeAll(o.out, h, o, results)
	if err != nil {
		return 0, err
	}
	fmt.Fprint(stdout, text)
	if ctx.Err() != nil {
		return 0, fmt.Errorf("interrupted: %w", ctx.Err())
	}
	return exitCode(results), nil
}

// outDir creates the results directory, a new temporary one when dir is
// empty, and returns its absolute path: the summary names it, and wharf's
// logs are written there from other working directories.
func outDir(dir string) (string, error) {
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "wharf-harness-"); err != nil {
			return "", err
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	return filepath.Abs(dir)
}

// prepare builds wharf (unless an external shipper is measured) and the
// log-generator image, and finds the dockerd whose CPU is measured.
func (e *env) prepare(ctx context.Context, root string, o *options) error {
	if o.shipperPID == 0 {
		e.wharf = filepath.Join(e.tmp, "wharf")
		if err := host.Build(ctx, root, "./cmd/wharf", e.wharf); err != nil {
			return err
		}
	}
	var err error
	if e.image, _, err = dockertest.BuildLoggen(ctx); err != nil {
		return err
	}
	if e.dockerd = o.dockerdPID; e.dockerd == 0 {
		e.dockerd = host.DockerdPID()
	}
	if e.dockerd == 0 {
		fmt.Fprintln(e.log, "harness: cannot tell which dockerd serves the docker CLI (-dockerd-pid); its CPU is not measured")
	}
	return nil
}

// newHeader describes the machine and the command for the summary.
func newHeader(root, dockerVersion string, o *options, args []string) header {
	h := header{
		date:      time.Now().UTC().Format("2006-01-02 15:04 UTC"),
		cpu:       host.CPUModel(),
		cpus:      host.NumCPU(),
		docker:    dockerVersion,
		commit:    gitCommit(root),
		command:   "go run ./bench/harness " + quoteArgs(args),
		out:       o.out,
		loadStart: host.LoadAvg(),
	}
	h.host, _ = os.Hostname()
	if o.shipperPID > 0 {
		h.commit = fmt.Sprintf("not used (measuring PID %d)", o.shipperPID)
	}
	return h
}

// runAll runs each scenario in each mode, in order, until ctx ends.
func runAll(ctx context.Context, e *env, o *options) []*result {
	var results []*result
	for _, sc := range o.scenarios {
		for _, mode := range o.modes {
			if ctx.Err() != nil {
				break
			}
			r := runOne(ctx, e, o, sc, mode)
			results = append(results, r)
			fmt.Fprintf(e.log, "harness: %s, %s: %s\n", sc, mode, verdict(r))
		}
	}
	return results
}

// exitCode is the harness's exit status: 2 when a run could not be
// completed, 1 when a check failed, 0 when every check passed.
func exitCode(results []*result) int {
	for _, r := range results {
		if verdict(r) == "ERROR" {
			return 2
		}
	}
	for _, r := range results {
		if verdict(r) != "PASS" {
			return 1
		}
	}
	return 0
}

func quoteArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t'\"$\\") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}

func gitCommit(root string) string {
	out, err := exec.Command("git", "-C", root, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "(no git)"
	}
	c := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
		c += " with uncommitted changes"
	}
	return c
}
