//go:build linux

package main

import (
	"bufio"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wharf-logs/wharf/bench/internal/host"
)

// sample is one row of samples.csv. Values that could not be read are NaN
// (an empty CSV cell): goroutines and wharf_* metrics need the shipper's
// /metrics, the rest comes from /proc.
type sample struct {
	scenario, mode, phase string
	at                    time.Time
	elapsed               float64 // seconds since the run (scenario and mode) started
	goroutines            float64 // go_goroutines
	fds                   float64 // entries of /proc/PID/fd
	rssMiB                float64 // VmRSS
	cpuSeconds            float64 // user+system since the shipper started
	cpuPct                float64 // over the last interval, % of one core
	dockerdPct            float64
	linesTotal            float64 // lines received by the receiver
	linesPerSec           float64 // over the last interval
	mibPerSec             float64
	queueMiB              float64 // wharf_queue_bytes (disk queue)
	bufferMiB             float64 // wharf_sink_queue_bytes (memory)
	lagSeconds            float64 // wharf_oldest_unsent_entry_age_seconds
	watched               float64 // wharf_containers_watched, all read modes
	maxLatency            float64 // highest end-to-end latency received in the interval
}

var csvHeader = []string{"scenario", "mode", "phase", "unix_ms", "elapsed_s", "goroutines", "open_fds", "rss_mib",
	"cpu_s", "cpu_pct", "dockerd_cpu_pct", "lines_total", "lines_per_s", "mib_per_s", "queue_mib", "buffer_mib",
	"lag_s", "containers_watched", "max_latency_s"}

func (s sample) record() []string {
	f := func(v float64, prec int) string {
		if math.IsNaN(v) {
			return ""
		}
		return strconv.FormatFloat(v, 'f', prec, 64)
	}
	return []string{s.scenario, s.mode, s.phase, strconv.FormatInt(s.at.UnixMilli(), 10), f(s.elapsed, 3),
		f(s.goroutines, 0), f(s.fds, 0), f(s.rssMiB, 2), f(s.cpuSeconds, 2), f(s.cpuPct, 2), f(s.dockerdPct, 2),
		f(s.linesTotal, 0), f(s.linesPerSec, 1), f(s.mibPerSec, 3), f(s.queueMiB, 3), f(s.bufferMiB, 3),
		f(s.lagSeconds, 3), f(s.watched, 0), f(s.maxLatency, 3)}
}

// sampler records a sample every interval until stopped.
type sampler struct {
	scenario, mode string
	pid, dockerd   int
	metricsURL     string
	tr             *tracker
	start          time.Time

	mu      sync.Mutex
	phase   string
	samples []sample
	prev    counters // at the last sample
	stopc   chan struct{}
	done    chan struct{}
}

func startSampler(scenario, mode string, pid, dockerd int, metricsURL string, tr *tracker, interval time.Duration) *sampler {
	s := &sampler{scenario: scenario, mode: mode, pid: pid, dockerd: dockerd, metricsURL: metricsURL, tr: tr,
		start: time.Now(), phase: "start", stopc: make(chan struct{}), done: make(chan struct{})}
	s.prev = s.read(s.start)
	go func() {
		defer close(s.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-s.stopc:
				return
			case <-t.C:
				// A tick delivered late, right after a slow sample, would
				// make a second sample milliseconds after the first.
				s.mu.Lock()
				soon := time.Since(s.prev.at) < interval/2
				s.mu.Unlock()
				if !soon {
					s.take()
				}
			}
		}
	}()
	return s
}

// setPhase names the phase later samples belong to.
func (s *sampler) setPhase(p string) {
	s.mu.Lock()
	s.phase = p
	s.mu.Unlock()
}

// stop ends sampling and returns the samples.
func (s *sampler) stop() []sample {
	close(s.stopc)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.samples
}

// since returns the samples taken at or after t.
func (s *sampler) since(t time.Time) []sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []sample
	for _, x := range s.samples {
		if !x.at.Before(t) {
			out = append(out, x)
		}
	}
	return out
}

// counters are the cumulative values rates are computed from.
type counters struct {
	at               time.Time
	cpu, dockerd     float64 // CPU seconds
	lines, lineBytes float64 // received
}

func (s *sampler) read(at time.Time) counters {
	return counters{at: at, cpu: host.CPUSeconds(s.pid), dockerd: host.CPUSeconds(s.dockerd),
		lines: float64(s.tr.lines.Load()), lineBytes: float64(s.tr.bytes.Load())}
}

func (s *sampler) take() {
	m, _ := scrape(s.metricsURL)
	now := time.Now()
	c := s.read(now)
	s.mu.Lock()
	defer s.mu.Unlock()
	prev := s.prev
	s.prev = c
	dt := now.Sub(prev.at).Seconds()
	lat, any := s.tr.maxLatency(prev.at, now)
	if !any {
		lat = math.NaN()
	}
	x := sample{
		scenario: s.scenario, mode: s.mode, phase: s.phase, at: now, elapsed: now.Sub(s.start).Seconds(),
		goroutines:  metric(m, "go_goroutines"),
		fds:         host.OpenFDs(s.pid),
		rssMiB:      host.RSS(s.pid) / (1 << 20),
		cpuSeconds:  c.cpu,
		cpuPct:      100 * (c.cpu - prev.cpu) / dt,
		dockerdPct:  100 * (c.dockerd - prev.dockerd) / dt,
		linesTotal:  c.lines,
		linesPerSec: (c.lines - prev.lines) / dt,
		mibPerSec:   (c.lineBytes - prev.lineBytes) / dt / (1 << 20),
		queueMiB:    metric(m, "wharf_queue_bytes") / (1 << 20),
		bufferMiB:   metric(m, "wharf_sink_queue_bytes") / (1 << 20),
		lagSeconds:  metric(m, "wharf_oldest_unsent_entry_age_seconds"),
		watched:     metric(m, "wharf_containers_watched"),
		maxLatency:  lat,
	}
	s.samples = append(s.samples, x)
}

// metrics is a scrape: "name{labels}" -> value.
type metrics map[string]float64

var scrapeClient = &http.Client{Timeout: 3 * time.Second}

// scrapeToken is sent as a bearer token with every scrape when set; it is
// set once, before any scrape.
var scrapeToken string

// scrape reads a Prometheus text exposition. An empty URL gives no metrics.
func scrape(url string) (metrics, error) {
	if url == "" {
		return nil, nil
	}
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if scrapeToken != "" {
		req.Header.Set("Authorization", "Bearer "+scrapeToken)
	}
	resp, err := scrapeClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: %s", url, resp.Status)
	}
	out := metrics{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out, sc.Err()
}

// metric sums every series of the named metric, whatever its labels; NaN
// when there is none.
func metric(m metrics, name string) float64 {
	v, found := 0.0, false
	for k, x := range m {
		if k == name || strings.HasPrefix(k, name+"{") {
			v += x
			found = true
		}
	}
	if !found {
		return math.NaN()
	}
	return v
}
