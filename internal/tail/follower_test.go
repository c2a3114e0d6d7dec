package tail

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestFollowWhileAppending(t *testing.T) {
	l := newLog(t)
	l.write(10)
	r := open(t, l.path, Position{}, fast)
	var wg sync.WaitGroup
	wg.Go(func() {
		w := &logFile{t: t, path: l.path, next: 10}
		for range 200 {
			w.write(2)
			time.Sleep(100 * time.Microsecond)
		}
	})
	got, _ := r.lines(10 + 200*2)
	wg.Wait()
	same(t, got, want(0, 410))
}

func TestRenameRotation(t *testing.T) {
	for _, tc := range []struct {
		name      string
		rotations int
		opts      Options
	}{
		{"once, not following back", 1, fast},
		{"once", 1, withRotated(fast)},
		{"twice before reading on", 2, withRotated(fast)},
		{"five times, the oldest kept", 5, withRotated(fast)},
		{"twice, compressed", -2, withRotated(fast)},
		{"five times, compressed", -5, withRotated(fast)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Much more than the LineReader's buffer, so the rotations
			// happen while the first file is still being read.
			l := newLog(t)
			l.write(20000)
			r := open(t, l.path, Position{}, tc.opts)
			got, _ := r.lines(40)
			for range abs(tc.rotations) {
				l.rotate(10, tc.rotations < 0)
				l.write(50)
			}
			more, _ := r.lines(l.next - 40)
			same(t, append(got, more...), want(0, l.next))
			same(t, r.rest(), nil)
		})
	}
}

func TestRotationWhileAtTheEnd(t *testing.T) {
	// The reader is waiting at the end when the file is renamed; the new
	// file gets data only later: the old file is left when that comes.
	l := newLog(t)
	l.write(5)
	r := open(t, l.path, Position{}, withRotated(fast))
	got, _ := r.lines(5)
	l.rotate(5, false)
	time.Sleep(20 * time.Millisecond)
	l.write(5)
	more, _ := r.lines(5)
	same(t, append(got, more...), want(0, 10))
}

func TestLateWriterToRotatedFile(t *testing.T) {
	// logrotate's create mode: the file is renamed, a new empty file made,
	// and the application writes to the old one until it reopens its log.
	l := newLog(t)
	l.write(5)
	opts := withRotated(fast)
	opts.RotateWait = 2 * time.Second
	r := open(t, l.path, Position{}, opts)
	got, _ := r.lines(5)
	if err := os.Rename(l.path, l.path+".1"); err != nil {
		t.Fatal(err)
	}
	appendFile(t, l.path, "")
	time.Sleep(20 * time.Millisecond)
	old := &logFile{t: t, path: l.path + ".1", next: 5}
	old.write(3) // still to the renamed file
	l.next = 8
	l.write(2) // reopened
	more, _ := r.lines(5)
	same(t, append(got, more...), want(0, 10))
}

func TestResume(t *testing.T) {
	for _, tc := range []struct {
		name string
		// after runs after the position was taken in the first file at
		// line 30, with lines [0,50) in it.
		after func(l *logFile)
	}{
		{"in the live file", func(l *logFile) { l.write(20) }},
		{"in .1", func(l *logFile) {
			l.rotate(5, false)
			l.write(20)
		}},
		{"in .2", func(l *logFile) {
			l.rotate(5, false)
			l.write(20)
			l.rotate(5, false)
			l.write(20)
		}},
		{"in .1.gz, compressed since", func(l *logFile) {
			l.rotate(5, true)
			l.write(20)
		}},
		{"in .2.gz", func(l *logFile) {
			l.rotate(5, true)
			l.write(20)
			l.rotate(5, true)
			l.write(20)
		}},
		{"in .1 while .1.gz is being written", func(l *logFile) {
			l.rotate(5, false)
			l.write(20)
			appendFile(l.t, l.path+".1.gz", "\x1f\x8b") // a compressor just began
		}},
	} {
		for _, at := range []int{30, 50} { // inside the file, at its end
			t.Run(fmt.Sprintf("%s at line %d", tc.name, at), func(t *testing.T) {
				l := newLog(t)
				l.write(50)
				var g gaps
				r := open(t, l.path, Position{}, g.opts(withRotated(fast)))
				got, pos := r.lines(at)
				r.close()
				tc.after(l)
				r = open(t, l.path, pos, g.opts(withRotated(fast)))
				more := r.rest()
				same(t, append(got, more...), want(0, l.next))
				if len(g.list()) != 0 {
					t.Errorf("gaps: %v", g.list())
				}
			})
		}
	}
}

