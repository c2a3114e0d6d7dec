package docker

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharf-logs/wharf/internal/positions"
	"github.com/wharf-logs/wharf/internal/source"
)

// someLines returns n lines of container name, every fourth on stderr.
func someLines(name string, n int) []fakeLine {
	out := make([]fakeLine, n)
	for i := range out {
		l := stdoutLine(at(i), fmt.Sprintf("%s %d", name, i+1))
		if i%4 == 3 {
			l.Stream = 2
		}
		out[i] = l
	}
	return out
}

// openPositions opens the positions file at path, as the agent does at
// each start.
func openPositions(t *testing.T, path string) *positions.Store {
	t.Helper()
	st, problem, err := positions.Open(path, nil)
	if err != nil || problem != nil {
		t.Fatalf("positions: %v %v", err, problem)
	}
	return st
}

// TestSourceReadsContainersThatRanWhileStopped: wharf (start_at: end) is
// stopped; meanwhile one container writes 50 lines and exits, another writes
// 50 and keeps running, and a third runs and is removed (docker run --rm).
// At the next start on the same positions the first two are read from
// their first line, and the third is counted and logged as lost. A
// container that was there before the first start is still read by
// start_at.
func TestSourceReadsContainersThatRanWhileStopped(t *testing.T) {
	fe := newFakeEngine(t)
	path := filepath.Join(t.TempDir(), "positions")
	cfg := Config{StartAt: source.StartEnd}
	old := cid("old")
	fe.run(fakeSpec{ID: old, Name: "old"}, stdoutLine(at(1), "old: written before wharf's first start"))

	st := openPositions(t, path)
	h := startSource(t, fe, cfg, func(d *SourceDeps) { d.Positions = st })
	waitUntil(t, "the source to read old", func() bool { _, reading := h.state(old); return reading })
	h.stop()
	if err := st.Flush(); err != nil {
		t.Fatal(err)
	}

	exited, running, removed := cid("exited"), cid("running"), cid("removed")
	exitedLines, runningLines := someLines("exited", 50), someLines("running", 50)
	fe.run(fakeSpec{ID: exited, Name: "exited"}, exitedLines...)
	fe.exit(exited, false)
	fe.run(fakeSpec{ID: running, Name: "running"}, runningLines...)
	fe.run(fakeSpec{ID: removed, Name: "removed"}, someLines("removed", 5)...)
	fe.exit(removed, false)
	fe.destroy(removed)

	h2 := startSource(t, fe, cfg, func(d *SourceDeps) { d.Positions = openPositions(t, path) })
	h2.waitLines(exited, len(exitedLines))
	h2.waitLines(running, len(runningLines))
	h2.waitIdle(exited)
	fe.exit(running, false)
	h2.waitIdle(running)
	h2.assertLines(exited, exitedLines)
	h2.assertLines(running, runningLines)
	if n := len(h2.sub.entriesOf(old)); n != 0 {
		t.Errorf("%d lines of a container that was there before the first start and wrote nothing since", n)
	}
	waitUntil(t, "the removed container to be counted", func() bool {
		return testutil.ToFloat64(h2.lost.WithLabelValues("removed_unread")) >= 1
	})
	if got := testutil.ToFloat64(h2.lost.WithLabelValues("removed_unread")); got != 1 {
		t.Errorf("wharf_entries_dropped_total{reason=removed_unread} = %v, want 1", got)
	}
	if w := h2.log.warnings("container", "removed"); len(w) != 1 || !strings.Contains(w[0].msg, "removed before its log was read") {
		t.Errorf("warnings naming the removed container: %+v, want one", w)
	}
}

