//go:build unix

package positions

import (
	"errors"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestFlushDiskFullKeepsTheLastFileAndRecovers: with no room for the new
// file (RLIMIT_FSIZE, which stops root too), Flush fails with the disk's
// error naming the file once, the previous positions file stays whole, and
// the next Flush after space returns writes the positions kept in memory.
func TestFlushDiskFullKeepsTheLastFileAndRecovers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "positions")
	s, _, _ := Open(path, nil)
	s.Set("docker/a", "1")
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	s.Set("docker/a", "2")
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Skip(err)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: 10, Max: old.Max}); err != nil {
		t.Skip(err)
	}
	err := s.Flush()
	if rerr := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); rerr != nil {
		t.Fatal(rerr)
	}
	if !errors.Is(err, syscall.EFBIG) || !errors.Is(s.Err(), syscall.EFBIG) {
		t.Fatalf("Flush on a full disk: %v (Err %v), want EFBIG", err, s.Err())
	}
	if n := strings.Count(err.Error(), path); n != 1 {
		t.Errorf("error %q names the file %d times", err, n)
	}
	reopened, problem, oerr := Open(path, nil)
	if oerr != nil || problem != nil {
		t.Fatalf("the previous file is damaged: %v %v", oerr, problem)
	}
	if p, _ := reopened.Get("docker/a"); p != "1" {
		t.Fatalf("position on disk %q, want the last written, 1", p)
	}
	if m, _ := filepath.Glob(path + ".tmp-*"); len(m) != 0 {
		t.Errorf("temporary files left: %v", m)
	}
	if err := s.Flush(); err != nil || s.Err() != nil {
		t.Fatalf("Flush after space returned: %v", err)
	}
	reopened, _, _ = Open(path, nil)
	if p, _ := reopened.Get("docker/a"); p != "2" {
		t.Fatalf("position on disk %q, want 2", p)
	}
}
