//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wharf-logs/wharf/internal/lokitest"
	"github.com/wharf-logs/wharf/internal/seq"
)

// receiver is the Loki-protocol endpoint the shipper pushes to: the test
// server in counting mode (nothing stored), with every accepted line handed
// to a tracker that checks sequence numbers and measures latency.
type receiver struct {
	srv *lokitest.Server
	hs  *http.Server // serves srv on a fixed address (-listen), or nil
	url string
	tr  *tracker
}

// newReceiver starts the receiver. With listen empty it takes a free port
// of 127.0.0.1; otherwise it listens on listen, so a shipper started
// beforehand can be pointed at it.
func newReceiver(listen, labelKey string) (*receiver, error) {
	tr := newTracker(labelKey)
	r := &receiver{tr: tr}
	r.srv = lokitest.New(lokitest.Options{CountOnly: true, OnEntry: tr.add})
	if listen == "" {
		r.url = r.srv.URL()
		return r, nil
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		r.srv.Close()
		return nil, fmt.Errorf("receiver: %w", err)
	}
	// The test server is an http.Handler; serve it here too.
	r.hs = &http.Server{Handler: r.srv, ReadHeaderTimeout: 10 * time.Second}
	go r.hs.Serve(ln)
	r.url = "http://" + ln.Addr().String() + lokitest.PushPath
	return r, nil
}

func (r *receiver) close() {
	if r.hs != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := r.hs.Shutdown(ctx); err != nil {
			r.hs.Close()
		}
	}
	r.srv.Close()
}

// tracker follows every container the harness started: the lines received
// (by sequence number, through a seq.Checker), their bytes and their
// end-to-end latency (receive time minus the sent time loggen wrote into
// the line). Lines of containers it was not told about are only counted.
type tracker struct {
	labelKey string
	start    time.Time
	checker  *seq.Checker

	names sync.Map // stream selector -> container name ("" if none)

	mu     sync.RWMutex
	conts  map[string]*cstats
	groups []*group

	lines, bytes, foreign atomic.Int64

	tlMu     sync.Mutex
	timeline []float32 // per second since start: the highest latency received
}

// group gathers the containers of one phase (a throughput step, the soak's
// load) for latency quantiles. Latency is also split by quarter of the
// group's planned length, by sent time, to see a backlog build up.
type group struct {
	name     string
	length   time.Duration
	mu       sync.Mutex
	start    time.Time // when lines begin; guarded by mu
	all      hist
	quarters [4]hist
}

type cstats struct {
	name  string
	id    string
	group *group
	want  int64 // lines written; set once the container has stopped
	churn bool

	mu                  sync.Mutex
	lines, bytes        int64
	firstRecv, lastRecv int64 // unix nanos
	minSent, maxSent    int64
}

func newTracker(labelKey string) *tracker {
	return &tracker{labelKey: labelKey, start: time.Now(), checker: seq.NewChecker(), conts: map[string]*cstats{}}
}

// setStart moves the group's start, for quarters by sent time.
func (g *group) setStart(t time.Time) {
	g.mu.Lock()
	g.start = t
	g.mu.Unlock()
}

func (t *tracker) newGroup(name string, length time.Duration) *group {
	g := &group{name: name, start: time.Now(), length: length}
	t.mu.Lock()
	t.groups = append(t.groups, g)
	t.mu.Unlock()
	return g
}

// register announces a container before it starts, so none of its lines
// is taken for a stranger's.
func (t *tracker) register(name string, g *group, churn bool) *cstats {
	c := &cstats{name: name, group: g, churn: churn}
	t.mu.Lock()
	t.conts[name] = c
	t.mu.Unlock()
	return c
}

func (t *tracker) container(name string) *cstats {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.conts[name]
}

// containerName returns the container a stream belongs to, from its
// selector's label labelKey (a leading "/" removed, as some shippers keep
// Docker's form of the name).
func (t *tracker) containerName(selector string) string {
	if v, ok := t.names.Load(selector); ok {
		return v.(string)
	}
	name := ""
	if ls, err := lokitest.ParseLabels(selector); err == nil {
		for _, l := range ls {
			if l.Name == t.labelKey {
				name = strings.TrimPrefix(l.Value, "/")
			}
		}
	}
	t.names.Store(selector, name)
	return name
}

