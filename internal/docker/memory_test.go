package docker

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wharf-logs/wharf/internal/entry"
)

// countingSubmitter counts what it is handed and keeps none of it, as a
// pipeline that delivered it would.
type countingSubmitter struct{ n atomic.Int64 }

func (c *countingSubmitter) Submit(_ context.Context, entries []entry.Entry) error {
	c.n.Add(int64(len(entries)))
	return nil
}

// writeJSONFile writes n json-file records of size bytes each to path.
func writeJSONFile(t *testing.T, path string, n, size int) {
	t.Helper()
	var b strings.Builder
	text := strings.Repeat("x", size)
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		fmt.Fprintf(&b, `{"log":"%08d %s\n","stream":"stdout","time":"%s"}`+"\n", i, text, t0.Add(time.Duration(i)*time.Microsecond).Format(time.RFC3339Nano))
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// heapAlloc is the heap in use once the garbage is collected.
func heapAlloc() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestIdleFileReadersHoldLittle: readers of json-files that caught up on a
// backlog and then sit idle (a host's many quiet containers) hold no large
// buffers: what the source keeps per container stays small.
func TestIdleFileReadersHoldLittle(t *testing.T) {
	const containers, lines, size = 100, 1500, 250
	fe := newFakeEngine(t)
	dir := t.TempDir()
	var ids []string
	for i := range containers {
		id := cid(fmt.Sprint("quiet-", i))
		path := filepath.Join(dir, id+"-json.log")
		writeJSONFile(t, path, lines, size)
		ids = append(ids, id)
		fe.run(fakeSpec{ID: id, Name: fmt.Sprint("quiet-", i), LogPath: path})
	}
	sub := &countingSubmitter{}
	before := heapAlloc()
	h := startSource(t, fe, Config{ReadFrom: ReadFile}, func(d *SourceDeps) { d.Out = sub })
	waitUntil(t, "every backlog to be read", func() bool { return sub.n.Load() == containers*lines })
	// The readers wait at the end of their files now; a poll or two lets
	// each notice it is idle.
	time.Sleep(time.Second)
	after := heapAlloc()
	perReader := (int64(after) - int64(before)) / containers
	t.Logf("heap %d KiB before, %d KiB with %d idle readers: %d KiB each", before>>10, after>>10, containers, perReader>>10)
	if perReader > 48<<10 {
		t.Errorf("each idle reader holds %d KiB of heap; want at most 48 KiB", perReader>>10)
	}
	for _, id := range ids {
		if _, reading := h.state(id); !reading {
			t.Fatalf("%s is not being read", id[:12])
		}
	}
}

// TestSourceReportsReaders: the Readers hook hears of every reader that
// starts and ends, so what it counts is the readers running.
func TestSourceReportsReaders(t *testing.T) {
	fe := newFakeEngine(t)
	var now, peak atomic.Int64
	h := startSource(t, fe, Config{}, func(d *SourceDeps) {
		d.Readers = func(delta int) {
			n := now.Add(int64(delta))
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
		}
	})
	var ids []string
	for i := range 5 {
		id := cid(fmt.Sprint("r", i))
		ids = append(ids, id)
		fe.run(fakeSpec{ID: id, Name: fmt.Sprint("r", i)}, stdoutLine(at(i), "x"))
	}
	for _, id := range ids {
		h.waitLines(id, 1)
	}
	if n := now.Load(); n != 5 {
		t.Errorf("%d readers counted while 5 containers run", n)
	}
	for _, id := range ids {
		fe.exit(id, false)
		h.waitIdle(id)
	}
	waitUntil(t, "the count to come back to 0", func() bool { return now.Load() == 0 })
	if p := peak.Load(); p != 5 {
		t.Errorf("at most %d readers counted; want 5", p)
	}
}
