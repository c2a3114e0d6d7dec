//go:build linux

package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/wharf-logs/wharf/bench/internal/host"
)

// series is one soak measurement: baseline, final value and slope.
type series struct {
	name            string
	unit            string
	baseline, final float64
	slope           float64 // per minute
	mean            float64
	limit           float64
}

type soakResult struct {
	measured time.Duration // the span the slope is fitted over
	samples  int
	series   []series
}

// soak runs the containers at a steady rate. The first -warmup is not
// measured: wharf starts its readers, opens its connections, and its heap
// grows to the size the load needs. From then on the baseline is the median
// of the first window of samples, the final value the median of the last
// window (a quarter of the measured span, at most a minute), and the slope
// is fitted over every measured sample.
func (r *trial) soak(ctx context.Context) error {
	p := r.p
	r.phase("warm-up")
	grp := r.tr.newGroup("load", p.duration)
	cs, err := r.start(ctx, "c", p.containers, r.gen(p.rate, 0), grp)
	if err != nil {
		return err
	}
	loadStart := time.Now()
	warmEnd := loadStart.Add(p.warmup)
	if err := r.sleepUntil(ctx, warmEnd); err != nil {
		return err
	}
	r.phase("measure")
	if err := r.sleepUntil(ctx, loadStart.Add(p.duration)); err != nil {
		return err
	}
	measured := r.smp.since(warmEnd)
	r.phase("drain")
	if err := r.finish(ctx, cs); err != nil {
		return err
	}
	if _, err := r.drain(ctx, cs); err != nil {
		return err
	}
	res := &soakResult{samples: len(measured)}
	r.res.soak = res
	if len(measured) < 3 {
		return fmt.Errorf("only %d samples after the warm-up: lengthen -duration or shorten -sample", len(measured))
	}
	first, last := measured[0].at, measured[len(measured)-1].at
	res.measured = last.Sub(first)
	window := min(time.Minute, res.measured/4)
	xs := make([]float64, len(measured))
	for i, s := range measured {
		xs[i] = s.at.Sub(first).Minutes()
	}
	for _, m := range []struct {
		name, unit string
		get        func(sample) float64
	}{
		{"goroutines", "", func(s sample) float64 { return s.goroutines }},
		{"fds", "", func(s sample) float64 { return s.fds }},
		{"rss", "MiB", func(s sample) float64 { return s.rssMiB }},
		{"cpu", "% of a core", func(s sample) float64 { return s.cpuPct }},
	} {
		ys := make([]float64, len(measured))
		var head, tail []float64
		for i, s := range measured {
			ys[i] = m.get(s)
			if s.at.Sub(first) <= window {
				head = append(head, ys[i])
			}
			if last.Sub(s.at) <= window {
				tail = append(tail, ys[i])
			}
		}
		sr := series{name: m.name, unit: m.unit, baseline: median(head), final: median(tail), slope: slope(xs, ys), mean: mean(ys), limit: r.o.maxSlope[m.name]}
		res.series = append(res.series, sr)
		switch {
		case math.IsNaN(sr.slope):
			if m.name != "goroutines" || r.sh.metricsURL != "" {
				r.res.fail("%s: no samples to fit a slope to", m.name)
			}
		case sr.slope > sr.limit:
			r.res.fail("%s grows %.3g%s per minute, above the limit of %g", m.name, sr.slope, unitSuffix(m.unit), sr.limit)
		}
	}
	return nil
}

func unitSuffix(u string) string {
	if u == "" {
		return ""
	}
	return " " + u
}

type churnResult struct {
	started, removed, failedStarts int
	churning                       time.Duration
	baseline, after                counts
	steady                         int
}