// TestSourceHistoryDecidesWhereToStart: with positions that carry a
// history mark, a container without a position is read from its first
// line if it was created after the mark, by start_at if before; with no
// history at all (a first run), by start_at. A positions file written
// before marks existed ends at its modification time.
func TestSourceHistoryDecidesWhereToStart(t *testing.T) {
	now := time.Now()
	hour := now.Add(-time.Hour)
	for _, tc := range []struct {
		name string
		// setup writes the positions file; nil leaves none.
		setup func(t *testing.T, path string)
		// fromStart: the containers created a minute ago are read from
		// their first line (otherwise by start_at); veteranFromStart: the
		// one created an hour ago too.
		fromStart, veteranFromStart bool
	}{
		{"first run", nil, false, false},
		{"mark two minutes ago", func(t *testing.T, path string) {
			st := openPositions(t, path)
			st.Set(historyKey, formatHistory(now.Add(-2*time.Minute).UnixNano()))
			if err := st.Flush(); err != nil {
				t.Fatal(err)
			}
		}, true, false},
		{"mark after they were created", func(t *testing.T, path string) {
			// Containers created more than the margin before the mark,
			// without a position: the last run saw them and left them out.
			st := openPositions(t, path)
			st.Set(historyKey, formatHistory(now.Add(historyMargin/2).UnixNano()))
			if err := st.Flush(); err != nil {
				t.Fatal(err)
			}
		}, false, false},
		{"mark an hour ahead of the clock", func(t *testing.T, path string) {
			// The clock was stepped back: creation times cannot be
			// compared with the mark, and every container without a
			// position is taken as new.
			st := openPositions(t, path)
			st.Set(historyKey, formatHistory(now.Add(time.Hour).UnixNano()))
			if err := st.Flush(); err != nil {
				t.Fatal(err)
			}
		}, true, true},
		{"older file without a mark, written two minutes ago", func(t *testing.T, path string) {
			data := positions.Encode(map[string]string{positionKey(cid("gone")): startPosition(hour.UnixNano()).String()})
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(path, now.Add(-2*time.Minute), now.Add(-2*time.Minute)); err != nil {
				t.Fatal(err)
			}
		}, true, false},
		{"file with positions of other sources only", func(t *testing.T, path string) {
			data := positions.Encode(map[string]string{"file//var/log/app.log": "x"})
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(path, now.Add(-2*time.Minute), now.Add(-2*time.Minute)); err != nil {
				t.Fatal(err)
			}
		}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fe := newFakeEngine(t)
			path := filepath.Join(t.TempDir(), "positions")
			if tc.setup != nil {
				tc.setup(t, path)
			}
			veteran, newRunning, newExited := cid("veteran"), cid("new-running"), cid("new-exited")
			veteranLines := someLines("veteran", 3)
			fe.run(fakeSpec{ID: veteran, Name: "veteran", Created: hour}, veteranLines...)
			runningLines, exitedLines := someLines("new-running", 4), someLines("new-exited", 4)
			fe.run(fakeSpec{ID: newRunning, Name: "new-running", Created: now.Add(-time.Minute)}, runningLines...)
			fe.run(fakeSpec{ID: newExited, Name: "new-exited", Created: now.Add(-time.Minute)}, exitedLines...)
			fe.exit(newExited, false)

			h := startSource(t, fe, Config{StartAt: source.StartEnd}, func(d *SourceDeps) { d.Positions = openPositions(t, path) })
			if tc.fromStart {
				h.waitLines(newRunning, len(runningLines))
				h.waitLines(newExited, len(exitedLines))
			}
			if tc.veteranFromStart {
				h.waitLines(veteran, len(veteranLines))
			}
			live := stdoutLine(now.Add(time.Hour).UnixNano(), "written while wharf runs")
			for _, id := range []string{veteran, newRunning} {
				fe.write(id, live)
				h.waitLines(id, 1)
				fe.exit(id, false)
				h.waitIdle(id)
			}
			if tc.fromStart {
				h.assertLines(newRunning, append(runningLines, live))
				h.assertLines(newExited, exitedLines)
			} else {
				h.assertLines(newRunning, []fakeLine{live})
				if n := len(h.sub.entriesOf(newExited)); n != 0 {
					t.Errorf("%d lines of a container that exited before wharf started, without history of it", n)
				}
			}
			if tc.veteranFromStart {
				h.assertLines(veteran, append(veteranLines, live))
			} else {
				h.assertLines(veteran, []fakeLine{live})
			}
		})
	}
}

// TestSourceSavesItsHistoryMark: the mark in the positions follows the
// events handled, and never goes back.
func TestSourceSavesItsHistoryMark(t *testing.T) {
	fe := newFakeEngine(t)
	st := openPositions(t, filepath.Join(t.TempDir(), "positions"))
	h := startSource(t, fe, Config{}, func(d *SourceDeps) { d.Positions = st })
	id := cid("x")
	fe.run(fakeSpec{ID: id, Name: "x"}, stdoutLine(at(1), "x"))
	last := fe.lastEventTime()
	waitUntil(t, "the mark to reach the last event", func() bool {
		v, _ := st.Get(historyKey)
		m, err := parseHistory(v)
		return err == nil && m >= last
	})
	h.waitLines(id, 1)
}

func TestParseHistory(t *testing.T) {
	if got, err := parseHistory(formatHistory(1795736621960480613)); err != nil || got != 1795736621960480613 {
		t.Fatalf("round trip: %d, %v", got, err)
	}
	for _, bad := range []string{"", "e1", "e1 x", "e1 -5", "e1 0", "e2 5", "e1 5 6", "v1 1 0 1 0"} {
		if _, err := parseHistory(bad); err == nil {
			t.Errorf("parseHistory(%q) accepted", bad)
		}
	}
}
