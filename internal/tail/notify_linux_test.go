//go:build linux

package tail

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPollerWatchedFilesNeedNoPolling: with a poll interval of an hour, a
// Follower on a Poller still reads lines written to its quiet file, and
// follows a rotation (the file linked to .1 and a new one put in its
// place), within seconds: inotify wakes it, not a look. Closing the
// Follower ends its watch.
func TestPollerWatchedFilesNeedNoPolling(t *testing.T) {
	if n, err := newNotifier(); err != nil {
		t.Skipf("no inotify here: %v", err)
	} else {
		n.close()
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "c-json.log")
	appendFile(t, path, "")
	p := NewPoller(time.Millisecond)
	runPoller(t, p)

	f, err := Open(path, Position{}, withRotated(Options{PollMin: time.Hour, PollMax: time.Hour, RotateWait: time.Hour, Poller: p}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var got []byte
	buf := make([]byte, 64)
	readUntil := func(want string) {
		t.Helper()
		for string(got) != want {
			n, err := f.Read(ctx, buf)
			if errors.Is(err, ErrFileEnd) {
				continue
			}
			if err != nil {
				t.Fatalf("reading towards %q (have %q): %v", want, got, err)
			}
			got = append(got, buf[:n]...)
		}
	}
	go func() {
		waitFor(t, "the Follower to wait on the Poller", func() bool { return p.Waiting() == 1 })
		appendFile(t, path, "first\n")
	}()
	readUntil("first\n")
	watching := func() int {
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.watched)
	}
	go func() {
		waitFor(t, "the Follower to wait on the Poller", func() bool { return p.Waiting() == 1 })
		appendFile(t, path, "second\n")
	}()
	readUntil("first\nsecond\n")
	if watching() != 1 {
		t.Fatalf("%d files watched, want 1", watching())
	}

	go func() {
		waitFor(t, "the Follower to wait on the Poller", func() bool { return p.Waiting() == 1 })
		// Rotated as a logrotate with create does it, but atomically:
		// the path always names a file.
		if err := os.Link(path, path+".1"); err != nil {
			t.Error(err)
			return
		}
		appendFile(t, path+".new", "third, in the new file\n")
		if err := os.Rename(path+".new", path); err != nil {
			t.Error(err)
		}
	}()
	readUntil("first\nsecond\nthird, in the new file\n")
	go func() {
		waitFor(t, "the Follower to wait on the Poller", func() bool { return p.Waiting() == 1 })
		appendFile(t, path, "fourth\n")
	}()
	readUntil("first\nsecond\nthird, in the new file\nfourth\n")
	if watching() != 1 {
		t.Fatalf("%d files watched after the rotation, want 1 (the new live file)", watching())
	}
	f.Close()
	if watching() != 0 {
		t.Fatalf("%d files watched after Close, want 0", watching())
	}
}

// TestPollerTellsOfAFileItCannotWatch: a file the kernel gives no watch
// for is polled, and Unwatched is told why, once.
func TestPollerTellsOfAFileItCannotWatch(t *testing.T) {
	p := NewPoller(time.Millisecond)
	var told []error
	p.Unwatched = func(err error) { told = append(told, err) }
	runPoller(t, p)
	path := filepath.Join(t.TempDir(), "closed.log")
	appendFile(t, path, "x\n")
	for range 2 {
		fh, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		fh.Close() // a closed file: no watch can be made on it
		w := &pollWait{f: fh, path: path, wake: make(chan struct{}, 1), next: time.Now().Add(time.Hour)}
		if !p.add(w) {
			t.Fatal("the Poller is not running")
		}
		p.mu.Lock()
		_, polled := p.polled[w]
		p.mu.Unlock()
		p.remove(w)
		if !polled || w.wd != 0 {
			t.Fatalf("an unwatchable file: polled %v, watch %d", polled, w.wd)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(told) != 1 || !strings.Contains(told[0].Error(), path) {
		t.Fatalf("Unwatched told %v, want once, naming %s", told, path)
	}
}

// TestPollerFallsBackWhenInotifyFails: when reading its inotify descriptor
// fails, the Poller says so once, drops inotify and polls: a quiet file's
// next line is still read.
func TestPollerFallsBackWhenInotifyFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	appendFile(t, path, "first\n")
	p := NewPoller(time.Millisecond)
	var told []error
	p.Unwatched = func(err error) { told = append(told, err) }
	runPoller(t, p)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	r := followPolled(t, ctx, path, p)
	defer func() { cancel(); <-r.done }()
	waitFor(t, "the first line", func() bool { return r.text() == "first\n" })
	waitFor(t, "the Follower to wait on the Poller", func() bool { return p.Waiting() == 1 })

	p.mu.Lock()
	if p.notify == nil {
		p.mu.Unlock()
		t.Skip("no inotify here")
	}
	syscall.Close(p.notify.fd)
	p.notify.fd = -1 // its reads now fail (EBADF)
	p.mu.Unlock()
	waitFor(t, "the Poller to drop inotify", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.notify == nil
	})
	appendFile(t, path, "second\n")
	waitFor(t, "the line written after", func() bool { return r.text() == "first\nsecond\n" })
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(told) != 1 || len(p.watched) != 0 {
		t.Fatalf("Unwatched told %v, %d watches left; want one call, none", told, len(p.watched))
	}
}
