package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/wharf-logs/wharf/internal/filesink"
)

// gauge returns the value of the agent's unlabelled gauge name.
func gauge(t *testing.T, a *Agent, name string) float64 {
	t.Helper()
	mfs, err := a.metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no gauge %s", name)
	return 0
}

// TestOwnOutputIsNotShippedAgain: a files: pattern that takes in wharf's
// data_dir and the file sink's directory does not read what wharf writes
// there, which it would otherwise ship again, and again, without end.
func TestOwnOutputIsNotShippedAgain(t *testing.T) {
	dir := t.TempDir()
	data, app := filepath.Join(dir, "data"), filepath.Join(dir, "app.log")
	cfg := fileAgentConfig(data, app, "") // no Loki: the file sink, in data/logs
	cfg.Listen = ""
	cfg.Files[0].Paths = []string{app, filepath.Join(dir, "*", "*", "*.ndjson"), filepath.Join(data, "*")}
	a, err := New(cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	runAgent(t, a)
	appendLines(t, app, "one", "two", "three")
	out := filepath.Join(data, "logs", filesink.FileName(app))
	lines := func() int {
		b, _ := os.ReadFile(out)
		return strings.Count(string(b), "\n")
	}
	waitFor(t, func() string { return fmt.Sprintf("%s has %d lines, want 3", out, lines()) }, func() bool { return lines() == 3 })
	skipped := func() float64 { return exported(t, a, "wharf_files_skipped_total")["reason=own_directory"] }
	// At least the sink's file and the positions file.
	waitFor(t, func() string { return fmt.Sprintf("%v of wharf's own files counted as skipped, want 2", skipped()) }, func() bool { return skipped() >= 2 })
	if n := gauge(t, a, "wharf_files_watched"); n != 1 {
		t.Errorf("wharf_files_watched %v, want 1 (app.log)", n)
	}
	ents, _ := os.ReadDir(filepath.Join(data, "logs"))
	if len(ents) != 1 || lines() != 3 {
		t.Errorf("the file sink wrote %d files, %d lines for app.log; want 1 and 3", len(ents), lines())
	}
}

// TestMemoryLimitGrowsWithFilesFollowed: the soft memory limit makes room
// for the readers of the plain files followed, in steps of at least a MiB.
// A limit under what thousands of idle readers hold would keep the
// collector running without pause.
func TestMemoryLimitGrowsWithFilesFollowed(t *testing.T) {
	if _, ok := os.LookupEnv("GOMEMLIMIT"); ok {
		t.Skip("GOMEMLIMIT is set: wharf leaves the limit to it")
	}
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	dir := t.TempDir()
	const n = 100 // 3.1 MiB of allowance
	for i := range n {
		appendLines(t, filepath.Join(dir, fmt.Sprintf("app-%03d.log", i)), "a line")
	}
	cfg := fileAgentConfig(filepath.Join(dir, "data"), filepath.Join(dir, "*.log"), "")
	cfg.Listen = ""
	a, err := New(cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	runAgent(t, a)
	waitFor(t, func() string { return fmt.Sprintf("%v files watched, want %d", gauge(t, a, "wharf_files_watched"), n) },
		func() bool { return gauge(t, a, "wharf_files_watched") == n })
	base := int64(len(a.sinks))*int64(cfg.Buffer.MaxBytes) + memoryHeadroom
	want := base + n*fileMemory
	waitFor(t, func() string {
		return fmt.Sprintf("soft memory limit %d, want within a MiB of %d", debug.SetMemoryLimit(-1), want)
	},
		func() bool { l := debug.SetMemoryLimit(-1); return l > want-1<<20 && l <= want })
}