func TestResumeInsideCompressedFile(t *testing.T) {
	// A position taken while reading a .gz names the .gz by its inode; it
	// is found again after the .gz was renamed.
	l := newLog(t)
	l.write(50)
	l.rotate(5, true)
	l.write(50)
	l.rotate(5, true) // [0,50) in .2.gz, [50,100) in .1.gz
	l.write(10)
	// Start in the oldest file: a position at its beginning.
	dev, ino := ident(t, l.path+".2.gz")
	var g gaps
	r := open(t, l.path, Position{Dev: dev, Inode: ino}, g.opts(withRotated(fast)))
	got, pos := r.lines(70)
	if _, ino := ident(t, l.path+".1.gz"); pos.Inode != ino {
		t.Fatalf("position %v is not in .1.gz", pos)
	}
	r.close()
	l.rotate(5, true) // .1.gz -> .2.gz, renamed, same inode
	l.write(10)
	r = open(t, l.path, pos, g.opts(withRotated(fast)))
	more := r.rest()
	same(t, append(got, more...), want(0, l.next))
	if len(g.list()) != 0 {
		t.Errorf("gaps: %v", g.list())
	}
}

func TestResumeFileGone(t *testing.T) {
	// The position's file was rotated away and deleted while wharf was
	// down: a gap, then every file still there, oldest first.
	l := newLog(t)
	l.write(50)
	var g gaps
	r := open(t, l.path, Position{}, g.opts(withRotated(fast)))
	_, pos := r.lines(30)
	r.close()
	for range 3 {
		l.rotate(3, true) // keeps .1.gz and .2.gz
		l.write(10)
	}
	r = open(t, l.path, pos, g.opts(withRotated(fast)))
	same(t, r.rest(), want(50, 80)) // .2.gz, .1.gz, live
	if gs := g.list(); len(gs) != 1 || gs[0].Reason != GapRotated || gs[0].Bytes != -1 {
		t.Fatalf("gaps %v, want one rotated_unread", gs)
	}
}

func TestCopytruncate(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opts     Options
		copy     bool
		wantGap  int64 // -1: none
		wantRest string
	}{
		{"no rotated files: gap", fast, true, 700, "new\n"},
		{"copy not listed: gap", withRotated(fast), false, 700, "new\n"},
		{"the copy holds the rest", withRotated(fast), true, -1, strings.Repeat("b", 700) + "new\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "app.log")
			old := strings.Repeat("a", 300) + strings.Repeat("b", 700)
			appendFile(t, path, old)
			var g gaps
			f, err := Open(path, Position{}, g.opts(tc.opts))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			buf := make([]byte, 300)
			if n, err := io.ReadFull(ctxReader(t, f), buf); n != 300 || err != nil {
				t.Fatal(n, err)
			}
			if tc.copy {
				appendFile(t, path+".1", old)
			}
			if err := os.Truncate(path, 0); err != nil {
				t.Fatal(err)
			}
			appendFile(t, path, "new\n")
			data, ends := readToEOF(t, f)
			if data != tc.wantRest {
				t.Fatalf("read %q, want %q", data, tc.wantRest)
			}
			if ends != 1+btoi(tc.copy && tc.wantGap < 0) {
				t.Errorf("%d ErrFileEnd", ends)
			}
			gs := g.list()
			switch {
			case tc.wantGap < 0 && len(gs) != 0:
				t.Fatalf("gaps %v, want none", gs)
			case tc.wantGap >= 0 && (len(gs) != 1 || gs[0].Reason != GapTruncated || gs[0].Bytes != tc.wantGap):
				t.Fatalf("gaps %v, want truncated with %d bytes", gs, tc.wantGap)
			}
		})
	}
}

