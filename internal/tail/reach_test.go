//go:build unix

package tail

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// mkfifo makes a FIFO at path. A test that opens it in a way that blocks is
// released by its cleanup, which opens it for writing (waking the blocked
// reader) and closes it at once.
func mkfifo(t *testing.T, path string) {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if fh, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			fh.Close()
		}
	})
}

// within runs fn and fails the test when it has not returned by the time ctx
// (the test's, with a deadline) ends: the bound detects a hang, it asserts no
// speed.
func within(t *testing.T, what string, fn func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() { fn(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatalf("%s still blocked when the test's deadline passed", what)
	}
}

// TestFIFODoesNotBlock: a FIFO where a log is expected is refused at once.
// open(2) of a FIFO for reading waits for a writer, forever if none comes,
// so every open of a log is non-blocking and checks the file type on the
// descriptor.
func TestFIFODoesNotBlock(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "app.log")
	mkfifo(t, fifo)
	within(t, "EndOf of a FIFO", func() {
		if _, err := EndOf(fifo, Options{}); err == nil {
			t.Error("EndOf of a FIFO: no error")
		}
	})
	within(t, "Open of a FIFO", func() {
		if f, err := Open(fifo, Position{}, fast); err == nil {
			f.Close()
			t.Error("Open of a FIFO: no error")
		}
	})
	// A rotated name that is a FIFO is passed over.
	live := filepath.Join(dir, "b.log")
	appendFile(t, live, line(0)+"\n")
	mkfifo(t, live+".1")
	var got []string
	var err error
	within(t, "a FIFO among the rotated files", func() { got, err = readRest(live, Position{Dev: 1, Inode: 1}, withRotated(fast)) })
	if err != nil {
		t.Fatal(err)
	}
	same(t, got, want(0, 1))
}

// readRest reads the log at path from start to its end, as a stopped
// Follower does, on any goroutine.
func readRest(path string, start Position, opts Options) ([]string, error) {
	f, err := Open(path, start, opts)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	lr, err := NewLineReader(f, LineOptions{})
	if err != nil {
		return nil, err
	}
	f.Stop()
	var got []string
	for {
		l, err := lr.Next(context.Background())
		if errors.Is(err, io.EOF) {
			return got, nil
		}
		if err != nil {
			return got, err
		}
		got = append(got, string(l.Bytes))
	}
}

// TestSymlinkIsNotFollowed: a link where a log is expected is not read,
// whether it is the live name or a rotated one: whoever can write the log's
// directory could otherwise have wharf ship any file it can read.
func TestSymlinkIsNotFollowed(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	appendFile(t, secret, "root:secret\n")
	link := filepath.Join(dir, "late.log")
	if err := os.Symlink(secret, link); err != nil {
		t.Fatal(err)
	}
	if _, err := EndOf(link, Options{}); err == nil {
		t.Error("EndOf of a symbolic link: no error")
	}
	if f, err := Open(link, Position{}, fast); err == nil {
		f.Close()
		t.Error("Open of a symbolic link: no error")
	}

	// app.log.1 -> secret: the position names a file gone, so reading
	// starts at the oldest rotated file, which must not be the link.
	live := filepath.Join(dir, "app.log")
	appendFile(t, live, line(0)+"\n")
	if err := os.Symlink(secret, live+".1"); err != nil {
		t.Fatal(err)
	}
	r := open(t, live, Position{Dev: 1, Inode: 1}, withRotated(fast))
	same(t, r.rest(), want(0, 1))

	// The live file replaced by a link while it is read: the reader
	// finishes the file it has and does not go on into the link.
	live2 := filepath.Join(dir, "c.log")
	appendFile(t, live2, line(0)+"\n")
	r = open(t, live2, Position{}, withRotated(fast))
	got, _ := r.lines(1)
	tmp := filepath.Join(dir, "c.tmp")
	if err := os.Symlink(secret, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, live2); err != nil {
		t.Fatal(err)
	}
	got = append(got, readFor(t, r, 300*time.Millisecond)...)
	same(t, got, want(0, 1))
}

