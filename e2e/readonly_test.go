package e2e

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wharf-logs/wharf/internal/files"
	"github.com/wharf-logs/wharf/internal/positions"
	"github.com/wharf-logs/wharf/internal/seq"
	logtail "github.com/wharf-logs/wharf/internal/tail"
	"github.com/wharf-logs/wharf/internal/vlogstest"
)

// ext4Image is an ext4 file system in an image file, loop-mounted with
// errors=remount-ro as data disks often are, so that a test can make the
// kernel turn it read-only the way a disk error does.
type ext4Image struct {
	img, dir string
}

// mountExt4 creates and mounts an ext4 image of size bytes on a new
// directory, and unmounts it (detaching the loop device) when the test ends.
// It skips the test where loop mounting is impossible: not root, no loop
// devices, no e2fsprogs, or a kernel without ext4's trigger_fs_error.
func mountExt4(t *testing.T, size int64) *ext4Image {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("loop-mounting an ext4 image needs root")
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		t.Skipf("no loop devices here (%v); the read-only test loop-mounts an ext4 image", err)
	}
	for _, tool := range []string{"mkfs.ext4", "e2fsck", "findmnt", "mount", "umount"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is missing (%v); the read-only test loop-mounts an ext4 image", tool, err)
		}
	}
	tmp := t.TempDir()
	e := &ext4Image{img: filepath.Join(tmp, "data.img"), dir: filepath.Join(tmp, "data")}
	if err := os.Mkdir(e.dir, 0o750); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(e.img)
	if err != nil {
		t.Fatal(err)
	}
	err = errors.Join(f.Truncate(size), f.Close())
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", e.img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v: %s", err, out)
	}
	if out, err := exec.Command("mount", "-o", "loop,errors=remount-ro", e.img, e.dir).CombinedOutput(); err != nil {
		t.Skipf("cannot loop-mount an ext4 image here (%v: %s); the read-only test needs root with CAP_SYS_ADMIN", err, strings.TrimSpace(string(out)))
	}
	// Registered after t.TempDir, so it runs before the directory is removed.
	t.Cleanup(func() { e.unmount(t) })
	if _, err := os.Stat(e.trigger(t)); err != nil {
		t.Skipf("this kernel cannot inject an ext4 error (%v)", err)
	}
	return e
}

// trigger is the sysfs file that makes ext4 act on an error of the mounted
// file system.
func (e *ext4Image) trigger(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("findmnt", "-no", "SOURCE", "--mountpoint", e.dir).Output()
	if err != nil {
		t.Fatalf("findmnt %s: %v", e.dir, err)
	}
	return filepath.Join("/sys/fs/ext4", filepath.Base(strings.TrimSpace(string(out))), "trigger_fs_error")
}

// fail reports an error on the file system, as ext4 does when it finds
// damage: with errors=remount-ro the kernel makes it read-only at once, and
// every write fails with EROFS, to files already open too.
func (e *ext4Image) fail(t *testing.T) {
	t.Helper()
	if err := os.WriteFile(e.trigger(t), []byte("wharf e2e: injected error\n"), 0o200); err != nil {
		t.Fatal(err)
	}
}

// options returns the mount options of the file system.
func (e *ext4Image) options(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("findmnt", "-no", "OPTIONS", "--mountpoint", e.dir).Output()
	if err != nil {
		t.Fatalf("findmnt %s: %v", e.dir, err)
	}
	return strings.Split(strings.TrimSpace(string(out)), ",")
}

// repair does what an operator does: unmount (a remount read-write is
// refused after an error), e2fsck, mount again.
func (e *ext4Image) repair(t *testing.T) {
	t.Helper()
	if out, err := exec.Command("umount", e.dir).CombinedOutput(); err != nil {
		t.Fatalf("umount %s: %v: %s", e.dir, err, out)
	}
	// Exit status 1: errors were corrected.
	out, err := exec.Command("e2fsck", "-fy", e.img).CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 1) {
		t.Fatalf("e2fsck: %v: %s", err, out)
	}
	if out, err := exec.Command("mount", "-o", "loop,errors=remount-ro", e.img, e.dir).CombinedOutput(); err != nil {
		t.Fatalf("mount after e2fsck: %v: %s", err, out)
	}
}

// unmount unmounts the file system if it is mounted, lazily if it is busy;
// the loop device mount -o loop set up is detached with it.
func (e *ext4Image) unmount(t *testing.T) {
	if exec.Command("findmnt", "--mountpoint", e.dir).Run() != nil {
		return
	}
	if out, err := exec.Command("umount", e.dir).CombinedOutput(); err != nil {
		t.Logf("umount %s: %v: %s; detaching it", e.dir, err, out)
		if out, err := exec.Command("umount", "-l", e.dir).CombinedOutput(); err != nil {
			t.Errorf("umount -l %s: %v: %s", e.dir, err, out)
		}
	}
}