func TestTruncatedAndRewrittenPastOffset(t *testing.T) {
	// Between two checks the file was truncated and written beyond where
	// the reader stood: the size never dropped, the first bytes changed.
	path := filepath.Join(t.TempDir(), "app.log")
	appendFile(t, path, "first generation\n")
	var g gaps
	r := open(t, path, Position{}, g.opts(fast))
	r.lines(1)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	if _, err := r.lr.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
	cancel()
	if err := os.WriteFile(path, []byte("SECOND GENERATION, LONGER\nmore\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, _ := r.lines(2)
	same(t, got, []string{"SECOND GENERATION, LONGER", "more"})
	if gs := g.list(); len(gs) != 1 || gs[0].Reason != GapTruncated {
		t.Fatalf("gaps %v", gs)
	}
}

func TestInodeReuse(t *testing.T) {
	l := newLog(t)
	l.write(20)
	dev, ino := ident(t, l.path)
	// The position of a file deleted since, whose inode the live file got.
	stale := Position{Dev: dev, Inode: ino, Offset: 400, Fingerprint: 0x1234, FingerprintLen: FingerprintBytes}
	for _, tc := range []struct {
		name string
		opts Options
		old  int // lines in rotated files, all newer than the lost one
	}{
		{"live only", fast, 0},
		{"rotated files too", withRotated(fast), 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var w []string
			if tc.old > 0 {
				data := strings.Join(want(100, 100+tc.old), "\n") + "\n"
				appendFile(t, l.path+".1", data)
				defer os.Remove(l.path + ".1")
				w = want(100, 100+tc.old)
			}
			var g gaps
			r := open(t, l.path, stale, g.opts(tc.opts))
			same(t, r.rest(), append(w, want(0, 20)...))
			if gs := g.list(); len(gs) != 1 || gs[0].Reason != GapReplaced {
				t.Fatalf("gaps %v, want one replaced", gs)
			}
		})
	}
}

func TestShortFileGrows(t *testing.T) {
	l := newLog(t)
	l.write(2) // far below FingerprintBytes
	r := open(t, l.path, Position{}, withRotated(fast))
	got, pos := r.lines(2)
	if pos.FingerprintLen != int(pos.Offset) || pos.FingerprintLen >= FingerprintBytes {
		t.Fatalf("position %+v: the fingerprint should cover the whole short file", pos)
	}
	l.write(100)
	more, pos2 := r.lines(100)
	got = append(got, more...)
	if pos2.FingerprintLen != FingerprintBytes {
		t.Fatalf("fingerprint not grown to %d bytes: %+v", FingerprintBytes, pos2)
	}
	r.close()
	// The position taken while the file was short still finds it, also
	// after it was compressed.
	l.write(5)
	l.rotate(5, true)
	l.write(5)
	r = open(t, l.path, pos, withRotated(fast))
	same(t, append(got[:2], r.rest()...), want(0, l.next))
}

func TestFilesVanish(t *testing.T) {
	t.Run("rotated files deleted while reading", func(t *testing.T) {
		l := newLog(t)
		l.write(50)
		r := open(t, l.path, Position{}, withRotated(fast))
		got, _ := r.lines(10)
		l.rotate(10, false)
		l.write(10)
		l.rotate(10, false)
		l.write(10)
		// The reader holds the first file open; the middle one goes.
		os.Remove(l.path + ".1")
		os.Remove(l.path + ".2")
		more := r.rest()
		same(t, append(got, more...), append(want(0, 50), want(60, 70)...))
	})
	t.Run("listed but gone", func(t *testing.T) {
		l := newLog(t)
		l.write(5)
		opts := fast
		opts.Rotated = func(path string) ([]string, error) {
			return []string{path + ".9", path + ".8.gz", path + ".1"}, nil
		}
		r := open(t, l.path, Position{Dev: 1, Inode: 1}, opts)
		same(t, r.rest(), want(0, 5))
	})
	t.Run("plain removed after listing, compressed remains", func(t *testing.T) {
		l := newLog(t)
		l.write(50)
		r := open(t, l.path, Position{}, withRotated(fast))
		_, pos := r.lines(20)
		r.close()
		l.rotate(5, false)
		l.write(5)
		opts := fast
		opts.Rotated = func(path string) ([]string, error) {
			names, err := Numbered(path)
			if _, serr := os.Stat(path + ".1"); serr == nil {
				gzipKeep(t, path+".1")
				os.Remove(path + ".1") // compressed between list and stat
			}
			return append(names, path+".1.gz"), err
		}
		r = open(t, l.path, pos, opts)
		same(t, r.rest(), want(20, 55))
	})
	t.Run("live file removed", func(t *testing.T) {
		l := newLog(t)
		l.write(5)
		r := open(t, l.path, Position{}, fast)
		r.lines(5)
		os.Remove(l.path)
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		if _, err := r.lr.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatal(err)
		}
		l.write(3)
		got, _ := r.lines(3)
		same(t, got, want(5, 8))
	})
}

