package tail

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// polled is a Follower reading on its own goroutine, as a container's
// reader does, collecting what it reads.
type polled struct {
	f    *Follower
	mu   sync.Mutex
	got  bytes.Buffer
	err  error
	done chan struct{}
}

func followPolled(t *testing.T, ctx context.Context, path string, p *Poller) *polled {
	t.Helper()
	f, err := Open(path, Position{}, withRotated(Options{PollMin: time.Millisecond, PollMax: 5 * time.Millisecond, RotateWait: 50 * time.Millisecond, Poller: p}))
	if err != nil {
		t.Fatal(err)
	}
	r := &polled{f: f, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		defer f.Close()
		buf := make([]byte, 4096)
		for {
			n, err := f.Read(ctx, buf)
			if errors.Is(err, ErrFileEnd) {
				continue
			}
			r.mu.Lock()
			r.got.Write(buf[:n])
			r.err = err
			r.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return r
}

func (r *polled) text() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got.String()
}

// runPoller runs p for the test and returns once it runs. stop ends Run
// and waits for it; it is called at the test's end too.
func runPoller(t *testing.T, p *Poller) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()
	stop = sync.OnceFunc(func() { cancel(); <-done })
	t.Cleanup(stop)
	waitFor(t, "the Poller to run", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.running
	})
	return stop
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestPollerWakesOnlyWhatChanged: quiet Followers sleep on the Poller;
// writing to one file, or renaming it away and writing a new one, wakes
// that Follower, which reads on; Stop, the end of the context and the end
// of the Poller's Run each end or release a waiting Read. Both with the
// files watched by inotify and with the files polled, as where the kernel
// gives no watch.
func TestPollerWakesOnlyWhatChanged(t *testing.T) {
	for _, noWatch := range []bool{false, true} {
		t.Run(map[bool]string{false: "watched", true: "polled"}[noWatch], func(t *testing.T) {
			testPollerWakesOnlyWhatChanged(t, noWatch)
		})
	}
}

func testPollerWakesOnlyWhatChanged(t *testing.T, noWatch bool) {
	dir := t.TempDir()
	p := NewPoller(time.Millisecond)
	stopPoller := runPoller(t, p)
	if noWatch {
		p.mu.Lock()
		p.dropNotifyLocked() // as if the kernel had no watch to give
		p.mu.Unlock()
	}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	const n = 20
	var rs []*polled
	var paths []string
	for i := range n {
		path := filepath.Join(dir, fmt.Sprintf("c%d-json.log", i))
		appendFile(t, path, fmt.Sprintf("first %d\n", i))
		paths = append(paths, path)
		rs = append(rs, followPolled(t, ctx, path, p))
	}
	for i, r := range rs {
		waitFor(t, "the first lines", func() bool { return r.text() == fmt.Sprintf("first %d\n", i) })
	}
	waitFor(t, "every Follower to wait on the Poller", func() bool { return p.Waiting() == n })

	appendFile(t, paths[3], "more 3\n")
	waitFor(t, "the new line", func() bool { return rs[3].text() == "first 3\nmore 3\n" })
	for i, r := range rs {
		if i != 3 && r.text() != fmt.Sprintf("first %d\n", i) {
			t.Errorf("follower %d read %q", i, r.text())
		}
	}

	// Rotated: renamed away, a new file at the path.
	if err := os.Rename(paths[5], paths[5]+".1"); err != nil {
		t.Fatal(err)
	}
	appendFile(t, paths[5], "after the rotation\n")
	waitFor(t, "the rotated log's new file", func() bool { return rs[5].text() == "first 5\nafter the rotation\n" })

	rs[7].f.Stop()
	<-rs[7].done
	if !errors.Is(rs[7].err, io.EOF) {
		t.Errorf("stopped while waiting: %v, want io.EOF", rs[7].err)
	}

	// Without the Poller, the Followers look by themselves.
	waitFor(t, "the others to wait again", func() bool { return p.Waiting() == n-1 })
	stopPoller()
	if p.Waiting() != 0 {
		t.Errorf("%d still waiting on a Poller that stopped", p.Waiting())
	}
	appendFile(t, paths[9], "without the poller\n")
	waitFor(t, "a line read without the Poller", func() bool { return rs[9].text() == "first 9\nwithout the poller\n" })

	cancel()
	for _, r := range rs {
		<-r.done
	}
}

// TestPollerWakesOncePerWrite: a line written to a quiet file wakes its
// Follower once. After reading it the Follower hands the Poller the size it
// read up to, not an older one, which the Poller's next look would take for
// a change and wake it again for nothing.
func TestPollerWakesOncePerWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	appendFile(t, path, "first\n")
	p := NewPoller(time.Millisecond)
	runPoller(t, p)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	r := followPolled(t, ctx, path, p)
	defer func() { cancel(); <-r.done }()

	wakes := func() uint64 {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.wakes
	}
	for i := range 5 {
		waitFor(t, "the Follower to wait on the Poller", func() bool { return p.Waiting() == 1 })
		time.Sleep(50 * time.Millisecond) // settled: its looks find nothing
		before := wakes()
		line := fmt.Sprintf("line %d\n", i)
		appendFile(t, path, line)
		waitFor(t, "the line", func() bool { return bytes.HasSuffix([]byte(r.text()), []byte(line)) })
		waitFor(t, "the Follower to wait again", func() bool { return p.Waiting() == 1 })
		time.Sleep(50 * time.Millisecond) // many looks, at 1 to 5 ms
		if got := wakes() - before; got != 1 {
			t.Fatalf("write %d woke the Follower %d times, want 1", i, got)
		}
	}
}

// TestPollerLooksAtThePathWithoutFollowingLinks: a polled file renamed
// away and replaced at its path by a link to it is no longer the log's
// live file for a Follower that does not follow links: the Poller's look
// at the path sees the link, not the file behind it, and wakes the
// Follower, though nothing was written.
func TestPollerLooksAtThePathWithoutFollowingLinks(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.log")
	appendFile(t, path, "first\n")
	p := NewPoller(time.Millisecond)
	runPoller(t, p)
	p.mu.Lock()
	p.dropNotifyLocked() // polled: the look at the path is what finds it
	p.mu.Unlock()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	r := followPolled(t, ctx, path, p)
	defer func() { cancel(); <-r.done }()
	waitFor(t, "the first line", func() bool { return r.text() == "first\n" })
	waitFor(t, "the Follower to wait on the Poller", func() bool { return p.Waiting() == 1 })

	p.mu.Lock()
	before := p.wakes
	p.mu.Unlock()
	if err := os.Rename(path, filepath.Join(dir, "real.log")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real.log", path); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the Poller to wake the Follower for the link at its path", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.wakes > before
	})
}
