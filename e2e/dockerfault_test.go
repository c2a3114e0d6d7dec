package e2e

import (
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wharf-logs/wharf/internal/dockerproxytest"
	"github.com/wharf-logs/wharf/internal/dockertest"
	"github.com/wharf-logs/wharf/internal/lokitest"
	"github.com/wharf-logs/wharf/internal/seq"
)

// dockerSocket is the daemon socket the tests' docker CLI talks to.
func dockerSocket(t testing.TB) string {
	t.Helper()
	host := os.Getenv("DOCKER_HOST")
	if host == "" {
		return "/var/run/docker.sock"
	}
	path, ok := strings.CutPrefix(host, "unix://")
	if !ok {
		t.Skipf("DOCKER_HOST=%s is not a unix socket; the proxy needs one", host)
	}
	return path
}

// startDockerProxy puts a dockerproxy in front of the daemon socket, on a
// short path (socket paths are limited to about 100 bytes).
func startDockerProxy(t testing.TB) *dockerproxytest.Proxy {
	t.Helper()
	dir, err := os.MkdirTemp("", "wharf-dp")
	if err != nil {
		t.Fatal(err)
	}
	p, err := dockerproxytest.Start(filepath.Join(dir, "docker.sock"), dockerSocket(t))
	if err != nil {
		os.RemoveAll(dir)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Close()
		os.RemoveAll(dir)
	})
	return p
}

// withDockerHost points a config made by modeConfig (whose last block is
// docker:) at host.
func withDockerHost(cfg, host string) string {
	return cfg + "  host: " + host + "\n"
}

// openFDs counts the descriptors wharf has open.
func openFDs(t testing.TB, w *proc) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", w.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// restingCounts returns wharf's goroutines (go_goroutines) and open
// descriptors (/proc/PID/fd) at rest: the lowest of 20 samples over 5 s,
// taken after idle, long enough for idle connections to close (10 s to the
// daemon, 30 s to Loki).
func restingCounts(t *testing.T, w *proc, idle time.Duration) (goroutines, fds int) {
	t.Helper()
	time.Sleep(idle)
	goroutines, fds = -1, -1
	for range 20 {
		g := int(w.metrics()["go_goroutines"])
		f := openFDs(t, w)
		if goroutines < 0 || g < goroutines {
			goroutines = g
		}
		if fds < 0 || f < fds {
			fds = f
		}
		time.Sleep(250 * time.Millisecond)
	}
	return goroutines, fds
}

// faultContainer is a container of the connection-drop test and what it
// must deliver.
type faultContainer struct {
	c    dockertest.Container
	role string
	want int64
	rate int // lines per second, for the duplicate bound
}

// TestDockerConnectionDrops runs wharf against the real daemon through a
// proxy that cuts every connection to the daemon several times, and once
// refuses connections for a few seconds while a container starts, another
// exits and a third runs from start to finish. Reading through the Engine
// API (every log stream goes through the proxy) and from the json-files
// (only discovery and inspection do), it checks that discovery and readers
// reconnect, no container is missed, every line arrives, nothing is read
// again from the start of a log, and wharf's goroutines and descriptors
// come back to where they were.
//
// The CI run is short; a long run is
//
//	WHARF_E2E=1 WHARF_DOCKERFAULT_SECONDS=600 WHARF_DOCKERFAULT_CUTS=60 go test ./e2e -run TestDockerConnectionDrops -v -timeout 60m
func TestDockerConnectionDrops(t *testing.T) {
	t.Parallel() // keeps to its own containers: see inGroup
	dockertest.Require(t)
	img := dockertest.LoggenImage(t)
	binary(t)
	seconds := envInt("WHARF_DOCKERFAULT_SECONDS", 30)
	cuts := max(envInt("WHARF_DOCKERFAULT_CUTS", 5), 2)
	// At least 3 s between cuts on average: a connection that drops
	// sooner after it was made is flapping, and there wharf rightly backs
	// off further each time, which this test does not measure.
	if most := max(seconds*8/10/3, 2); cuts > most {
		t.Logf("%d cuts in %d s would come less than 3 s apart; making %d", cuts, seconds, most)
		cuts = most
	}
	for _, mode := range []string{"api", "file"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			dockerConnectionDrops(t, img, mode, seconds, cuts)
		})
	}
}

