package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wharf-logs/wharf/internal/dockertest"
	"github.com/wharf-logs/wharf/internal/filesink"
	"github.com/wharf-logs/wharf/internal/lokitest"
	"github.com/wharf-logs/wharf/internal/seq"
)

// Container edge cases, lines that look like markup, and timestamps that
// are too old: each test runs the real daemon and the lokitest receiver,
// reading both from the json-files and through the Engine API, and checks
// every line by its sequence number.

var readModes = []string{"api", "file"}

// edgeWharf starts a receiver that keeps duplicates (so they can be
// counted) and a wharf reading in mode and pushing to it.
// lokiExtra is appended to the loki section.
func edgeWharf(t *testing.T, mode, lokiExtra string) (*proc, *lokitest.Server, string) {
	t.Helper()
	srv := lokitest.New(lokitest.Options{KeepDuplicates: true})
	t.Cleanup(srv.Close)
	data := t.TempDir()
	cfg := modeConfig(data, freePort(t), mode) + "loki:\n  url: " + srv.URL() + "\n  batch_wait: 200ms\n" + lokiExtra
	return startWharf(t, data, cfg), srv, data
}

// edgeCounts returns wharf's goroutines (go_goroutines) and open
// descriptors (/proc/PID/fd).
func edgeCounts(t *testing.T, w *proc) (goroutines, fds int) {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", w.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	return int(w.metrics()["go_goroutines"]), len(ents)
}

// noDrops fails t for any entry wharf dropped or dead-lettered.
func noDrops(t *testing.T, m map[string]float64) {
	t.Helper()
	for k, v := range m {
		if strings.HasPrefix(k, "wharf_entries_dropped_total") && v > 0 {
			t.Errorf("%s = %v", k, v)
		}
	}
}

// TestPauseWhileLogging pauses a container for 3 s in the middle of its
// run: the reader waits through the pause without giving up or reading
// anything twice, and every line arrives once, in order.
func TestPauseWhileLogging(t *testing.T) {
	dockertest.Require(t)
	img := dockertest.LoggenImage(t)
	binary(t)
	for _, mode := range readModes {
		t.Run(mode, func(t *testing.T) {
			w, srv, _ := edgeWharf(t, mode, "")
			const lines = 1600
			c := dockertest.Run(t, dockertest.RunOptions{Image: img, Args: []string{"-lines", strconv.Itoa(lines), "-rate", "400", "-stderr", "0.2"}})
			time.Sleep(1500 * time.Millisecond)
			dockertest.Pause(t, c.ID)
			paused := len(receiverLines(srv, c.Name))
			time.Sleep(3 * time.Second)
			if got := sumMetric(w.metrics(), "wharf_containers_watched{"); got != 1 {
				t.Errorf("while paused: wharf_containers_watched = %v, want 1 (the reader waits)", got)
			}
			dockertest.Unpause(t, c.ID)
			dockertest.Wait(t, c.ID)
			m := w.settled(t, "loki", 30*time.Second)
			w.stop()
			noDrops(t, m)
			got := receiverLines(srv, c.Name)
			t.Logf("%s: %d lines before the pause, %d in all", mode, paused, len(got))
			if paused == 0 || paused >= lines {
				t.Errorf("%d lines had arrived when the container was paused; the pause did not fall mid-run", paused)
			}
			if r := seq.CheckLines(c.Name, got, lines); !r.OK() {
				t.Fatal(r)
			}
		})
	}
}

// waitRestarts waits until a container with a restart policy has been
// restarted n times and has stopped for good.
func waitRestarts(t *testing.T, id string, n int) dockertest.Info {
	t.Helper()
	var info dockertest.Info
	waitFor(t, 60*time.Second, fmt.Sprintf("%d restarts and a final exit", n), func() bool {
		info = dockertest.Inspect(t, id)
		return info.RestartCount >= n && info.State.Status == "exited"
	})
	return info
}