// churn starts a short-lived container every -churn-every and removes it
// -churn-life after it started, while the steady containers log. The
// baseline is the floor of goroutines and descriptors after the warm-up;
// after the churn, and 15 s for idle connections and files to close, the
// floor must be back within -tolerance of it.
func (r *trial) churn(ctx context.Context) error {
	p := r.p
	r.phase("warm-up")
	steady, err := r.start(ctx, "steady", p.containers, r.gen(p.rate, 0), r.tr.newGroup("steady", 0))
	if err != nil {
		return err
	}
	if err := r.sleep(ctx, p.warmup); err != nil {
		return err
	}
	res := &churnResult{steady: p.containers}
	r.res.churn = res
	r.phase("baseline")
	if res.baseline, err = r.floor(ctx, 5*time.Second); err != nil {
		return err
	}
	r.phase("churn")
	ch, err := r.churnContainers(ctx, res)
	if err != nil {
		return err
	}
	r.conts = append(r.conts, ch.churned...)
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(ch.errs) > 0 {
		r.res.note("%d docker errors while churning, the first: %v", len(ch.errs), ch.errs[0])
	}
	if res.failedStarts > 0 {
		r.res.fail("%d of %d churned containers could not be started", res.failedStarts, res.failedStarts+res.started)
	}
	r.phase("settle")
	if err := r.sleep(ctx, 15*time.Second); err != nil {
		return err
	}
	r.phase("after")
	if res.after, err = r.floor(ctx, 5*time.Second); err != nil {
		return err
	}
	r.checkChurn(res)
	r.phase("drain")
	if err := r.finish(ctx, steady); err != nil {
		return err
	}
	_, err = r.drain(ctx, append(steady, ch.churned...))
	return err
}

// churner starts and removes the short-lived containers of a churn. Its
// fields after mu are shared by the goroutines making the docker calls.
type churner struct {
	r   *trial
	res *churnResult // started, removed and failedStarts are guarded by mu
	g   loggen

	mu      sync.Mutex
	churned []*cstats // started, in the order their starts returned
	errs    []error
}

// churnContainers starts a container every -churn-every for -duration,
// with at most four docker calls in flight, each removed -churn-life after
// it started, and returns once the last is removed or ctx ends. It fails
// only when the shipper exits; the caller checks ctx.
func (r *trial) churnContainers(ctx context.Context, res *churnResult) (*churner, error) {
	grp := r.tr.newGroup("churn", 0)
	ch := &churner{r: r, res: res, g: r.gen(100, r.o.churnLines)}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4) // docker CLI calls in flight
	tick := time.NewTicker(r.o.churnEvery)
	defer tick.Stop()
	churnStart := time.Now()
	end := churnStart.Add(r.p.duration)
loop:
	for time.Now().Before(end) {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
		}
		if err := r.sh.exited(); err != nil {
			wg.Wait()
			return nil, err
		}
		r.seqN++
		name := fmt.Sprintf("wharf-harness-%s-%s-%s-churn-%d", r.e.runID, r.res.scenario, r.res.mode, r.seqN)
		c := r.tr.register(name, grp, true)
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			break loop
		}
		wg.Go(func() {
			defer func() { <-sem }()
			ch.cycle(ctx, c)
		})
	}
	wg.Wait()
	res.churning = time.Since(churnStart)
	return ch, nil
}

// cycle starts c's container, removes it -churn-life after the start
// began, and counts both. A removal outlives ctx, so that no container is
// left behind.
func (ch *churner) cycle(ctx context.Context, c *cstats) {
	started := time.Now()
	id, err := ch.r.e.runContainer(ctx, c.name, ch.g)
	ch.mu.Lock()
	if err != nil {
		ch.res.failedStarts++
		ch.errs = append(ch.errs, err)
		ch.mu.Unlock()
		return
	}
	c.id, c.want = id, ch.r.o.churnLines
	ch.churned = append(ch.churned, c)
	ch.res.started++
	ch.mu.Unlock()
	time.Sleep(time.Until(started.Add(ch.r.o.churnLife)))
	rctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := removeContainers(rctx, []string{id}); err != nil {
		ch.mu.Lock()
		ch.errs = append(ch.errs, err)
		ch.mu.Unlock()
		return
	}
	ch.mu.Lock()
	ch.res.removed++
	ch.mu.Unlock()
}

// checkChurn fails the run when goroutines or descriptors did not return
// to within -tolerance of the baseline, or wharf still watches a churned
// container.
func (r *trial) checkChurn(res *churnResult) {
	b, a, tol := res.baseline, res.after, r.o.tolerance
	if d := a.goroutines - b.goroutines; math.Abs(d) > tol {
		r.res.fail("goroutines %v before the churn, %v after", b.goroutines, a.goroutines)
	}
	if d := a.fds - b.fds; math.Abs(d) > tol {
		r.res.fail("open descriptors %v before the churn, %v after", b.fds, a.fds)
	}
	if !math.IsNaN(a.watched) && a.watched != float64(r.p.containers) {
		r.res.fail("wharf_containers_watched is %v after the churn, want %d", a.watched, r.p.containers)
	}
}