func dockerConnectionDrops(t *testing.T, img, mode string, seconds, cuts int) {
	proxy := startDockerProxy(t)
	srv := lokitest.New(lokitest.Options{KeepDuplicates: true})
	t.Cleanup(srv.Close)
	data := t.TempDir()
	cfg := withDockerHost(inGroup(t, modeConfig(data, freePort(t), mode)), proxy.Host()) +
		"loki:\n  url: " + srv.URL() + "\n  batch_wait: 200ms\nadmin:\n  pprof: true\n"
	w := startWharf(t, data, cfg)
	// Nothing was pushed yet, so no connection to the receiver is open.
	g0, fd0 := restingCounts(t, w, 12*time.Second)
	stacks0 := goroutineStacks(t, w)
	t.Logf("%s: at rest before: goroutines %d, fds %d", mode, g0, fd0)

	var mu sync.Mutex
	var cs []faultContainer
	run := func(role string, want int64, rate int, tty bool) dockertest.Container {
		args := []string{"-lines", strconv.FormatInt(want, 10), "-stderr", "0.2"}
		if rate > 0 {
			args = append(args, "-rate", strconv.Itoa(rate))
		}
		c := dockertest.Run(t, dockertest.RunOptions{Image: img, TTY: tty, Labels: groupLabels(t), Args: args})
		mu.Lock()
		cs = append(cs, faultContainer{c: c, role: role, want: want, rate: rate})
		mu.Unlock()
		return c
	}
	// Steady loggers through the whole run, one with a terminal.
	const rate = 250
	steady := int64(rate * seconds)
	for i := range 4 {
		run(fmt.Sprint("steady-", i), steady, rate, i == 3)
	}
	start := time.Now()

	// Cuts spread over the first 80 % of the run, so readers must come
	// back for the rest; the second one refuses connections for a while.
	interval := time.Duration(seconds) * time.Second * 8 / 10 / time.Duration(cuts)
	var refusedFor time.Duration
	var cutAt []time.Time // when each cut (or, for the second, the refusal's end) was
	for i := range cuts {
		time.Sleep(interval/2 + rand.N(interval/2))
		if i != 1 {
			cutAt = append(cutAt, time.Now())
			n := proxy.Cut()
			t.Logf("cut %d at %v: %d connections", i+1, time.Since(start).Round(time.Millisecond), n)
			continue
		}
		// Exits while the daemon cannot be reached: 600 lines over 3 s,
		// started 1 s before the refusal.
		exiting := run("exits-while-down", 600, 200, false)
		time.Sleep(time.Second)
		n, err := proxy.Refuse(0)
		if err != nil {
			t.Fatal(err)
		}
		down := time.Now()
		t.Logf("cut %d at %v: %d connections, refusing new ones", i+1, time.Since(start).Round(time.Millisecond), n)
		var wg sync.WaitGroup
		wg.Go(func() { run("started-while-down", int64(rate*10), rate, false) })
		wg.Go(func() {
			c := dockertest.Run(t, dockertest.RunOptions{Image: img, Wait: true, Labels: groupLabels(t), Args: []string{"-lines", "300", "-stderr", "0.3"}})
			mu.Lock()
			cs = append(cs, faultContainer{c: c, role: "ran-while-down", want: 300, rate: 300}) // all in well under a second
			mu.Unlock()
		})
		wg.Go(func() { dockertest.Wait(t, exiting.ID) })
		wg.Wait()
		if d := 2*time.Second - time.Since(down); d > 0 {
			time.Sleep(d)
		}
		if err := proxy.Resume(); err != nil {
			t.Fatal(err)
		}
		refusedFor = time.Since(down)
		cutAt = append(cutAt, time.Now())
		t.Logf("accepting again after %v", refusedFor.Round(time.Millisecond))
	}
	for _, c := range cs {
		dockertest.Wait(t, c.c.ID)
	}
	w.settled(t, "loki", 2*time.Minute)
	waitFor(t, 30*time.Second, "every reader to finish", func() bool {
		return sumMetric(w.metrics(), "wharf_containers_watched{") == 0
	})
	g1, fd1 := restingCounts(t, w, 32*time.Second)
	stacks1 := goroutineStacks(t, w)
	openConns := proxy.Stats().Open
	m := w.metrics()
	w.stop()

	// How long discovery took to follow events again after each cut.
	var lags []string
	reqs := proxy.Requests()
	for i, at := range cutAt {
		// When the stream cut had been open less than a second, the
		// connection was flapping and wharf backs off further.
		var opened time.Time
		for _, r := range reqs {
			if r.Time.Before(at) && strings.HasSuffix(r.Path(), "/events") {
				opened = r.Time
			}
		}
		flapping := at.Sub(opened) < time.Second
		found := false
		for _, r := range reqs {
			if !r.Time.After(at) || !strings.HasSuffix(r.Path(), "/events") {
				continue
			}
			found = true
			lag := r.Time.Sub(at)
			lags = append(lags, lag.Round(time.Millisecond).String())
			// A first failure waits at most MinBackoff (500 ms); after the
			// refusal, the waits of the failed attempts have grown.
			bound := 5 * time.Second
			if i == 1 || flapping {
				bound = 10 * time.Second
			}
			if lag > bound {
				t.Errorf("cut %d: the event stream was reopened only %v later (bound %v)", i+1, lag.Round(time.Millisecond), bound)
			}
			break
		}
		if !found {
			t.Errorf("cut %d: the event stream was not reopened", i+1)
		}
	}
	t.Logf("%s: event stream reopened %v after each cut (after the refusal for the second)", mode, lags)
	ps := proxy.Stats()
	t.Logf("%s: proxy accepted %d connections, cut %d in %d cuts (refusing for %v once)", mode, ps.Accepted, ps.Cut, ps.Cuts, refusedFor.Round(time.Millisecond))
	t.Logf("%s: wharf_docker_reconnects_total %v, wharf_reader_reconnects_total %v, docker events %v",
		mode, m["wharf_docker_reconnects_total"], sumMetric(m, "wharf_reader_reconnects_total{"), sumMetric(m, "wharf_docker_events_total{"))
	t.Logf("%s: at rest after: goroutines %d (before %d), fds %d (before %d); %d connections open through the proxy",
		mode, g1, g0, fd1, fd0, openConns)

	if got := m["wharf_docker_reconnects_total"]; got < float64(cuts) {
		t.Errorf("wharf_docker_reconnects_total = %v after %d cuts; discovery did not reconnect each time", got, cuts)
	}
	if mode == "api" && sumMetric(m, "wharf_reader_reconnects_total{") == 0 {
		t.Error("no log reader reconnected, though every stream was cut")
	}
	var total, dups, missing int64
	slices.SortFunc(cs, func(a, b faultContainer) int { return strings.Compare(a.role, b.role) })
	for _, fc := range cs {
		r := seq.CheckLines(fc.c.Name, receiverLines(srv, fc.c.Name), fc.want)
		total += fc.want
		dups += int64(len(r.Duplicated))
		missing += r.MissingCount()
		t.Logf("%s %-18s %5d lines, %d missing, %d duplicated", mode, fc.role, fc.want, r.MissingCount(), len(r.Duplicated))
		if r.Lines == 0 {
			t.Errorf("%s (%s): nothing arrived; the container was missed", fc.c.Name, fc.role)
			continue
		}
		if r.MissingCount() > 0 || r.Unparsed > 0 || r.Unexpected > 0 || len(r.OutOfOrder) > 0 {
			t.Errorf("%s (%s): %s", fc.c.Name, fc.role, r)
		}
		// What can come twice is what was in flight at a cut: less than a
		// second of the container's lines per cut. A log read again from
		// its start would bring seq 1 twice, and every line after it.
		// (Through the Engine API, dockerd's follow stream itself sends a
		// few lines again where it rotates a json-file; that takes longer
		// runs than CI's, and stays well within the bound.)
		if bound := int64(cuts * fc.rate); int64(len(r.Duplicated)) > bound || (len(r.Duplicated) > 0 && r.Duplicated[0] == 1) {
			t.Errorf("%s (%s): %d lines duplicated (first %v), more than were in flight at %d cuts (%d)",
				fc.c.Name, fc.role, len(r.Duplicated), r.Duplicated[:min(5, len(r.Duplicated))], cuts, bound)
		}
	}
	t.Logf("%s: %d containers, %d lines, %d missing, %d duplicated", mode, len(cs), total, missing, dups)
	if g1 > g0+2 {
		t.Errorf("go_goroutines at rest %d -> %d after the faults", g0, g1)
	}
	if fd1 > fd0+2 {
		t.Errorf("open descriptors at rest %d -> %d after the faults", fd0, fd1)
	}
	if g1 > g0+2 || fd1 > fd0+2 {
		t.Logf("goroutines before:\n%s\ngoroutines after:\n%s", stacks0, stacks1)
	}
}

