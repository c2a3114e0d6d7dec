package filesink

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharf-logs/wharf/internal/entry"
)

// writeAged writes a file of size bytes into dir with the given
// modification time.
func writeAged(t *testing.T, dir, name string, size int, mtime time.Time) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(strings.Repeat("x", size-1)+"\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

var sinkFile = regexp.MustCompile(`\.ndjson(\.[0-9]+)?$`)

// sinkBytes is the size of the sink's files in dir.
func sinkBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	for _, name := range files(t, dir) {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if sinkFile.MatchString(name) && st.Mode().IsRegular() {
			n += st.Size()
		}
	}
	return n
}

// bigBatch returns a batch of n entries of about size bytes each on s.
func bigBatch(s *entry.Stream, n, size int) *entry.Batch {
	b := &entry.Batch{}
	for i := range n {
		b.Add(entry.Entry{Time: int64(i), Line: fmt.Appendf(nil, "%05d %s", i, strings.Repeat("y", size)), Stream: s})
	}
	return b
}

// TestMaxTotalBytesRemovesOldestFirst: when the sink's files pass
// MaxTotalBytes, the files modified longest ago go first (of equal age, the
// rotated ones before the current one, the oldest rotation first), until the
// directory is under the cap again; the file being written stays, and files
// that are not the sink's are neither counted nor touched.
func TestMaxTotalBytesRemovesOldestFirst(t *testing.T) {
	dir := t.TempDir()
	day := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	// Left by earlier runs: containers gone long ago, oldest first...
	for i := range 6 {
		writeAged(t, dir, fmt.Sprintf("gone-%d.ndjson", i), 4<<10, day.Add(time.Duration(i)*time.Hour))
	}
	// ...an origin whose three files were all last written at one moment...
	for _, name := range []string{"tie.ndjson", "tie.ndjson.1", "tie.ndjson.2"} {
		writeAged(t, dir, name, 4<<10, day.Add(-time.Hour))
	}
	// ...and a rotated file of the container writing now, older still.
	writeAged(t, dir, "web.ndjson.1", 4<<10, day.Add(-48*time.Hour))
	// Not the sink's: never counted, never removed.
	writeAged(t, dir, "notes.txt", 64<<10, day.Add(-1000*time.Hour))
	writeAged(t, dir, "gone.ndjson.tmp", 64<<10, day.Add(-1000*time.Hour))
	if err := os.Mkdir(filepath.Join(dir, "old.ndjson"), 0o750); err != nil {
		t.Fatal(err)
	}

	sizes := map[string]int64{}
	for _, name := range files(t, dir) {
		st, _ := os.Stat(filepath.Join(dir, name))
		sizes[name] = st.Size()
	}
	const limit = 40 << 10
	var logged bytes.Buffer
	s, err := New(Config{Dir: dir, MaxFileBytes: 1 << 20, MaxFiles: 3, MaxTotalBytes: limit}, Deps{Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// 6*4 + 3*4 + 4 = 40 KiB before; about 18 KiB more now.
	if err := s.Send(t.Context(), bigBatch(containerStream("web"), 16, 1000)); err != nil {
		t.Fatal(err)
	}
	if got := sinkBytes(t, dir); got > limit {
		t.Errorf("the sink's files hold %d bytes, over the cap of %d", got, limit)
	}
	// Removed in order: web.ndjson.1 (48 h before), then tie's files, .2
	// first; then gone-0, gone-1... as far as needed.
	order := []string{"web.ndjson.1", "tie.ndjson.2", "tie.ndjson.1", "tie.ndjson", "gone-0.ndjson", "gone-1.ndjson", "gone-2.ndjson", "gone-3.ndjson", "gone-4.ndjson", "gone-5.ndjson"}
	left := files(t, dir)
	k := slices.IndexFunc(order, func(n string) bool { return slices.Contains(left, n) })
	if k <= 0 {
		t.Fatalf("nothing removed: %q", left)
	}
	for _, n := range order[k:] {
		if !slices.Contains(left, n) {
			t.Errorf("%s removed although %s, modified earlier, was kept", n, order[k])
		}
	}
	for _, n := range []string{"web.ndjson", "notes.txt", "gone.ndjson.tmp", "old.ndjson"} {
		if !slices.Contains(left, n) {
			t.Errorf("%s was removed; left: %q", n, left)
		}
	}
	if recs := readRecords(t, filepath.Join(dir, "web.ndjson")); len(recs) != 16 {
		t.Errorf("web.ndjson holds %d records, want the batch's 16", len(recs))
	}
	t.Logf("removed %q; left %q", order[:k], left)

	// Each removal counted, with its bytes; one line logged.
	var freed int64
	for _, n := range order[:k] {
		freed += sizes[n]
	}
	m := s.metrics
	if got := testutil.ToFloat64(m.FilesRemoved.WithLabelValues(ReasonMaxTotalBytes)); got != float64(k) {
		t.Errorf("files removed (max_total_bytes) = %v, want %d", got, k)
	}
	if got := testutil.ToFloat64(m.BytesRemoved.WithLabelValues(ReasonMaxTotalBytes)); got != float64(freed) {
		t.Errorf("bytes removed (max_total_bytes) = %v, want %d", got, freed)
	}
	if got, want := testutil.ToFloat64(m.DiskBytes), float64(sinkBytes(t, dir)); got != want {
		t.Errorf("disk bytes = %v, want %v", got, want)
	}
	if log := logged.String(); strings.Count(log, "file.max_total_bytes") != 1 || !strings.Contains(log, fmt.Sprintf("files=%d bytes=%d first=web.ndjson.1", k, freed)) {
		t.Errorf("log:\n%s\nwant one line saying %d files, %d bytes, from web.ndjson.1", log, k, freed)
	}
}

// TestMaxTotalBytesKeepsTheFileBeingWritten: the files being written are
// removed last, even when others look newer (files written before the clock
// was set back), and only when the cap cannot be kept otherwise.
func TestMaxTotalBytesKeepsTheFileBeingWritten(t *testing.T) {
	t.Run("clock set back", func(t *testing.T) {
		dir := t.TempDir()
		ahead := time.Now().Add(time.Hour)
		for i := range 4 {
			writeAged(t, dir, fmt.Sprintf("before-%d.ndjson", i), 4<<10, ahead.Add(time.Duration(i)*time.Minute))
		}
		const limit = 16 << 10
		s := newSink(t, Config{Dir: dir, MaxTotalBytes: limit})
		if err := s.Send(t.Context(), bigBatch(containerStream("web"), 6, 1000)); err != nil {
			t.Fatal(err)
		}
		left := files(t, dir)
		if want := []string{"before-2.ndjson", "before-3.ndjson", "web.ndjson"}; !slices.Equal(left, want) {
			t.Errorf("left %q, want %q", left, want)
		}
		if got := sinkBytes(t, dir); got > limit {
			t.Errorf("%d bytes, over the cap of %d", got, limit)
		}
		if recs := readRecords(t, filepath.Join(dir, "web.ndjson")); len(recs) != 6 {
			t.Errorf("web.ndjson holds %d records, want 6", len(recs))
		}
	})
	t.Run("open files alone over the cap", func(t *testing.T) {
		dir := t.TempDir()
		const limit = 16 << 10
		s := newSink(t, Config{Dir: dir, MaxTotalBytes: limit})
		now := time.Date(2026, 11, 26, 23, 0, 0, 0, time.UTC)
		s.now = func() time.Time { return now }
		for _, name := range []string{"a", "b"} {
			if err := s.Send(t.Context(), bigBatch(containerStream(name), 10, 1000)); err != nil {
				t.Fatal(err)
			}
			now = now.Add(time.Second)
		}
		// a, the least recently written, had to go; b, just written, stays.
		if left, want := files(t, dir), []string{"b.ndjson"}; !slices.Equal(left, want) {
			t.Errorf("left %q, want %q", left, want)
		}
		if s.OpenFiles() != 1 {
			t.Errorf("%d files open, want 1: a removed file is closed", s.OpenFiles())
		}
		// a writes again: a new file.
		if err := s.Send(t.Context(), batchOf(1, containerStream("a"))); err != nil {
			t.Fatal(err)
		}
		if got := lines(readRecords(t, filepath.Join(dir, "a.ndjson"))); !slices.Equal(got, []string{"a 0"}) {
			t.Errorf("a.ndjson holds %d lines, want only the one written after its removal", len(got))
		}
	})
}
