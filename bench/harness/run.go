//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"time"

	"github.com/wharf-logs/wharf/bench/internal/host"
	"github.com/wharf-logs/wharf/internal/seq"
)

// result is what one scenario run in one read mode found.
type result struct {
	scenario, mode string
	params         params
	start          time.Time
	samples        []sample
	phases         []phaseMark
	deliveries     []delivery
	foreign        int64    // lines of containers the harness did not start
	err            error    // the run could not be completed
	failures       []string // checks that failed
	notes          []string

	soak   *soakResult
	churn  *churnResult
	tput   *tputResult
	outage *outageResult
	fleet  *fleetResult
}

type phaseMark struct {
	name    string
	elapsed float64
}

func (r *result) fail(format string, args ...any) {
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
}

func (r *result) note(format string, args ...any) {
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

// trial is one scenario in one read mode: a receiver, a shipper, a sampler
// and the containers started so far.
type trial struct {
	e     *env
	o     *options
	p     params
	res   *result
	rcv   *receiver
	tr    *tracker
	sh    *shipper
	smp   *sampler
	conts []*cstats
	seqN  int
}

// runOne runs a scenario in a mode and always returns its result, with
// err set if it could not be completed.
func runOne(ctx context.Context, e *env, o *options, scenario, mode string) *result {
	p := o.params(scenario)
	res := &result{scenario: scenario, mode: mode, params: p, start: time.Now()}
	r := &trial{e: e, o: o, p: p, res: res}
	fmt.Fprintf(e.log, "harness: %s, %s: %s\n", scenario, mode, p.describe(scenario))
	err := r.setUp(ctx)
	if err == nil {
		switch scenario {
		case "soak":
			err = r.soak(ctx)
		case "churn":
			err = r.churn(ctx)
		case "throughput":
			err = r.throughput(ctx)
		case "outage":
			err = r.outage(ctx)
		case "fleet":
			err = r.fleet(ctx)
		default:
			err = fmt.Errorf("unknown scenario %q", scenario)
		}
	}
	r.tearDown(err)
	return res
}

func (r *trial) setUp(ctx context.Context) error {
	rcv, err := newReceiver(r.o.listen, r.o.containerLabel)
	if err != nil {
		return err
	}
	r.rcv, r.tr = rcv, rcv.tr
	if r.o.shipperPID > 0 {
		if !host.Alive(r.o.shipperPID) {
			return fmt.Errorf("no process with PID %d", r.o.shipperPID)
		}
		r.sh = &shipper{pid: r.o.shipperPID, metricsURL: r.o.shipperMetrics}
		fmt.Fprintf(r.e.log, "harness: measuring PID %d; it must push to %s with the container name in the %q label\n",
			r.o.shipperPID, rcv.url, r.o.containerLabel)
	} else {
		listen, err := host.FreeAddr()
		if err != nil {
			return err
		}
		name := "wharf-" + r.res.scenario + "-" + r.res.mode
		cfg := fmt.Sprintf(`data_dir: %s
listen: %s
log:
  level: info
admin:
  pprof: true     # on loopback: profiles can be taken while a scenario runs
docker:
  read_from: %s
  include:
    - label: %s=%s
loki:
  url: %s
`, filepath.Join(r.e.tmp, "data-"+r.res.scenario+"-"+r.res.mode), listen, r.res.mode, labelBench, r.e.runID, rcv.url)
		if r.sh, err = r.e.startWharf(ctx, cfg, name, listen, r.o.procs); err != nil {
			return err
		}
	}
	r.smp = startSampler(r.res.scenario, r.res.mode, r.sh.pid, r.e.dockerd, r.sh.metricsURL, r.tr, r.p.sample)
	r.res.start = r.smp.start
	return nil
}

// tearDown stops everything the run started, in order: sampling, the
// shipper, the containers, the receiver; then checks delivery.
func (r *trial) tearDown(err error) {
	res := r.res
	if r.smp != nil {
		res.samples = r.smp.stop()
	}
	if r.sh != nil {
		if serr := r.sh.stop(60 * time.Second); serr != nil {
			res.fail("wharf did not exit cleanly: %v (log: %s)", serr, r.sh.logPath)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var ids []string
	for _, c := range r.conts {
		if c.id != "" {
			ids = append(ids, c.id)
		}
	}
	if rerr := removeContainers(ctx, ids); rerr != nil {
		fmt.Fprintln(r.e.log, "harness:", rerr)
	}
	if r.rcv != nil {
		r.rcv.close()
		r.checkDelivery(err)
	} else {
		res.err = err
	}
}

// checkDelivery records each container's sequence check and fails the run
// for missing lines. err is why the run stopped early, if it did.
func (r *trial) checkDelivery(err error) {
	res := r.res
	res.foreign = r.tr.foreign.Load()
	for _, c := range r.conts {
		if c.id == "" {
			continue
		}
		d := delivery{scenario: res.scenario, mode: res.mode, report: r.tr.report(c), churn: c.churn}
		res.deliveries = append(res.deliveries, d)
	}
	if err != nil {
		res.err = err
		return
	}
	var missing, dups int64
	for _, d := range res.deliveries {
		missing += d.report.MissingCount()
		dups += int64(len(d.report.Duplicated))
	}
	if missing > 0 {
		res.fail("%d lines missing", missing)
	}
	if dups > 0 {
		res.note("%d lines delivered more than once", dups)
	}
	if res.foreign > 0 {
		res.note("%d lines received for containers the harness did not start", res.foreign)
	}
}

// phase names what happens from now on, in the samples and the plot.
func (r *trial) phase(name string) {
	r.smp.setPhase(name)
	r.res.phases = append(r.res.phases, phaseMark{name: name, elapsed: time.Since(r.res.start).Seconds()})
}

// sleep waits d, failing early if the context ends or the shipper exits.
func (r *trial) sleep(ctx context.Context, d time.Duration) error {
	return r.sleepUntil(ctx, time.Now().Add(d))
}

func (r *trial) sleepUntil(ctx context.Context, t time.Time) error {
	for {
		if err := r.sh.exited(); err != nil {
			return err
		}
		d := time.Until(t)
		if d <= 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(d, 500*time.Millisecond)):
		}
	}
}

func (r *trial) gen(rate float64, lines int64) loggen {
	return loggen{rate: rate, lines: lines, size: r.o.size, stderr: r.o.stderr}
}

// start registers and starts n containers running g, four at a time.
func (r *trial) start(ctx context.Context, kind string, n int, g loggen, grp *group) ([]*cstats, error) {
	return r.startN(ctx, kind, n, g, grp, 4)
}

// startN is start with inFlight docker calls at a time.
func (r *trial) startN(ctx context.Context, kind string, n int, g loggen, grp *group, inFlight int) ([]*cstats, error) {
	cs := make([]*cstats, n)
	for i := range cs {
		r.seqN++
		name := fmt.Sprintf("wharf-harness-%s-%s-%s-%s-%d", r.e.runID, r.res.scenario, r.res.mode, kind, r.seqN)
		cs[i] = r.tr.register(name, grp, false)
		r.conts = append(r.conts, cs[i])
	}
	err := parallel(cs, inFlight, func(c *cstats) error {
		id, err := r.e.runContainer(ctx, c.name, g)
		c.id = id
		return err
	})
	return cs, err
}

// finish stops containers and records how many lines each wrote.
func (r *trial) finish(ctx context.Context, cs []*cstats) error {
	var ids []string
	for _, c := range cs {
		ids = append(ids, c.id)
	}
	if err := stopContainers(ctx, ids); err != nil {
		return err
	}
	return parallel(cs, 4, func(c *cstats) error {
		n, err := written(ctx, c.id)
		c.want = n
		if err == nil && n == 0 {
			err = fmt.Errorf("%s wrote no line", c.name)
		}
		return err
	})
}

// drain waits for every line of cs and notes a timeout.
func (r *trial) drain(ctx context.Context, cs []*cstats) (time.Duration, error) {
	d, err := r.tr.waitComplete(ctx, cs, r.o.drain)
	if errors.Is(err, errDrainTimeout) {
		r.res.note("not every line had arrived %v after the generators stopped", r.o.drain)
		return d, nil
	}
	return d, err
}

// counts is a reading of the shipper's resource counters.
type counts struct {
	goroutines, fds, watched float64
}

// floor returns the lowest goroutine and descriptor counts seen over d,
// reading every 250 ms: transient ones (a positions write, an idle
// connection about to close, the scrape's own) come and go, a leak raises
// the floor.
func (r *trial) floor(ctx context.Context, d time.Duration) (counts, error) {
	low := counts{math.NaN(), math.NaN(), math.NaN()}
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		m, _ := scrape(r.sh.metricsURL)
		low.goroutines = minOf([]float64{low.goroutines, metric(m, "go_goroutines")})
		low.fds = minOf([]float64{low.fds, host.OpenFDs(r.sh.pid)})
		low.watched = minOf([]float64{low.watched, metric(m, "wharf_containers_watched")})
		if err := r.sleep(ctx, 250*time.Millisecond); err != nil {
			return low, err
		}
	}
	return low, nil
}

// totals sums the delivery reports of containers.
type totals struct {
	containers              int
	want, lines, missing    int64
	duplicated, outOfOrder  int64
	unparsed, aboveExpected int64
}

func sumReports(rs []seq.Report) totals {
	var t totals
	for _, r := range rs {
		t.containers++
		t.want += r.Want
		t.lines += r.Lines
		t.missing += r.MissingCount()
		t.duplicated += int64(len(r.Duplicated))
		t.outOfOrder += int64(len(r.OutOfOrder))
		t.unparsed += r.Unparsed
		t.aboveExpected += r.Unexpected
	}
	return t
}

func reportOf(d []delivery) []seq.Report {
	out := make([]seq.Report, len(d))
	for i := range d {
		out[i] = d[i].report
	}
	return out
}

func shortList(s []string, n int) string {
	if len(s) > n {
		return strings.Join(s[:n], ", ") + fmt.Sprintf(" and %d more", len(s)-n)
	}
	return strings.Join(s, ", ")
}