// gzipKeep writes name.gz next to name.
func gzipKeep(t *testing.T, name string) {
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	tmp := name + ".tmp"
	os.WriteFile(tmp, data, 0o600)
	gzipFile(t, tmp)
	os.Rename(tmp+".gz", name+".gz")
}

func TestCorruptCompressedFile(t *testing.T) {
	l := newLog(t)
	l.write(10)
	appendFile(t, l.path+".1.gz", "\x1f\x8b\x08\x00garbage")
	appendFile(t, l.path+".2.gz", "not gzip at all")
	var g gaps
	dev, ino := ident(t, l.path+".2.gz")
	r := open(t, l.path, Position{Dev: dev, Inode: ino}, g.opts(withRotated(fast)))
	same(t, r.rest(), want(0, 10))
	if gs := g.list(); len(gs) != 2 || gs[0].Reason != GapCorrupt || gs[1].Reason != GapCorrupt {
		t.Fatalf("gaps %v, want two corrupt", gs)
	}
}

func TestDockerCompressionWhileReading(t *testing.T) {
	// The file being read is renamed to .1, compressed to .1.gz and
	// removed before the reader reaches its end: the reader finishes it
	// through its descriptor and must not read .1.gz again.
	l := newLog(t)
	l.write(100)
	r := open(t, l.path, Position{}, withRotated(fast))
	got, _ := r.lines(10)
	l.rotate(5, true)
	l.write(10)
	more, _ := r.lines(100)
	same(t, append(got, more...), want(0, 110))
	same(t, r.rest(), nil)
}

func TestStop(t *testing.T) {
	l := newLog(t)
	l.write(3)
	r := open(t, l.path, Position{}, Options{PollMin: time.Hour, PollMax: time.Hour})
	r.lines(3)
	done := make(chan error)
	go func() {
		_, err := r.lr.Next(t.Context())
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	r.f.Stop()
	select {
	case err := <-done:
		if err != io.EOF {
			t.Fatalf("Next after Stop: %v, want io.EOF", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Stop did not wake a waiting Next")
	}
	r.f.Stop() // twice is fine
}

func TestStopReturnsPartialLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	appendFile(t, path, "whole\nhalf")
	r := open(t, path, Position{}, fast)
	r.f.Stop()
	l, err := r.lr.Next(t.Context())
	if err != nil || string(l.Bytes) != "whole" || l.Partial {
		t.Fatal(l, err)
	}
	l, err = r.lr.Next(t.Context())
	if err != nil || string(l.Bytes) != "half" || !l.Partial || l.End.Offset != 10 {
		t.Fatal(l, err)
	}
	if _, err := r.lr.Next(t.Context()); err != io.EOF {
		t.Fatal(err)
	}
}

func TestContextCancelWhileWaiting(t *testing.T) {
	l := newLog(t)
	l.write(1)
	r := open(t, l.path, Position{}, Options{PollMin: time.Hour, PollMax: time.Hour})
	r.lines(1)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() {
		_, err := r.lr.Next(ctx)
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	// Still usable.
	l.write(1)
	r.f.Stop()
	got, _ := r.lines(1)
	same(t, got, want(1, 2))
}

func TestReadBefore(t *testing.T) {
	l := newLog(t)
	l.write(1)
	r := open(t, l.path, Position{}, fast)
	r.lines(1)
	start := time.Now()
	if _, err := r.lr.NextBefore(t.Context(), time.Time{}); err != ErrIdle {
		t.Fatalf("NextBefore(passed): %v, want ErrIdle", err)
	}
	if _, err := r.lr.NextBefore(t.Context(), time.Now().Add(30*time.Millisecond)); err != ErrIdle {
		t.Fatalf("NextBefore(30ms): %v, want ErrIdle", err)
	}
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Fatalf("returned after %v, before the deadline", d)
	}
	l.write(1)
	if l, err := r.lr.NextBefore(t.Context(), time.Time{}); err != nil || string(l.Bytes) != line(1) {
		t.Fatal(l, err)
	}
}

func TestLiveFileAppearsLater(t *testing.T) {
	path := filepath.Join(t.TempDir(), "later.log")
	r := open(t, path, Position{}, fast)
	if p := r.f.Position(); !p.IsZero() {
		t.Fatal(p)
	}
	appendFile(t, path, "hello\n")
	got, _ := r.lines(1)
	same(t, got, []string{"hello"})
}

func TestDescriptorsStable(t *testing.T) {
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		t.Skip("no /proc/self/fd to count descriptors")
	}
	for _, compress := range []bool{false, true} {
		l := newLog(t)
		l.write(1)
		before := countFDs(t)
		r := open(t, l.path, Position{}, withRotated(fast))
		var got []string
		most := 0
		for range 100 {
			more, _ := r.lines(1)
			got = append(got, more...)
			l.rotate(5, compress)
			l.write(1)
			most = max(most, countFDs(t)-before)
		}
		more, _ := r.lines(1)
		same(t, append(got, more...), want(0, 101))
		r.close()
		if after := countFDs(t); after != before {
			t.Fatalf("compress %v: %d descriptors before, %d after 100 rotations", compress, before, after)
		}
		if most > 1 {
			t.Fatalf("compress %v: up to %d descriptors open between reads, want 1", compress, most)
		}
	}
}

func countFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents) - 1 // the directory being read
}

