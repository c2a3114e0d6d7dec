package deadletter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/wharf-logs/wharf/internal/entry"
	"github.com/wharf-logs/wharf/internal/filesink"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type record struct {
	Time     string            `json:"time"`
	TS       int64             `json:"ts"`
	Stream   string            `json:"stream"`
	Labels   map[string]string `json:"labels"`
	Metadata map[string]string `json:"metadata"`
	Sink     string            `json:"sink"`
	Reason   string            `json:"reason"`
	Error    string            `json:"error"`
	Line     string            `json:"line"`
}

// readRecords parses an NDJSON file strictly: whole records, known fields.
func readRecords(t *testing.T, path string) []record {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		t.Fatalf("%s ends with a partial record", path)
	}
	var out []record
	for _, line := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		var r record
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("%s: record %q: %v", path, line, err)
		}
		out = append(out, r)
	}
	return out
}

var web = entry.NewStream(
	entry.Labels{{Name: "container", Value: "web"}, {Name: "stream", Value: "stdout"}},
	entry.Labels{{Name: "container_id", Value: "abc"}},
	"web")

func entries(n int, prefix string) []entry.Entry {
	var out []entry.Entry
	for i := range n {
		out = append(out, entry.Entry{Time: int64(1_795_734_000_000_000_000 + i), Line: fmt.Appendf(nil, "%s %d", prefix, i), Stream: web})
	}
	return out
}

func TestDeadLetterRecords(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dead-letter")
	w := New(Config{Dir: dir, MaxFileBytes: 1 << 20, MaxFiles: 3}, Deps{})
	defer w.Close()
	cause := errors.New(`loki: 400 entry for stream '{container="web"}' has timestamp too old`)
	if err := w.DeadLetter("loki", "too_old", cause, entries(2, "old")); err != nil {
		t.Fatal(err)
	}
	if err := w.DeadLetter("loki", "line_too_long", nil, entries(1, "long")); err != nil {
		t.Fatal(err)
	}
	recs := readRecords(t, filepath.Join(dir, "loki.ndjson"))
	if len(recs) != 3 {
		t.Fatalf("%d records, want 3", len(recs))
	}
	for i, want := range []struct{ reason, err, line string }{
		{"too_old", cause.Error(), "old 0"},
		{"too_old", cause.Error(), "old 1"},
		{"line_too_long", "", "long 0"},
	} {
		r := recs[i]
		if r.Sink != "loki" || r.Reason != want.reason || r.Error != want.err || r.Line != want.line {
			t.Errorf("record %d: %+v, want sink loki, reason %s, error %q, line %q", i, r, want.reason, want.err, want.line)
		}
		if r.TS == 0 || r.Time == "" || r.Labels["container"] != "web" || r.Metadata["container_id"] != "abc" || r.Stream != "stdout" {
			t.Errorf("record %d lacks the file sink fields: %+v", i, r)
		}
	}
}

func TestDeadLetterFilePerSink(t *testing.T) {
	dir := t.TempDir()
	w := New(Config{Dir: dir, MaxFileBytes: 1 << 20, MaxFiles: 2}, Deps{})
	defer w.Close()
	for _, name := range []string{"loki", "loki/tenant-1", "file"} {
		if err := w.DeadLetter(name, "invalid", errors.New("x"), entries(1, name)); err != nil {
			t.Fatal(err)
		}
	}
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	tenant := filesink.FileName("loki/tenant-1") // loki_tenant-1@<hash>.ndjson
	if want := []string{"file.ndjson", "loki.ndjson", tenant}; !slices.Equal(names, want) {
		t.Errorf("files %q, want %q", names, want)
	}
	if r := readRecords(t, filepath.Join(dir, tenant)); len(r) != 1 || r[0].Sink != "loki/tenant-1" {
		t.Errorf("records %+v", r)
	}
}

func TestDeadLetterLongErrorCapped(t *testing.T) {
	dir := t.TempDir()
	w := New(Config{Dir: dir, MaxFileBytes: 1 << 20, MaxFiles: 2}, Deps{})
	defer w.Close()
	long := errors.New(strings.Repeat("€", 3000)) // 9000 bytes; 4096 falls inside a rune
	if err := w.DeadLetter("loki", "invalid", long, entries(1, "x")); err != nil {
		t.Fatal(err)
	}
	r := readRecords(t, filepath.Join(dir, "loki.ndjson"))
	if len(r) != 1 {
		t.Fatalf("%d records", len(r))
	}
	if n := len(r[0].Error); n < 4000 || n > 4096+utf8.UTFMax {
		t.Errorf("error of %d bytes, want about 4096", n)
	}
	if !strings.HasPrefix(long.Error(), strings.TrimRight(r[0].Error, "\ufffd")) {
		t.Error("the error kept is not the start of the cause")
	}
}

