//go:build linux

package tail

import (
	"bytes"
	"context"
	"errors"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// accessEvents counts the reads of path (inotify IN_ACCESS: each read or
// pread that returned data) until stop is called. It drains the events as
// they come: inotify folds an event into an identical one still unread.
func accessEvents(t *testing.T, path string) (stop func() int) {
	t.Helper()
	fd, err := syscall.InotifyInit1(syscall.IN_CLOEXEC | syscall.IN_NONBLOCK)
	if err != nil {
		t.Skipf("inotify: %v", err)
	}
	if _, err := syscall.InotifyAddWatch(fd, path, syscall.IN_ACCESS); err != nil {
		syscall.Close(fd)
		t.Skipf("inotify: %v", err)
	}
	quit, done := make(chan struct{}), make(chan int)
	go func() {
		n := 0
		buf := make([]byte, 64<<10)
		for {
			k, _ := syscall.Read(fd, buf)
			for off := 0; off+syscall.SizeofInotifyEvent <= k; {
				ev := (*syscall.InotifyEvent)(unsafe.Pointer(&buf[off]))
				if ev.Mask&syscall.IN_ACCESS != 0 {
					n++
				}
				off += syscall.SizeofInotifyEvent + int(ev.Len)
			}
			select {
			case <-quit:
				syscall.Close(fd)
				done <- n
				return
			case <-time.After(100 * time.Microsecond):
			}
		}
	}()
	stop = sync.OnceValue(func() int {
		close(quit)
		return <-done
	})
	t.Cleanup(func() { stop() })
	return stop
}

// TestQuietFileIsNotRead: while nothing is written to the live file, the
// Follower's looks at it are an fstat: it does not read it (its first bytes
// included) at every poll. On a host with a thousand quiet containers those
// reads were most of wharf's CPU.
func TestQuietFileIsNotRead(t *testing.T) {
	l := newLog(t)
	l.write(20)
	f, err := Open(l.path, Position{}, Options{PollMin: time.Millisecond, PollMax: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	var got []byte
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for bytes.Count(got, []byte("\n")) < 20 {
		n, err := f.Read(ctx, buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:n]...)
	}
	stop := accessEvents(t, l.path)
	// A few hundred polls of a file nobody writes to.
	wait, cancelWait := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancelWait()
	if _, err := f.Read(wait, buf); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Read of a quiet file: %v", err)
	}
	// One check of the first bytes follows the last data read; then none.
	if n := stop(); n > 1 {
		t.Errorf("the quiet file was read %d times in 500 ms of polling; want at most once", n)
	}
	// It is followed all the same.
	l.write(1)
	n, err := f.Read(ctx, buf)
	if err != nil || !bytes.HasSuffix(buf[:n], []byte("\n")) {
		t.Fatalf("after the quiet spell: %q, %v", buf[:n], err)
	}
	if _, err := os.Stat(l.path); err != nil {
		t.Fatal(err)
	}
}

// TestQuietPollDoesNotAllocate: a poll of a quiet file allocates nothing,
// so a thousand quiet readers make no garbage for the collector to chase
// (each collection also scans every reader's stack).
func TestQuietPollDoesNotAllocate(t *testing.T) {
	l := newLog(t)
	l.write(5)
	f, err := Open(l.path, Position{}, Options{PollMin: time.Millisecond, PollMax: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	ctx := t.Context()
	for {
		if _, err := f.ReadBefore(ctx, buf, time.Unix(0, 1)); errors.Is(err, ErrIdle) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	allocs := testing.AllocsPerRun(200, func() {
		// One poll: wait, look at the file, find nothing.
		if _, err := f.ReadBefore(ctx, buf, time.Now().Add(1500*time.Microsecond)); !errors.Is(err, ErrIdle) {
			t.Fatalf("poll of a quiet file: %v", err)
		}
	})
	if allocs >= 1 {
		t.Errorf("%v allocations per poll of a quiet file; want none", allocs)
	}
}