// lineWriter appends seq-numbered lines to a file at a steady rate from a
// goroutine it owns, and remembers where each line ends, so that a saved
// file offset can be turned into the lines it covers.
type lineWriter struct {
	stop chan struct{}
	done chan struct{}
	once sync.Once

	mu   sync.Mutex
	ends []int64 // ends[n-1]: the file offset after line n
	err  error
}

// startLineWriter writes perSecond lines a second to path until stopped; the
// test's cleanup stops it.
func startLineWriter(t *testing.T, path string, perSecond int) *lineWriter {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	w := &lineWriter{stop: make(chan struct{}), done: make(chan struct{})}
	const tick = 50 * time.Millisecond
	perTick := max(perSecond*int(tick)/int(time.Second), 1)
	go func() {
		defer close(w.done)
		defer f.Close()
		format := seq.Format{Size: 100}
		t := time.NewTicker(tick)
		defer t.Stop()
		var buf []byte
		var off int64
		for {
			select {
			case <-w.stop:
				return
			case <-t.C:
			}
			buf = buf[:0]
			var ends []int64
			n := int64(len(w.ends))
			for i := range int64(perTick) {
				buf = format.Append(buf, n+i+1, time.Now().UnixNano())
				buf = append(buf, '\n')
				ends = append(ends, off+int64(len(buf)))
			}
			_, err := f.Write(buf)
			w.mu.Lock()
			if err != nil {
				w.err = err
				w.mu.Unlock()
				return
			}
			w.ends = append(w.ends, ends...)
			w.mu.Unlock()
			off += int64(len(buf))
		}
	}()
	t.Cleanup(func() { w.Stop(t) })
	return w
}

// Stop stops the writer and returns the number of lines written.
func (w *lineWriter) Stop(t *testing.T) int64 {
	t.Helper()
	w.once.Do(func() { close(w.stop) })
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		t.Fatalf("writing the log: %v", w.err)
	}
	return int64(len(w.ends))
}

// Written returns the number of lines written so far.
func (w *lineWriter) Written() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return int64(len(w.ends))
}

// LinesIn returns the number of whole lines in the first off bytes.
func (w *lineWriter) LinesIn(off int64) int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, _ := slices.BinarySearch(w.ends, off+1)
	return int64(n)
}

// savedOffset returns the offset in logPath that the positions file in
// dataDir holds, and false when it holds none.
func savedOffset(t *testing.T, dataDir, logPath string) (int64, bool) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "positions"))
	if errors.Is(err, os.ErrNotExist) {
		return 0, false
	}
	if err != nil {
		t.Fatal(err)
	}
	pos, err := positions.Decode(b)
	if err != nil {
		t.Fatalf("positions file: %v", err)
	}
	s, ok := pos[files.PositionPrefix+logPath]
	if !ok {
		return 0, false
	}
	p, err := logtail.ParsePosition(s)
	if err != nil {
		t.Fatal(err)
	}
	return p.Offset, true
}