// step is one throughput step.
type step struct {
	offered          float64 // lines/s asked of the generators
	generated        float64 // lines/s they wrote (from the sent times)
	delivered        float64 // lines/s from the first line written to the last received
	mibPerSec        float64
	lines, bytes     int64
	p50, p99         float64 // seconds
	growth           float64 // p50 of the last quarter minus p50 of the first
	drain            time.Duration
	drained          bool
	wharfCPU         float64 // seconds per GiB of line bytes
	dockerdCPU       float64
	harnessCPU       float64
	peakRSS          float64 // MiB, highest sample during the step
	sustained        bool
	generatorLimited bool
	why              string
}

type tputResult struct {
	steps   []step
	best    int     // index of the highest sustained step, -1 if none
	peakRSS float64 // MiB, VmHWM at the end
}

// throughput offers -step-start lines/s over the containers for one step
// (-duration), then -step-factor times more for the next, and so on. Each
// step's containers write a fixed number of lines and exit; the step is
// sustained when every line arrived, p99 latency stayed within -max-lag and
// latency did not grow across the step (the median of the last quarter, by
// sent time, at most -max-lag/5 above the first quarter's). Stepping stops
// at the first step that is not sustained, or whose generators could not
// write at the offered rate (then the machine, not the shipper, is the
// limit).
func (r *trial) throughput(ctx context.Context) error {
	res := &tputResult{best: -1}
	r.res.tput = res
	r.phase("idle")
	if err := r.sleep(ctx, r.p.warmup); err != nil {
		return err
	}
	offered := r.o.stepStart
	for k := 0; k < r.o.maxSteps; k++ {
		st, err := r.runStep(ctx, k+1, offered)
		if err != nil {
			return err
		}
		res.steps = append(res.steps, st)
		if st.sustained && (res.best < 0 || st.delivered > res.steps[res.best].delivered) {
			res.best = len(res.steps) - 1
		}
		if !st.sustained || st.generatorLimited {
			break
		}
		offered *= r.o.stepFactor
		if err := r.sleep(ctx, 2*time.Second); err != nil {
			return err
		}
	}
	res.peakRSS = host.PeakRSS(r.sh.pid) / (1 << 20)
	if res.best < 0 {
		r.res.fail("no step was sustained")
	}
	return nil
}

// runStep runs the n-th throughput step at offered lines/s: its containers
// write their share of the lines and exit, the step ends once every line
// arrived (or -drain-timeout passed), and the containers are removed. The
// CPU time charged to the step runs from once the containers exist to then.
func (r *trial) runStep(ctx context.Context, n int, offered float64) (step, error) {
	p := r.p
	per := offered / float64(p.containers)
	lines := int64(math.Round(per * p.duration.Seconds()))
	r.phase(fmt.Sprintf("step %d", n))
	fmt.Fprintf(r.e.log, "harness: throughput %s step %d: %.0f lines/s\n", r.res.mode, n, offered)
	grp := r.tr.newGroup(fmt.Sprintf("step %d", n), p.duration)
	// The generators wait before their first line, so creating the
	// containers is not counted in the step's CPU time.
	const delay = 3 * time.Second
	g := r.gen(per, lines)
	g.delay = delay
	cs, err := r.start(ctx, fmt.Sprintf("s%d", n), p.containers, g, grp)
	if err != nil {
		return step{}, err
	}
	cpu0 := r.cpuTimes()
	stepStart := time.Now()
	grp.setStart(stepStart.Add(delay))
	ids := make([]string, len(cs))
	for i, c := range cs {
		ids[i] = c.id
		c.want = lines
	}
	if err := waitGenerators(ctx, ids, 3*p.duration+time.Minute); err != nil {
		return step{}, err
	}
	st := step{offered: offered}
	d, err := r.tr.waitComplete(ctx, cs, r.o.drain)
	st.drain, st.drained = d, err == nil
	if err != nil && err != errDrainTimeout {
		return step{}, err
	}
	stepEnd := time.Now()
	st.charge(r.cpuTimes().minus(cpu0), cs, lines)
	st.latency(grp)
	st.peakRSS = r.peakRSS(stepStart, stepEnd)
	st.judge(r.o)
	fmt.Fprintf(r.e.log, "harness: step %d: %d lines, delivered %.0f lines/s, p99 %.2f s, sustained %v %s\n",
		n, st.lines, st.delivered, st.p99, st.sustained, st.why)
	rctx, rcancel := context.WithTimeout(context.Background(), time.Minute)
	removeContainers(rctx, ids)
	rcancel()
	return st, nil
}

