//go:build linux

package main

import (
	"bytes"
	"errors"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wharf-logs/wharf/internal/seq"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// TestGolden renders every output the harness writes (summary.md, both
// CSVs, a plot per scenario) from a fixed set of results covering all five
// scenarios, passes and failures, and compares them byte for byte with
// testdata/golden, together with the help text and the error of each bad
// command line. A change to the output shows up as a diff to review; run
// with -update to accept it.
func TestGolden(t *testing.T) {
	files := renderReports(t)
	var help bytes.Buffer
	if _, err := parseOptions([]string{"-h"}, &help); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	files["help.txt"] = help.Bytes()
	files["errors.txt"] = optionErrors(t, help.String())

	for name, got := range files {
		path := filepath.Join("testdata", "golden", name)
		if *update {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with -update to create it)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from %s (run with -update to accept)", name, path)
		}
	}
	if code := exitCode(goldenResults()); code != 2 {
		t.Errorf("exit status %d with a run that could not complete, want 2", code)
	}
}

// renderReports writes the reports of goldenResults and returns them by
// file name.
func renderReports(t *testing.T) map[string][]byte {
	o, err := parseOptions([]string{"-scenario", "all,fleet", "-modes", "file,api", "-duration", "40s"}, new(bytes.Buffer))
	if err != nil {
		t.Fatal(err)
	}
	h := header{date: "2025-01-02 03:04 UTC", host: "bench1", cpu: "Test CPU @ 2.0GHz", cpus: 2, docker: "27.0.1",
		commit: "abc1234", command: "go run ./bench/harness " + quoteArgs([]string{"-scenario", "all", "-out", "a b's"}),
		out: "/tmp/out", loadStart: "0.10 0.20 0.30", loadEnd: "1.00 0.50 0.40"}
	dir := t.TempDir()
	text, err := writeAll(dir, h, o, goldenResults())
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, name := range []string{"summary.md", "samples.csv", "delivery.csv", "soak.svg", "churn.svg", "throughput.svg", "outage.svg", "fleet.svg"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		files[name] = data
	}
	if string(files["summary.md"]) != text {
		t.Error("writeAll returned a summary other than summary.md")
	}
	return files
}

