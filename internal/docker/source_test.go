package docker

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"github.com/wharf-logs/wharf/internal/positions"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/wharf-logs/wharf/internal/dockerlog"
	"github.com/wharf-logs/wharf/internal/entry"
	"github.com/wharf-logs/wharf/internal/source"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// srcT0 is the time the tests' logs are stamped around.
var srcT0 = time.Date(2026, 11, 26, 23, 0, 0, 0, time.UTC).UnixNano()

// at returns a time us microseconds after srcT0, with a nanosecond part so
// that a time kept in coarser units shows.
func at(us int) int64 { return srcT0 + int64(us)*1000 + 123 }

func stdoutLine(t int64, text string) fakeLine {
	return fakeLine{Time: t, Stream: dockerlog.Stdout, Text: text}
}
func stderrLine(t int64, text string) fakeLine {
	return fakeLine{Time: t, Stream: dockerlog.Stderr, Text: text}
}

// cid returns a container id for name, 64 hex digits like Docker's.
func cid(name string) string { return fmt.Sprintf("%x", sha256.Sum256([]byte(name))) }

// waitUntil polls cond until it holds, failing the test after a generous
// deadline.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// fakeSubmitter records what a source submits. It can hold back the
// submissions of chosen containers until released.
type fakeSubmitter struct {
	mu      sync.Mutex
	got     []entry.Entry
	calls   int
	blocked int                      // submissions waiting for release
	hold    map[string]chan struct{} // container id -> closed on release
}

func (s *fakeSubmitter) Submit(ctx context.Context, entries []entry.Entry) error {
	s.mu.Lock()
	s.calls++
	var gate chan struct{}
	if len(entries) > 0 {
		gate = s.hold[entries[0].Stream.Metadata.Get("container_id")]
	}
	if gate != nil {
		s.blocked++
	}
	s.mu.Unlock()
	if gate != nil {
		defer func() {
			s.mu.Lock()
			s.blocked--
			s.mu.Unlock()
		}()
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, entries...)
	return nil
}

// holdBack makes submissions of container id block until release is called.
func (s *fakeSubmitter) holdBack(id string) (release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hold == nil {
		s.hold = map[string]chan struct{}{}
	}
	ch := make(chan struct{})
	s.hold[id] = ch
	return sync.OnceFunc(func() {
		s.mu.Lock()
		delete(s.hold, id)
		s.mu.Unlock()
		close(ch)
	})
}

func (s *fakeSubmitter) blockedNow() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.blocked
}

// entriesOf returns the entries submitted for container id.
func (s *fakeSubmitter) entriesOf(id string) []entry.Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []entry.Entry
	for _, e := range s.got {
		if e.Stream.Metadata.Get("container_id") == id {
			out = append(out, e)
		}
	}
	return out
}

func (s *fakeSubmitter) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got)
}

// logCapture is a slog.Handler keeping every record.
type logCapture struct {
	mu   sync.Mutex
	recs []capturedLog
}

type capturedLog struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

func (l *logCapture) Enabled(context.Context, slog.Level) bool { return true }
func (l *logCapture) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logCapture) WithGroup(string) slog.Handler            { return l }

func (l *logCapture) Handle(_ context.Context, r slog.Record) error {
	c := capturedLog{level: r.Level, msg: r.Message, attrs: map[string]string{}}
	r.Attrs(func(a slog.Attr) bool {
		c.attrs[a.Key] = a.Value.String()
		return true
	})
	l.mu.Lock()
	l.recs = append(l.recs, c)
	l.mu.Unlock()
	return nil
}

// warnings returns the warnings (and errors) logged with attribute key=value.
func (l *logCapture) warnings(key, value string) []capturedLog {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []capturedLog
	for _, r := range l.recs {
		if r.level >= slog.LevelWarn && (key == "" || r.attrs[key] == value) {
			out = append(out, r)
		}
	}
	return out
}

// srcHarness runs a Source against a fakeEngine.
type srcHarness struct {
	t      *testing.T
	fe     *fakeEngine
	client *Client
	src    *Source
	sub    *fakeSubmitter
	log    *logCapture
	met    *Metrics
	lost   *prometheus.CounterVec // reason
	cancel context.CancelFunc
	done   chan error

	stopOnce sync.Once
	runErr   error
}

// startSource runs a Source on fe until the test ends, and waits for it to
// connect. cfg gets short backoffs and start_at beginning unless set; tweak
// may change the dependencies.
func startSource(t *testing.T, fe *fakeEngine, cfg Config, tweak func(*SourceDeps)) *srcHarness {
	t.Helper()
	h := newSourceHarness(t, fe, cfg, tweak)
	waitUntil(t, "the source to connect", h.src.Connected)
	return h
}