// waitGenerators waits, at most timeout, for the containers ids to exit,
// which the generators do once their lines are written, and fails unless
// each exited with status 0.
func waitGenerators(ctx context.Context, ids []string, timeout time.Duration) error {
	wctx, cancel := context.WithTimeout(ctx, timeout)
	out, err := dockerOut(wctx, append([]string{"wait"}, ids...)...)
	cancel()
	if err != nil {
		return fmt.Errorf("waiting for the generators: %w", err)
	}
	for _, code := range strings.Fields(out) {
		if code != "0" {
			return fmt.Errorf("a generator exited with status %s", code)
		}
	}
	return nil
}

// cpuTimes are CPU seconds used so far by the shipper, dockerd and the
// harness itself.
type cpuTimes struct{ shipper, dockerd, harness float64 }

func (r *trial) cpuTimes() cpuTimes {
	return cpuTimes{host.CPUSeconds(r.sh.pid), host.CPUSeconds(r.e.dockerd), host.CPUSeconds(os.Getpid())}
}

func (c cpuTimes) minus(d cpuTimes) cpuTimes {
	return cpuTimes{c.shipper - d.shipper, c.dockerd - d.dockerd, c.harness - d.harness}
}

// charge sums what the step's containers cs (lines each) delivered and
// derives its rates and its CPU seconds per GiB from used. The generated
// rate runs from the first line sent to the last; the delivered rate from
// the first line sent to the last received.
func (st *step) charge(used cpuTimes, cs []*cstats, lines int64) {
	var firstSent, lastSent, lastRecv int64
	for _, c := range cs {
		n, b, _, lr, mins, maxs := c.snapshot()
		st.lines += n
		st.bytes += b
		if firstSent == 0 || (mins > 0 && mins < firstSent) {
			firstSent = mins
		}
		lastSent, lastRecv = max(lastSent, maxs), max(lastRecv, lr)
	}
	if span := float64(lastSent-firstSent) / 1e9; span > 0 {
		st.generated = float64(lines*int64(len(cs))) / span
	}
	if span := float64(lastRecv-firstSent) / 1e9; span > 0 {
		st.delivered = float64(st.lines) / span
		st.mibPerSec = float64(st.bytes) / (1 << 20) / span
	}
	gib := float64(st.bytes) / (1 << 30)
	st.wharfCPU, st.dockerdCPU, st.harnessCPU = used.shipper/gib, used.dockerd/gib, used.harness/gib
}

// latency reads the step's p50 and p99 and how much the median grew from
// the first quarter of the step to the last.
func (st *step) latency(grp *group) {
	grp.mu.Lock()
	defer grp.mu.Unlock()
	st.p50, st.p99 = grp.all.quantile(0.5), grp.all.quantile(0.99)
	st.growth = grp.quarters[3].quantile(0.5) - grp.quarters[0].quantile(0.5)
}

// peakRSS returns the shipper's highest RSS in MiB over the samples from
// start to end and its RSS now.
func (r *trial) peakRSS(start, end time.Time) float64 {
	var rssv []float64
	for _, s := range r.smp.since(start) {
		if !s.at.After(end) {
			rssv = append(rssv, s.rssMiB)
		}
	}
	return maxOf(append(rssv, host.RSS(r.sh.pid)/(1<<20)))
}

// judge decides whether the step was sustained and, when it was not or
// the generators fell short of the offered rate, says why.
func (st *step) judge(o *options) {
	maxLag := o.maxLag.Seconds()
	switch {
	case !st.drained:
		st.why = fmt.Sprintf("lines still missing %v after the generators stopped", o.drain)
	case st.p99 > maxLag:
		st.why = fmt.Sprintf("p99 latency %.2f s above %v", st.p99, o.maxLag)
	case st.growth > maxLag/5:
		st.why = fmt.Sprintf("latency grew %.2f s across the step", st.growth)
	case st.generated < 0.9*st.offered:
		st.generatorLimited = true
		st.sustained = true
		st.why = fmt.Sprintf("the generators wrote only %.0f lines/s", st.generated)
	default:
		st.sustained = true
	}
}

type outageResult struct {
	status        int
	outage        time.Duration
	linesDuring   float64 // lines the generators wrote during the outage
	refused       int     // requests answered with the failure status, probes included
	caughtUp      bool
	catchUp       time.Duration // from recovery to the last line received later than -max-lag
	wharfCaughtUp time.Duration // from recovery to an empty disk queue and lag within -max-lag (-1: not seen)
	firstLine     time.Duration // from recovery to the first line received (-1: none)
	queuePeakMiB  float64
	bufferPeakMiB float64
	peakRSS       float64
	retries       float64
	probes        float64 // wharf_sink_probes_total (NaN for another shipper)
	lagBefore     float64 // p99 latency before the outage, seconds
}