// TestRestartPolicyRestarts runs a container with --restart on-failure:3
// whose process exits 1 after 300 lines: Docker runs it 4 times in quick
// succession, in the same log. Every line of every run arrives exactly once
// (each run writes seq 1..300 again, told apart by their sent times).
func TestRestartPolicyRestarts(t *testing.T) {
	dockertest.Require(t)
	img := dockertest.LoggenImage(t)
	binary(t)
	for _, mode := range readModes {
		t.Run(mode, func(t *testing.T) {
			w, srv, _ := edgeWharf(t, mode, "")
			const lines, runs = 300, 4
			c := dockertest.Run(t, dockertest.RunOptions{Image: img, Extra: []string{"--restart", "on-failure:3"},
				Args: []string{"-lines", strconv.Itoa(lines), "-rate", "1000", "-stderr", "0.3", "-exit-code", "1"}})
			info := waitRestarts(t, c.ID, runs-1)
			m := w.settled(t, "loki", 30*time.Second)
			w.stop()
			noDrops(t, m)
			if info.State.ExitCode != 1 {
				t.Fatalf("exit code %d, want 1", info.State.ExitCode)
			}
			perSeq := map[int64]int{}
			seen := map[string]bool{}
			for _, l := range receiverLines(srv, c.Name) {
				n, _, sent, ok := seq.ParseLine(l)
				if !ok {
					t.Fatalf("not a loggen line: %.80q", l)
				}
				key := fmt.Sprint(n, "/", sent)
				if seen[key] {
					t.Fatalf("seq %d of the run at sent=%d delivered twice", n, sent)
				}
				seen[key] = true
				perSeq[n]++
			}
			for n := int64(1); n <= lines; n++ {
				if perSeq[n] != runs {
					t.Fatalf("seq %d arrived %d times, want once per run (%d)", n, perSeq[n], runs)
				}
			}
			t.Logf("%s: %d runs (restart count %d), %d lines, each once", mode, runs, info.RestartCount, len(seen))
		})
	}
}

// TestRemoveWhileReading removes a container with docker rm -f while it
// writes 2,000 lines/s and wharf reads its log: the removal is not held up,
// every line wharf read arrives (contiguous from seq 1, none twice), the
// reader ends, and wharf's goroutines and descriptors return to where they
// were before the container.
func TestRemoveWhileReading(t *testing.T) {
	dockertest.Require(t)
	img := dockertest.LoggenImage(t)
	binary(t)
	for _, mode := range readModes {
		t.Run(mode, func(t *testing.T) {
			w, srv, _ := edgeWharf(t, mode, "")
			time.Sleep(time.Second)
			g0, fd0 := edgeCounts(t, w)
			c := dockertest.Run(t, dockertest.RunOptions{Image: img, Args: []string{"-rate", "2000", "-stderr", "0.2"}})
			waitFor(t, 30*time.Second, "3,000 lines to arrive", func() bool { return len(receiverLines(srv, c.Name)) >= 3000 })
			began := time.Now()
			dockertest.Remove(t, c.ID)
			took := time.Since(began)
			waitFor(t, 10*time.Second, "the reader to end", func() bool {
				return sumMetric(w.metrics(), "wharf_containers_watched{") == 0
			})
			m := w.settled(t, "loki", 30*time.Second)
			if mode == "api" {
				// The Engine API may not send a removed container's last
				// lines; wharf counts that, and nothing else may drop.
				delete(m, `wharf_entries_dropped_total{reason="removed_unread",sink="none"}`)
			}
			noDrops(t, m)
			// Idle connections to the daemon close after 10 s.
			var g, fd int
			waitFor(t, 25*time.Second, "goroutines and descriptors to come back", func() bool {
				g, fd = edgeCounts(t, w)
				return g <= g0+2 && fd <= fd0+2
			})
			w.stop()
			got := receiverLines(srv, c.Name)
			r := seq.CheckLines(c.Name, got, 0)
			t.Logf("%s: docker rm -f took %v; %d lines delivered; goroutines %d -> %d, fds %d -> %d",
				mode, took.Round(time.Millisecond), len(got), g0, g, fd0, fd)
			if !r.OK() || r.Lines < 3000 {
				t.Fatal(r)
			}
		})
	}
}

// labelValue returns the value of label name in a stream selector such as
// {container="x", stream="stdout"}.
func labelValue(sel, name string) string {
	_, v, ok := strings.Cut(sel, name+`="`)
	if !ok {
		return ""
	}
	v, _, _ = strings.Cut(v, `"`)
	return v
}