// add is the receiver's OnEntry callback.
func (t *tracker) add(e lokitest.Entry) {
	now := time.Now()
	t.lines.Add(1)
	t.bytes.Add(int64(len(e.Line)))
	c := t.container(t.containerName(e.Labels))
	if c == nil {
		t.foreign.Add(1)
		return
	}
	t.checker.Add(c.name, e.Line)
	_, _, sent, ok := seq.ParseLine(e.Line)
	lat := math.NaN()
	if ok {
		lat = max(float64(now.UnixNano()-sent)/1e9, 0)
	}
	ns := now.UnixNano()
	c.mu.Lock()
	c.lines++
	c.bytes += int64(len(e.Line))
	if c.firstRecv == 0 {
		c.firstRecv = ns
	}
	c.lastRecv = ns
	if ok {
		if c.minSent == 0 || sent < c.minSent {
			c.minSent = sent
		}
		c.maxSent = max(c.maxSent, sent)
	}
	c.mu.Unlock()
	if !ok {
		return
	}
	if g := c.group; g != nil {
		g.mu.Lock()
		q := 0
		if g.length > 0 {
			q = min(max(int(time.Duration(sent-g.start.UnixNano())*4/g.length), 0), 3)
		}
		g.all.add(lat)
		g.quarters[q].add(lat)
		g.mu.Unlock()
	}
	sec := int(now.Sub(t.start) / time.Second)
	t.tlMu.Lock()
	for len(t.timeline) <= sec {
		t.timeline = append(t.timeline, 0)
	}
	t.timeline[sec] = max(t.timeline[sec], float32(max(lat, 1e-6)))
	t.tlMu.Unlock()
}

// maxLatency returns the highest latency of the lines received in
// [from, to), and whether any line was received then.
func (t *tracker) maxLatency(from, to time.Time) (float64, bool) {
	a, b := int(from.Sub(t.start)/time.Second), int(to.Sub(t.start)/time.Second)
	t.tlMu.Lock()
	defer t.tlMu.Unlock()
	m, any := 0.0, false
	for i := max(a, 0); i < b && i < len(t.timeline); i++ {
		if t.timeline[i] > 0 {
			m, any = max(m, float64(t.timeline[i])), true
		}
	}
	return m, any
}

// lastAbove returns the end of the last second before to in which a line
// with a latency above limit was received, or the zero time if none was
// after from.
func (t *tracker) lastAbove(from, to time.Time, limit float64) time.Time {
	a, b := int(from.Sub(t.start)/time.Second), int(to.Sub(t.start)/time.Second)
	t.tlMu.Lock()
	defer t.tlMu.Unlock()
	for i := min(b, len(t.timeline)-1); i >= max(a, 0); i-- {
		if float64(t.timeline[i]) > limit {
			return t.start.Add(time.Duration(i+1) * time.Second)
		}
	}
	return time.Time{}
}

// firstAfter returns the start of the first second after from in which a
// line was received, or the zero time.
func (t *tracker) firstAfter(from time.Time) time.Time {
	a := int(from.Sub(t.start)/time.Second) + 1
	t.tlMu.Lock()
	defer t.tlMu.Unlock()
	for i := max(a, 0); i < len(t.timeline); i++ {
		if t.timeline[i] > 0 {
			return t.start.Add(time.Duration(i) * time.Second)
		}
	}
	return time.Time{}
}

// delivery is the sequence check of one container.
type delivery struct {
	scenario, mode string
	report         seq.Report
	churn          bool
}

// report checks c against the lines it wrote.
func (t *tracker) report(c *cstats) seq.Report {
	return t.checker.Report(c.name, c.want)
}

// complete reports whether every line of every container in cs has
// arrived.
func (t *tracker) complete(cs []*cstats) bool {
	for _, c := range cs {
		if c.want == 0 {
			continue
		}
		c.mu.Lock()
		n := c.lines
		c.mu.Unlock()
		if n < c.want {
			return false
		}
		if t.report(c).MissingCount() > 0 {
			return false
		}
	}
	return true
}

// waitComplete waits until every line of cs has arrived, the context ends
// or timeout passes, and returns how long it waited.
func (t *tracker) waitComplete(ctx context.Context, cs []*cstats, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	deadline := start.Add(timeout)
	for !t.complete(cs) {
		if time.Now().After(deadline) {
			return time.Since(start), errDrainTimeout
		}
		select {
		case <-ctx.Done():
			return time.Since(start), ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return time.Since(start), nil
}

var errDrainTimeout = errors.New("not every line arrived in time")

// snapshot copies a container's counters.
func (c *cstats) snapshot() (lines, bytes, firstRecv, lastRecv, minSent, maxSent int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lines, c.bytes, c.firstRecv, c.lastRecv, c.minSent, c.maxSent
}