// optionErrors lists what parseOptions says to each bad command line, the
// usage it prints shortened to "(usage)". It also checks that a good token
// file is read.
func optionErrors(t *testing.T, help string) []byte {
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte(" secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o, err := parseOptions([]string{"-shipper-pid", "7", "-shipper-metrics", "http://x/metrics", "-shipper-metrics-token-file", token}, new(bytes.Buffer))
	if err != nil || o.metricsToken != "secret" || strings.Join(o.modes, ",") != "external" {
		t.Errorf("external shipper with a token: %v, %+v", err, o)
	}
	missing := filepath.Join(t.TempDir(), "none")
	var errs strings.Builder
	for _, args := range [][]string{
		{"-scenario", "nap"}, {"-scenario", ","}, {"-modes", "disk"}, {"-modes", ","}, {"-max-slope", "x"},
		{"-max-slope", "rss=x"}, {"-max-slope", "heap=1"}, {"-containers", "0"}, {"-rate", "0"}, {"-duration", "0s"},
		{"-sample", "0s"}, {"-warmup", "-1s"}, {"-size", "59"}, {"-stderr", "1.5"}, {"-step-factor", "1"},
		{"-churn-lines", "0"}, {"-max-lag", "0s"}, {"-max-rss", "0"}, {"-max-cpu", "-1"}, {"-outage-status", "99"}, {"-run-id", "Bad"},
		{"-shipper-metrics", "http://x/metrics"}, {"-shipper-metrics-token-file", missing},
		{"-modes", ",", "-shipper-metrics-token-file", missing}, {"-shipper-pid", "1", "-modes", ","},
		{"-nope"}, {"extra"}, {"-containers", "x"},
	} {
		var out bytes.Buffer
		_, err := parseOptions(args, &out)
		msg := "accepted"
		if err != nil {
			msg = err.Error()
		}
		line := strings.Join(args, " ") + ": " + msg + "\n"
		if out.Len() > 0 {
			line += strings.ReplaceAll(out.String(), help, "(usage)\n")
		}
		// The missing token file's path is random.
		errs.WriteString(strings.ReplaceAll(line, missing, "MISSING"))
	}
	return []byte(errs.String())
}

// goldenResults is a fixed run of every scenario in two modes, the api
// runs with the faults, and a run that could not start.
func goldenResults() []*result {
	var rs []*result
	for _, mode := range []string{"file", "api"} {
		rs = append(rs, goldenSoak(mode), goldenChurn(mode), goldenThroughput(mode), goldenOutage(mode), goldenFleet(mode))
	}
	// A run that could not start has no samples and no scenario result.
	rs = append(rs, &result{scenario: "throughput", mode: "auto", params: profiles["throughput"], err: errors.New("no Docker daemon")})
	return rs
}

// goldenSamples returns n samples step seconds apart, with a gap where a
// scrape failed; the soak has no goroutine count at all, as with an
// external shipper without /metrics.
func goldenSamples(scenario, mode string, n int, step float64) []sample {
	start := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	var ss []sample
	for i := range n {
		e := float64(i) * step
		s := sample{scenario: scenario, mode: mode, phase: "measure", at: start.Add(time.Duration(e * float64(time.Second))), elapsed: e,
			goroutines: 30 + float64(i%3), fds: 17 + float64(i%2), rssMiB: 20 + e/100, cpuSeconds: e / 50, cpuPct: 2 + float64(i%5),
			dockerdPct: 1.5, linesTotal: 100 * e, linesPerSec: 100 + float64(i%7), mibPerSec: 0.025, queueMiB: math.NaN(),
			bufferMiB: 0.5, lagSeconds: 0.2, watched: 4, maxLatency: 0.05 * float64(1+i%4)}
		if mode == "api" {
			s.rssMiB += 3
			s.queueMiB = float64(i%6) / 3
		}
		if i == 7 || scenario == "soak" {
			s.goroutines = math.NaN()
		}
		ss = append(ss, s)
	}
	return ss
}

func goldenReport(name string, want, lines int64) seq.Report {
	return seq.Report{Container: name, Want: want, Lines: lines}
}

func goldenSoak(mode string) *result {
	r := &result{scenario: "soak", mode: mode, params: profiles["soak"], samples: goldenSamples("soak", mode, 45, 15),
		phases:     []phaseMark{{"warm-up", 0}, {"measure", 60.5}, {"drain", 600.2}},
		deliveries: []delivery{{report: goldenReport("wharf-harness-x-soak-"+mode+"-c-1", 30000, 30000)}},
		soak: &soakResult{measured: 9 * time.Minute, samples: 108, series: []series{
			{name: "goroutines", baseline: 31, final: 31, slope: 0.01, mean: 31, limit: 0.5},
			{name: "fds", baseline: 17, final: 18, slope: -0.002, mean: 17.5, limit: 0.5},
			{name: "rss", unit: "MiB", baseline: 20.51, final: 25.9, slope: 0.6, mean: 23.1234, limit: 0.5},
			{name: "cpu", unit: "% of a core", baseline: 0.0123, final: 3, slope: math.NaN(), mean: 1234.5, limit: 2},
		}}}
	if mode == "api" {
		r.failures = []string{"rss grows 0.6 MiB per minute, above the limit of 0.5"}
		r.phases = nil
	}
	return r
}

func goldenChurn(mode string) *result {
	r := &result{scenario: "churn", mode: mode, params: profiles["churn"], samples: goldenSamples("churn", mode, 20, 10),
		phases: []phaseMark{{"warm-up", 0}, {"baseline", 20}, {"churn", 25}, {"settle", 180}, {"after", 195}},
		deliveries: []delivery{
			{report: goldenReport("wharf-harness-x-churn-"+mode+"-steady-1", 5000, 5000)},
			{report: goldenReport("wharf-harness-x-churn-"+mode+"-churn-5", 10, 10), churn: true},
			{report: goldenReport("wharf-harness-x-churn-"+mode+"-churn-6", 10, 10), churn: true},
		},
		churn: &churnResult{started: 150, removed: 149, failedStarts: 1, churning: 150500 * time.Millisecond,
			baseline: counts{30, 17, 4}, after: counts{33, 17, math.NaN()}, steady: 4}}
	if mode == "api" {
		churned := goldenReport("wharf-harness-x-churn-api-churn-9", 10, 8)
		churned.Missing = []seq.Range{{First: 9, Last: 10}}
		steady := goldenReport("wharf-harness-x-churn-api-steady-3", 500, 497)
		steady.Missing = []seq.Range{{First: 1, Last: 1}, {First: 10, Last: 12}, {First: 20, Last: 20}, {First: 30, Last: 31}, {First: 40, Last: 40}, {First: 50, Last: 50}}
		steady.Duplicated = []int64{5, 6}
		steady.OutOfOrder = []int64{7}
		r.deliveries = append(r.deliveries, delivery{report: churned, churn: true}, delivery{report: steady})
		r.err = errors.New("waiting for\n  the generators:   exit status 1")
		r.churn.after = counts{30, 19, 4}
	}
	return r
}

func goldenThroughput(mode string) *result {
	r := &result{scenario: "throughput", mode: mode, params: profiles["throughput"], samples: goldenSamples("throughput", mode, 30, 4),
		phases: []phaseMark{{"idle", 0}, {"step 1", 5}, {"step 2", 40}, {"step 3", 80}},
		tput: &tputResult{best: 1, peakRSS: 48.25, steps: []step{
			{offered: 1000, generated: 999.6, delivered: 998.4, mibPerSec: 0.2527, lines: 30000, bytes: 7950000, p50: 0.0123, p99: 0.25,
				growth: 0.001, drain: time.Second, drained: true, wharfCPU: 12.3456, dockerdCPU: 45.6, harnessCPU: 0.5, peakRSS: 30.04, sustained: true},
			{offered: 2000, generated: 1999, delivered: 1990.2, mibPerSec: 0.505, lines: 60000, bytes: 15900000, p50: 0.02, p99: 1.5,
				growth: 0.2, drain: 2 * time.Second, drained: true, wharfCPU: 10, dockerdCPU: 40, harnessCPU: 0.4, peakRSS: 35.5, sustained: true},
			{offered: 4000, generated: 3000, delivered: 2500, mibPerSec: 0.63, lines: 120000, bytes: 31800000, p50: 2, p99: 7.5,
				growth: 3, drain: 2 * time.Minute, wharfCPU: math.NaN(), dockerdCPU: math.Inf(1), harnessCPU: 0, peakRSS: 40,
				why: "p99 latency 7.50 s above 5s"},
		}}}
	if mode == "api" {
		r.tput = &tputResult{best: 0, peakRSS: 33, steps: []step{
			{offered: 1000, generated: 850, delivered: 849, mibPerSec: 0.2, p50: 0.01, p99: 0.02, drained: true, sustained: true,
				generatorLimited: true, why: "the generators wrote only 850 lines/s", wharfCPU: 9, dockerdCPU: 30, harnessCPU: 1, peakRSS: 33},
		}}
	}
	return r
}

func goldenOutage(mode string) *result {
	r := &result{scenario: "outage", mode: mode, params: profiles["outage"], samples: goldenSamples("outage", mode, 40, 2),
		phases:     []phaseMark{{"before", 0}, {"outage", 20}, {"catch-up", 60}, {"after", 70}, {"drain", 80}},
		deliveries: []delivery{{report: goldenReport("wharf-harness-x-outage-"+mode+"-c-1", 9000, 9000)}},
		outage: &outageResult{status: 503, outage: 40 * time.Second, linesDuring: 16000, refused: 37, caughtUp: true,
			catchUp: 4200 * time.Millisecond, wharfCaughtUp: 5 * time.Second, firstLine: 1100 * time.Millisecond,
			queuePeakMiB: 3.25, bufferPeakMiB: math.NaN(), peakRSS: 41.5, retries: 36, probes: 20, lagBefore: 0.04}}
	if mode == "api" {
		// More faults than the CSV and the summary list one by one.
		many := goldenReport("wharf-harness-x-outage-api-c-2", 900, 1000)
		for i := range int64(25) {
			many.Duplicated = append(many.Duplicated, 100+i)
			many.OutOfOrder = append(many.OutOfOrder, 200+i)
			many.Missing = append(many.Missing, seq.Range{First: 300 + 2*i, Last: 300 + 2*i})
		}
		many.Unparsed = 3
		r.deliveries = append(r.deliveries, delivery{report: many})
		r.outage.caughtUp, r.outage.wharfCaughtUp, r.outage.firstLine = false, -1, -1
		r.failures = []string{"not caught up 10m0s after the receiver recovered", "100 lines missing"}
		r.notes = []string{"25 lines delivered more than once"}
	}
	return r
}

func goldenFleet(mode string) *result {
	r := &result{scenario: "fleet", mode: mode, params: profiles["fleet"], samples: goldenSamples("fleet", mode, 30, 10),
		phases:     []phaseMark{{"start", 0}, {"warm-up", 95.5}, {"measure", 155.5}, {"drain", 455.5}},
		deliveries: []delivery{{report: goldenReport("wharf-harness-x-fleet-"+mode+"-c-1", 300, 300)}},
		fleet: &fleetResult{containers: 1000, starting: 95 * time.Second, measured: 290 * time.Second, samples: 59,
			rssMedian: 61.25, rssMax: 64.5, cpuMean: 3.456, cpuMax: 7.5, dockerdMean: 12.25, goroutines: 1031, fds: 1018,
			watched: 1000, linesPerSec: 999.5, maxRSSLimit: 100, maxCPULimit: 5}}
	if mode == "api" {
		r.fleet.rssMax, r.fleet.cpuMean = 180.25, 9.5
		r.failures = []string{"RSS reached 180.2 MiB, above the limit of 100 MiB", "mean CPU 9.50% of a core, above the limit of 5%"}
	}
	return r
}