// TestBurst50MiBThenExit: a container writes 50 MiB (53,000 lines of 1,000
// bytes) as fast as the pipe takes it and exits at once. Every line
// arrives, once, in order per stream. The log is given room for all of it
// (max-size 256m): under the daemon's usual max-size the json-file rotates
// several times during the burst (see TestRotationUnderLoad for that).
func TestBurst50MiBThenExit(t *testing.T) {
	dockertest.Require(t)
	img := dockertest.LoggenImage(t)
	binary(t)
	const lines = 53000
	for _, mode := range readModes {
		t.Run(mode, func(t *testing.T) {
			chk := seq.NewChecker()
			var bytes atomic.Int64
			srv := lokitest.New(lokitest.Options{CountOnly: true, OnEntry: func(e lokitest.Entry) {
				chk.Add(labelValue(e.Labels, "container"), strings.Clone(e.Line))
				bytes.Add(int64(len(e.Line)))
			}})
			t.Cleanup(srv.Close)
			data := t.TempDir()
			w := startWharf(t, data, modeConfig(data, freePort(t), mode)+"loki:\n  url: "+srv.URL()+"\n  batch_wait: 200ms\n")
			began := time.Now()
			c := dockertest.Run(t, dockertest.RunOptions{Image: img, Wait: true, LogOpts: map[string]string{"max-size": "256m", "max-file": "2"},
				Args: []string{"-burst", "-lines", strconv.Itoa(lines), "-size", "1000", "-stderr", "0.2"}})
			written := time.Since(began)
			m := w.settled(t, "loki", 90*time.Second)
			delivered := time.Since(began)
			w.stop()
			noDrops(t, m)
			t.Logf("%s: %.1f MiB written in %v, all delivered after %v; RSS %.1f MiB",
				mode, float64(bytes.Load())/(1<<20), written.Round(time.Millisecond), delivered.Round(time.Millisecond), m["process_resident_memory_bytes"]/(1<<20))
			if err := chk.Verify(map[string]int64{c.Name: lines}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestManyContainersAtStart starts wharf on a host with 1,000 containers
// of this run (CI: 1,000; set WHARF_EDGE_CONTAINERS for more), 950 created
// but never started and 50 that ran and exited, plus 10 logging ones and
// WHARF_EDGE_RUNNING (CI: 0) more that wrote 200 lines and stay running:
// wharf is ready within seconds, inspects no more than startup_concurrency
// containers at a time, reads every running container from its first line
// (start_at: beginning), and its goroutines and memory stay bounded.
//
//	WHARF_EDGE_CONTAINERS=5000 go test ./e2e -run TestManyContainersAtStart -v -timeout 30m
//	WHARF_EDGE_RUNNING=1000 go test ./e2e -run TestManyContainersAtStart -v -timeout 30m
func TestManyContainersAtStart(t *testing.T) {
	dockertest.Require(t)
	img := dockertest.LoggenImage(t)
	binary(t)
	n := envInt("WHARF_EDGE_CONTAINERS", 1000)
	extra := envInt("WHARF_EDGE_RUNNING", 0)
	const exited, logging, lines, extraLines = 50, 10, 1500, 200
	running := logging + extra
	began := time.Now()
	idle := dockertest.CreateMany(t, n, dockertest.RunOptions{Image: img, Args: []string{"-lines", "5"}})
	dockertest.StartMany(t, idle[:exited])
	var sleepers []dockertest.Container
	if extra > 0 {
		sleepers = dockertest.CreateMany(t, extra, dockertest.RunOptions{Image: img,
			Args: []string{"-lines", strconv.Itoa(extraLines), "-rate", "1000", "-sleep-before-exit", "1h"}})
		dockertest.StartMany(t, sleepers)
	}
	var live []dockertest.Container
	for range logging {
		live = append(live, dockertest.Run(t, dockertest.RunOptions{Image: img, Args: []string{"-lines", strconv.Itoa(lines), "-rate", "100", "-stderr", "0.2"}}))
	}
	t.Logf("%d containers created (%d ran and exited) and %d started in %v", n, exited, running, time.Since(began).Round(time.Millisecond))

	srv := lokitest.New(lokitest.Options{KeepDuplicates: true})
	t.Cleanup(srv.Close)
	data := t.TempDir()
	cfg := modeConfig(data, freePort(t), "auto") + "  start_at: beginning\n  startup_concurrency: 4\n" +
		"loki:\n  url: " + srv.URL() + "\n  batch_wait: 200ms\n"
	start := time.Now()
	w := startWharf(t, data, cfg)
	ready := time.Since(start)
	waitFor(t, 30*time.Second+time.Duration(extra)*20*time.Millisecond, "every running container to be read", func() bool {
		return sumMetric(w.metrics(), "wharf_containers_watched{") == float64(running)
	})
	allRead := time.Since(start)
	m := w.metrics()
	t.Logf("ready after %v, every running container read after %v; discovered %v, goroutines %v, RSS %.1f MiB, heap %.1f MiB",
		ready.Round(time.Millisecond), allRead.Round(time.Millisecond), m["wharf_containers_discovered_total"],
		m["go_goroutines"], m["process_resident_memory_bytes"]/(1<<20), m["go_memstats_heap_inuse_bytes"]/(1<<20))
	if got := m["wharf_containers_discovered_total"]; got < float64(n+running) {
		t.Errorf("wharf_containers_discovered_total = %v, want at least %d", got, n+running)
	}
	// One reader goroutine per running container, whatever the number of
	// stopped ones.
	if g := m["go_goroutines"]; g > 60+2*float64(running) {
		t.Errorf("go_goroutines = %v with %d running containers", g, running)
	}
	if rss := m["process_resident_memory_bytes"]; rss > 128<<20+float64(extra)*(64<<10) {
		t.Errorf("RSS %.1f MiB", rss/(1<<20))
	}
	if ready > 20*time.Second {
		t.Errorf("ready after %v", ready)
	}
	for _, c := range live {
		dockertest.Wait(t, c.ID)
	}
	m = w.settled(t, "loki", 60*time.Second)
	w.stop()
	noDrops(t, m)
	for _, c := range live {
		if r := seq.CheckLines(c.Name, receiverLines(srv, c.Name), lines); !r.OK() {
			t.Error(r)
		}
	}
	for _, c := range sleepers {
		if r := seq.CheckLines(c.Name, receiverLines(srv, c.Name), extraLines); !r.OK() {
			t.Error(r)
		}
	}
	// Containers that had stopped before wharf started are not read
	// (README: only running ones are read from start_at).
	for _, c := range idle[:exited] {
		if got := receiverLines(srv, c.Name); len(got) != 0 {
			t.Errorf("%s exited before wharf started, yet %d of its lines were shipped", c.Name, len(got))
			break
		}
	}
	if fi, err := os.Stat(filepath.Join(data, "positions")); err == nil {
		t.Logf("positions file: %d bytes", fi.Size())
	}
}

// TestMarkupLinesShippedAsWritten: lines that are JSON objects, carry ANSI
// colour escapes, or both (the JSON form holds the escape as the six
// characters \u001b), from a plain and a terminal container, arrive byte for
// byte as written, in both push formats: wharf parses nothing in a line.
func TestMarkupLinesShippedAsWritten(t *testing.T) {
	dockertest.Require(t)
	img := dockertest.LoggenImage(t)
	binary(t)
	formats := []struct {
		f   seq.Format
		tty bool
	}{
		{seq.Format{Size: 300, StderrFraction: 0.3, JSON: true}, false},
		{seq.Format{Size: 300, StderrFraction: 0.3, ANSI: true}, false},
		{seq.Format{Size: 300, StderrFraction: 0.3, JSON: true, ANSI: true}, false},
		{seq.Format{Size: 300, ANSI: true}, true},
	}
	const lines = 500
	for _, mode := range readModes {
		for _, push := range []string{"protobuf", "json"} {
			t.Run(mode+"/"+push, func(t *testing.T) {
				w, srv, _ := edgeWharf(t, mode, "  format: "+push+"\n")
				var cs []dockertest.Container
				for _, f := range formats {
					args := append(f.f.Args(), "-lines", strconv.Itoa(lines), "-rate", "2000")
					cs = append(cs, dockertest.Run(t, dockertest.RunOptions{Image: img, TTY: f.tty, Args: args}))
				}
				for _, c := range cs {
					dockertest.Wait(t, c.ID)
				}
				m := w.settled(t, "loki", 30*time.Second)
				w.stop()
				noDrops(t, m)
				for i, c := range cs {
					got := receiverLines(srv, c.Name)
					if r := seq.CheckLines(c.Name, got, lines); !r.OK() {
						t.Fatal(r)
					}
					for _, l := range got {
						n, _, sent, _ := seq.ParseLine(l)
						if want := formats[i].f.Line(n, sent); l != want {
							t.Fatalf("%s seq %d:\n got %q\nwant %q", c.Name, n, l, want)
						}
					}
				}
			})
		}
	}
}

// deadRecord is one record of the dead-letter file.
type deadRecord struct {
	record
	Sink   string `json:"sink"`
	Reason string `json:"reason"`
}

func readDeadLetters(t *testing.T, data, sinkName string) []deadRecord {
	t.Helper()
	f, err := os.Open(filepath.Join(data, "dead-letter", filesink.FileName(sinkName)))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []deadRecord
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 8<<20)
	for sc.Scan() {
		var r deadRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("bad dead-letter record %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

// TestOldLinesAfterDowntimeAreDeadLettered is the real way a far-past
// timestamp reaches wharf: lines keep Docker's time, so lines a container
// wrote while wharf was stopped are as old as the downtime when wharf reads
// them. With loki.max_age at 5 s (Loki's 7 days, scaled down), wharf is
// stopped while a container writes 800 lines over 8 s and started 2 s after
// it exits: lines older than max_age are dead-lettered as too_old, not
// sent; the younger ones are delivered. Every line is in one of the two (a
// line in flight at the stop may be in both), and the receiver (which would
// accept them) sees none of the old ones.
func TestOldLinesAfterDowntimeAreDeadLettered(t *testing.T) {
	t.Parallel() // keeps to its own containers: see inGroup
	dockertest.Require(t)
	img := dockertest.LoggenImage(t)
	binary(t)
	const maxAge = 5 * time.Second
	for _, mode := range readModes {
		t.Run(mode, func(t *testing.T) {
			srv := lokitest.New(lokitest.Options{KeepDuplicates: true})
			t.Cleanup(srv.Close)
			data := t.TempDir()
			cfg := inGroup(t, modeConfig(data, freePort(t), mode)) + fmt.Sprintf("loki:\n  url: %s\n  batch_wait: 200ms\n  max_age: %v\n", srv.URL(), maxAge)
			w := startWharf(t, data, cfg)
			const lines = 1000
			c := dockertest.Run(t, dockertest.RunOptions{Image: img, Labels: groupLabels(t), Args: []string{"-lines", strconv.Itoa(lines), "-rate", "100", "-stderr", "0.2"}})
			time.Sleep(2 * time.Second)
			w.stop()
			stopped := time.Now()
			dockertest.Wait(t, c.ID)
			time.Sleep(2 * time.Second)
			restarted := time.Now()
			w = startWharf(t, data, cfg)
			m := w.settled(t, "loki", 30*time.Second)
			w.stop()
			done := time.Now()

			times := dockerTimes(t, c.ID)
			delivered := map[int64]int{}
			for _, e := range srv.Entries() {
				if !strings.Contains(e.Labels, `container="`+c.Name+`"`) {
					continue
				}
				n, _, _, ok := seq.ParseLine(e.Line)
				if !ok {
					t.Fatalf("not a loggen line: %.80q", e.Line)
				}
				delivered[n]++
				if e.Time != times[n] {
					t.Fatalf("seq %d: time %d, docker says %d", n, e.Time, times[n])
				}
				if e.Time < restarted.Add(-maxAge-time.Second).UnixNano() && e.Time > stopped.UnixNano() {
					t.Errorf("seq %d, written %v before wharf started again, was delivered", n, restarted.Sub(time.Unix(0, e.Time)))
				}
			}
			dead := map[int64]int{}
			for _, r := range readDeadLetters(t, data, "loki") {
				n, _, _, ok := seq.ParseLine(r.Line)
				if !ok || r.Labels["container"] != c.Name {
					t.Fatalf("unexpected dead-letter record %+v", r)
				}
				if r.Reason != "too_old" || r.Sink != "loki" {
					t.Fatalf("seq %d dead-lettered by sink %q for %q, want loki too_old", n, r.Sink, r.Reason)
				}
				if r.TS != times[n] {
					t.Fatalf("dead-lettered seq %d: time %d, docker says %d", n, r.TS, times[n])
				}
				if age := done.Sub(time.Unix(0, r.TS)); age < maxAge {
					t.Errorf("seq %d dead-lettered although only %v old at the end", n, age)
				}
				dead[n]++
			}
			// A line in flight when wharf was stopped may be read again
			// after the restart (and then be too old); none may be missing.
			var twice []int64
			for n := int64(1); n <= lines; n++ {
				switch total := delivered[n] + dead[n]; {
				case total == 0:
					t.Fatalf("seq %d: neither delivered nor dead-lettered", n)
				case total > 1:
					twice = append(twice, n)
				}
			}
			if len(twice) > 100 {
				t.Errorf("%d lines handled twice (%v...): more than one second of the log was in flight at the stop", len(twice), twice[:10])
			} else if len(twice) > 0 {
				t.Logf("%d lines in flight at the stop were read again after the restart: %v", len(twice), twice)
			}
			if got := m[`wharf_entries_dropped_total{reason="too_old",sink="loki"}`]; got != float64(len(dead)) {
				t.Errorf("wharf_entries_dropped_total too_old = %v, dead-letter file holds %d", got, len(dead))
			}
			if len(dead) == 0 || len(delivered) < 150 {
				t.Fatalf("%d delivered, %d dead-lettered: the timing did not split the log", len(delivered), len(dead))
			}
			if c := srv.Counts(); c.Rejected["too_old"] > 0 {
				t.Errorf("the receiver refused %d entries as too old; wharf should not have sent them", c.Rejected["too_old"])
			}
			t.Logf("%s: %d delivered, %d dead-lettered as too_old", mode, len(delivered), len(dead))
		})
	}
}
