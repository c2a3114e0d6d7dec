//go:build unix

// Package diskfull makes a test's writes fail as on a full disk.
package diskfull

import (
	"syscall"
	"testing"
)

// Limit makes writes beyond n bytes of any file fail with EFBIG after writing
// what fits, the way a disk that fills up mid-write does, until the returned
// function (also run at the test's cleanup) is called. It works for root,
// whom a read-only directory does not stop. The Go runtime does not die of
// the SIGXFSZ that comes with it. The limit is process-wide: tests using it
// must not run in parallel. It skips the test where the limit cannot be set.
func Limit(t testing.TB, n uint64) (lift func()) {
	t.Helper()
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
