//go:build linux

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

var allScenarios = []string{"soak", "churn", "throughput", "outage"}

// otherScenarios are run only when named: "all" leaves them out.
var otherScenarios = []string{"fleet"}

// slopeMetrics are the soak's watched series, in report order.
var slopeMetrics = []string{"goroutines", "fds", "rss", "cpu"}

// options are the command line.
type options struct {
	scenarios []string
	modes     []string
	out       string

	containers int
	rate       float64
	size       int
	stderr     float64
	duration   time.Duration
	warmup     time.Duration
	sample     time.Duration
	drain      time.Duration

	maxSlope   map[string]float64
	tolerance  float64
	churnEvery time.Duration
	churnLife  time.Duration
	churnLines int64
	stepStart  float64
	stepFactor float64
	maxSteps   int
	maxLag     time.Duration
	maxRSS     float64 // MiB
	maxCPU     float64 // % of a core
	status     int
	catchUp    time.Duration
	after      time.Duration

	procs          int
	shipperPID     int
	shipperMetrics string
	metricsToken   string // bearer token for shipperMetrics
	listen         string
	containerLabel string
	runID          string
	dockerdPID     int

	set map[string]bool // flags given on the command line
}

// params are the settings of one scenario: its profile's defaults with
// the flags given on the command line applied.
type params struct {
	containers int
	rate       float64 // lines/s per container (soak, churn, outage)
	duration   time.Duration
	warmup     time.Duration
	sample     time.Duration
}

// profiles are the scenarios' defaults. duration is the soak's whole
// length, the churn's churning time, a throughput step, and the outage.
var profiles = map[string]params{
	"soak":       {containers: 8, rate: 50, duration: 10 * time.Minute, warmup: time.Minute, sample: 5 * time.Second},
	"churn":      {containers: 4, rate: 50, duration: 5 * time.Minute, warmup: 20 * time.Second, sample: 5 * time.Second},
	"throughput": {containers: 4, duration: 30 * time.Second, warmup: 5 * time.Second, sample: time.Second},
	"outage":     {containers: 4, rate: 100, duration: 2 * time.Minute, warmup: 20 * time.Second, sample: time.Second},
	"fleet":      {containers: 1000, rate: 1, duration: 5 * time.Minute, warmup: time.Minute, sample: 5 * time.Second},
}

func (o *options) params(scenario string) params {
	p := profiles[scenario]
	if o.set["containers"] {
		p.containers = o.containers
	}
	if o.set["rate"] {
		p.rate = o.rate
	}
	if o.set["duration"] {
		p.duration = o.duration
		// A short soak keeps three quarters of its length for measuring.
		if scenario == "soak" && !o.set["warmup"] {
			p.warmup = min(p.warmup, p.duration/4)
		}
	}
	if o.set["warmup"] {
		p.warmup = o.warmup
	}
	if o.set["sample"] {
		p.sample = o.sample
	}
	return p
}

func (p params) describe(scenario string) string {
	switch scenario {
	case "soak":
		return fmt.Sprintf("%d containers x %g lines/s for %v (warm-up %v), samples every %v", p.containers, p.rate, p.duration, p.warmup, p.sample)
	case "churn":
		return fmt.Sprintf("%d containers x %g lines/s, churning for %v after a %v warm-up, samples every %v", p.containers, p.rate, p.duration, p.warmup, p.sample)
	case "throughput":
		return fmt.Sprintf("%d containers, steps of %v, samples every %v", p.containers, p.duration, p.sample)
	case "outage":
		return fmt.Sprintf("%d containers x %g lines/s, %v before an outage of %v, samples every %v", p.containers, p.rate, p.warmup, p.duration, p.sample)
	case "fleet":
		return fmt.Sprintf("%d containers x %g lines/s, measured for %v after all started and a %v warm-up, samples every %v", p.containers, p.rate, p.duration, p.warmup, p.sample)
	}
	return ""
}

