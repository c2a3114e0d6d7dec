//go:build linux

package main

import (
	"encoding/csv"
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// writeCSV writes every sample of every run to path.
func writeCSV(path string, results []*result) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	w.Write(csvHeader)
	for _, r := range results {
		for _, s := range r.samples {
			w.Write(s.record())
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writeDeliveryCSV writes one row per container: what it wrote and what
// arrived.
func writeDeliveryCSV(path string, results []*result) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	w.Write([]string{"scenario", "mode", "container", "churned", "written", "received", "missing", "duplicated", "out_of_order", "unparsed", "missing_ranges", "duplicated_seqs", "out_of_order_seqs"})
	for _, r := range results {
		for _, d := range r.deliveries {
			rep := d.report
			var ranges []string
			for i, m := range rep.Missing {
				if i == 20 {
					ranges = append(ranges, "...")
					break
				}
				ranges = append(ranges, m.String())
			}
			seqs := func(ns []int64) string {
				var s []string
				for i, n := range ns {
					if i == 20 {
						s = append(s, "...")
						break
					}
					s = append(s, strconv.FormatInt(n, 10))
				}
				return strings.Join(s, " ")
			}
			w.Write([]string{r.scenario, r.mode, rep.Container, strconv.FormatBool(d.churn), strconv.FormatInt(rep.Want, 10),
				strconv.FormatInt(rep.Lines, 10), strconv.FormatInt(rep.MissingCount(), 10), strconv.Itoa(len(rep.Duplicated)),
				strconv.Itoa(len(rep.OutOfOrder)), strconv.FormatInt(rep.Unparsed, 10), strings.Join(ranges, " "), seqs(rep.Duplicated), seqs(rep.OutOfOrder)})
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// num formats v with prec decimals, or "n/a" for NaN.
func num(v float64, prec int) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "n/a"
	}
	return strconv.FormatFloat(v, 'f', prec, 64)
}

// sig formats v with about three significant digits.
func sig(v float64) string {
	switch a := math.Abs(v); {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "n/a"
	case a >= 100 || v == 0:
		return num(v, 0)
	case a >= 10:
		return num(v, 1)
	case a >= 1:
		return num(v, 2)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}

func secs(d time.Duration) string { return num(d.Seconds(), 1) }

type header struct {
	date, host, cpu, docker, commit, command, out string
	cpus                                          int
	loadStart, loadEnd                            string
}

// summary renders the Markdown summary.
func summary(w io.Writer, h header, o *options, results []*result) {
	fmt.Fprintf(w, "# wharf harness results\n\n")
	fmt.Fprintf(w, "- %s on %s: %s, %d CPUs; Docker Engine %s; wharf %s\n", h.date, h.host, h.cpu, h.cpus, h.docker, h.commit)
	fmt.Fprintf(w, "- `%s`\n", h.command)
	fmt.Fprintf(w, "- load average at start %s, at end %s; results in %s\n", h.loadStart, h.loadEnd, h.out)
	for _, sc := range o.scenarios {
		rs := ofScenario(results, sc)
		if len(rs) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n## %s\n\n%s.\n", sc, rs[0].params.describe(sc))
		switch sc {
		case "soak":
			soakTable(w, rs)
		case "churn":
			churnTable(w, o, rs)
		case "throughput":
			tputTable(w, o, rs)
		case "outage":
			outageTable(w, o, rs)
		case "fleet":
			fleetTable(w, rs)
		}
		deliveryTable(w, rs)
		fmt.Fprintf(w, "\nPlot: %s.svg. ", sc)
		for _, r := range rs {
			fmt.Fprintf(w, "%s: **%s**", r.mode, verdict(r))
			for _, x := range r.failures {
				fmt.Fprintf(w, "; %s", x)
			}
			if r.err != nil {
				fmt.Fprintf(w, "; could not complete: %v", oneLine(r.err.Error()))
			}
			for _, x := range r.notes {
				fmt.Fprintf(w, "; note: %s", x)
			}
			fmt.Fprint(w, ". ")
		}
		fmt.Fprintln(w)
	}
	pass := 0
	for _, r := range results {
		if verdict(r) == "PASS" {
			pass++
		}
	}
	fmt.Fprintf(w, "\n**%d of %d runs passed.**\n", pass, len(results))
}

func verdict(r *result) string {
	switch {
	case r.err != nil:
		return "ERROR"
	case len(r.failures) > 0:
		return "FAIL"
	}
	return "PASS"
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func soakTable(w io.Writer, rs []*result) {
	fmt.Fprintf(w, "\nBaseline: median of the first minute of samples after the warm-up (a quarter of the measured span if shorter); final: median of the last; slope: least squares over every sample after the warm-up, per minute.\n\n")
	fmt.Fprintln(w, "| mode | series | baseline | final | mean | slope per minute | limit |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	for _, r := range rs {
		if r.soak == nil {
			continue
		}
		for _, s := range r.soak.series {
			name := s.name
			if s.unit != "" {
				name += " (" + s.unit + ")"
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %g |\n", r.mode, name, sig(s.baseline), sig(s.final), sig(s.mean), num(s.slope, 3), s.limit)
		}
		fmt.Fprintf(w, "| %s | (%d samples over %s s) | | | | | |\n", r.mode, r.soak.samples, secs(r.soak.measured))
	}
}

func churnTable(w io.Writer, o *options, rs []*result) {
	fmt.Fprintf(w, "\nA container started every %v and removed %v after its start (%d lines each). Before and after: the lowest value over 5 s of readings every 250 ms, after the warm-up and 15 s after the churn; tolerance %g.\n\n",
		o.churnEvery, o.churnLife, o.churnLines, o.tolerance)
	fmt.Fprintln(w, "| mode | churned | churning s | goroutines before | after | descriptors before | after | containers watched after |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	for _, r := range rs {
		c := r.churn
		if c == nil {
			continue
		}
		fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s | %s | %s of %d |\n", r.mode, c.started, secs(c.churning), num(c.baseline.goroutines, 0), num(c.after.goroutines, 0),
			num(c.baseline.fds, 0), num(c.after.fds, 0), num(c.after.watched, 0), c.steady)
	}
}

func tputTable(w io.Writer, o *options, rs []*result) {
	fmt.Fprintf(w, "\nEach step starts new containers that write a fixed number of lines (%d bytes) at the offered rate. Delivered: lines from the first written to the last received; CPU per GiB of line bytes delivered, over the step; latency: receive time minus the time written into the line. A step is sustained when every line arrived, p99 stayed within %v and the median latency of its last quarter was at most %v above the first quarter's.\n\n",
		o.size, o.maxLag, o.maxLag/5)
	fmt.Fprintln(w, "| mode | offered lines/s | generated lines/s | delivered lines/s | MiB/s | p50 s | p99 s | latency growth s | wharf CPU-s/GiB | dockerd CPU-s/GiB | harness CPU-s/GiB | peak RSS MiB | sustained |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rs {
		t := r.tput
		if t == nil {
			continue
		}
		for _, s := range t.steps {
			sus := "yes"
			if !s.sustained {
				sus = "no: " + s.why
			} else if s.generatorLimited {
				sus = "yes (" + s.why + ")"
			}
			fmt.Fprintf(w, "| %s | %.0f | %.0f | %.0f | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.mode, s.offered, s.generated, s.delivered, sig(s.mibPerSec),
				sig(s.p50), sig(s.p99), num(s.growth, 2), sig(s.wharfCPU), sig(s.dockerdCPU), sig(s.harnessCPU), num(s.peakRSS, 1), sus)
		}
	}
	fmt.Fprintln(w)
	for _, r := range rs {
		t := r.tput
		if t == nil {
			continue
		}
		if t.best < 0 {
			fmt.Fprintf(w, "- %s: no step sustained.\n", r.mode)
			continue
		}
		b := t.steps[t.best]
		limit := "the next step was not sustained"
		switch last := t.steps[len(t.steps)-1]; {
		case last.generatorLimited:
			limit = "the generators could not offer more on this machine: the shipper's own limit is higher"
		case last.sustained:
			limit = "every step was sustained (raise -steps)"
		}
		fmt.Fprintf(w, "- %s: highest sustained %.0f lines/s, %s MiB/s (p50 %s s, p99 %s s; wharf %s and dockerd %s CPU-s/GiB); %s. Peak RSS (VmHWM) %s MiB.\n",
			r.mode, b.delivered, sig(b.mibPerSec), sig(b.p50), sig(b.p99), sig(b.wharfCPU), sig(b.dockerdCPU), limit, num(t.peakRSS, 1))
	}
}

func outageTable(w io.Writer, o *options, rs []*result) {
	fmt.Fprintf(w, "\nRequests refused: every request the receiver answered with the outage's status, wharf's probes included. Probes: wharf_sink_probes_total, the requests without entries wharf sends while a batch waits to be retried. First line: from the receiver's recovery to the first line received after it. Catch-up: from recovery to the last line that arrived more than %v after it was written. wharf caught up: from recovery until wharf_queue_bytes read 0 and wharf_oldest_unsent_entry_age_seconds at most %v (1 s resolution).\n\n", o.maxLag, o.maxLag)
	fmt.Fprintln(w, "| mode | outage s | answer | requests refused | lines written meanwhile | p99 latency before s | first line s | catch-up s | wharf caught up s | disk queue peak MiB | memory buffer peak MiB | peak RSS MiB | push retries | probes | lines lost | duplicated |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	opt := func(d time.Duration) string {
		if d < 0 {
			return "n/a"
		}
		return secs(d)
	}
	for _, r := range rs {
		x := r.outage
		if x == nil {
			continue
		}
		catch := secs(x.catchUp)
		if !x.caughtUp {
			catch = "not caught up"
		}
		t := sumReports(reportOf(r.deliveries))
		fmt.Fprintf(w, "| %s | %s | %d | %d | %.0f | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d | %d |\n", r.mode, secs(x.outage), x.status, x.refused, x.linesDuring,
			sig(x.lagBefore), opt(x.firstLine), catch, opt(x.wharfCaughtUp), num(x.queuePeakMiB, 2), num(x.bufferPeakMiB, 2), num(x.peakRSS, 1), num(x.retries, 0),
			num(x.probes, 0), t.missing, t.duplicated)
	}
}

func fleetTable(w io.Writer, rs []*result) {
	fmt.Fprintf(w, "\nMeasured once every container had started and the warm-up passed. CPU: user+system time of the shipper per sample interval, in %% of one core; dockerd's, its logging included, beside it.\n\n")
	fmt.Fprintln(w, "| mode | containers | started in s | containers read | goroutines | descriptors | RSS median MiB | RSS max MiB | limit | CPU mean % | CPU max % | limit | dockerd CPU mean % | lines/s received |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rs {
		f := r.fleet
		if f == nil {
			continue
		}
		fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s | %s | %s | %g | %s | %s | %g | %s | %s |\n", r.mode, f.containers, secs(f.starting), num(f.watched, 0),
			num(f.goroutines, 0), num(f.fds, 0), num(f.rssMedian, 1), num(f.rssMax, 1), f.maxRSSLimit, num(f.cpuMean, 2), num(f.cpuMax, 2), f.maxCPULimit,
			num(f.dockerdMean, 1), num(f.linesPerSec, 0))
		fmt.Fprintf(w, "| %s | (%d samples over %s s) | | | | | | | | | | | | |\n", r.mode, f.samples, secs(f.measured))
	}
}

// deliveryTable prints each container's sequence check; short-lived churn
// containers are summed in one row, and listed one by one only when faulty.
func deliveryTable(w io.Writer, rs []*result) {
	fmt.Fprintln(w, "\nDelivery, by sequence number:")
	fmt.Fprintln(w, "\n| mode | container | written | received | missing | duplicated | out of order |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	for _, r := range rs {
		var churned []delivery
		for _, d := range r.deliveries {
			if d.churn {
				churned = append(churned, d)
				if d.report.OK() {
					continue
				}
			}
			rep := d.report
			missing := strconv.FormatInt(rep.MissingCount(), 10)
			if len(rep.Missing) > 0 {
				var rg []string
				for _, m := range rep.Missing {
					rg = append(rg, m.String())
				}
				missing += " (" + shortList(rg, 5) + ")"
			}
			fmt.Fprintf(w, "| %s | %s | %d | %d | %s | %d | %d |\n", r.mode, rep.Container, rep.Want, rep.Lines, missing, len(rep.Duplicated), len(rep.OutOfOrder))
		}
		if len(churned) > 0 {
			t := sumReports(reportOf(churned))
			fmt.Fprintf(w, "| %s | all %d churned containers | %d | %d | %d | %d | %d |\n", r.mode, t.containers, t.want, t.lines, t.missing, t.duplicated, t.outOfOrder)
		}
	}
}

// Plot.

var modeColors = map[string]string{"file": "#1f77b4", "api": "#d62728", "auto": "#2ca02c", "external": "#9467bd"}

type panel struct {
	title string
	get   func(sample) float64
}

// writeSVG draws one scenario's runs: a panel per series, elapsed time
// across, one line per read mode, with dashed marks where phases begin.
func writeSVG(path, scenario string, rs []*result) error {
	panels := plotPanels(scenario)
	p := newPlot(rs)
	p.head(scenario, svgTop+len(panels)*(svgPanelHeight+svgGap)+svgBottom)
	for i, pn := range panels {
		p.drawPanel(i, pn)
	}
	p.b.WriteString("</svg>\n")
	return os.WriteFile(path, []byte(p.b.String()), 0o644)
}

// plotPanels lists a scenario's panels: the resource series every scenario
// has, then the ones that tell its story (latency for throughput, the disk
// queue and latency for the outage).
func plotPanels(scenario string) []panel {
	panels := []panel{
		{"goroutines (go_goroutines)", func(s sample) float64 { return s.goroutines }},
		{"open descriptors (/proc/PID/fd)", func(s sample) float64 { return s.fds }},
		{"RSS MiB (VmRSS)", func(s sample) float64 { return s.rssMiB }},
		{"lines/s received", func(s sample) float64 { return s.linesPerSec }},
	}
	switch scenario {
	case "throughput":
		panels = append(panels, panel{"highest end-to-end latency, s", func(s sample) float64 { return s.maxLatency }})
	case "outage":
		panels = append(panels,
			panel{"disk queue MiB (wharf_queue_bytes)", func(s sample) float64 { return s.queueMiB }},
			panel{"highest end-to-end latency, s", func(s sample) float64 { return s.maxLatency }})
	case "fleet":
		panels = append(panels, panel{"CPU, % of a core", func(s sample) float64 { return s.cpuPct }})
	}
	return panels
}

// The plot's layout, in pixels.
const (
	svgWidth       = 960
	svgLeft        = 70
	svgRight       = 20
	svgTop         = 50
	svgPanelHeight = 150
	svgGap         = 45 // between panels
	svgBottom      = 40
)

// svgPanelWidth is the width of a panel's frame.
const svgPanelWidth float64 = svgWidth - svgLeft - svgRight

// plot is an SVG being drawn: one scenario's runs and the time axis all
// their panels share, so that phases line up from panel to panel.
type plot struct {
	b      strings.Builder
	rs     []*result
	xunit  string    // "s", or "min" for runs over ten minutes
	xdiv   float64   // seconds per xunit
	xticks []float64 // in xunit
	xhi    float64   // seconds at the right edge
}

func newPlot(rs []*result) *plot {
	xmax := 1.0
	for _, r := range rs {
		for _, s := range r.samples {
			xmax = max(xmax, s.elapsed)
		}
	}
	p := &plot{rs: rs, xunit: "s", xdiv: 1}
	if xmax > 600 {
		p.xunit, p.xdiv = "min", 60
	}
	p.xticks = niceTicks(0, xmax/p.xdiv, 10)
	p.xhi = p.xticks[len(p.xticks)-1] * p.xdiv
	return p
}

// xpos places e seconds of elapsed time.
func (p *plot) xpos(e float64) float64 { return svgLeft + svgPanelWidth*e/p.xhi }

// head opens the SVG and writes the title and a legend of the read modes.
func (p *plot) head(scenario string, height int) {
	b := &p.b
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n", svgWidth, height, svgWidth, height)
	fmt.Fprintf(b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(b, `<text x="%d" y="20" font-size="15" font-weight="bold">wharf harness: %s</text>`+"\n", svgLeft, html.EscapeString(scenario))
	lx := svgLeft + 260
	for _, r := range p.rs {
		c := color(r.mode)
		fmt.Fprintf(b, `<line x1="%d" y1="16" x2="%d" y2="16" stroke="%s" stroke-width="2"/><text x="%d" y="20">%s</text>`+"\n", lx, lx+20, c, lx+25, html.EscapeString(r.mode))
		lx += 90
	}
}

// drawPanel draws the i-th panel: its frame and grid, each run's phase
// marks (named in the first panel only) and each run's line. The y axis
// starts at zero unless a value is negative.
func (p *plot) drawPanel(i int, pn panel) {
	y0 := float64(svgTop + i*(svgPanelHeight+svgGap))
	ylo, yhi := p.yRange(pn.get)
	fmt.Fprintf(&p.b, `<text x="%d" y="%.0f" font-weight="bold">%s</text>`+"\n", svgLeft, y0-8, html.EscapeString(pn.title))
	if math.IsInf(ylo, 0) {
		fmt.Fprintf(&p.b, `<text x="%d" y="%.0f" fill="#888">no data</text>`+"\n", svgLeft+10, y0+svgPanelHeight/2)
		return
	}
	ylo = min(ylo, 0) // counts and rates read best from zero
	if yhi <= ylo {
		yhi = ylo + 1
	}
	yticks := niceTicks(ylo, yhi, 4)
	ylo, yhi = yticks[0], yticks[len(yticks)-1]
	ypos := func(v float64) float64 { return y0 + svgPanelHeight - svgPanelHeight*(v-ylo)/(yhi-ylo) }
	p.grid(y0, yticks, ypos)
	for _, r := range p.rs {
		p.phaseMarks(r, y0, i == 0)
		p.line(r, pn.get, ypos)
	}
}

// yRange returns the lowest and highest finite value of get over every
// run's samples; both are infinite when there is none.
func (p *plot) yRange(get func(sample) float64) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, r := range p.rs {
		for _, s := range r.samples {
			if v := get(s); !math.IsNaN(v) && !math.IsInf(v, 0) {
				lo, hi = min(lo, v), max(hi, v)
			}
		}
	}
	return lo, hi
}

// grid draws a panel's frame, its horizontal and vertical grid lines with
// their labels, and the time axis's name.
func (p *plot) grid(y0 float64, yticks []float64, ypos func(float64) float64) {
	b := &p.b
	fmt.Fprintf(b, `<rect x="%d" y="%.0f" width="%.0f" height="%d" fill="none" stroke="#999"/>`+"\n", svgLeft, y0, svgPanelWidth, svgPanelHeight)
	for _, t := range yticks {
		y := ypos(t)
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#eee"/><text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n",
			svgLeft, y, svgLeft+svgPanelWidth, y, svgLeft-5, y+4, tickLabel(t))
	}
	for _, t := range p.xticks {
		x := p.xpos(t * p.xdiv)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="#eee"/><text x="%.1f" y="%.0f" text-anchor="middle">%s</text>`+"\n",
			x, y0, x, y0+svgPanelHeight, x, y0+svgPanelHeight+14, tickLabel(t))
	}
	fmt.Fprintf(b, `<text x="%.0f" y="%.0f" text-anchor="end" fill="#555">elapsed, %s</text>`+"\n", svgLeft+svgPanelWidth, y0+svgPanelHeight+28, p.xunit)
}

// phaseMarks draws a dashed line where each of r's phases begins, and with
// named set, the phase's name beside it.
func (p *plot) phaseMarks(r *result, y0 float64, named bool) {
	c := color(r.mode)
	for _, m := range r.phases {
		x := p.xpos(m.elapsed)
		fmt.Fprintf(&p.b, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="%s" stroke-dasharray="4 3" stroke-opacity="0.5"/>`+"\n", x, y0, x, y0+svgPanelHeight, c)
		if named {
			fmt.Fprintf(&p.b, `<text x="%.1f" y="%.0f" fill="%s" font-size="9" transform="rotate(-90 %.1f %.0f)">%s</text>`+"\n", x+3, y0+svgPanelHeight-4, c, x+3, y0+svgPanelHeight-4, html.EscapeString(m.name))
		}
	}
}

// line draws r's samples of get as polylines, broken where a value is
// missing rather than drawn across the gap.
func (p *plot) line(r *result, get func(sample) float64, ypos func(float64) float64) {
	c := color(r.mode)
	var pts []string
	flush := func() {
		if len(pts) > 0 {
			fmt.Fprintf(&p.b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`+"\n", c, strings.Join(pts, " "))
		}
		pts = pts[:0]
	}
	for _, s := range r.samples {
		v := get(s)
		if math.IsNaN(v) || math.IsInf(v, 0) {
			flush()
			continue
		}
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", p.xpos(s.elapsed), ypos(v)))
	}
	flush()
}

func color(mode string) string {
	if c, ok := modeColors[mode]; ok {
		return c
	}
	return "#333"
}

// niceTicks returns evenly spaced round values covering [lo, hi], about n
// intervals.
func niceTicks(lo, hi float64, n int) []float64 {
	if hi <= lo {
		hi = lo + 1
	}
	raw := (hi - lo) / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	start := math.Floor(lo/step) * step
	var ticks []float64
	for v := start; v < hi+step*1e-9; v += step {
		ticks = append(ticks, math.Round(v/step)*step)
	}
	if ticks[len(ticks)-1] < hi {
		ticks = append(ticks, ticks[len(ticks)-1]+step)
	}
	return ticks
}

func tickLabel(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

// ofScenario returns the results of one scenario, in run order.
func ofScenario(results []*result, scenario string) []*result {
	var rs []*result
	for _, r := range results {
		if r.scenario == scenario {
			rs = append(rs, r)
		}
	}
	return rs
}

// writeAll writes the CSVs, the plots and summary.md into dir and returns
// the summary.
func writeAll(dir string, h header, o *options, results []*result) (string, error) {
	if err := writeCSV(filepath.Join(dir, "samples.csv"), results); err != nil {
		return "", err
	}
	if err := writeDeliveryCSV(filepath.Join(dir, "delivery.csv"), results); err != nil {
		return "", err
	}
	for _, sc := range o.scenarios {
		rs := ofScenario(results, sc)
		if len(rs) == 0 {
			continue
		}
		if err := writeSVG(filepath.Join(dir, sc+".svg"), sc, rs); err != nil {
			return "", err
		}
	}
	var b strings.Builder
	summary(&b, h, o, results)
	if err := os.WriteFile(filepath.Join(dir, "summary.md"), []byte(b.String()), 0o644); err != nil {
		return "", err
	}
	return b.String(), nil
}