// TestDataDirReadOnlyEndToEnd makes the file system of wharf's data
// directory read-only under it, as the kernel does when ext4 (mounted
// errors=remount-ro) meets an error: every write fails with EROFS, also to
// files already open, and only an unmount, fsck and mount bring it back.
// wharf ships a plain file written at 200 lines/s to VictoriaLogs meanwhile.
//
// While the directory is read-only and the receiver is up, wharf keeps
// delivering with its positions in memory, says so on /readyz, in
// wharf_positions_write_errors_total and once in its log, and stops promptly
// on SIGTERM. After the repair it resumes from the last positions file
// written before the error: every line arrives, in order, and only lines
// after that position arrive twice.
func TestDataDirReadOnlyEndToEnd(t *testing.T) {
	disk := mountExt4(t, 64<<20)
	data := disk.dir
	vl := vlogstest.Start(t)
	binary(t)
	logPath := filepath.Join(t.TempDir(), "app.log")
	cfg := filesConfig(data, freePort(t), logPath, "e2e-readonly") +
		fmt.Sprintf("loki:\n  url: %s\n  batch_wait: 200ms\n  min_backoff: 100ms\n  max_backoff: 1s\n", vl.PushURL())
	w := startWharf(t, data, cfg)
	const rate = 200
	lines := startLineWriter(t, logPath, rate)
	selector := fmt.Sprintf(`{filename=%q}`, logPath)

	// 1: lines arrive and their positions are written.
	waitFor(t, 30*time.Second, "lines delivered and their positions written", func() bool {
		off, ok := savedOffset(t, data, logPath)
		return ok && off > 0 && vl.Count(t, "_stream:"+selector) > 0
	})

	// 2: the file system fails and turns read-only.
	probe, err := os.Create(filepath.Join(data, "probe"))
	if err != nil {
		t.Fatal(err)
	}
	disk.fail(t)
	failed := time.Now()
	atError := lines.Written()
	_, err = probe.WriteString("x")
	probe.Close() // an open file would keep the file system from being unmounted
	if !errors.Is(err, syscall.EROFS) {
		t.Fatalf("write to a file open before the error: %v, want EROFS", err)
	}
	t.Logf("file system failed after line %d; mount options now %v", atError, disk.options(t))
	var body string
	waitFor(t, 30*time.Second, "/readyz to report the positions", func() bool {
		code, b := w.readyz()
		body = b
		return code == http.StatusServiceUnavailable && strings.Contains(b, "positions:") && strings.Contains(b, "read-only file system")
	})
	t.Logf("/readyz: %s", body)
	sent := w.metrics()[`wharf_entries_sent_total{sink="loki"}`]
	time.Sleep(5 * time.Second)
	m := w.metrics()
	if now := m[`wharf_entries_sent_total{sink="loki"}`]; now < sent+rate*3 {
		t.Errorf("delivery slowed or stopped while the data directory was read-only: %v sent in 5 s at %d lines/s", now-sent, rate)
	}
	if n := m["wharf_positions_write_errors_total"]; n == 0 {
		t.Error("wharf_positions_write_errors_total is 0 while the positions file cannot be written")
	}
	if w.cmd.ProcessState != nil {
		t.Fatal("wharf exited when its data directory turned read-only")
	}
	log := tail(w.logPath, 100000)
	roFor := time.Since(failed)
	said, mentions := strings.Count(log, "cannot write positions"), strings.Count(log, "read-only file system")
	if said == 0 {
		t.Error(`the log does not say "cannot write positions"`)
	}
	// Once per failing streak, or at most once per 10 s for rate-limited
	// warnings: a line per entry or per second is a flood.
	if limit := 2 + int(roFor/(10*time.Second)); mentions > limit {
		t.Errorf("the log mentions the read-only file system %d times in %v (limit %d):\n%s", mentions, roFor.Round(time.Second), limit, tail(w.logPath, 30))
	}
	t.Logf("read-only for %v: %v lines sent meanwhile, %v failed positions writes, %d log lines about it",
		roFor.Round(100*time.Millisecond), m[`wharf_entries_sent_total{sink="loki"}`]-sent, m["wharf_positions_write_errors_total"], mentions)

	// 3: SIGTERM with the positions unwritable: a prompt exit that says
	// what it could not save.
	took, err := w.stopTimed()
	t.Logf("stopped %v after SIGTERM: %v", took.Round(time.Millisecond), err)
	if took > 15*time.Second {
		t.Errorf("wharf took %v to stop after SIGTERM, want under 15 s", took)
	}
	if log := tail(w.logPath, 20); !strings.Contains(log, "the last positions could not be saved") {
		t.Errorf("the log does not say the last positions were not saved:\n%s", log)
	}

	// 4: repair, start again, and check what arrived.
	disk.repair(t)
	off, ok := savedOffset(t, data, logPath)
	if !ok {
		t.Fatal("no position saved before the error survived the repair")
	}
	saved := lines.LinesIn(off)
	t.Logf("after the repair the positions file covers lines 1-%d (offset %d); %d lines were written by the error", saved, off, atError)
	if saved > atError {
		t.Errorf("the saved position (line %d) is past the last line written before the error (%d)", saved, atError)
	}
	w = startWharf(t, data, cfg)
	time.Sleep(5 * time.Second)
	total := lines.Stop(t)
	var r seq.Report
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(time.Second) {
		var got []string
		for _, row := range vl.StreamRows(t, selector) {
			got = append(got, row["_msg"])
		}
		r = seq.CheckLines(filepath.Base(logPath), got, total)
		if r.MissingCount() == 0 || time.Now().After(deadline) {
			break
		}
	}
	m = w.metrics()
	w.stop()
	if r.MissingCount() > 0 || len(r.OutOfOrder) > 0 || r.Unparsed > 0 || r.Unexpected > 0 {
		t.Fatalf("%s", r)
	}
	var early []int64
	for _, n := range r.Duplicated {
		if n <= saved {
			early = append(early, n)
		}
	}
	if len(early) > 0 {
		t.Errorf("%d lines covered by the position saved before the error arrived twice, e.g. %v", len(early), early[:min(len(early), 10)])
	}
	if n := sumMetric(m, "wharf_entries_dropped_total"); n > 0 {
		t.Errorf("wharf_entries_dropped_total = %v", n)
	}
	t.Logf("%d lines written, %d rows in the store, %d lines duplicated; the positions saved before the error covered lines 1-%d; wharf stopped %v after SIGTERM on the read-only disk",
		total, r.Lines, len(r.Duplicated), saved, took.Round(time.Millisecond))
}