// parseOptions reads and checks the command line, so that a mistyped flag
// stops the harness before it builds or starts anything. Usage and flag
// errors go to output.
func parseOptions(args []string, output io.Writer) (*options, error) {
	o := &options{}
	var raw rawFlags
	fs := o.flagSet(&raw, output)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	o.set = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { o.set[f.Name] = true })
	if err := o.resolve(raw); err != nil {
		return nil, err
	}
	if err := o.checkRanges(); err != nil {
		return nil, err
	}
	return o, nil
}

// rawFlags are the flags given as text that resolve turns into options.
type rawFlags struct {
	scenarios, modes, slopes, tokenFile string
}

// flagSet defines the harness's flags on o and raw, in the order the help
// lists them.
func (o *options) flagSet(raw *rawFlags, output io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("harness", flag.ContinueOnError)
	fs.SetOutput(output)
	fs.Usage = func() {
		fmt.Fprintf(output, "usage: go run ./bench/harness -scenario soak|churn|throughput|outage|all|fleet [flags]\n\n%s\nFlags:\n", usageText)
		fs.PrintDefaults()
	}
	fs.StringVar(&raw.scenarios, "scenario", "soak", "scenarios to run, comma-separated: soak, churn, throughput, outage, all (those four), fleet")
	fs.StringVar(&raw.modes, "modes", "file", "wharf's docker.read_from modes to run each scenario in, comma-separated: file, api (auto also works)")
	fs.StringVar(&o.out, "out", "", "directory for summary.md, samples.csv, delivery.csv, the SVG plots and wharf's logs (default: a new temporary directory)")
	fs.IntVar(&o.containers, "containers", 0, "log-generator containers (default per scenario: soak 8, churn 4 steady, throughput 4, outage 4, fleet 1000)")
	fs.Float64Var(&o.rate, "rate", 0, "lines/s per container (default per scenario: soak 50, churn 50, outage 100, fleet 1)")
	fs.IntVar(&o.size, "size", 265, "line length in bytes")
	fs.Float64Var(&o.stderr, "stderr", 0.2, "fraction of lines written to stderr")
	fs.DurationVar(&o.duration, "duration", 0, "the scenario's length: soak's whole run (10m), churn's churning (5m), each throughput step (30s), the outage (2m), fleet's measurement (5m)")
	fs.DurationVar(&o.warmup, "warmup", 0, "time before measuring: soak's warm-up before the baseline (1m, or a quarter of a shorter -duration), churn's before the baseline (20s), throughput's idle time before the first step (5s), outage's normal running before the receiver fails (20s), fleet's once every container started (1m)")
	fs.DurationVar(&o.sample, "sample", 0, "sampling interval (soak, churn and fleet 5s, throughput and outage 1s)")
	fs.DurationVar(&o.drain, "drain-timeout", 2*time.Minute, "how long to wait for the last lines once the generators stopped; lines still missing then are reported missing")
	fs.StringVar(&raw.slopes, "max-slope", "0.5", "soak: highest allowed least-squares slope per minute, for all series (one number) or per series: goroutines=0.5,fds=0.5,rss=0.5 (MiB),cpu=0.5 (% of a core)")
	fs.Float64Var(&o.tolerance, "tolerance", 2, "churn: how far goroutines and descriptors may end from their baseline")
	fs.DurationVar(&o.churnEvery, "churn-every", time.Second, "churn: start a container this often")
	fs.DurationVar(&o.churnLife, "churn-life", time.Second, "churn: remove each container this long after it started")
	fs.Int64Var(&o.churnLines, "churn-lines", 10, "churn: lines each short-lived container writes (at 100 lines/s)")
	fs.Float64Var(&o.stepStart, "step-start", 1000, "throughput: offered lines/s (all containers together) of the first step")
	fs.Float64Var(&o.stepFactor, "step-factor", 2, "throughput: each step offers this many times the one before")
	fs.IntVar(&o.maxSteps, "steps", 8, "throughput: most steps")
	fs.DurationVar(&o.maxLag, "max-lag", 5*time.Second, "throughput and outage: a step is sustained, and the shipper caught up, while p99 end-to-end latency stays at most this")
	fs.Float64Var(&o.maxRSS, "max-rss", 100, "fleet: highest allowed RSS of the shipper while measuring, MiB")
	fs.Float64Var(&o.maxCPU, "max-cpu", 5, "fleet: highest allowed mean CPU of the shipper while measuring, % of a core")
	fs.IntVar(&o.status, "outage-status", 503, "outage: HTTP status the receiver answers every push with")
	fs.DurationVar(&o.catchUp, "catch-up-timeout", 10*time.Minute, "outage: give up waiting for the shipper to catch up after this")
	fs.DurationVar(&o.after, "after", 10*time.Second, "outage: keep logging this long once caught up")
	fs.IntVar(&o.procs, "procs", 0, "GOMAXPROCS for wharf (0: wharf's default, all cores)")
	fs.IntVar(&o.shipperPID, "shipper-pid", 0, "measure this already running shipper instead of building and starting wharf; it must collect the harness's containers (label "+labelBench+"=<-run-id>) and push to the receiver at -listen")
	fs.StringVar(&o.shipperMetrics, "shipper-metrics", "", "with -shipper-pid: the shipper's Prometheus /metrics URL (goroutines, queue), if it has one")
	fs.StringVar(&raw.tokenFile, "shipper-metrics-token-file", "", "with -shipper-metrics: a file holding the bearer token the endpoint requires (wharf's admin.token_file)")
	fs.StringVar(&o.listen, "listen", "", "the receiver's address, host:port (default: a free port of 127.0.0.1); it accepts pushes on "+"/loki/api/v1/push")
	fs.StringVar(&o.containerLabel, "container-label", "container", "the stream label that carries the container name")
	fs.IntVar(&o.dockerdPID, "dockerd-pid", 0, "the dockerd whose CPU to measure (default: the one holding the docker CLI's socket)")
	fs.StringVar(&o.runID, "run-id", "", "the run's id, in container names and the "+labelBench+" label (default: random); fix it to configure an external shipper beforehand")
	return fs
}

