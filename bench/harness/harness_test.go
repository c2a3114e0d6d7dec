//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wharf-logs/wharf/internal/dockertest"
	"github.com/wharf-logs/wharf/internal/seq"
)

// TestSmoke runs the harness end to end, as CI does: wharf built from the
// tree, two generator containers for 30 s in the soak scenario, file read
// mode. It fails when a line is missing, when the harness reports a failed
// check, or when its output files do not hold what the run did. The slope
// limits are loose because 22 s of samples cannot tell a slow leak from
// heap growth; they still catch a leak per line or per sample.
func TestSmoke(t *testing.T) {
	dockertest.Require(t)
	out := t.TempDir()
	const containers, rate, seconds = 2, 50, 30
	args := []string{"-scenario", "soak", "-modes", "file", "-containers", strconv.Itoa(containers), "-rate", strconv.Itoa(rate),
		"-duration", strconv.Itoa(seconds) + "s", "-sample", "1s", "-max-slope", "goroutines=30,fds=30,rss=30,cpu=50", "-out", out}
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	code := run(ctx, args, &stdout, io.MultiWriter(&stderr, testWriter{t}))
	summary, err := os.ReadFile(filepath.Join(out, "summary.md"))
	if err != nil {
		t.Fatalf("exit status %d, no summary: %v", code, err)
	}
	if code != 0 {
		t.Fatalf("harness exit status %d:\n%s", code, summary)
	}
	if stdout.String() != string(summary) {
		t.Error("the printed summary differs from summary.md")
	}
	if !strings.Contains(string(summary), "**1 of 1 runs passed.**") {
		t.Errorf("summary does not report the run as passed:\n%s", summary)
	}

	rows := readCSV(t, filepath.Join(out, "delivery.csv"))
	if len(rows) != containers {
		t.Fatalf("delivery.csv has %d containers, want %d", len(rows), containers)
	}
	for _, r := range rows {
		written, received := atoi(t, r["written"]), atoi(t, r["received"])
		// Each container logged about rate x seconds lines before it was
		// stopped; a generator that wrote far fewer means the run did not
		// measure what it claims.
		if written < rate*seconds*8/10 {
			t.Errorf("%s wrote %d lines, want about %d", r["container"], written, rate*seconds)
		}
		if r["missing"] != "0" || received < written {
			t.Errorf("%s: written %d, received %d, missing %s (%s)", r["container"], written, received, r["missing"], r["missing_ranges"])
		}
	}

	samples := readCSV(t, filepath.Join(out, "samples.csv"))
	if len(samples) < seconds*2/3 {
		t.Fatalf("%d samples for a %d s run at 1 s", len(samples), seconds)
	}
	var lines float64
	for _, s := range samples {
		for _, col := range []string{"goroutines", "open_fds", "rss_mib"} {
			if v, err := strconv.ParseFloat(s[col], 64); err != nil || v <= 0 {
				t.Fatalf("sample at %s s: %s = %q", s["elapsed_s"], col, s[col])
			}
		}
		v, _ := strconv.ParseFloat(s["lines_total"], 64)
		lines = max(lines, v)
	}
	if want := float64(containers * rate * seconds * 8 / 10); lines < want {
		t.Errorf("samples count %v lines received, want at least %v", lines, want)
	}
	svg, err := os.ReadFile(filepath.Join(out, "soak.svg"))
	if err != nil {
		t.Fatal(err)
	}
	checkSVG(t, svg)
	if _, err := os.Stat(filepath.Join(out, "wharf-soak-file.log")); err != nil {
		t.Error(err)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func readCSV(t *testing.T, path string) []map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(recs) == 0 {
		t.Fatalf("%s is empty", path)
	}
	var out []map[string]string
	for _, r := range recs[1:] {
		m := map[string]string{}
		for i, h := range recs[0] {
			m[h] = r[i]
		}
		out = append(out, m)
	}
	return out
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// checkSVG requires well-formed XML with at least one drawn series.
func checkSVG(t *testing.T, data []byte) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(data))
	polylines := 0
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "polyline" {
			polylines++
		}
	}
	if polylines == 0 {
		t.Fatal("SVG draws no series")
	}
}

