package files

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func skipped(m *Metrics, reason string) float64 {
	return testutil.ToFloat64(m.Skipped.WithLabelValues(reason))
}

// waitUntil polls cond, failing with what() once the test's 10 s deadline
// for it passes: the deadline detects a hang and asserts no speed.
func waitUntil(t *testing.T, what func() string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out: %s", what())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// TestSymlinksAreNotFollowed: a link in a globbed directory is not read,
// whether it names a file (late.log -> a secret) or a directory the pattern
// goes through; each is counted and logged once. The directories the
// operator wrote before the first wildcard may be links.
func TestSymlinksAreNotFollowed(t *testing.T) {
	h := newHarness(t)
	outside := t.TempDir()
	secret := filepath.Join(outside, "shadow")
	write(t, secret, "root:secret")
	if err := os.Mkdir(filepath.Join(outside, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(outside, "d", "x.log"), "secret too")
	// The operator's own link: logs -> real.
	real := h.path("real")
	for _, d := range []string{real, filepath.Join(real, "sub")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	logs := h.path("logs")
	must(t, os.Symlink(real, logs))
	app, sub := filepath.Join(logs, "app.log"), filepath.Join(logs, "sub", "x.log")
	write(t, app, "app line")
	write(t, sub, "sub line")
	must(t, os.Symlink(secret, filepath.Join(real, "late.log")))
	must(t, os.Symlink(filepath.Join(outside, "d"), filepath.Join(real, "evil")))

	h.start(Group{Paths: []string{filepath.Join(logs, "*.log"), filepath.Join(logs, "*", "x.log")}})
	same(t, "app.log", h.out.waitLines(t, app, 1), []string{"app line"})
	same(t, "sub/x.log", h.out.waitLines(t, sub, 1), []string{"sub line"})
	waitUntil(t, func() string { return "no symlink skip counted" }, func() bool { return skipped(h.m, "symlink") == 2 })
	time.Sleep(100 * time.Millisecond) // a few more scans: counted once, never read
	if got := skipped(h.m, "symlink"); got != 2 {
		t.Errorf("wharf_files_skipped_total{reason=symlink} %v, want 2 (late.log and evil/)", got)
	}
	h.stop()
	for path, lines := range h.out.lines {
		if path != app && path != sub {
			t.Errorf("read %s: %q", path, lines)
		}
	}
}

// TestFollowSymlinksEntry: with follow_symlinks a link to a file is read as
// the file; a link to anything but a regular file is still refused.
func TestFollowSymlinksEntry(t *testing.T) {
	h := newHarness(t)
	target := filepath.Join(t.TempDir(), "target.log")
	write(t, target, "through the link")
	late := h.path("late.log")
	must(t, os.Symlink(target, late))
	must(t, os.Symlink("/dev/null", h.path("null.log")))
	h.start(Group{Paths: []string{h.path("*.log")}, FollowSymlinks: true})
	same(t, "late.log", h.out.waitLines(t, late, 1), []string{"through the link"})
	waitUntil(t, func() string { return "/dev/null not counted" }, func() bool { return skipped(h.m, "not_regular") == 1 })
	h.stop()
	if got := h.out.get(h.path("null.log")); len(got) > 0 {
		t.Fatalf("read /dev/null: %q", got)
	}
}

// TestFIFOsAndDevicesNeverBlock: FIFOs and devices at matched paths are
// refused, including a FIFO swapped in between the scan that saw a regular
// file and the open, and the source stops when asked whatever the files
// are. open(2) of a FIFO for reading blocks until a writer comes, so an
// open without O_NONBLOCK there never returns and neither does Run.
func TestFIFOsAndDevicesNeverBlock(t *testing.T) {
	h := newHarness(t)
	must(t, syscall.Mkfifo(h.path("fifo.log"), 0o600))
	must(t, os.Symlink("/dev/null", h.path("null.log")))
	h.start(Group{Paths: []string{h.path("*.log")}}, Group{Paths: []string{h.path("*.out")}, StartAt: "end"})
	waitUntil(t, func() string { return "the FIFO was not counted" }, func() bool { return skipped(h.m, "not_regular") >= 1 })

	// Flip app.log between a regular file and a FIFO, each put in place
	// by rename(2), as fast as it goes.
	for _, name := range []string{"app.log", "app.out"} {
		path := h.path(name)
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		for i := 0; ctx.Err() == nil; i++ {
			tmp := h.path(name + ".tmp")
			if i%2 == 0 {
				must(t, syscall.Mkfifo(tmp, 0o600))
			} else {
				must(t, os.WriteFile(tmp, []byte("a line\n"), 0o600))
			}
			must(t, os.Rename(tmp, path))
		}
		cancel()
		os.Remove(path)
		must(t, syscall.Mkfifo(path, 0o600)) // and a FIFO stays there
	}
	stopped := make(chan struct{})
	go func() { h.stop(); close(stopped) }()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	select {
	case <-stopped:
	case <-ctx.Done():
		t.Fatal("the source did not stop: a reader is blocked")
	}
}

// TestOwnDirectoriesAreNotRead: wharf's own directories (data_dir, the file
// sink's) are left out of every pattern, or wharf would ship what it writes
// there, again and again.
func TestOwnDirectoriesAreNotRead(t *testing.T) {
	h := newHarness(t)
	out := h.path("out")
	must(t, os.Mkdir(out, 0o755))
	write(t, filepath.Join(out, "app.ndjson"), `{"line":"shipped before"}`)
	app := h.path("app.log")
	write(t, app, "app line")
	must(t, os.MkdirAll(h.path("data"), 0o755))
	write(t, h.path(filepath.Join("data", "dead-letter.ndjson")), `{"line":"refused"}`)
	// Reached through a link the operator wrote, too.
	must(t, os.Symlink(out, h.path("view")))
	h.ownDirs = []string{h.path("data"), out}
	h.start(Group{Paths: []string{h.path("*.log"), h.path(filepath.Join("*", "*")), h.path(filepath.Join("view", "*.ndjson"))}})
	same(t, "app.log", h.out.waitLines(t, app, 1), []string{"app line"})
	// data/dead-letter.ndjson, out/app.ndjson and view/app.ndjson; view/
	// itself is a link the */* pattern does not go through.
	waitUntil(t, func() string {
		return fmt.Sprintf("own files counted %v, symlink %v", skipped(h.m, "own_directory"), skipped(h.m, "symlink"))
	}, func() bool { return skipped(h.m, "own_directory") == 3 })
	h.stop()
	for path, lines := range h.out.lines {
		if path != app {
			t.Errorf("read %s: %q", path, lines)
		}
	}
}

// TestMaxFiles: no more files are followed at once than the cap; the files
// left waiting are counted and shown, and take a place when one frees.
func TestMaxFiles(t *testing.T) {
	h := newHarness(t)
	for i := range 5 {
		write(t, h.path(string(rune('a'+i))+".log"), "line of "+string(rune('a'+i)))
	}
	h.maxFiles = 3
	h.start(Group{Paths: []string{h.path("*.log")}})
	for _, n := range []string{"a", "b", "c"} {
		h.out.waitLines(t, h.path(n+".log"), 1)
	}
	waitUntil(t, func() string { return "waiting files not shown" }, func() bool {
		return testutil.ToFloat64(h.m.OverLimit) == 2 && skipped(h.m, "limit") == 2
	})
	if got := watchedFiles(h.m); got != 3 {
		t.Fatalf("wharf_files_watched %v, want 3", got)
	}
	if got := h.out.get(h.path("d.log")); len(got) > 0 {
		t.Fatalf("d.log read beyond the cap: %q", got)
	}
	// a.log goes: after GoneAfter its place goes to d.log.
	must(t, os.Remove(h.path("a.log")))
	h.out.waitLines(t, h.path("d.log"), 1)
	waitUntil(t, func() string { return "the gauge did not drop" }, func() bool { return testutil.ToFloat64(h.m.OverLimit) == 1 })
	h.stop()
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestSplitPattern(t *testing.T) {
	for _, c := range []struct {
		pattern, trusted, rest string
	}{
		{"/var/log/app/*.log", "/var/log/app", "*.log"},
		{"/var/log/*/x.log", "/var/log", "*/x.log"},
		{"/var/log/nginx/access.log", "/var/log/nginx", "access.log"},
		{"/*.log", "/", "*.log"},
		{"logs/*.log", "logs", "*.log"},
		{"*.log", ".", "*.log"},
		{"/var/log/app[12]/a.log", "/var/log", "app[12]/a.log"},
		{`/var/log/a\*b/x.log`, "/var/log", `a\*b/x.log`},
	} {
		trusted, rest := splitPattern(c.pattern)
		if trusted != c.trusted || filepath.Join(rest...) != c.rest {
			t.Errorf("splitPattern(%q) = %q, %q; want %q, %q", c.pattern, trusted, rest, c.trusted, c.rest)
		}
	}
}