// resolve reads the flags that the flag package leaves as text: the
// scenarios, the read modes (an external shipper's own by default), the
// metrics token and the slope limits. Errors come in the order of the
// checks, the first one wins.
func (o *options) resolve(raw rawFlags) error {
	var err error
	if o.scenarios, err = parseScenarios(raw.scenarios); err != nil {
		return err
	}
	o.modes = split(raw.modes)
	for _, m := range o.modes {
		if m != "file" && m != "api" && m != "auto" {
			return fmt.Errorf("-modes: unknown read mode %q (want file, api or auto)", m)
		}
	}
	if o.shipperPID > 0 {
		if !o.set["modes"] {
			o.modes = []string{"external"}
		}
	} else if o.shipperMetrics != "" {
		return errors.New("-shipper-metrics needs -shipper-pid")
	}
	if raw.tokenFile != "" {
		b, err := os.ReadFile(raw.tokenFile)
		if err != nil {
			return fmt.Errorf("-shipper-metrics-token-file: %w", err)
		}
		o.metricsToken = strings.TrimSpace(string(b))
	}
	if len(o.modes) == 0 {
		return errors.New("-modes: nothing to run")
	}
	if !validID.MatchString(o.runID) {
		return errors.New("-run-id: use 1 to 32 lower-case letters, digits and dashes")
	}
	o.maxSlope, err = parseSlopes(raw.slopes)
	return err
}

// parseScenarios reads -scenario: names in the order given, "all" for
// every scenario, each run once.
func parseScenarios(s string) ([]string, error) {
	var scenarios []string
	for _, name := range split(s) {
		if name == "all" {
			scenarios = append(scenarios, allScenarios...)
			continue
		}
		if !slices.Contains(allScenarios, name) && !slices.Contains(otherScenarios, name) {
			return nil, fmt.Errorf("-scenario: unknown scenario %q (want %s, all or %s)", name, strings.Join(allScenarios, ", "), strings.Join(otherScenarios, ", "))
		}
		scenarios = append(scenarios, name)
	}
	scenarios = slices.Compact(scenarios)
	if len(scenarios) == 0 {
		return nil, errors.New("-scenario: nothing to run")
	}
	return scenarios, nil
}