// goroutineStacks returns wharf's goroutines, grouped by stack, from the
// admin server's pprof endpoint.
func goroutineStacks(t testing.TB, w *proc) string {
	t.Helper()
	resp, err := http.Get(w.admin + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// forbiddenPath are parts of Engine API paths that act on the daemon or a
// container, or take the connection over; wharf must call none of them.
var forbiddenPath = []string{"/attach", "/exec", "/start", "/stop", "/kill", "/restart", "/wait", "/archive", "/export", "/update", "/prune", "/create", "/commit", "/session", "/grpc", "/build", "/images/load", "/pull", "/push", "/plugins"}

// TestDockerAPIReadOnly records every Engine API call wharf makes through a
// proxy during a run (discovery, inspection, log streams in api mode,
// events, a container stopping, one removed, and one reconnect) and fails on
// anything that is not a read: a method other than GET or HEAD, a request to
// take over the connection, or an endpoint that acts on a container.
func TestDockerAPIReadOnly(t *testing.T) {
	dockertest.Require(t)
	img := dockertest.LoggenImage(t)
	binary(t)
	proxy := startDockerProxy(t)
	srv := lokitest.New(lokitest.Options{})
	t.Cleanup(srv.Close)
	data := t.TempDir()
	// Running before wharf starts: found by the list.
	before := dockertest.Run(t, dockertest.RunOptions{Image: img, Args: []string{"-lines", "400", "-rate", "100"}})
	cfg := withDockerHost(modeConfig(data, freePort(t), "api"), proxy.Host()) + "loki:\n  url: " + srv.URL() + "\n  batch_wait: 200ms\n"
	w := startWharf(t, data, cfg)
	// Started after: found by its events; one with a terminal, one removed
	// while running.
	after := dockertest.Run(t, dockertest.RunOptions{Image: img, TTY: true, Args: []string{"-lines", "300", "-rate", "200"}})
	removed := dockertest.Run(t, dockertest.RunOptions{Image: img, Args: []string{"-rate", "100"}})
	time.Sleep(time.Second)
	proxy.Cut() // the reconnect path's calls too
	time.Sleep(time.Second)
	dockertest.Remove(t, removed.ID)
	dockertest.Wait(t, before.ID)
	dockertest.Wait(t, after.ID)
	w.settled(t, "loki", time.Minute)
	w.stop()

	for _, c := range []dockertest.Container{before, after, removed} {
		if len(receiverLines(srv, c.Name)) == 0 {
			t.Errorf("%s: no line arrived; the run did not read its logs", c.Name)
		}
	}
	reqs := proxy.Requests()
	seen := map[string]int{}
	for _, r := range reqs {
		seen[r.Endpoint()]++
		bad := ""
		switch {
		case r.Malformed != "":
			bad = "not HTTP as expected: " + r.Malformed
		case r.Method != "GET" && r.Method != "HEAD":
			bad = "method " + r.Method
		case r.Upgrade:
			bad = "asks to take the connection over"
		}
		for _, f := range forbiddenPath {
			if strings.Contains(r.Path(), f) {
				bad = "endpoint " + f
			}
		}
		if bad != "" {
			t.Errorf("not a read: %s %s (%s)", r.Method, r.Target, bad)
		}
	}
	var list []string
	for _, e := range slices.Sorted(maps.Keys(seen)) {
		list = append(list, fmt.Sprintf("  %-70s %d", e, seen[e]))
	}
	t.Logf("%d Engine API requests on %d connections; endpoints:\n%s", len(reqs), proxy.Stats().Accepted, strings.Join(list, "\n"))
	for _, want := range []string{"GET /_ping", "GET /containers/json", "GET /containers/{id}/json", "GET /containers/{id}/logs", "GET /events"} {
		found := false
		for e := range seen {
			if p, _, _ := strings.Cut(e, "?"); p == want {
				found = true
			}
		}
		if !found {
			t.Errorf("no %q request recorded; the proxy did not see a normal run", want)
		}
	}
}
