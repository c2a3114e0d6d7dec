//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package locktest

import (
	"fmt"
	"os"
	"syscall"
)

// File takes an exclusive advisory lock on path, creating it if needed, and
// blocks until it is granted. The lock is tied to the open file, so the
// kernel releases it if the test process dies while holding it.
func File(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("locktest: lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locktest: lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}