// checkRanges rejects numeric flags out of their range. A scenario's
// settings are checked only when given, as the profiles' defaults are
// valid.
func (o *options) checkRanges() error {
	switch {
	case o.set["containers"] && o.containers < 1:
		return errors.New("-containers must be at least 1")
	case o.set["rate"] && o.rate <= 0:
		return errors.New("-rate must be positive")
	case o.set["duration"] && o.duration <= 0:
		return errors.New("-duration must be positive")
	case o.set["sample"] && o.sample <= 0:
		return errors.New("-sample must be positive")
	case o.warmup < 0:
		return errors.New("-warmup must not be negative")
	case o.size < 60:
		return errors.New("-size must be at least 60, the length of a line's header")
	case o.stderr < 0 || o.stderr > 1:
		return errors.New("-stderr must be within 0..1")
	case o.stepStart <= 0 || o.stepFactor <= 1 || o.maxSteps < 1:
		return errors.New("throughput: -step-start must be positive, -step-factor above 1, -steps at least 1")
	case o.churnEvery <= 0 || o.churnLife < 0 || o.churnLines < 1:
		return errors.New("churn: -churn-every must be positive, -churn-life not negative, -churn-lines at least 1")
	case o.drain <= 0 || o.catchUp <= 0 || o.maxLag <= 0:
		return errors.New("-drain-timeout, -catch-up-timeout and -max-lag must be positive")
	case o.maxRSS <= 0 || o.maxCPU <= 0:
		return errors.New("fleet: -max-rss and -max-cpu must be positive")
	case o.status < 100 || o.status > 599:
		return errors.New("-outage-status must be an HTTP status")
	}
	return nil
}

// parseSlopes reads "0.5" or "goroutines=0.5,rss=2".
func parseSlopes(s string) (map[string]float64, error) {
	m := map[string]float64{}
	for _, k := range slopeMetrics {
		m[k] = 0.5
	}
	for _, part := range split(s) {
		k, v, found := strings.Cut(part, "=")
		if !found {
			x, err := strconv.ParseFloat(part, 64)
			if err != nil {
				return nil, fmt.Errorf("-max-slope: %q is not a number", part)
			}
			for _, k := range slopeMetrics {
				m[k] = x
			}
			continue
		}
		if !slices.Contains(slopeMetrics, k) {
			return nil, fmt.Errorf("-max-slope: unknown series %q (want %s)", k, strings.Join(slopeMetrics, ", "))
		}
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return nil, fmt.Errorf("-max-slope: %q is not a number", v)
		}
		m[k] = x
	}
	return m, nil
}

var validID = regexp.MustCompile(`^([a-z0-9][a-z0-9-]{0,31})?$`)

func split(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

const usageText = `Runs wharf (built from this tree) against log-generator containers and a
counting Loki-protocol receiver on loopback, samples its goroutines,
descriptors, RSS and CPU, and checks every line by its sequence number.

Scenarios:
  soak        containers log at a steady rate; baseline (after the warm-up),
              final value and least-squares slope per minute of goroutines,
              descriptors, RSS and CPU; fails when a slope exceeds -max-slope
  churn       a container started and removed every -churn-every while the
              others log; goroutines and descriptors must return to baseline
  throughput  offered load stepped up until the lag grows: highest sustained
              lines/s and MiB/s, CPU seconds per GiB (wharf and dockerd),
              peak RSS, p50/p99 end-to-end latency
  outage      the receiver answers -outage-status for -duration, then
              recovers: catch-up time, disk queue peak, loss
  fleet       (not in all) many containers at a low rate, started eight at
              a time: the shipper's RSS and CPU once all run, against
              -max-rss and -max-cpu; default 1,000 containers x 1 line/s

Every scenario fails when a line is missing. Exit status: 0 when every check
passed, 1 when one failed, 2 when the harness could not run.`
