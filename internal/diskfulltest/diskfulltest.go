//go:build unix

// Package diskfulltest makes a test's writes fail as on a full disk.
package diskfulltest

import (
	"flag"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

// Limit makes writes beyond n bytes of any file fail with EFBIG after writing
// what fits, the way a disk that fills up mid-write does, until the returned
// function (also run at the test's cleanup) is called. It works for root,
// whom a read-only directory does not stop. The Go runtime does not die of
// the SIGXFSZ that comes with it. The limit is process-wide: tests using it
// must not run in parallel. It skips the test where the limit cannot be set.
// Under go test's package list mode, whose file access log the limit would
// break, the test runs again alone in a child process and is skipped here.
func Limit(t testing.TB, n uint64) (lift func()) {
	t.Helper()
	if inGoTestLog() {
		runAlone(t)
	}
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Skipf("getrlimit: %v", err)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: n, Max: old.Max}); err != nil {
		t.Skipf("setrlimit: %v", err)
	}
	lifted := false
	lift = func() {
		if !lifted {
			lifted = true
			if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
				t.Fatalf("restoring RLIMIT_FSIZE: %v", err)
			}
		}
	}
	t.Cleanup(lift)
	return lift
}

// inGoTestLog reports whether go test asked this binary to log its file
// accesses (-test.testlogfile, for its test cache). That log is buffered in
// the process and written as it fills: written while the limit holds, it
// fails, and go test fails the whole package ("can't write testlog.txt").
func inGoTestLog() bool {
	f := flag.Lookup("test.testlogfile")
	return f != nil && f.Value.String() != ""
}

// runAlone runs the calling test again in a child process without the test
// log, reports its failure or skip, and ends the calling test as skipped
// here, having run there.
func runAlone(t testing.TB) {
	t.Helper()
	parts := strings.Split(t.Name(), "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	cmd := exec.Command(os.Args[0], "-test.run="+strings.Join(parts, "/"), "-test.count=1", "-test.v")
	out, err := cmd.CombinedOutput()
	switch {
	case err != nil:
		t.Fatalf("in a child process without go test's file access log: %v\n%s", err, out)
	case !strings.Contains(string(out), "--- PASS: "+t.Name()):
		t.Skipf("in a child process without go test's file access log, it did not pass:\n%s", out)
	}
	t.Skip("passed in a child process without go test's file access log, which the file size limit would break")
}
