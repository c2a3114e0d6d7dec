package files

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/wharf-logs/wharf/internal/entry"
	"github.com/wharf-logs/wharf/internal/positions"
	"github.com/wharf-logs/wharf/internal/source"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func watchedFiles(m *Metrics) float64 { return testutil.ToFloat64(m.Watched) }

// collector records what the source submits and confirms it at once.
type collector struct {
	mu    sync.Mutex
	lines map[string][]string // by filename label
	times map[string][]int64
	keys  map[string]string // stream key by filename
}

func newCollector() *collector {
	return &collector{lines: map[string][]string{}, times: map[string][]int64{}, keys: map[string]string{}}
}

func (c *collector) Submit(_ context.Context, es []entry.Entry) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range es {
		f := e.Stream.Labels.Get("filename")
		c.lines[f] = append(c.lines[f], string(e.Line))
		c.times[f] = append(c.times[f], e.Time)
		c.keys[f] = e.Stream.Key
	}
	return nil
}

func (c *collector) get(path string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.lines[path]...)
}

// waitLines waits until path has n lines and returns them.
func (c *collector) waitLines(t *testing.T, path string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := c.get(path)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d of %d lines after 10 s; last %q", path, len(got), n, tailOf(got))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func tailOf(s []string) []string { return s[max(0, len(s)-3):] }

// harness runs a Source over a positions store that outlives it.
type harness struct {
	t     *testing.T
	dir   string
	store *positions.Store
	out   *collector
	m     *Metrics
	stop  func()
	// now, when set, is the source's wall clock.
	now func() time.Time
	// ownDirs and maxFiles, when set, are the Config's.
	ownDirs  []string
	maxFiles int
}

func newHarness(t *testing.T) *harness {
	dir := t.TempDir()
	return &harness{t: t, dir: dir, out: newCollector()}
}

func (h *harness) path(name string) string { return filepath.Join(h.dir, name) }

func (h *harness) start(srcs ...Group) {
	h.t.Helper()
	store, problem, err := positions.Open(filepath.Join(h.dir, "data", "positions"), nil)
	if err != nil || problem != nil {
		h.t.Fatal(err, problem)
	}
	h.store, h.m = store, NewMetrics()
	for i := range srcs {
		c := &srcs[i]
		if c.StartAt == "" {
			c.StartAt = "beginning"
		}
		if c.MaxLineBytes == 0 {
			c.MaxLineBytes = 1 << 10
		}
		if c.Multiline.MaxWait == 0 {
			c.Multiline.MaxWait = 50 * time.Millisecond
		}
		if c.Multiline.MaxBytes == 0 {
			c.Multiline.MaxBytes = 4 << 10
		}
	}
	s, err := New(Config{
		Groups: srcs, Host: "h1", Static: map[string]string{"env": "test"},
		PollMin: time.Millisecond, PollMax: 10 * time.Millisecond,
		Scan: 20 * time.Millisecond, GoneAfter: 100 * time.Millisecond,
		OwnDirs: h.ownDirs, MaxFiles: h.maxFiles,
	}, Deps{Out: h.out, Positions: store, Metrics: h.m, SourceMetrics: source.NewMetrics(), Now: h.now})
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(h.t.Context())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	h.stop = func() {
		cancel()
		<-done
		if err := store.Flush(); err != nil {
			h.t.Fatal(err)
		}
	}
	h.t.Cleanup(func() { cancel(); <-done })
}

func write(t *testing.T, path string, lines ...string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, l := range lines {
		if _, err := f.WriteString(l + "\n"); err != nil {
			t.Fatal(err)
		}
	}
}

func seqLines(prefix string, from, to int) []string {
	var s []string
	for i := from; i < to; i++ {
		s = append(s, fmt.Sprintf("%s %05d", prefix, i))
	}
	return s
}

func same(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("%s: got %d lines (last %q), want %d (last %q)", what, len(got), tailOf(got), len(want), tailOf(want))
	}
}

