package filesink

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/wharf-logs/wharf/internal/entry"
	"github.com/wharf-logs/wharf/internal/sink"
)

// OpenFiles reports how many files are open.
func (s *Sink) OpenFiles() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.files)
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// containerStream returns the stdout stream of a container called name.
func containerStream(name string) *entry.Stream {
	return entry.NewStream(
		entry.Labels{{Name: "container", Value: name}, {Name: "stream", Value: "stdout"}},
		entry.Labels{{Name: "container_id", Value: "id-" + name}},
		name)
}

// batchOf returns a batch with n entries per stream, lines "<origin> <i>".
func batchOf(n int, streams ...*entry.Stream) *entry.Batch {
	b := &entry.Batch{}
	for i := range n {
		for _, s := range streams {
			b.Add(entry.Entry{Time: int64(1_795_734_000_000_000_000 + i), Line: fmt.Appendf(nil, "%s %d", s.Origin, i), Stream: s})
		}
	}
	return b
}

// readRecords parses every record of an NDJSON file strictly.
func readRecords(t *testing.T, path string) []record {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []record
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			t.Fatalf("%s ends with a partial record %q", path, b)
		}
		out = append(out, parseRecord(t, b[:i+1]))
		b = b[i+1:]
	}
	return out
}

func lines(rs []record) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Line)
	}
	return out
}