// TestDeliveryCheck pushes lines to the receiver over HTTP, one container
// complete, one with a gap and a duplicate, and requires the run to fail
// for the missing lines and report each container's faults.
func TestDeliveryCheck(t *testing.T) {
	rcv, err := newReceiver("", "container")
	if err != nil {
		t.Fatal(err)
	}
	tr := rcv.tr
	good := tr.register("good", nil, false)
	bad := tr.register("bad", tr.newGroup("g", time.Second), false)
	good.id, bad.id, good.want, bad.want = "id1", "id2", 10, 10
	f := seq.Format{Size: 80, StderrFraction: 0.3}
	now := time.Now().UnixNano()
	var goodLines, badLines []string
	for n := int64(1); n <= 10; n++ {
		goodLines = append(goodLines, f.Line(n, now))
		if n != 4 && n != 5 {
			badLines = append(badLines, f.Line(n, now))
		}
	}
	badLines = append(badLines, f.Line(7, now))
	push(t, rcv.url, map[string][]string{`{container="good", stream="stdout"}`: goodLines, `{container="/bad"}`: badLines, `{container="other"}`: {"x"}})

	res := &result{scenario: "soak", mode: "file"}
	rcv.close()
	r := &trial{res: res, tr: tr, conts: []*cstats{good, bad}}
	r.checkDelivery(nil)
	if verdict(res) != "FAIL" || len(res.failures) != 1 || res.failures[0] != "2 lines missing" {
		t.Fatalf("verdict %s, failures %q", verdict(res), res.failures)
	}
	if res.foreign != 1 {
		t.Errorf("foreign lines %d, want 1", res.foreign)
	}
	byName := map[string]seq.Report{}
	for _, d := range res.deliveries {
		byName[d.report.Container] = d.report
	}
	if g := byName["good"]; !g.OK() || g.Lines != 10 {
		t.Errorf("good: %v", g)
	}
	b := byName["bad"]
	if b.MissingCount() != 2 || len(b.Duplicated) != 1 || b.Duplicated[0] != 7 {
		t.Errorf("bad: %v", b)
	}
	var md strings.Builder
	deliveryTable(&md, []*result{res})
	if !strings.Contains(md.String(), "| file | bad | 10 | 9 | 2 (4-5) | 1 | 0 |") {
		t.Errorf("delivery table:\n%s", md.String())
	}
	bad.group.mu.Lock()
	n := bad.group.all.n
	bad.group.mu.Unlock()
	if n != 9 {
		t.Errorf("latency recorded for %d lines, want 9", n)
	}
}

// push sends one Loki JSON push.
func push(t *testing.T, url string, streams map[string][]string) {
	t.Helper()
	type stream struct {
		Stream map[string]string `json:"stream"`
		Values [][2]string       `json:"values"`
	}
	var body struct {
		Streams []stream `json:"streams"`
	}
	ts := time.Now().UnixNano()
	for sel, lines := range streams {
		labels := map[string]string{}
		for _, kv := range strings.Split(strings.Trim(sel, "{}"), ", ") {
			k, v, _ := strings.Cut(kv, "=")
			labels[k] = strings.Trim(v, `"`)
		}
		s := stream{Stream: labels}
		for _, l := range lines {
			ts++
			s.Values = append(s.Values, [2]string{strconv.FormatInt(ts, 10), l})
		}
		body.Streams = append(body.Streams, s)
	}
	data, _ := json.Marshal(body)
	resp, err := http.Post(url, "application/json", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("push: %s", resp.Status)
	}
}

func TestSlope(t *testing.T) {
	xs := []float64{0, 1, 2, 3, 4}
	if s := slope(xs, []float64{1, 3, 5, 7, 9}); math.Abs(s-2) > 1e-12 {
		t.Errorf("slope of 2x+1 = %v", s)
	}
	if s := slope(xs, []float64{5, 5, math.NaN(), 5, 5}); s != 0 {
		t.Errorf("slope of a constant = %v", s)
	}
	if s := slope(xs, []float64{1, 2, 1, 2, 1}); math.Abs(s) > 1e-12 {
		t.Errorf("slope of a symmetric wobble = %v", s)
	}
	if s := slope([]float64{1}, []float64{1}); !math.IsNaN(s) {
		t.Errorf("slope of one point = %v", s)
	}
	if m := median([]float64{3, math.NaN(), 1, 2, 10}); m != 2.5 {
		t.Errorf("median = %v", m)
	}
}