func newSourceHarness(t *testing.T, fe *fakeEngine, cfg Config, tweak func(*SourceDeps)) *srcHarness {
	t.Helper()
	if cfg.StartAt == "" {
		cfg.StartAt = "beginning"
	}
	if cfg.ReadFrom == "" {
		cfg.ReadFrom = "api" // the fake engine serves logs, not files
	}
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff, cfg.MaxBackoff = 2*time.Millisecond, 20*time.Millisecond
	}
	filter := NewFilter(nil, nil)
	h := &srcHarness{t: t, fe: fe, client: fe.client(t), sub: &fakeSubmitter{}, log: &logCapture{}, met: NewMetrics(), done: make(chan error, 1),
		lost: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lost"}, []string{"reason"})}
	deps := SourceDeps{
		Client:  h.client,
		Out:     h.sub,
		Labeler: NewLabeler("testhost", nil, nil),
		Filter:  filter,
		Logger:  slog.New(h.log),
		Metrics: h.met,
		Lost:    h.lost,
	}
	if tweak != nil {
		tweak(&deps)
	}
	var err error
	h.src, err = NewSource(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	h.cancel = cancel
	go func() { h.done <- h.src.Run(ctx) }()
	t.Cleanup(func() {
		h.stop()
		h.checkOnlyGETs()
	})
	return h
}

// stop cancels Run and waits for it to return, failing the test if it
// does not; it returns Run's error.
func (h *srcHarness) stop() error {
	h.stopOnce.Do(func() {
		h.cancel()
		select {
		case h.runErr = <-h.done:
		case <-time.After(15 * time.Second):
			buf := make([]byte, 1<<20)
			h.t.Fatalf("Run did not return after cancel; goroutines:\n%s", buf[:runtime.Stack(buf, true)])
		}
	})
	return h.runErr
}

func (h *srcHarness) checkOnlyGETs() {
	h.t.Helper()
	for _, r := range h.fe.allRequests() {
		if r.Method != http.MethodGet {
			h.t.Errorf("wharf sent %s; it must only read", r)
		}
	}
}

// state reports whether the source knows container id and whether a reader
// runs for it.
func (h *srcHarness) state(id string) (known, reading bool) {
	h.src.mu.Lock()
	defer h.src.mu.Unlock()
	w := h.src.containers[id]
	return w != nil, w != nil && w.reading
}

func (h *srcHarness) destroyed(id string) bool {
	h.src.mu.Lock()
	defer h.src.mu.Unlock()
	w := h.src.containers[id]
	return w != nil && w.destroyed
}

func (h *srcHarness) knownCount() int {
	h.src.mu.Lock()
	defer h.src.mu.Unlock()
	return len(h.src.containers)
}

// waitIdle waits until the source knows id and runs no reader for it.
func (h *srcHarness) waitIdle(id string) {
	h.t.Helper()
	waitUntil(h.t, "the reader of "+id[:12]+" to stop", func() bool {
		known, reading := h.state(id)
		return known && !reading
	})
}

func (h *srcHarness) waitLines(id string, n int) {
	h.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for len(h.sub.entriesOf(id)) < n {
		if time.Now().After(deadline) {
			var got []string
			for _, e := range h.sub.entriesOf(id) {
				got = append(got, fmt.Sprintf("%s %d %s", e.Stream.Labels.Get("stream"), e.Time, e.Line))
			}
			h.t.Fatalf("timed out waiting for %d lines of %s; got %q", n, id[:12], got)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// assertLines checks that the lines of container id are want, exactly once
// each and in order within each stream, with their exact times.
func (h *srcHarness) assertLines(id string, want []fakeLine) {
	h.t.Helper()
	got := h.sub.entriesOf(id)
	for _, k := range []dockerlog.StreamKind{dockerlog.Stdout, dockerlog.Stderr} {
		var w, g []string
		for _, l := range want {
			if l.Stream == k {
				w = append(w, fmt.Sprintf("%d %s", l.Time, l.Text))
			}
		}
		for _, e := range got {
			if e.Stream.Labels.Get("stream") == k.String() {
				g = append(g, fmt.Sprintf("%d %s", e.Time, e.Line))
			}
		}
		if !slices.Equal(g, w) {
			h.t.Errorf("%s lines of %s:\n got %q\nwant %q", k, id[:12], g, w)
		}
	}
}

// logsSince returns the since parameter of each logs request for id, "" for
// none.
func (h *srcHarness) logsSince(id string) []string {
	var out []string
	for _, r := range h.fe.requestsTo("/containers/" + id + "/logs") {
		out = append(out, r.Query.Get("since"))
	}
	return out
}

func TestSourceReadsRunningContainer(t *testing.T) {
	for _, tty := range []bool{false, true} {
		t.Run(fmt.Sprintf("tty=%v", tty), func(t *testing.T) {
			fe := newFakeEngine(t)
			id := cid("web")
			first := []fakeLine{
				stdoutLine(at(1), "hello"),
				stderrLine(at(2), `oops "quoted" \ back`),
				stdoutLine(at(2), "same time as the stderr line"),
				stdoutLine(at(3), "ünïcödé ✓"),
				stdoutLine(at(3), ""),
			}
			more := []fakeLine{stderrLine(at(10), "later on stderr"), stdoutLine(at(11), "later on stdout")}
			if tty {
				// A terminal has one output: stderr arrives as stdout.
				for _, ls := range [][]fakeLine{first, more} {
					for i := range ls {
						ls[i].Stream = dockerlog.Stdout
					}
				}
			}
			fe.run(fakeSpec{ID: id, Name: "web", Image: "nginx:1.27", TTY: tty, Labels: map[string]string{
				composeProjectLabel: "shop", composeServiceLabel: "frontend", "team": "payments",
			}}, first...)
			h := startSource(t, fe, Config{}, func(d *SourceDeps) {
				d.Labeler = NewLabeler("node-1", map[string]string{"env": "prod"}, map[string]string{"owner": "team"})
			})
			h.waitLines(id, len(first))
			fe.write(id, more...)
			h.waitLines(id, len(first)+len(more))
			fe.exit(id, false)
			h.waitIdle(id)
			h.assertLines(id, append(first, more...))

			for _, e := range h.sub.entriesOf(id) {
				stream := e.Stream.Labels.Get("stream")
				want := entry.Labels{
					{Name: "compose_project", Value: "shop"},
					{Name: "compose_service", Value: "frontend"},
					{Name: "container", Value: "web"},
					{Name: "env", Value: "prod"},
					{Name: "host", Value: "node-1"},
					{Name: "owner", Value: "payments"},
					{Name: "stream", Value: stream},
				}
				if !slices.Equal(e.Stream.Labels, want) {
					t.Errorf("labels %v, want %v", e.Stream.Labels, want)
				}
				wantMeta := entry.Labels{{Name: "container_id", Value: id}, {Name: "image", Value: "nginx:1.27"}}
				if !slices.Equal(e.Stream.Metadata, wantMeta) {
					t.Errorf("metadata %v, want %v", e.Stream.Metadata, wantMeta)
				}
				if e.Stream.Origin != "web" {
					t.Errorf("origin %q, want web", e.Stream.Origin)
				}
			}

			logs := fe.requestsTo("/containers/" + id + "/logs")
			if len(logs) == 0 {
				t.Fatal("no logs request")
			}
			q := logs[0].Query
			for k, v := range map[string]string{"follow": "1", "stdout": "1", "stderr": "1", "timestamps": "1", "since": ""} {
				if q.Get(k) != v {
					t.Errorf("first logs request %s: %s=%q, want %q", logs[0], k, q.Get(k), v)
				}
			}
		})
	}
}

func TestSourceStartAt(t *testing.T) {
	// Times before srcT0 are before the source started: Now returns srcT0.
	const sec = 1_000_000
	for _, tc := range []struct {
		startAt source.StartAt
		fromNow bool // existing containers are read from srcT0 on
	}{
		{source.StartEnd, true},
		{source.StartBeginning, false},
	} {
		t.Run(string(tc.startAt), func(t *testing.T) {
			fe := newFakeEngine(t)
			running, stopped, later := cid("running"), cid("stopped"), cid("later")
			runningOld := []fakeLine{stdoutLine(at(-2*sec), "running: before start"), stderrLine(at(-1*sec), "running: before start, stderr")}
			runningNew := []fakeLine{stdoutLine(at(5), "running: stamped after start")}
			fe.run(fakeSpec{ID: running, Name: "running"}, append(runningOld, runningNew...)...)
			stoppedOld := []fakeLine{stdoutLine(at(-3*sec), "stopped: before start")}
			fe.run(fakeSpec{ID: stopped, Name: "stopped"}, stoppedOld...)
			fe.exit(stopped, false)

			h := startSource(t, fe, Config{StartAt: tc.startAt}, func(d *SourceDeps) {
				d.Now = func() time.Time { return time.Unix(0, srcT0) }
			})
			// A container created after the start is read from its first
			// line, whatever its timestamps say.
			laterLines := []fakeLine{stdoutLine(at(-sec/2), "later: 1"), stderrLine(at(-sec/4), "later: 2")}
			fe.run(fakeSpec{ID: later, Name: "later"}, laterLines...)
			runningLive := []fakeLine{stderrLine(at(10), "running: live")}
			fe.write(running, runningLive...)
			stoppedNew := []fakeLine{stdoutLine(at(20), "stopped: after restart")}
			fe.start(stopped)
			fe.write(stopped, stoppedNew...)

			wantRunning := slices.Concat(runningNew, runningLive)
			wantStopped := stoppedNew
			if !tc.fromNow {
				wantRunning = slices.Concat(runningOld, wantRunning)
				wantStopped = slices.Concat(stoppedOld, wantStopped)
			}
			h.waitLines(running, len(wantRunning))
			h.waitLines(stopped, len(wantStopped))
			h.waitLines(later, len(laterLines))
			for _, id := range []string{running, stopped, later} {
				fe.exit(id, false)
				h.waitIdle(id)
			}
			h.assertLines(running, wantRunning)
			h.assertLines(stopped, wantStopped)
			h.assertLines(later, laterLines)

			wantSince := ""
			if tc.fromNow {
				wantSince = formatUnixNano(srcT0)
			}
			if s := h.logsSince(running); s[0] != wantSince {
				t.Errorf("first logs request of the running container: since=%q, want %q", s[0], wantSince)
			}
			if s := h.logsSince(stopped); s[0] != wantSince {
				t.Errorf("first logs request of the stopped container: since=%q, want %q", s[0], wantSince)
			}
			if s := h.logsSince(later); s[0] != "" {
				t.Errorf("first logs request of the later container: since=%q, want none", s[0])
			}
		})
	}
}

// TestSourceRestartKeepsPosition stops and starts a container (same id) and
// checks that no line is lost or read twice, with lines sharing timestamps
// and stderr lines stamped before stdout lines that precede them in the log,
// as Docker's two copier goroutines produce.
func TestSourceRestartKeepsPosition(t *testing.T) {
	for _, tc := range []struct {
		name string
		// lost: the follow stream ends before the lines written at exit.
		lost bool
		// quick: the container starts again before the reader has caught up.
		quick bool
	}{
		{"stop then start", false, false},
		{"follow stream ends early at exit", true, false},
		{"quick restart", false, true},
		{"quick restart, stream ends early", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fe := newFakeEngine(t)
			id := cid("app")
			phase1 := []fakeLine{
				stdoutLine(at(100), "o1"),
				stdoutLine(at(100), "o2"),
				stderrLine(at(99), "e1"), // stamped before o1, written after o2
				stderrLine(at(101), "e2"),
				stderrLine(at(101), "e3"),
				stdoutLine(at(100), "o3"),
				stdoutLine(at(103), "o4"),
				stdoutLine(at(103), "o5"),
			}
			last := []fakeLine{stdoutLine(at(104), "o6"), stderrLine(at(101), "e4")}
			phase2 := []fakeLine{
				stdoutLine(at(104), "o7"),
				stderrLine(at(101), "e5"),
				stderrLine(at(102), "e6"),
				stdoutLine(at(110), "o8"),
			}
			fe.run(fakeSpec{ID: id, Name: "app"}, phase1...)
			h := startSource(t, fe, Config{}, nil)
			h.waitLines(id, len(phase1))
			fe.exit(id, tc.lost, last...)
			if !tc.quick {
				h.waitLines(id, len(phase1)+len(last))
				h.waitIdle(id)
			}
			before := len(h.logsSince(id))
			fe.start(id)
			fe.write(id, phase2...)
			all := slices.Concat(phase1, last, phase2)
			h.waitLines(id, len(all))
			fe.exit(id, false)
			h.waitIdle(id)
			h.assertLines(id, all)

			since := h.logsSince(id)
			for i, s := range since[1:] {
				if s == "" {
					t.Errorf("logs request %d read the log from its first line again", i+1)
				}
			}
			if !tc.quick && len(since) > before {
				// stdout was read up to o6 (104) and stderr up to e4 (101):
				// the older of the two is where the log is reopened.
				if want := formatUnixNano(at(101)); since[before] != want {
					t.Errorf("logs request after the restart: since=%s, want %s (all: %q)", since[before], want, since)
				}
			}
		})
	}
}

// TestSourceReadsWhatAContainerLeftWhileStopped: a container that wrote its
// last lines and exited while wharf was not running is read from its saved
// position at the next start, though it is no longer running.
func TestSourceReadsWhatAContainerLeftWhileStopped(t *testing.T) {
	fe := newFakeEngine(t)
	id, done := cid("app"), cid("done")
	store, _, err := positions.Open(filepath.Join(t.TempDir(), "positions"), nil)
	if err != nil {
		t.Fatal(err)
	}
	withStore := func(d *SourceDeps) { d.Positions = store }
	fe.run(fakeSpec{ID: id, Name: "app"}, stdoutLine(at(100), "o1"), stdoutLine(at(101), "o2"))
	fe.run(fakeSpec{ID: done, Name: "done"}, stdoutLine(at(100), "d1"))
	h := startSource(t, fe, Config{}, withStore)
	h.waitLines(id, 2)
	h.waitLines(done, 1)
	fe.exit(done, false)
	h.waitIdle(done)
	h.stop()
	// While nothing reads: app writes two more lines and exits.
	fe.exit(id, false, stdoutLine(at(102), "o3"), stderrLine(at(102), "e1"))
	h2 := startSource(t, fe, Config{}, withStore)
	h2.waitLines(id, 2)
	h2.waitIdle(id)
	h2.assertLines(id, []fakeLine{stdoutLine(at(102), "o3"), stderrLine(at(102), "e1")})
	if got := h2.sub.entriesOf(done); len(got) != 0 {
		t.Fatalf("a container read to its end before was read again: %d lines", len(got))
	}
}

func TestSourceEventStreamReconnect(t *testing.T) {
	cfg := Config{MinBackoff: 5 * time.Millisecond, MaxBackoff: 40 * time.Millisecond}
	// disconnect makes the daemon unreachable until at least two
	// reconnection attempts have failed, runs during, and brings it back.
	// It returns the requests made while it was down, and for how long.
	disconnect := func(t *testing.T, fe *fakeEngine, lose bool, during func()) ([]fakeRequest, time.Duration) {
		t.Helper()
		mark := len(fe.allRequests())
		start := time.Now()
		fe.setDown(true, lose)
		during()
		waitUntil(t, "two failed reconnections", func() bool { return countPings(fe.allRequests()[mark:]) >= 2 })
		time.Sleep(100 * time.Millisecond) // a few more attempts, to see their pace
		fe.setDown(false, false)
		return fe.allRequests()[mark:], time.Since(start)
	}
	eventsAfter := func(fe *fakeEngine, n int) []fakeRequest { return fe.requestsTo("/events")[n:] }

	t.Run("events replayed since the last one", func(t *testing.T) {
		fe := newFakeEngine(t)
		a, b, c, d := cid("a"), cid("b"), cid("c"), cid("d")
		aLines := []fakeLine{stdoutLine(at(1), "a1")}
		fe.run(fakeSpec{ID: a, Name: "a"}, aLines...)
		h := startSource(t, fe, cfg, nil)
		fe.run(fakeSpec{ID: b, Name: "b"}, stdoutLine(at(2), "b1"))
		h.waitLines(b, 1) // the source has seen b's start, the last event
		last := fe.lastEventTime()
		nEvents := len(fe.requestsTo("/events"))

		cLines := []fakeLine{stdoutLine(at(3), "c1"), stderrLine(at(4), "c2")}
		dLines := []fakeLine{stdoutLine(at(5), "d1")}
		down, downFor := disconnect(t, fe, false, func() {
			// c lives and dies while the source is disconnected; d is
			// still running when it reconnects.
			fe.run(fakeSpec{ID: c, Name: "c"}, cLines...)
			fe.exit(c, false)
			fe.run(fakeSpec{ID: d, Name: "d"}, dLines...)
		})
		h.waitLines(c, len(cLines))
		h.waitLines(d, len(dLines))
		more := []fakeLine{stdoutLine(at(6), "a2")}
		fe.write(a, more...)
		h.waitLines(a, 2)
		fe.exit(a, false)
		fe.exit(d, false)
		for _, id := range []string{a, c, d} {
			h.waitIdle(id)
		}
		h.assertLines(a, slices.Concat(aLines, more))
		h.assertLines(c, cLines)
		h.assertLines(d, dLines)

		ev := eventsAfter(fe, nEvents)
		if len(ev) == 0 {
			t.Fatal("no events request after the stream broke")
		}
		if got, want := ev[0].Query.Get("since"), formatUnixNano(last); got != want {
			t.Errorf("events request after reconnecting: since=%q, want %q (the last event seen)", got, want)
		}
		// Waits double from 5 ms to 40 ms (at least 20 ms with jitter):
		// about one attempt per 20 ms down. Without any wait there would be
		// one per request round trip, hundreds in 100 ms.
		if n, limit := countPings(down), 10+int(downFor/(10*time.Millisecond)); n > limit {
			t.Errorf("%d reconnection attempts in %v while the daemon was down; want at most %d", n, downFor, limit)
		}
	})

	t.Run("stream cut while the daemon stays up", func(t *testing.T) {
		fe := newFakeEngine(t)
		a, b := cid("a"), cid("b")
		h := startSource(t, fe, cfg, nil)
		fe.run(fakeSpec{ID: a, Name: "a"}, stdoutLine(at(1), "a1"))
		h.waitLines(a, 1)
		last := fe.lastEventTime()
		nEvents := len(fe.requestsTo("/events"))
		fe.cutEvents()
		bLines := []fakeLine{stdoutLine(at(2), "b1"), stderrLine(at(3), "b2")}
		fe.run(fakeSpec{ID: b, Name: "b"}, bLines...)
		fe.exit(b, false)
		h.waitLines(b, len(bLines))
		h.waitIdle(b)
		h.assertLines(b, bLines)
		ev := eventsAfter(fe, nEvents)
		if len(ev) == 0 || ev[0].Query.Get("since") != formatUnixNano(last) {
			t.Errorf("events requests after the cut %v; want the first with since=%s", ev, formatUnixNano(last))
		}
	})

	t.Run("daemon restarted and forgot its events", func(t *testing.T) {
		fe := newFakeEngine(t)
		e := cid("e")
		h := startSource(t, fe, cfg, nil)
		fe.run(fakeSpec{ID: cid("first"), Name: "first"}, stdoutLine(at(1), "x"))
		h.waitLines(cid("first"), 1)
		eLines := []fakeLine{stdoutLine(at(2), "e1"), stderrLine(at(3), "e2"), stdoutLine(at(3), "e3")}
		disconnect(t, fe, true, func() {
			fe.run(fakeSpec{ID: e, Name: "e"}, eLines...)
		})
		h.waitLines(e, len(eLines))
		fe.exit(e, false)
		h.waitIdle(e)
		h.assertLines(e, eLines)
	})

	// A container that lived only while the daemon restarted is still on
	// the list when it comes back; its lines must be shipped like those of
	// any short-lived container.
	t.Run("container ran and exited while the daemon restarted", func(t *testing.T) {
		fe := newFakeEngine(t)
		f := cid("f")
		h := startSource(t, fe, cfg, nil)
		fe.run(fakeSpec{ID: cid("first"), Name: "first"}, stdoutLine(at(1), "x"))
		h.waitLines(cid("first"), 1)
		fLines := []fakeLine{stdoutLine(at(2), "f1"), stderrLine(at(3), "f2")}
		disconnect(t, fe, true, func() {
			fe.run(fakeSpec{ID: f, Name: "f"}, fLines...)
			fe.exit(f, false)
		})
		waitUntil(t, "the source to reconnect", h.src.Connected)
		waitUntil(t, "the source to list f", func() bool { known, _ := h.state(f); return known })
		deadline := time.Now().Add(2 * time.Second)
		for len(h.sub.entriesOf(f)) < len(fLines) && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		h.assertLines(f, fLines)
	})
}

func countPings(rs []fakeRequest) int {
	n := 0
	for _, r := range rs {
		if r.Path == "/_ping" {
			n++
		}
	}
	return n
}

func TestSourceDestroy(t *testing.T) {
	t.Run("forgotten after its reader drains", func(t *testing.T) {
		fe := newFakeEngine(t)
		id := cid("x")
		first := []fakeLine{stdoutLine(at(1), "x1")}
		fe.run(fakeSpec{ID: id, Name: "x"}, first...)
		var release func()
		h := newSourceHarness(t, fe, Config{}, func(d *SourceDeps) { release = d.Out.(*fakeSubmitter).holdBack(id) })
		defer release()
		waitUntil(t, "the reader to block in Submit", func() bool { return h.sub.blockedNow() == 1 })
		rest := []fakeLine{stdoutLine(at(2), "x2"), stderrLine(at(2), "x3"), stdoutLine(at(3), "x4")}
		fe.write(id, rest...)
		fe.exit(id, false)
		fe.destroy(id)
		waitUntil(t, "the destroy event to be handled", func() bool { return h.destroyed(id) })
		if known, reading := h.state(id); !known || !reading {
			t.Fatalf("container forgotten (known=%v reading=%v) while its reader still has lines", known, reading)
		}
		release()
		h.waitLines(id, 1+len(rest))
		waitUntil(t, "the container to be forgotten", func() bool { known, _ := h.state(id); return !known })
		h.assertLines(id, slices.Concat(first, rest))
		if w := h.log.warnings("", ""); len(w) > 0 {
			t.Errorf("warnings for a container that was destroyed: %+v", w)
		}
	})

	for _, tc := range []struct {
		status int
		msg    string
	}{
		{http.StatusNotFound, "No such container"},
		{http.StatusConflict, "removal of container is already in progress"},
	} {
		t.Run(fmt.Sprintf("logs answer %d", tc.status), func(t *testing.T) {
			fe := newFakeEngine(t)
			id := cid("gone")
			fe.run(fakeSpec{ID: id, Name: "gone"}, stdoutLine(at(1), "never read"))
			fe.failLogs(id, tc.status, tc.msg)
			h := startSource(t, fe, Config{}, nil)
			h.waitIdle(id)
			if n := len(fe.requestsTo("/containers/" + id + "/logs")); n != 1 {
				t.Errorf("%d logs requests; a container that is gone must not be retried", n)
			}
			// Gone, or being removed: what it wrote ("never read") is
			// lost, which is counted and said once.
			w := h.log.warnings("", "")
			if len(w) != 1 || !strings.Contains(w[0].msg, "removed before its log was read") {
				t.Errorf("warnings for a container removed unread: %+v, want one", w)
			}
			if got := testutil.ToFloat64(h.lost.WithLabelValues("removed_unread")); got != 1 {
				t.Errorf("wharf_entries_dropped_total{reason=removed_unread} = %v, want 1", got)
			}
			fe.destroy(id)
			waitUntil(t, "the container to be forgotten", func() bool { known, _ := h.state(id); return !known })
		})
	}
}

func TestSourceFilter(t *testing.T) {
	self := cid("wharf")
	type ctr struct {
		name, image string
		labels      map[string]string
		keep        bool
	}
	ctrs := []ctr{
		{"web-1", "nginx:1.27", nil, true},                           // name
		{"worker", "example/worker:2", nil, true},                    // image
		{"cron", "alpine", map[string]string{"collect": ""}, true},   // label present, even empty
		{"shop", "alpine", map[string]string{"tier": "front"}, true}, // label value
		{"shop-back", "alpine", map[string]string{"tier": "back"}, false},
		{"web-2", "nginx:1.27", map[string]string{"wharf.skip": "true"}, false}, // excluded by label
		{"web-debug", "nginx:1.27", nil, false},                                 // excluded by name
		{"other", "alpine", nil, false},
		{"img-name-only", "web-tools", nil, false}, // the name rule does not look at images
	}
	fe := newFakeEngine(t)
	for _, c := range ctrs {
		fe.run(fakeSpec{ID: cid(c.name), Name: c.name, Image: c.image, Labels: c.labels}, stdoutLine(at(1), c.name+" says hi"))
	}
	fe.run(fakeSpec{ID: self, Name: "web-wharf", Image: "wharf:dev"}, stdoutLine(at(1), "wharf's own line"))
	filter := NewFilter(
		[]Rule{{Name: regexp.MustCompile("^web")}, {Image: regexp.MustCompile("^example/worker:")}, {Label: "collect"}, {Label: "tier=front"}},
		[]Rule{{Label: "wharf.skip"}, {Name: regexp.MustCompile("-debug$")}},
	)
	h := startSource(t, fe, Config{}, func(d *SourceDeps) {
		d.Filter = filter
		d.SelfID = self
	})
	for _, c := range ctrs {
		id := cid(c.name)
		if c.keep {
			h.waitLines(id, 1)
			fe.exit(id, false)
		}
		h.waitIdle(id)
	}
	for _, c := range ctrs {
		id := cid(c.name)
		n := len(h.sub.entriesOf(id))
		logs := len(fe.requestsTo("/containers/" + id + "/logs"))
		switch {
		case c.keep && n != 1:
			t.Errorf("%s: %d lines, want 1", c.name, n)
		case !c.keep && (n != 0 || logs != 0):
			t.Errorf("%s is filtered out but %d lines were read through %d logs requests", c.name, n, logs)
		}
	}
	for _, r := range fe.allRequests() {
		if strings.Contains(r.Path, self) {
			t.Errorf("request about wharf's own container: %s", r)
		}
	}
	if n := len(h.sub.entriesOf(self)); n != 0 {
		t.Errorf("%d lines of wharf's own container were read", n)
	}
}

// TestSourceUnreadableLogDriver: Docker answers 501 Not Implemented to a
// logs request for a container whose driver cannot be read back (none,
// syslog, gelf...). That is permanent: report it once, do not retry.
func TestSourceUnreadableLogDriver(t *testing.T) {
	fe := newFakeEngine(t)
	bad, good := cid("syslogged"), cid("good")
	fe.run(fakeSpec{ID: bad, Name: "syslogged", Driver: "syslog"}, stdoutLine(at(1), "unreachable"))
	fe.failLogs(bad, http.StatusNotImplemented, "configured logging driver does not support reading")
	fe.run(fakeSpec{ID: good, Name: "good"}, stdoutLine(at(1), "fine"))
	h := startSource(t, fe, Config{}, nil)
	h.waitLines(good, 1)
	h.waitIdle(bad)
	if n := len(fe.requestsTo("/containers/" + bad + "/logs")); n != 1 {
		t.Errorf("%d logs requests for a container whose log driver cannot be read; want 1", n)
	}
	if w := h.log.warnings("", ""); len(w) != 1 || w[0].attrs["container"] != "syslogged" {
		t.Errorf("want one warning naming the container, got %+v", w)
	} else if !strings.Contains(w[0].attrs["error"], "does not support reading") {
		t.Errorf("warning does not carry the daemon's message: %+v", w[0])
	}
	if known, _ := h.state(bad); !known {
		t.Error("the unreadable container was forgotten; a restart would read it again")
	}
}

// TestSourceDaemonErrorInStream: dockerd reports a record it cannot decode
// (a json-file left with NUL bytes by a power loss gives "Error grabbing
// logs: invalid character '\x00'...") as a stream-3 frame and goes on
// streaming. The lines after it must be read; reopening the log would only
// meet the same record again.
func TestSourceDaemonErrorInStream(t *testing.T) {
	fe := newFakeEngine(t)
	id := cid("corrupt-file")
	before := []fakeLine{stdoutLine(at(1), "before"), stderrLine(at(2), "before on stderr")}
	after := []fakeLine{stdoutLine(at(4), "after"), stderrLine(at(5), "after on stderr")}
	fe.run(fakeSpec{ID: id, Name: "corrupt-file"}, slices.Concat(before,
		[]fakeLine{{Time: at(3), Stream: 3, Text: `Error grabbing logs: invalid character '\x00' looking for beginning of value`}},
		after)...)
	h := startSource(t, fe, Config{}, nil)
	h.waitLines(id, len(before))
	fe.exit(id, false)
	h.waitIdle(id)
	h.assertLines(id, slices.Concat(before, after))
	if w := h.log.warnings("", ""); len(w) == 0 {
		t.Error("the daemon's error was not reported")
	}
}

// TestSourceCorruptFrame: a frame header dockerd cannot have written ends
// the stream. The reader retries a bounded number of times, keeps what it
// read before, and closes every stream it opened.
func TestSourceCorruptFrame(t *testing.T) {
	fe := newFakeEngine(t)
	id := cid("garbled")
	before := []fakeLine{stdoutLine(at(1), "before")}
	fe.run(fakeSpec{ID: id, Name: "garbled"}, slices.Concat(before,
		[]fakeLine{{Time: at(2), Stream: 9, Text: "not a frame"}, stdoutLine(at(3), "after")})...)
	h := startSource(t, fe, Config{}, nil)
	h.waitIdle(id)
	h.assertLines(id, before)
	n := len(fe.requestsTo("/containers/" + id + "/logs"))
	if n < 2 || n > 6 {
		t.Errorf("%d logs requests; want a few retries and then a pause", n)
	}
	if len(h.log.warnings("", "")) == 0 {
		t.Error("no warning about the broken stream")
	}
	// Left: the events stream, the idle connections the client keeps (4),
	// and nothing per attempt.
	waitUntil(t, "connections of abandoned streams to close", func() bool { return fe.openConns() <= 5 })
}

func TestSourceRunStopsOnCancel(t *testing.T) {
	fe := newFakeEngine(t)
	var ids []string
	for i := range 5 {
		id := cid(fmt.Sprint("follow", i))
		ids = append(ids, id)
		fe.run(fakeSpec{ID: id, Name: fmt.Sprint("follow", i)}, stdoutLine(at(i), "line"))
	}
	stuck, failing := cid("stuck"), cid("failing")
	fe.run(fakeSpec{ID: stuck, Name: "stuck"}, stdoutLine(at(1), "blocked in Submit"))
	fe.run(fakeSpec{ID: failing, Name: "failing"}, stdoutLine(at(1), "never read"))
	fe.failLogs(failing, http.StatusInternalServerError, "boom")
	// Long backoffs: cancelling must interrupt the failing reader's wait.
	var release func()
	h := newSourceHarness(t, fe, Config{MinBackoff: time.Hour, MaxBackoff: time.Hour}, func(d *SourceDeps) {
		release = d.Out.(*fakeSubmitter).holdBack(stuck)
	})
	defer release()
	waitUntil(t, "the source to connect", h.src.Connected)
	for _, id := range ids {
		h.waitLines(id, 1)
	}
	waitUntil(t, "a reader to block in Submit", func() bool { return h.sub.blockedNow() == 1 })
	waitUntil(t, "the failing reader to back off", func() bool { return len(fe.requestsTo("/containers/"+failing+"/logs")) == 1 })

	if err := h.stop(); !errors.Is(err, context.Canceled) {
		t.Errorf("Run returned %v, want context.Canceled", err)
	}
	if v := testutil.ToFloat64(h.met.ContainersWatched.WithLabelValues("api")); v != 0 {
		t.Errorf("%v readers still counted as watching after Run returned", v)
	}
	if v := testutil.ToFloat64(h.met.Up); v != 0 {
		t.Errorf("docker_up is %v after Run returned", v)
	}
	h.client.Close()
	fe.close()
	goleak.VerifyNone(t)
}

// TestSourceGoroutinesBounded runs 1,000 short containers (create, start,
// two lines, die, destroy) and checks that the number of goroutines returns
// to where it was: nothing is left per container or per event.
func TestSourceGoroutinesBounded(t *testing.T) {
	const waves, perWave = 40, 25
	fe := newFakeEngine(t)
	h := startSource(t, fe, Config{}, nil)
	baseline := -1
	for wave := range waves {
		var ids []string
		for i := range perWave {
			id := cid(fmt.Sprint("short-", wave, "-", i))
			ids = append(ids, id)
			fe.run(fakeSpec{ID: id, Name: fmt.Sprint("short-", wave, "-", i)}, stdoutLine(at(i), "out"), stderrLine(at(i), "err"))
			fe.exit(id, false)
		}
		for _, id := range ids {
			h.waitLines(id, 2)
		}
		for _, id := range ids {
			fe.destroy(id)
		}
		waitUntil(t, "every container to be forgotten", func() bool { return h.knownCount() == 0 })
		if wave == 0 {
			baseline = runtime.NumGoroutine()
		}
	}
	if n := h.sub.total(); n != waves*perWave*2 {
		t.Errorf("%d lines, want %d", n, waves*perWave*2)
	}
	// Connections to the daemon close asynchronously: allow a few, and
	// time for them to go.
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > baseline+10 {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after %d containers, %d after the first %d:\n%s",
				runtime.NumGoroutine(), waves*perWave, baseline, perWave, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// rtFunc is an http.RoundTripper answering from memory, for tests inside
// synctest bubbles where no real I/O may happen.
type rtFunc func(*http.Request) (*http.Response, error)

func (f rtFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func memResponse(r *http.Request, status int, body io.Reader, header ...string) *http.Response {
	resp := &http.Response{StatusCode: status, Header: http.Header{}, Body: io.NopCloser(body), Request: r}
	for i := 0; i+1 < len(header); i += 2 {
		resp.Header.Set(header[i], header[i+1])
	}
	return resp
}

// openBody is a response body that returns its data and then blocks until
// ctx ends, like a stream that stays open.
type openBody struct {
	ctx context.Context
	r   io.Reader
}

func (b *openBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if errors.Is(err, io.EOF) {
		<-b.ctx.Done()
		return n, b.ctx.Err()
	}
	return n, err
}

// memClient returns a Client whose requests rt answers.
func memClient(t *testing.T, rt rtFunc) *Client {
	t.Helper()
	c, err := NewClient("unix:///nonexistent/docker.sock")
	if err != nil {
		t.Fatal(err)
	}
	c.http = &http.Client{Transport: rt}
	return c
}

// TestSourceReconnectBackoff checks the waits between reconnections, on a
// fake clock: doubling from MinBackoff to MaxBackoff with jitter in [d/2, d]
// while connecting fails, back to MinBackoff after a healthy stream ended,
// and the replay of events since the last one seen.
func TestSourceReconnectBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const evTime = 1_700_000_000_123_456_789
		var (
			mu     sync.Mutex
			pings  []time.Time
			events []url.Values
		)
		reconnected := make(chan struct{})
		rt := func(r *http.Request) (*http.Response, error) {
			mu.Lock()
			defer mu.Unlock()
			switch fakeStripVersion(r.URL.Path) {
			case "/_ping":
				pings = append(pings, time.Now())
				if len(pings) <= 4 {
					return memResponse(r, 503, strings.NewReader("restarting")), nil
				}
				return memResponse(r, 200, strings.NewReader("OK"), "Api-Version", "1.41"), nil
			case "/events":
				events = append(events, r.URL.Query())
				if len(events) == 1 {
					ev := fmt.Sprintf(`{"Type":"container","Action":"create","Actor":{"ID":"abc"},"time":1700000000,"timeNano":%d}`+"\n", int64(evTime))
					return memResponse(r, 200, strings.NewReader(ev)), nil
				}
				close(reconnected)
				return memResponse(r, 200, &openBody{ctx: r.Context(), r: strings.NewReader("")}), nil
			case "/containers/json":
				return memResponse(r, 200, strings.NewReader("[]")), nil
			case "/containers/abc/json":
				return memResponse(r, 404, strings.NewReader(`{"message":"No such container: abc"}`)), nil
			}
			t.Errorf("unexpected request %s", r.URL)
			return memResponse(r, 404, strings.NewReader("{}")), nil
		}
		src, err := NewSource(Config{ReadFrom: "api", StartAt: "end", MinBackoff: 100 * time.Millisecond, MaxBackoff: 400 * time.Millisecond}, SourceDeps{
			Client: memClient(t, rt), Out: &fakeSubmitter{}, Labeler: NewLabeler("h", nil, nil), Filter: &Filter{},
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- src.Run(ctx) }()
		<-reconnected
		synctest.Wait()
		if !src.Connected() {
			t.Error("not connected after the daemon came back")
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v", err)
		}

		mu.Lock()
		defer mu.Unlock()
		// Waits before pings 2..6: four failures, then after a healthy stream.
		ms := time.Millisecond
		want := [][2]time.Duration{{50 * ms, 100 * ms}, {100 * ms, 200 * ms}, {200 * ms, 400 * ms}, {200 * ms, 400 * ms}, {50 * ms, 100 * ms}}
		if len(pings) != len(want)+1 {
			t.Fatalf("%d pings, want %d", len(pings), len(want)+1)
		}
		for i, w := range want {
			if d := pings[i+1].Sub(pings[i]); d < w[0] || d > w[1] {
				t.Errorf("wait before ping %d: %v, want within [%v, %v]", i+2, d, w[0], w[1])
			}
		}
		if len(events) != 2 {
			t.Fatalf("%d events requests, want 2", len(events))
		}
		if events[0].Has("since") {
			t.Errorf("first events request has since=%s", events[0].Get("since"))
		}
		if got := events[1].Get("since"); got != "1700000000.123456789" {
			t.Errorf("events request after the stream ended: since=%q, want the last event's time 1700000000.123456789", got)
		}
	})
}

// TestSourceReaderBackoff checks, on a fake clock, that a reader whose log
// stream fails with a server error retries with growing waits and gives up
// after six attempts until discovery kicks it again.
func TestSourceReaderBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var (
			mu    sync.Mutex
			reads []time.Time
		)
		rt := func(r *http.Request) (*http.Response, error) {
			mu.Lock()
			defer mu.Unlock()
			switch fakeStripVersion(r.URL.Path) {
			case "/_ping":
				return memResponse(r, 200, strings.NewReader("OK"), "Api-Version", "1.41"), nil
			case "/events":
				return memResponse(r, 200, &openBody{ctx: r.Context(), r: strings.NewReader("")}), nil
			case "/containers/json":
				return memResponse(r, 200, strings.NewReader(`[{"Id":"abc","Names":["/abc"],"State":"running"}]`)), nil
			case "/containers/abc/json":
				return memResponse(r, 200, strings.NewReader(`{"Id":"abc","Name":"/abc","State":{"Running":true},"Config":{"Image":"x"},"HostConfig":{"LogConfig":{"Type":"json-file"}}}`)), nil
			case "/containers/abc/logs":
				reads = append(reads, time.Now())
				return memResponse(r, 500, strings.NewReader(`{"message":"error opening log file"}`)), nil
			}
			t.Errorf("unexpected request %s", r.URL)
			return memResponse(r, 404, strings.NewReader("{}")), nil
		}
		logs := &logCapture{}
		src, err := NewSource(Config{ReadFrom: "api", StartAt: "beginning", MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second}, SourceDeps{
			Client: memClient(t, rt), Out: &fakeSubmitter{}, Labeler: NewLabeler("h", nil, nil), Filter: &Filter{}, Logger: slog.New(logs),
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- src.Run(ctx) }()
		time.Sleep(time.Hour)
		synctest.Wait()
		cancel()
		<-done

		mu.Lock()
		defer mu.Unlock()
		ms := time.Millisecond
		want := [][2]time.Duration{{50 * ms, 100 * ms}, {100 * ms, 200 * ms}, {200 * ms, 400 * ms}, {400 * ms, 800 * ms}, {500 * ms, 1000 * ms}}
		if len(reads) != len(want)+1 {
			t.Fatalf("%d logs requests in an hour, want %d", len(reads), len(want)+1)
		}
		for i, w := range want {
			if d := reads[i+1].Sub(reads[i]); d < w[0] || d > w[1] {
				t.Errorf("wait before logs request %d: %v, want within [%v, %v]", i+2, d, w[0], w[1])
			}
		}
		if n := len(logs.warnings("", "")); n != 2 {
			t.Errorf("%d warnings, want 2 (one retry, one giving up): %+v", n, logs.warnings("", ""))
		}
	})
}

func TestPositionSince(t *testing.T) {
	const s = int64(time.Second)
	for _, tc := range []struct {
		name           string
		stdout, stderr int64
		want           int64
	}{
		{"both at start", 100 * s, 100 * s, 100 * s},
		{"older stream wins", 100 * s, 95 * s, 95 * s},
		{"older stream wins, other way", 95 * s, 100 * s, 95 * s},
		{"window caps a quiet stream", 100 * s, 20 * s, 90 * s},
		{"never read either", 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := position{streams: [2]streamPos{{time: tc.stdout}, {time: tc.stderr}}}
			if got := p.since(); got != tc.want {
				t.Errorf("since = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestNewSourceConfig(t *testing.T) {
	filter := NewFilter(nil, nil)
	client, err := NewClient("unix:///nonexistent.sock")
	if err != nil {
		t.Fatal(err)
	}
	good := SourceDeps{Client: client, Out: &fakeSubmitter{}, Labeler: NewLabeler("h", nil, nil), Filter: filter}
	for _, tc := range []struct {
		name    string
		cfg     Config
		deps    func(SourceDeps) SourceDeps
		wantErr string
	}{
		{"ok end", Config{StartAt: "end"}, nil, ""},
		{"ok beginning", Config{StartAt: "beginning"}, nil, ""},
		{"zero config", Config{}, nil, ""},
		{"no client", Config{StartAt: "end"}, func(d SourceDeps) SourceDeps { d.Client = nil; return d }, "client"},
		{"no output", Config{StartAt: "end"}, func(d SourceDeps) SourceDeps { d.Out = nil; return d }, "output"},
		{"no labeler", Config{StartAt: "end"}, func(d SourceDeps) SourceDeps { d.Labeler = nil; return d }, "labeler"},
		{"no filter", Config{StartAt: "end"}, func(d SourceDeps) SourceDeps { d.Filter = nil; return d }, "filter"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			deps := good
			if tc.deps != nil {
				deps = tc.deps(deps)
			}
			_, err := NewSource(tc.cfg, deps)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("NewSource: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("NewSource error %v, want one mentioning %q", err, tc.wantErr)
			case err != nil && !strings.HasPrefix(err.Error(), "docker: "):
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

// TestClockStepBackReadsNewLinesByOrder: the wall clock was stepped back an
// hour while wharf was stopped, so the lines the container wrote meanwhile
// carry times before the last line read. Reopening the log by time would
// leave them out; wharf sees that the clock is behind its position, reads
// the log from its start, and skips by order what it had read.
func TestClockStepBackReadsNewLinesByOrder(t *testing.T) {
	fe := newFakeEngine(t)
	id := cid("app")
	store, _, err := positions.Open(filepath.Join(t.TempDir(), "positions"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var clock atomic.Int64
	clock.Store(at(1000))
	deps := func(d *SourceDeps) {
		d.Positions = store
		d.Now = func() time.Time { return time.Unix(0, clock.Load()) }
	}
	before := []fakeLine{stdoutLine(at(100), "o1"), stderrLine(at(100), "e1"), stdoutLine(at(101), "o2"), stdoutLine(at(101), "o3")}
	fe.run(fakeSpec{ID: id, Name: "app"}, before...)
	h := startSource(t, fe, Config{}, deps)
	h.waitLines(id, len(before))
	h.stop()

	hour := int64(time.Hour / time.Microsecond)
	clock.Store(at(101 - int(hour))) // an hour behind the last line read
	after := []fakeLine{stdoutLine(at(102-int(hour)), "o4"), stderrLine(at(102-int(hour)), "e2"), stdoutLine(at(103-int(hour)), "o5")}
	fe.exit(id, false, after...)
	h2 := startSource(t, fe, Config{}, deps)
	h2.waitLines(id, len(after))
	h2.waitIdle(id)
	h2.assertLines(id, after)
	if since := h2.logsSince(id); len(since) == 0 || since[len(since)-1] != "" {
		t.Errorf("logs requests since=%q: the reopen after the clock step should read from the first line", since)
	}
}