// outage lets the containers log normally for -warmup, makes the receiver
// answer -outage-status to every push for -duration, then accepts again.
// The shipper has caught up once lines arrive within -max-lag of being
// written again (and, for wharf, its disk queue is empty); the catch-up
// time reported runs from recovery to the last line received later than
// -max-lag after it was written. Retries waiting out their backoff when
// the receiver recovers are part of the catch-up time; the time to the
// first line received after recovery shows how much.
func (r *trial) outage(ctx context.Context) error {
	p := r.p
	res := &outageResult{status: r.o.status, outage: p.duration, wharfCaughtUp: -1, firstLine: -1, queuePeakMiB: math.NaN(), bufferPeakMiB: math.NaN()}
	r.res.outage = res
	r.phase("before")
	grp := r.tr.newGroup("before", 0)
	cs, err := r.start(ctx, "c", p.containers, r.gen(p.rate, 0), grp)
	if err != nil {
		return err
	}
	if err := r.sleep(ctx, p.warmup); err != nil {
		return err
	}
	grp.mu.Lock()
	res.lagBefore = grp.all.quantile(0.99)
	grp.mu.Unlock()
	r.phase("outage")
	recovered, err := r.refuse(ctx, res)
	if err != nil {
		return err
	}
	r.phase("catch-up")
	if err := r.catchUp(ctx, res, recovered); err != nil {
		return err
	}
	r.phase("after")
	if err := r.sleep(ctx, r.o.after); err != nil {
		return err
	}
	r.recovery(res, recovered)
	r.phase("drain")
	if err := r.finish(ctx, cs); err != nil {
		return err
	}
	if _, err := r.drain(ctx, cs); err != nil {
		return err
	}
	for _, s := range r.smp.since(r.res.start) {
		res.queuePeakMiB = maxOf([]float64{res.queuePeakMiB, s.queueMiB})
		res.bufferPeakMiB = maxOf([]float64{res.bufferPeakMiB, s.bufferMiB})
	}
	res.peakRSS = host.PeakRSS(r.sh.pid) / (1 << 20)
	if res.refused == 0 {
		r.res.fail("the receiver refused no push during the outage: the shipper sent nothing then")
	}
	return nil
}

// refuse makes the receiver answer -outage-status to every push for
// -duration and returns when it accepts again. It accepts again however
// the wait ends, so that the shipper's flush when it is stopped is not
// refused.
func (r *trial) refuse(ctx context.Context, res *outageResult) (recovered time.Time, err error) {
	r.rcv.srv.FailAll(r.o.status)
	outStart := time.Now()
	err = r.sleep(ctx, r.p.duration)
	r.rcv.srv.ClearFaults()
	recovered = time.Now()
	if err != nil {
		return recovered, err
	}
	res.outage = recovered.Sub(outStart)
	res.linesDuring = float64(r.p.containers) * r.p.rate * res.outage.Seconds()
	return recovered, nil
}

// catchUp checks every second, for at most -catch-up-timeout after
// recovered, whether the shipper has caught up, and fails the run if it
// does not.
func (r *trial) catchUp(ctx context.Context, res *outageResult, recovered time.Time) error {
	maxLag := r.o.maxLag.Seconds()
	for deadline := recovered.Add(r.o.catchUp); time.Now().Before(deadline); {
		if err := r.sleep(ctx, time.Second); err != nil {
			return err
		}
		now := time.Now()
		// wharf's own view: nothing in the disk queue and the oldest
		// unconfirmed line younger than -max-lag.
		m, _ := scrape(r.sh.metricsURL)
		q, lag := metric(m, "wharf_queue_bytes"), metric(m, "wharf_oldest_unsent_entry_age_seconds")
		wharfDone := q == 0 && lag <= maxLag
		if res.wharfCaughtUp < 0 && wharfDone {
			res.wharfCaughtUp = now.Sub(recovered)
		}
		// The receiver's view: lines arrive again, all within -max-lag.
		lat, any := r.tr.maxLatency(now.Add(-3*time.Second), now)
		if any && lat <= maxLag && now.Sub(recovered) >= 3*time.Second && (wharfDone || math.IsNaN(q) || math.IsNaN(lag)) {
			res.caughtUp = true
			return nil
		}
	}
	r.res.fail("not caught up %v after the receiver recovered", r.o.catchUp)
	return nil
}