func TestStartAtAndLabels(t *testing.T) {
	h := newHarness(t)
	old, later := h.path("old.log"), h.path("later.log")
	write(t, old, "history 1", "history 2")
	h.start(Group{Paths: []string{h.path("*.log")}, StartAt: "end", Labels: map[string]string{"app": "web"}})
	time.Sleep(100 * time.Millisecond) // a few scans
	write(t, old, "new 1")
	// A file that appears after the start is read from its beginning.
	write(t, later, "first of later")
	same(t, "old.log", h.out.waitLines(t, old, 1), []string{"new 1"})
	same(t, "later.log", h.out.waitLines(t, later, 1), []string{"first of later"})
	h.out.mu.Lock()
	key := h.out.keys[old]
	h.out.mu.Unlock()
	if want := fmt.Sprintf(`{app="web", env="test", filename=%q, host="h1"}`, old); key != want {
		t.Fatalf("stream %s, want %s", key, want)
	}
	if got := watchedFiles(h.m); got != 2 {
		t.Fatalf("wharf_files_watched %v, want 2", got)
	}
	h.stop()
}

func TestRestartResumesExactly(t *testing.T) {
	h := newHarness(t)
	p := h.path("app.log")
	write(t, p, seqLines("a", 0, 500)...)
	h.start(Group{Paths: []string{p}})
	h.out.waitLines(t, p, 500)
	h.stop()
	// Written while stopped, and a line whose end is not written yet.
	write(t, p, seqLines("a", 500, 800)...)
	f, _ := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString("a 00800 hal")
	h.start(Group{Paths: []string{p}, StartAt: "end"}) // a saved position wins over start_at
	time.Sleep(50 * time.Millisecond)
	f.WriteString("f\n")
	f.Close()
	got := h.out.waitLines(t, p, 801)
	want := append(seqLines("a", 0, 800), "a 00800 half")
	same(t, "after restart", got, want)
	h.stop()
	times := h.out.times[p]
	for i := 1; i < len(times); i++ {
		if times[i] <= times[i-1] {
			t.Fatalf("timestamps not increasing at line %d", i)
		}
	}
}