func TestDeadLetterRotationCap(t *testing.T) {
	dir := t.TempDir()
	const maxBytes, maxFiles = 2 << 10, 3
	var log bytes.Buffer
	m := NewMetrics()
	w := New(Config{Dir: dir, MaxFileBytes: maxBytes, MaxFiles: maxFiles}, Deps{Logger: slog.New(slog.NewTextHandler(&log, nil)), Metrics: m})
	defer w.Close()
	for i := range 100 {
		e := entry.Entry{Time: int64(i), Line: []byte(strings.Repeat("x", 100)), Stream: web}
		if err := w.DeadLetter("loki", "too_old", errors.New("400"), []entry.Entry{e}); err != nil {
			t.Fatal(err)
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != maxFiles {
		t.Errorf("%d files, want %d", len(ents), maxFiles)
	}
	var ts []int64
	for _, name := range []string{"loki.ndjson.2", "loki.ndjson.1", "loki.ndjson"} {
		p := filepath.Join(dir, name)
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > maxBytes {
			t.Errorf("%s is %d bytes, over %d", name, st.Size(), maxBytes)
		}
		for _, r := range readRecords(t, p) {
			ts = append(ts, r.TS)
		}
	}
	if len(ts) == 0 || ts[len(ts)-1] != 99 {
		t.Fatalf("newest record missing: %v", ts)
	}
	for i := 1; i < len(ts); i++ {
		if ts[i] != ts[i-1]+1 {
			t.Fatalf("records not contiguous: %v", ts)
		}
	}
	// The records removed with the oldest files are counted and logged.
	files, bytesGone := testutil.ToFloat64(m.FilesRemoved), testutil.ToFloat64(m.BytesRemoved)
	if files < 1 || bytesGone < float64(ts[0])*100 || bytesGone > float64(maxBytes)*files {
		t.Errorf("counted %v files, %v bytes removed; want the %d records before the first kept", files, bytesGone, ts[0])
	}
	if !strings.Contains(log.String(), "removed the oldest dead-letter file") || !strings.Contains(log.String(), "max_files") {
		t.Errorf("no warning naming the removal and max_files: %q", log.String())
	}
}

func TestDeadLetterConcurrent(t *testing.T) {
	dir := t.TempDir()
	w := New(Config{Dir: dir, MaxFileBytes: 1 << 20, MaxFiles: 2}, Deps{})
	defer w.Close()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				if err := w.DeadLetter("loki", "invalid", errors.New("400"), entries(3, fmt.Sprintf("g%d-%d", g, i))); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := len(readRecords(t, filepath.Join(dir, "loki.ndjson"))); n != 8*50*3 {
		t.Errorf("%d records, want %d", n, 8*50*3)
	}
}

func TestDeadLetterErrorAndReopen(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "dl")
	if err := os.WriteFile(blocker, nil, 0o640); err != nil { // a file where the directory should be
		t.Fatal(err)
	}
	w := New(Config{Dir: blocker, MaxFileBytes: 1 << 20, MaxFiles: 2}, Deps{})
	defer w.Close()
	if err := w.Err(); err != nil {
		t.Fatalf("Err before any write: %v", err)
	}
	err := w.DeadLetter("loki", "invalid", nil, entries(1, "x"))
	if err == nil {
		t.Fatal("DeadLetter into an unusable directory succeeded")
	}
	// Err, which /readyz reports, names the directory and keeps the cause.
	if kept := w.Err(); kept != err || !strings.Contains(kept.Error(), "cannot write in "+blocker+":") {
		t.Fatalf("Err after a failed write: %v (DeadLetter returned %v)", kept, err)
	}
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	if err := w.DeadLetter("loki", "invalid", nil, entries(1, "y")); err != nil {
		t.Fatalf("after the directory became usable: %v", err)
	}
	if err := w.Err(); err != nil {
		t.Fatalf("Err after a write succeeded: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// Writing after Close reopens the file and appends.
	if err := w.DeadLetter("loki", "invalid", nil, entries(1, "z")); err != nil {
		t.Fatal(err)
	}
	if r := readRecords(t, filepath.Join(blocker, "loki.ndjson")); len(r) != 2 || r[0].Line != "y 0" || r[1].Line != "z 0" {
		t.Errorf("records %+v", r)
	}
}

// openFDs counts this process's open file descriptors, or skips the test
// where /proc does not tell.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count open files: %v", err)
	}
	return len(ents)
}

func TestDeadLetterHoldsOneFilePerSink(t *testing.T) {
	dir := t.TempDir()
	w := New(Config{Dir: dir, MaxFileBytes: 1 << 20, MaxFiles: 2}, Deps{})
	before := openFDs(t)
	for i := range 200 {
		if err := w.DeadLetter("loki", "invalid", nil, entries(1, fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if n := openFDs(t); n > before+1 {
		t.Errorf("%d files open after 200 dead letters to one sink, %d before", n, before)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if n := openFDs(t); n > before {
		t.Errorf("%d files open after Close, %d before", n, before)
	}
}

// After a failure Err tries the directory itself, so readiness recovers when
// the disk does even if no dead letter follows.
func TestErrClearsWhenTheDirectoryRecovers(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "dl")
	if err := os.WriteFile(blocker, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	w := New(Config{Dir: blocker, MaxFileBytes: 1 << 20, MaxFiles: 2}, Deps{})
	defer w.Close()
	if err := w.DeadLetter("loki", "invalid", nil, entries(1, "x")); err == nil {
		t.Fatal("DeadLetter into an unusable directory succeeded")
	}
	w.probed = time.Now().Add(-probeEvery)
	if err := w.Err(); err == nil {
		t.Fatal("Err is nil while the directory is still unusable")
	}
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	if err := w.Err(); err == nil {
		t.Fatal("Err tried the directory again before probeEvery had passed")
	}
	w.probed = time.Now().Add(-probeEvery)
	if err := w.Err(); err != nil {
		t.Fatalf("Err after the directory recovered: %v", err)
	}
	left, err := os.ReadDir(blocker)
	if err != nil || len(left) != 0 {
		t.Fatalf("probe left %v (%v)", left, err)
	}
}