// recovery records how long after recovered the first line and the last
// late line arrived, and the retries and refusals the outage cost.
func (r *trial) recovery(res *outageResult, recovered time.Time) {
	if last := r.tr.lastAbove(recovered, time.Now(), r.o.maxLag.Seconds()); !last.IsZero() {
		res.catchUp = last.Sub(recovered)
	}
	if first := r.tr.firstAfter(recovered); !first.IsZero() {
		res.firstLine = first.Sub(recovered)
	}
	m, _ := scrape(r.sh.metricsURL)
	res.retries = metric(m, "wharf_push_retries_total")
	res.probes = metric(m, "wharf_sink_probes_total")
	res.refused = r.rcv.srv.Counts().Statuses[r.o.status]
}

type fleetResult struct {
	containers int
	starting   time.Duration // from the first docker run to the last one's return
	measured   time.Duration
	samples    int
	// Over the measured samples: RSS in MiB, CPU in % of a core.
	rssMedian, rssMax        float64
	cpuMean, cpuMax          float64
	dockerdMean              float64
	goroutines, fds, watched float64 // medians
	linesPerSec              float64 // mean
	maxRSSLimit, maxCPULimit float64
}

// fleet starts many containers logging at a low rate, eight docker calls
// at a time, waits -warmup once the last has started (the readers settle,
// the heap reaches the size the load needs), then measures the shipper for
// -duration: its RSS must stay within -max-rss and its mean CPU within
// -max-cpu. What it measures is the cost of many quiet readers, which the
// other scenarios, with a few busy containers, do not show.
func (r *trial) fleet(ctx context.Context) error {
	p := r.p
	r.phase("start")
	began := time.Now()
	cs, err := r.startN(ctx, "c", p.containers, r.gen(p.rate, 0), r.tr.newGroup("fleet", 0), 8)
	res := &fleetResult{containers: p.containers, starting: time.Since(began), maxRSSLimit: r.o.maxRSS, maxCPULimit: r.o.maxCPU}
	r.res.fleet = res
	if err != nil {
		return err
	}
	r.phase("warm-up")
	if err := r.sleep(ctx, p.warmup); err != nil {
		return err
	}
	r.phase("measure")
	measureStart := time.Now()
	if err := r.sleep(ctx, p.duration); err != nil {
		return err
	}
	measured := r.smp.since(measureStart)
	r.phase("drain")
	if err := r.finish(ctx, cs); err != nil {
		return err
	}
	if _, err := r.drain(ctx, cs); err != nil {
		return err
	}
	res.samples = len(measured)
	if len(measured) < 3 {
		return fmt.Errorf("only %d samples after the warm-up: lengthen -duration or shorten -sample", len(measured))
	}
	res.measured = measured[len(measured)-1].at.Sub(measured[0].at)
	col := func(get func(sample) float64) []float64 {
		var v []float64
		for _, s := range measured {
			if x := get(s); !math.IsNaN(x) {
				v = append(v, x)
			}
		}
		return v
	}
	rss, cpu := col(func(s sample) float64 { return s.rssMiB }), col(func(s sample) float64 { return s.cpuPct })
	res.rssMedian, res.rssMax = median(rss), maxOf(rss)
	res.cpuMean, res.cpuMax = mean(cpu), maxOf(cpu)
	res.dockerdMean = mean(col(func(s sample) float64 { return s.dockerdPct }))
	res.goroutines = median(col(func(s sample) float64 { return s.goroutines }))
	res.fds = median(col(func(s sample) float64 { return s.fds }))
	res.watched = median(col(func(s sample) float64 { return s.watched }))
	res.linesPerSec = mean(col(func(s sample) float64 { return s.linesPerSec }))
	if res.rssMax > r.o.maxRSS {
		r.res.fail("RSS reached %.1f MiB, above the limit of %g MiB", res.rssMax, r.o.maxRSS)
	}
	if res.cpuMean > r.o.maxCPU {
		r.res.fail("mean CPU %.2f%% of a core, above the limit of %g%%", res.cpuMean, r.o.maxCPU)
	}
	if r.sh.metricsURL != "" && res.watched < float64(p.containers) {
		r.res.fail("%.0f of %d containers were being read", res.watched, p.containers)
	}
	return nil
}