func TestRotation(t *testing.T) {
	h := newHarness(t)
	p := h.path("app.log")
	// app.log.1 matches the pattern but is read through app.log's follower.
	h.start(Group{Paths: []string{h.path("app.log*")}})
	n := 0
	for round := range 6 {
		// What was rotated before is read before it is overwritten, and the
		// last 100 lines of each round are rotated before they are read.
		write(t, p, seqLines("r", n, n+200)...)
		h.out.waitLines(t, p, n+200)
		write(t, p, seqLines("r", n+200, n+300)...)
		n += 300
		switch round % 2 {
		case 0: // rename, as logrotate's create mode and Docker do
			if err := os.Rename(p, p+".1"); err != nil {
				t.Fatal(err)
			}
		case 1: // copytruncate
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p+".1", data, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(p, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(t, p, seqLines("r", n, n+10)...)
	n += 10
	h.out.waitLines(t, p, n)
	time.Sleep(100 * time.Millisecond)
	same(t, "through rotations", h.out.get(p), seqLines("r", 0, n))
	if len(h.out.get(p+".1")) != 0 {
		t.Fatal("the rotated file was read as a file of its own")
	}
	h.stop()
}

func TestMultilineAndExclude(t *testing.T) {
	h := newHarness(t)
	app, skip, gz := h.path("app.log"), h.path("debug.log"), h.path("old.log.gz")
	write(t, app, "ERROR boom", "  at a()", "  at b()", "INFO fine")
	write(t, skip, "not read")
	write(t, gz, "not read either")
	h.start(Group{
		Paths: []string{h.path("*.log"), h.path("*.gz")}, Exclude: []string{"debug.*"},
		Multiline: Multiline{Start: regexp.MustCompile(`^[A-Z]`), MaxLines: 10},
	})
	// The last entry is sent after multiline.max_wait without a next line.
	same(t, "entries", h.out.waitLines(t, app, 2), []string{"ERROR boom\n  at a()\n  at b()", "INFO fine"})
	time.Sleep(100 * time.Millisecond)
	if got := h.out.get(skip); len(got) > 0 {
		t.Fatalf("excluded file read: %q", got)
	}
	if got := h.out.get(gz); len(got) > 0 {
		t.Fatalf("compressed file read as text: %q", got)
	}
	h.stop()
}

func TestGoneFileIsFinishedAndForgotten(t *testing.T) {
	h := newHarness(t)
	p := h.path("job.log")
	write(t, p, seqLines("j", 0, 100)...)
	h.start(Group{Paths: []string{h.path("*.log")}})
	h.out.waitLines(t, p, 100)
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for watchedFiles(h.m) != 0 || len(h.store.Keys(PositionPrefix)) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("after removal: %v files watched, positions %q", watchedFiles(h.m), h.store.Keys(PositionPrefix))
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A new file under the same name is a new file: read from its start.
	write(t, p, "again")
	got := h.out.waitLines(t, p, 101)
	same(t, "new file", got[100:], []string{"again"})
	h.stop()
}

func TestStalePositionsDropped(t *testing.T) {
	h := newHarness(t)
	p := h.path("a.log")
	write(t, p, "one")
	h.start(Group{Paths: []string{p}})
	h.out.waitLines(t, p, 1)
	h.stop()
	if len(h.store.Keys(PositionPrefix)) != 1 {
		t.Fatalf("positions %q, want a.log's", h.store.Keys(PositionPrefix))
	}
	// The configuration no longer names a.log: its position goes.
	h.start(Group{Paths: []string{h.path("*.txt")}})
	time.Sleep(50 * time.Millisecond)
	h.stop()
	if keys := h.store.Keys(PositionPrefix); len(keys) != 0 {
		t.Fatalf("positions %q after a.log left the configuration", keys)
	}
}

func (c *collector) getTimes(path string) []int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int64(nil), c.times[path]...)
}

// TestClockStepBack: plain lines are stamped with the time they are read,
// kept increasing within a file. A wall clock that steps back by less than
// a second keeps the file's order (last stamp + 1 ns); one that steps back
// by an hour is taken as it is, so the lines read after it carry the new
// time and not the old, now hour-ahead one, which Loki and loki.max_future
// would refuse as too new until the clock caught up.
func TestClockStepBack(t *testing.T) {
	var offset atomic.Int64
	h := newHarness(t)
	h.now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	path := h.path("app.log")
	write(t, path, seqLines("a", 0, 3)...)
	h.start(Group{Paths: []string{path}})
	h.out.waitLines(t, path, 3)

	offset.Store(int64(-200 * time.Millisecond)) // a small step: order kept
	write(t, path, seqLines("b", 0, 3)...)
	h.out.waitLines(t, path, 6)
	offset.Store(int64(-time.Hour)) // NTP corrects a clock an hour ahead
	write(t, path, seqLines("c", 0, 3)...)
	h.out.waitLines(t, path, 9)
	h.stop()

	ts := h.out.getTimes(path)
	for i := 1; i < 6; i++ {
		if ts[i] <= ts[i-1] {
			t.Fatalf("line %d stamped %d, not after line %d (%d): a small step back must keep the order", i, ts[i], i-1, ts[i-1])
		}
	}
	now := time.Now().Add(-time.Hour).UnixNano()
	for i := 6; i < 9; i++ {
		if d := time.Duration(now - ts[i]); d < 0 || d > 10*time.Second {
			t.Fatalf("line %d after the step back stamped %v from the new clock, want the new clock's time", i, -d)
		}
		if i > 6 && ts[i] <= ts[i-1] {
			t.Fatalf("lines after the step out of order: %d then %d", ts[i-1], ts[i])
		}
	}
}

func TestStamp(t *testing.T) {
	sec := int64(time.Second)
	for _, c := range []struct{ now, last, want int64 }{
		{100, 50, 100},  // clock moved on
		{100, 100, 101}, // same reading: keep the order
		{100, 105, 106}, // stamps ran ahead by a few lines
		{10 * sec, 10*sec + sec/2, 10*sec + sec/2 + 1}, // a step back under a second
		{10 * sec, 12 * sec, 10 * sec},                 // stepped back: take the new time
	} {
		if got := stamp(c.now, c.last); got != c.want {
			t.Errorf("stamp(%d, %d) = %d, want %d", c.now, c.last, got, c.want)
		}
	}
}
