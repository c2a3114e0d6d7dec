package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wharf-logs/wharf/internal/dockertest"
	"github.com/wharf-logs/wharf/internal/seq"
	"github.com/wharf-logs/wharf/internal/vlogstest"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// TestCrashLosesNothing kills wharf with SIGKILL at random moments while 4
// containers log sequence-numbered lines, restarting it each time, and then
// checks that every line reached VictoriaLogs and that duplicates stay within
// what can have been in flight at the kills.
//
// The CI run is short; the long run of the "Never lose" issue is
//
//	WHARF_CRASH_KILLS=20 WHARF_CRASH_SECONDS=180 go test ./e2e -run TestCrashLosesNothing -v -timeout 30m
func TestCrashLosesNothing(t *testing.T) {
	t.Parallel() // keeps to its own containers: see inGroup
	dockertest.Require(t)
	img := dockertest.LoggenImage(t)
	binary(t)
	kills := envInt("WHARF_CRASH_KILLS", 4)
	seconds := envInt("WHARF_CRASH_SECONDS", 24)
	const containers, ratePerContainer = 4, 500 // 2,000 lines/s in all
	vl := vlogstest.Start(t)
	data := t.TempDir()
	cfg := inGroup(t, baseConfig(data, freePort(t))) + fmt.Sprintf("loki:\n  url: %s\n  batch_wait: 500ms\n", vl.PushURL())

	w := startWharf(t, data, cfg)
	var cs []dockertest.Container
	lines := int64(seconds * ratePerContainer)
	for range containers {
		cs = append(cs, dockertest.Run(t, dockertest.RunOptions{Image: img, Labels: groupLabels(t),
			Args: []string{"-lines", strconv.FormatInt(lines, 10), "-rate", strconv.Itoa(ratePerContainer), "-stderr", "0.2"}}))
	}
	// Kill at random moments spread over the run.
	interval := time.Duration(seconds) * time.Second / time.Duration(kills+1)
	for i := range kills {
		time.Sleep(interval/2 + rand.N(interval))
		w.cmd.Process.Signal(syscall.SIGKILL)
		<-w.done
		t.Logf("kill %d at %s", i+1, time.Now().Format("15:04:05.000"))
		w = startWharf(t, data, cfg)
	}
	for _, c := range cs {
		dockertest.Wait(t, c.ID)
	}
	w.settled(t, "loki", 120*time.Second)
	w.stop()

	// In flight at a kill: lines read but not yet confirmed and saved, about
	// batch_wait + the 1 s positions interval + one push, at 2,000 lines/s.
	maxDupPerKill := int64(3 * containers * ratePerContainer)
	var dups int64
	for _, c := range cs {
		chk := seq.NewChecker()
		for _, row := range vl.StreamRows(t, `{container="`+c.Name+`"}`) {
			chk.Add(c.Name, row["_msg"])
		}
		r := chk.Report(c.Name, lines)
		if r.MissingCount() > 0 || r.Unparsed > 0 || r.Unexpected > 0 {
			t.Errorf("%s", r)
		}
		dups += int64(len(r.Duplicated))
	}
	t.Logf("%d kills, %d lines, %d duplicated (bound %d)", kills, lines*containers, dups, int64(kills)*maxDupPerKill)
	if dups > int64(kills)*maxDupPerKill {
		t.Errorf("%d duplicated lines after %d kills; more than can have been in flight (%d)", dups, kills, int64(kills)*maxDupPerKill)
	}
}

// TestPositionsSurviveRestarts stops wharf, runs a container again (same id)
// while wharf is down, and starts wharf again with start_at end: the saved
// position makes it read exactly the new lines, no history and no gap.
func TestPositionsSurviveRestarts(t *testing.T) {
	dockertest.Require(t)
	img := dockertest.LoggenImage(t)
	data := t.TempDir()
	cfg := baseConfig(data, freePort(t))
	w := startWharf(t, data, cfg)
	c := dockertest.Run(t, dockertest.RunOptions{Image: img, Args: []string{"-lines", "300", "-rate", "1000", "-stderr", "0.3"}})
	dockertest.Wait(t, c.ID)
	w.settled(t, "file", 30*time.Second)
	w.stop()

	dockertest.Start(t, c.ID) // second run, same id, while wharf is down
	dockertest.Wait(t, c.ID)
	w = startWharf(t, data, cfg)
	dockertest.Start(t, c.ID) // third run, while wharf runs
	dockertest.Wait(t, c.ID)
	w.settled(t, "file", 30*time.Second)
	w.stop()

	seen := map[string]int{}
	runs := map[int64]int{}
	for _, r := range readRecords(t, data+"/logs", c.Name) {
		n, _, sent, ok := seq.ParseLine(r.Line)
		if !ok {
			t.Fatalf("not a loggen line: %q", r.Line)
		}
		key := fmt.Sprint(n, "/", sent)
		seen[key]++
		if seen[key] > 1 {
			t.Fatalf("line seq=%d sent=%d delivered twice", n, sent)
		}
		runs[n]++
	}
	for n := int64(1); n <= 300; n++ {
		if runs[n] != 3 {
			t.Fatalf("seq %d arrived %d times over three runs, want 3", n, runs[n])
		}
	}
}

// TestCorruptPositionsFileIsSetAside starts wharf on a damaged positions
// file: it keeps the file aside, reports it, and runs.
func TestCorruptPositionsFileIsSetAside(t *testing.T) {
	dockertest.Require(t)
	data := t.TempDir()
	if err := os.WriteFile(data+"/positions", []byte("wharf-positions 1 deadbeef 10\n{\"docker/x\""), 0o600); err != nil {
		t.Fatal(err)
	}
	w := startWharf(t, data, baseConfig(data, freePort(t)))
	if got := w.metrics()[`wharf_source_errors_total{kind="corrupt",source="positions"}`]; got != 1 {
		t.Errorf("corrupt positions not counted: %v", got)
	}
	w.stop()
	aside, _ := filepath.Glob(data + "/positions.corrupt-*")
	if len(aside) != 1 {
		t.Fatalf("damaged file not kept aside: %v", aside)
	}
	if log := tail(w.logPath, 50); !strings.Contains(log, "positions file unusable") {
		t.Fatalf("not reported in the log:\n%s", log)
	}
}