// TestFollowSymlinks: with FollowSymlinks a link to a log is read, and a
// link to anything but a regular file is still refused, without blocking.
func TestFollowSymlinks(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	appendFile(t, target, line(0)+"\n"+line(1)+"\n")
	fifo := filepath.Join(dir, "fifo")
	mkfifo(t, fifo)
	opts := fast
	opts.FollowSymlinks = true
	for _, c := range []struct{ name, to string }{{"ok.log", target}, {"null.log", "/dev/null"}, {"fifo.log", fifo}} {
		if err := os.Symlink(c.to, filepath.Join(dir, c.name)); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	var err error
	within(t, "reading through a link", func() { got, err = readRest(filepath.Join(dir, "ok.log"), Position{}, opts) })
	if err != nil {
		t.Fatal(err)
	}
	same(t, got, want(0, 2))
	for _, name := range []string{"null.log", "fifo.log"} {
		path := filepath.Join(dir, name)
		within(t, "EndOf of "+name, func() { _, err = EndOf(path, opts) })
		if !errors.Is(err, ErrNotRegular) {
			t.Errorf("EndOf of %s: %v, want ErrNotRegular", name, err)
		}
		within(t, "Open of "+name, func() { _, err = readRest(path, Position{}, opts) })
		if !errors.Is(err, ErrNotRegular) {
			t.Errorf("Open of %s: %v, want ErrNotRegular", name, err)
		}
	}
}

// TestTrustedDirectories: links in Trusted and above it are followed (the
// operator wrote that path); a directory below it that is a link is not,
// also when it becomes one while the log is read.
func TestTrustedDirectories(t *testing.T) {
	root := t.TempDir()
	real := filepath.Join(root, "real")
	other := filepath.Join(root, "other")
	for _, d := range []string{filepath.Join(real, "d"), other} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	appendFile(t, filepath.Join(other, "app.log"), "root:secret\n")
	trusted := filepath.Join(root, "logs")
	if err := os.Symlink(real, trusted); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(other, filepath.Join(real, "evil")); err != nil {
		t.Fatal(err)
	}
	opts := fast
	opts.Trusted = trusted

	good := filepath.Join(trusted, "d", "app.log")
	appendFile(t, good, line(0)+"\n")
	got, err := readRest(good, Position{}, opts)
	if err != nil {
		t.Fatal(err)
	}
	same(t, got, want(0, 1))

	evil := filepath.Join(trusted, "evil", "app.log")
	if _, err := EndOf(evil, opts); !errors.Is(err, ErrSymlink) {
		t.Errorf("EndOf through a linked directory: %v, want ErrSymlink", err)
	}
	if got, err := readRest(evil, Position{}, opts); len(got) > 0 {
		t.Errorf("read %q through a linked directory (%v)", got, err)
	}
	// Without Trusted every directory is trusted; the file's own name
	// still is not.
	if got, err := readRest(evil, Position{}, fast); err != nil || len(got) != 1 {
		t.Errorf("no Trusted: %q, %v; want the file read", got, err)
	}

	// d is replaced by a link to other while app.log is followed.
	r := open(t, good, Position{}, withRotated(opts))
	got, _ = r.lines(1)
	if err := os.Rename(filepath.Join(real, "d"), filepath.Join(root, "d-old")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(other, filepath.Join(real, "d")); err != nil {
		t.Fatal(err)
	}
	got = append(got, readFor(t, r, 300*time.Millisecond)...)
	same(t, got, want(0, 1))
}

// readFor returns the lines r reads within d.
func readFor(t *testing.T, r *reader, d time.Duration) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	var got []string
	for {
		l, err := r.lr.Next(ctx)
		if err != nil {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatal(err)
			}
			return got
		}
		got = append(got, string(l.Bytes))
	}
}