func newSink(t *testing.T, cfg Config) *Sink {
	t.Helper()
	s, err := New(cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestNew(t *testing.T) {
	if _, err := New(Config{}, Deps{}); err == nil || !strings.HasPrefix(err.Error(), "filesink: ") {
		t.Errorf("New without a directory: %v", err)
	}
	dir := filepath.Join(t.TempDir(), "not", "yet")
	s := newSink(t, Config{Dir: dir})
	if s.Name() != "file" {
		t.Errorf("Name() = %q", s.Name())
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("New created %s before any write", dir)
	}
	if err := s.Send(t.Context(), batchOf(1, containerStream("web"))); err != nil {
		t.Fatal(err)
	}
	if got := lines(readRecords(t, filepath.Join(dir, "web.ndjson"))); !slices.Equal(got, []string{"web 0"}) {
		t.Errorf("lines %q", got)
	}
}

func TestSendWritesOneFilePerOrigin(t *testing.T) {
	dir := t.TempDir()
	s := newSink(t, Config{Dir: dir, Fsync: true})
	web, file := containerStream("web"), entry.NewStream(entry.Labels{{Name: "job", Value: "varlog"}}, nil, "/var/log/app.log")
	for range 2 {
		if err := s.Send(t.Context(), batchOf(3, web, file)); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := files(t, dir), []string{FileName("/var/log/app.log"), "web.ndjson"}; !slices.Equal(got, want) {
		t.Fatalf("files %q, want %q", got, want)
	}
	recs := readRecords(t, filepath.Join(dir, "web.ndjson"))
	want := []string{"web 0", "web 1", "web 2", "web 0", "web 1", "web 2"}
	if got := lines(recs); !slices.Equal(got, want) {
		t.Errorf("web lines %q, want %q", got, want)
	}
	if recs[0].Labels["container"] != "web" || recs[0].Metadata["container_id"] != "id-web" || recs[0].Stream != "stdout" {
		t.Errorf("record %+v", recs[0])
	}
	if got := lines(readRecords(t, filepath.Join(dir, FileName("/var/log/app.log")))); len(got) != 6 || got[0] != "/var/log/app.log 0" {
		t.Errorf("file lines %q", got)
	}
	if s.OpenFiles() != 2 {
		t.Errorf("%d files open, want 2", s.OpenFiles())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s.OpenFiles() != 0 {
		t.Errorf("%d files open after Close", s.OpenFiles())
	}
}

func TestSendRotates(t *testing.T) {
	dir := t.TempDir()
	s := newSink(t, Config{Dir: dir, MaxFileBytes: 4 << 10, MaxFiles: 3})
	web := containerStream("web")
	const batches, per = 40, 10
	for i := range batches {
		b := &entry.Batch{}
		for j := range per {
			b.Add(entry.Entry{Time: int64(i*per + j), Line: fmt.Appendf(nil, "line %05d %s", i*per+j, strings.Repeat("x", 100)), Stream: web})
		}
		if err := s.Send(t.Context(), b); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := files(t, dir), []string{"web.ndjson", "web.ndjson.1", "web.ndjson.2"}; !slices.Equal(got, want) {
		t.Fatalf("files %q, want %q", got, want)
	}
	var ts []int64
	for _, name := range []string{"web.ndjson.2", "web.ndjson.1", "web.ndjson"} {
		p := filepath.Join(dir, name)
		if st, _ := os.Stat(p); st.Size() > 4<<10 {
			t.Errorf("%s is %d bytes", name, st.Size())
		}
		for _, r := range readRecords(t, p) {
			ts = append(ts, r.TS)
		}
	}
	if len(ts) == 0 || ts[len(ts)-1] != batches*per-1 {
		t.Fatalf("newest record missing: %v", ts)
	}
	// Every record not kept was in a file removed by rotation, and counted.
	if got := testutil.ToFloat64(s.metrics.FilesRemoved.WithLabelValues(ReasonMaxFiles)); got == 0 {
		t.Errorf("no rotated file counted as removed")
	}
	if got, want := testutil.ToFloat64(s.metrics.DiskBytes), float64(sinkBytes(t, dir)); got != want {
		t.Errorf("disk bytes = %v, want %v", got, want)
	}
	for i := 1; i < len(ts); i++ {
		if ts[i] != ts[i-1]+1 {
			t.Fatalf("records not contiguous at %d: %v", i, ts)
		}
	}
}

func TestSendClosesLeastRecentlyUsed(t *testing.T) {
	dir := t.TempDir()
	s := newSink(t, Config{Dir: dir, MaxOpen: 2, IdleClose: time.Hour})
	now := time.Date(2026, 11, 26, 23, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return now }
	send := func(names ...string) {
		t.Helper()
		var streams []*entry.Stream
		for _, n := range names {
			streams = append(streams, containerStream(n))
		}
		if err := s.Send(t.Context(), batchOf(1, streams...)); err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Second)
	}
	open := func() []string {
		var names []string
		for k := range s.files {
			names = append(names, k)
		}
		slices.Sort(names)
		return names
	}
	send("a")
	send("b")
	send("a") // b is now the least recently written
	send("c")
	if got, want := open(), []string{"a.ndjson", "c.ndjson"}; !slices.Equal(got, want) {
		t.Errorf("open files %q, want %q", got, want)
	}
	send("b") // reopened and appended to; a goes
	if got, want := open(), []string{"b.ndjson", "c.ndjson"}; !slices.Equal(got, want) {
		t.Errorf("open files %q, want %q", got, want)
	}
	if got := lines(readRecords(t, filepath.Join(dir, "b.ndjson"))); !slices.Equal(got, []string{"b 0", "b 0"}) {
		t.Errorf("b after reopening: %q", got)
	}
	if s.OpenFiles() > 2 {
		t.Errorf("%d files open, max 2", s.OpenFiles())
	}
}

func TestSendClosesIdleFiles(t *testing.T) {
	dir := t.TempDir()
	s := newSink(t, Config{Dir: dir, IdleClose: 10 * time.Second})
	now := time.Date(2026, 11, 26, 23, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return now }
	for _, step := range []struct {
		after  time.Duration
		origin string
		open   int
	}{
		{0, "gone", 1},
		{10*time.Second - time.Millisecond, "web", 2}, // gone idle just under IdleClose: kept
		{time.Millisecond, "web", 1},                  // gone idle exactly IdleClose: closed
		{time.Hour, "web", 1},                         // web itself was just written
		{11 * time.Second, "other", 1},                // web idle, closed; other open
		{0, "web", 2},                                 // reopened
		{10 * time.Second, "other", 1},                // web closed again
		{10 * time.Second, "another", 1},              // other closed
	} {
		now = now.Add(step.after)
		if err := s.Send(t.Context(), batchOf(1, containerStream(step.origin))); err != nil {
			t.Fatal(err)
		}
		if s.OpenFiles() != step.open {
			t.Errorf("after writing %s at +%v: %d files open, want %d", step.origin, step.after, s.OpenFiles(), step.open)
		}
	}
	if got := lines(readRecords(t, filepath.Join(dir, "web.ndjson"))); len(got) != 4 {
		t.Errorf("web.ndjson holds %q; want every write appended", got)
	}
}

func TestSendWriteErrorIsRetryable(t *testing.T) {
	dir := t.TempDir()
	s := newSink(t, Config{Dir: dir})
	good, bad := containerStream("good"), containerStream("bad")
	blocker := filepath.Join(dir, "bad.ndjson")
	if err := os.Mkdir(blocker, 0o750); err != nil {
		t.Fatal(err)
	}
	err := s.Send(t.Context(), batchOf(2, good, bad))
	if retry, _ := sink.IsRetryable(err); err == nil || !retry {
		t.Fatalf("Send with an unwritable file = %v, want a retryable error", err)
	}
	if !strings.Contains(err.Error(), "bad.ndjson") {
		t.Errorf("error %q does not name the file", err)
	}
	// The disk accepts writes again: the same batch goes through.
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	if err := s.Send(t.Context(), batchOf(2, good, bad)); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if got := lines(readRecords(t, blocker)); !slices.Equal(got, []string{"bad 0", "bad 1"}) {
		t.Errorf("bad.ndjson after the retry: %q", got)
	}
	// Valid NDJSON throughout; the good stream's lines may be there twice
	// (at least once), never in part.
	if got := lines(readRecords(t, filepath.Join(dir, "good.ndjson"))); len(got) < 2 {
		t.Errorf("good.ndjson: %q", got)
	}
}

// TestFileName: a name that is already a plain, short file name is kept as
// it is (a container called web writes web.ndjson, as it always has); one
// that had to be changed or cut gets '@' and a hash of the original, so
// names that differ only where they were changed stay apart.
func TestFileName(t *testing.T) {
	long := strings.Repeat("a", 300)
	for _, tc := range []struct {
		origin string
		want   string // the name, or its part before the hash
		hashed bool
	}{
		{"web", "web.ndjson", false},
		{"shop-web_1.v2", "shop-web_1.v2.ndjson", false},
		{strings.Repeat("b", 200), strings.Repeat("b", 200) + ".ndjson", false},
		{"", "unknown", true},
		{"/var/log/app.log", "_var_log_app.log", true},
		{`C:\logs\app.log`, "C__logs_app.log", true},
		{"../../etc/passwd", "_.._etc_passwd", true},
		{".hidden", "hidden", true},
		{".", "_", true},
		{"..", "_", true},
		{"...", "_", true},
		{"a b\x00c\nd", "a_b_c_d", true},
		{"ünï", "_n_", true},
		{long, strings.Repeat("a", 191), true},
		{"." + strings.Repeat("é", 300), strings.Repeat("_", 191), true},
	} {
		t.Run(tc.origin, func(t *testing.T) {
			got := FileName(tc.origin)
			if !tc.hashed {
				if got != tc.want {
					t.Errorf("FileName(%q) = %q, want %q", tc.origin, got, tc.want)
				}
			} else if stem, hash, ok := strings.Cut(strings.TrimSuffix(got, ".ndjson"), "@"); !ok || stem != tc.want || len(hash) != 8 || strings.Trim(hash, "0123456789abcdef") != "" {
				t.Errorf("FileName(%q) = %q, want %q@<8 hex digits>.ndjson", tc.origin, got, tc.want)
			}
			if filepath.Base(got) != got || strings.ContainsAny(got, `/\`) || strings.HasPrefix(got, ".") || !strings.HasSuffix(got, ".ndjson") || len(got) > 207 {
				t.Errorf("FileName(%q) = %q is not one plain file name", tc.origin, got)
			}
			if again := FileName(tc.origin); again != got {
				t.Errorf("FileName(%q) = %q, then %q", tc.origin, got, again)
			}
		})
	}
	// The hash is of the original name and must not change between
	// versions: a user's files are found by these names after a restart.
	if got, want := FileName("/var/log/app.log"), "_var_log_app.log@"+hashOf("/var/log/app.log")+".ndjson"; got != want {
		t.Errorf("FileName(/var/log/app.log) = %q, want %q", got, want)
	}
}

// hashOf is the hash FileName appends: the first 8 hex digits of the
// name's SHA-256.
func hashOf(origin string) string {
	sum := sha256.Sum256([]byte(origin))
	return hex.EncodeToString(sum[:4])
}

// TestFileNamesStayApart: origins that one character substitution or a cut
// would merge each get a file of their own.
func TestFileNamesStayApart(t *testing.T) {
	prefix := strings.Repeat("svc-", 50) // 200 characters
	origins := []string{
		"/var/log/a_b.log", "/var/log/a/b.log", "_var_log_a_b.log", "a b.log", "a_b.log", "a/b.log",
		prefix + "1", prefix + "2", prefix, prefix[:199],
		"", "unknown", ".hidden", "hidden", "..", "_",
		"ünï", "_n_", "äñö",
	}
	seen := map[string]string{}
	for _, o := range origins {
		name := FileName(o)
		if prev, dup := seen[name]; dup {
			t.Errorf("%q and %q share the file %s", prev, o, name)
		}
		seen[name] = o
	}
	// And in the sink: each origin's lines in its own file.
	dir := t.TempDir()
	s := newSink(t, Config{Dir: dir})
	var streams []*entry.Stream
	for _, o := range origins {
		streams = append(streams, containerStream(o))
	}
	if err := s.Send(t.Context(), batchOf(2, streams...)); err != nil {
		t.Fatal(err)
	}
	if got := files(t, dir); len(got) != len(origins) {
		t.Errorf("%d files for %d origins: %q", len(got), len(origins), got)
	}
	for _, o := range origins {
		want := []string{o + " 0", o + " 1"}
		if got := lines(readRecords(t, filepath.Join(dir, FileName(o)))); !slices.Equal(got, want) {
			t.Errorf("file of %q holds %q, want %q", o, got, want)
		}
	}
}

// syncRecorder replaces the sink's fsync with one that records the base
// name of each file it syncs; a file already closed fails to sync, so a
// sync recorded is one made before the close.
func syncRecorder(t *testing.T, s *Sink) func() []string {
	var mu sync.Mutex
	var synced []string
	s.syncFile = func(f *os.File) error {
		if err := f.Sync(); err != nil {
			t.Errorf("sync of %s: %v", f.Name(), err)
			return err
		}
		mu.Lock()
		synced = append(synced, filepath.Base(f.Name()))
		mu.Unlock()
		return nil
	}
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		out := slices.Clone(synced)
		slices.Sort(out)
		return slices.Compact(out)
	}
}

// TestFsyncCoversFilesClosedEarly: with fsync on, a file closed in the
// middle of a batch (the open-files limit makes room for another origin)
// is synced before it is closed, like every other file of the batch, since
// the whole batch is confirmed when Send returns.
func TestFsyncCoversFilesClosedEarly(t *testing.T) {
	for _, fsync := range []bool{true, false} {
		t.Run(fmt.Sprint("fsync=", fsync), func(t *testing.T) {
			dir := t.TempDir()
			s := newSink(t, Config{Dir: dir, MaxOpen: 2, Fsync: fsync})
			synced := syncRecorder(t, s)
			if err := s.Send(t.Context(), batchOf(3, containerStream("a"), containerStream("b"), containerStream("c"))); err != nil {
				t.Fatal(err)
			}
			if s.OpenFiles() > 2 {
				t.Errorf("%d files open, max 2", s.OpenFiles())
			}
			want := []string{"a.ndjson", "b.ndjson", "c.ndjson"}
			if !fsync {
				want = nil
			}
			if got := synced(); !slices.Equal(got, want) {
				t.Errorf("synced %q by the time Send returned, want %q", got, want)
			}
		})
	}
}

// TestFsyncFailureOfAFileClosedEarlyFailsTheBatch: a file that cannot be
// synced as it is closed mid-batch leaves the batch unconfirmed (retryable),
// like any other file's failed sync.
func TestFsyncFailureOfAFileClosedEarlyFailsTheBatch(t *testing.T) {
	dir := t.TempDir()
	s := newSink(t, Config{Dir: dir, MaxOpen: 1, Fsync: true})
	failing := true
	s.syncFile = func(f *os.File) error {
		if failing && filepath.Base(f.Name()) == "a.ndjson" {
			return errors.New("injected sync failure")
		}
		return f.Sync()
	}
	err := s.Send(t.Context(), batchOf(1, containerStream("a"), containerStream("b")))
	if retry, _ := sink.IsRetryable(err); err == nil || !retry || !strings.Contains(err.Error(), "a.ndjson") {
		t.Fatalf("Send = %v, want a retryable error naming a.ndjson", err)
	}
	failing = false
	if err := s.Send(t.Context(), batchOf(1, containerStream("a"), containerStream("b"))); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if s.OpenFiles() != 1 {
		t.Errorf("%d files open, max 1", s.OpenFiles())
	}
}

// TestRunClosesIdleFiles: after many short-lived origins wrote and nothing
// more comes, Run closes each file once it has not been written for
// IdleClose, with no further Send to trigger it.
func TestRunClosesIdleFiles(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const idle = 10 * time.Second
		s := newSink(t, Config{Dir: t.TempDir(), IdleClose: idle})
		ctx, cancel := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		wg.Go(func() { s.Run(ctx) })
		const n = 60
		for i := range n {
			if err := s.Send(ctx, batchOf(5, containerStream(fmt.Sprint("short-lived-", i)))); err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		last := time.Now().Add(-100 * time.Millisecond) // when the last file was written
		if got := s.OpenFiles(); got != n {
			t.Errorf("%d files open after the writes, want %d: none was idle for %v", got, n, idle)
		}
		time.Sleep(time.Until(last.Add(idle)) - time.Millisecond)
		synctest.Wait()
		if got := s.OpenFiles(); got != 1 {
			t.Errorf("%v after the last write: %d files open, want 1 (the last one, not idle for %v yet)", idle-time.Millisecond, got, idle)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if got := s.OpenFiles(); got != 0 {
			t.Errorf("%v after the last write: %d files open, want 0", idle, got)
		}
		// A file written again is opened again and closed again.
		if err := s.Send(ctx, batchOf(1, containerStream("short-lived-0"))); err != nil {
			t.Fatal(err)
		}
		time.Sleep(idle)
		synctest.Wait()
		if got := s.OpenFiles(); got != 0 {
			t.Errorf("%v after writing again: %d files open, want 0", idle, got)
		}
		cancel()
		wg.Wait()
	})
}