func TestNumbered(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "c-json.log")
	for _, n := range []string{"", ".1", ".2.gz", ".3", ".3.gz", ".10.gz", ".01", ".x", ".1.tmp", ".0", "x.1"} {
		appendFile(t, base+n, "")
	}
	os.Mkdir(base+".4", 0o700)
	got, err := Numbered(base)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, g := range got {
		names = append(names, strings.TrimPrefix(g, base))
	}
	// Seen: 1, 2, 3 and 10 (a directory named .4 is not a file); the gaps
	// up to two past that count are named too, 7 to 9 and 11 are not.
	same(t, names, []string{".10.gz", ".6", ".5", ".4", ".3.gz", ".3", ".2.gz", ".1"})
	if got, err := Numbered(filepath.Join(dir, "nodir", "x.log")); err != nil || got != nil {
		t.Fatal(got, err)
	}
}

// TestNumberedListsWhatIsThere: a stray high number (app.log.65535) must not
// make every scan look at each number below it. Numbered lists the numbers
// the directory holds and fills only the few a rotation under way can hide.
func TestNumberedListsWhatIsThere(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "app.log")
	appendFile(t, base, "")
	appendFile(t, base+".65535", "")
	got, err := Numbered(base)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) > 4 || len(got) == 0 || got[0] != base+".65535" {
		t.Fatalf("Numbered listed %d names (first %q), want app.log.65535 and at most the 3 lowest numbers", len(got), got[:min(len(got), 3)])
	}
}