func TestHistQuantiles(t *testing.T) {
	var h hist
	if !math.IsNaN(h.quantile(0.5)) {
		t.Error("quantile of an empty histogram")
	}
	for i := 1; i <= 1000; i++ {
		h.add(float64(i) / 1000) // 1 ms .. 1 s
	}
	h.add(0)
	for _, c := range []struct{ q, want float64 }{{0.5, 0.5}, {0.99, 0.99}, {1, 1}} {
		if got := h.quantile(c.q); got < c.want || got > c.want*histGrowth*1.001 {
			t.Errorf("q%v = %v, want %v within 3 %%", c.q, got, c.want)
		}
	}
	var big hist
	big.add(1e9)
	if q := big.quantile(1); q < 3000 {
		t.Errorf("an hour-plus latency lands in %v", q)
	}
}

func TestOptions(t *testing.T) {
	o, err := parseOptions([]string{"-scenario", "all", "-duration", "40s", "-modes", "file,api", "-max-slope", "2,rss=5"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(o.scenarios, o.modes) != "[soak churn throughput outage] [file api]" {
		t.Errorf("scenarios %v, modes %v", o.scenarios, o.modes)
	}
	soak := o.params("soak")
	if soak.duration != 40*time.Second || soak.warmup != 10*time.Second || soak.containers != 8 || soak.rate != 50 || soak.sample != 5*time.Second {
		t.Errorf("soak %+v", soak)
	}
	if p := o.params("outage"); p.duration != 40*time.Second || p.warmup != 20*time.Second || p.rate != 100 {
		t.Errorf("outage %+v", p)
	}
	if o.maxSlope["goroutines"] != 2 || o.maxSlope["rss"] != 5 {
		t.Errorf("slopes %v", o.maxSlope)
	}
	o, err = parseOptions(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if p := o.params("soak"); p.duration != 10*time.Minute || p.warmup != time.Minute || o.maxSlope["cpu"] != 0.5 {
		t.Errorf("default soak %+v, slopes %v", p, o.maxSlope)
	}
	for _, bad := range [][]string{
		{"-scenario", "nap"}, {"-modes", "disk"}, {"-max-slope", "rss=x"}, {"-max-slope", "heap=1"},
		{"-containers", "0"}, {"-shipper-metrics", "http://x/metrics"}, {"extra"},
	} {
		if _, err := parseOptions(bad, io.Discard); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if o, err := parseOptions([]string{"-shipper-pid", "1"}, io.Discard); err != nil || fmt.Sprint(o.modes) != "[external]" {
		t.Errorf("external: %v, %v", o, err)
	}
}

func TestSVG(t *testing.T) {
	var samples []sample
	start := time.Now()
	for i := range 20 {
		s := sample{at: start.Add(time.Duration(i) * time.Second), elapsed: float64(i), goroutines: 30, fds: 17 + float64(i%2),
			rssMiB: 20 + float64(i)/10, linesPerSec: 100, queueMiB: math.NaN(), maxLatency: 0.5}
		if i == 7 {
			s.goroutines = math.NaN() // a failed scrape leaves a gap
		}
		samples = append(samples, s)
	}
	rs := []*result{
		{scenario: "outage", mode: "file", samples: samples, phases: []phaseMark{{"before", 0}, {"outage <&>", 5}}},
		{scenario: "outage", mode: "api", samples: samples[:10]},
	}
	path := filepath.Join(t.TempDir(), "outage.svg")
	if err := writeSVG(path, "outage", rs); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	checkSVG(t, data)
	for _, want := range []string{"no data", "outage &lt;&amp;&gt;", "disk queue MiB"} {
		if !bytes.Contains(data, []byte(want)) {
			t.Errorf("SVG lacks %q", want)
		}
	}
	if got := niceTicks(0, 37, 4); fmt.Sprint(got) != "[0 10 20 30 40]" {
		t.Errorf("ticks %v", got)
	}
}