func TestOpenOptions(t *testing.T) {
	dir := t.TempDir()
	for _, o := range []Options{
		{PollMin: -1},
		{PollMin: time.Second, PollMax: time.Millisecond},
		{RotateWait: -time.Second},
	} {
		if _, err := Open(filepath.Join(dir, "x"), Position{}, o); err == nil || !strings.HasPrefix(err.Error(), "tail: ") {
			t.Errorf("%+v: %v", o, err)
		}
	}
	if _, err := Open(dir, Position{}, Options{}); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("a directory: %v", err)
	}
	f, err := Open(filepath.Join(dir, "x"), Position{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := f.Read(t.Context(), make([]byte, 1)); err != ErrClosed {
		t.Fatal(err)
	}
}

// ctxReader adapts a Follower to io.Reader with t's context.
func ctxReader(t *testing.T, f *Follower) io.Reader {
	return readerFunc(func(p []byte) (int, error) { return f.Read(t.Context(), p) })
}

type readerFunc func([]byte) (int, error)

func (r readerFunc) Read(p []byte) (int, error) { return r(p) }

// readToEOF stops f and reads it to io.EOF, counting ErrFileEnd.
func readToEOF(t *testing.T, f *Follower) (string, int) {
	t.Helper()
	f.Stop()
	var b strings.Builder
	ends := 0
	buf := make([]byte, 64)
	for {
		n, err := f.Read(t.Context(), buf)
		b.Write(buf[:n])
		switch {
		case err == io.EOF:
			return b.String(), ends
		case err == ErrFileEnd:
			ends++
		case err != nil:
			t.Fatal(err)
		}
	}
}

func abs(n int) int { return max(n, -n) }

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestRotationStress(t *testing.T) {
	// A writer rotates as fast as it can while the reader follows, and
	// sometimes restarts from its last position: every line once, in order.
	for _, compress := range []bool{false, true} {
		t.Run(fmt.Sprintf("compress=%v", compress), func(t *testing.T) {
			l := newLog(t)
			l.write(1)
			const rotations, perFile = 40, 150
			total := 1 + rotations*perFile
			var got []string
			pos := Position{}
			var g gaps
			// The first reader opens before the writer starts: the zero
			// Position is the start of the live file when Open runs.
			first := open(t, l.path, Position{}, g.opts(withRotated(fast)))
			var wg sync.WaitGroup
			wg.Go(func() {
				for range rotations {
					for range perFile / 10 {
						l.write(10)
					}
					l.rotate(rotations+2, compress) // nothing is deleted
					// Rotations microseconds apart can let a file be
					// renamed, removed and its inode reused by a newer
					// file between a stat and an open (see Follower).
					time.Sleep(time.Millisecond)
				}
			})
			defer wg.Wait()
			for restarts := 0; len(got) < total; restarts++ {
				r := first
				if restarts > 0 {
					r = open(t, l.path, pos, g.opts(withRotated(fast)))
				}
				n := min(total-len(got), 500+restarts*37)
				more, end := r.lines(n)
				for i, m := range more {
					if m != line(len(got)+i) {
						t.Fatalf("restart %d from %v: line %d is %q, want %q", restarts, pos, len(got)+i, m, line(len(got)+i))
					}
				}
				got = append(got, more...)
				pos = end
				r.close()
				if gs := g.list(); len(gs) > 0 {
					t.Fatalf("gaps %v reopening at %v after line %q", gs, pos, last(got))
				}
			}
			wg.Wait()
			same(t, got, want(0, total))
		})
	}
}

func TestOnGrid(t *testing.T) {
	const iv = 100 * time.Millisecond
	for _, elapsed := range []time.Duration{0, 1, 49 * time.Millisecond, 50 * time.Millisecond, 51 * time.Millisecond, 99 * time.Millisecond, iv, 12345678901} {
		d := onGrid(iv, elapsed)
		if d < iv/2 || d >= iv+iv/2 {
			t.Errorf("onGrid(%v, %v) = %v, want in [%v, %v)", iv, elapsed, d, iv/2, iv+iv/2)
		}
		if (elapsed+d)%iv != 0 {
			t.Errorf("onGrid(%v, %v) = %v wakes at %v, off the grid", iv, elapsed, d, elapsed+d)
		}
	}
	if d := onGrid(0, time.Second); d != 0 {
		t.Errorf("onGrid(0, 1s) = %v", d)
	}
}

// TestIdleFollowerDropsTheDecompressor: once a compressed rotated file is
// read and the Follower is at the live file, it holds no decompressor (a
// 64 KiB buffer and gzip's window) until it meets the next one.
func TestIdleFollowerDropsTheDecompressor(t *testing.T) {
	l := newLog(t)
	l.write(50)
	l.rotate(5, true)
	l.write(10)
	dev, ino := ident(t, l.path+".1.gz")
	f, err := Open(l.path, Position{Dev: dev, Inode: ino}, withRotated(fast))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for done := false; !done; {
		_, err := f.Read(t.Context(), buf)
		switch {
		case errors.Is(err, ErrFileEnd):
			done = true
		case err == nil && f.gzr == nil:
			t.Fatal("no decompressor while reading a .gz")
		case err != nil:
			t.Fatal(err)
		}
	}
	for {
		_, err := f.ReadBefore(t.Context(), buf, time.Unix(0, 1))
		if errors.Is(err, ErrIdle) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if f.gzr != nil || f.br != nil {
		t.Error("an idle Follower at the live file still holds the decompressor of the rotated files")
	}
}
