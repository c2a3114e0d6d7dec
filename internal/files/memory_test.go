package files

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"
)

// inUse is the heap and goroutine stack memory in use after a collection.
func inUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc + m.StackInuse)
}

// TestIdleReadersHoldLittle: a file that is followed but not written to
// costs its reader a few KiB (goroutine, follower, small buffers), not the
// buffers a busy reader uses, so that thousands of idle files fit in the
// soft memory limit. The bound is memory, not time; the deadline only
// waits for the readers to settle.
func TestIdleReadersHoldLittle(t *testing.T) {
	const files, perFile = 200, 48 << 10
	h := newHarness(t)
	for i := range files {
		write(t, h.path(fmt.Sprintf("app-%03d.log", i)), seqLines("l", 0, 4)...)
	}
	base := inUse()
	h.start(Group{Paths: []string{h.path("*.log")}, MaxLineBytes: 256 << 10})
	for i := range files {
		h.out.waitLines(t, h.path(fmt.Sprintf("app-%03d.log", i)), 4)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var each int64
	for {
		each = (inUse() - base) / files
		if each <= perFile || ctx.Err() != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("%d idle readers: %.1f KiB each", files, float64(each)/1024)
	if each > perFile {
		t.Errorf("each idle reader holds %.1f KiB, want at most %d KiB", float64(each)/1024, perFile>>10)
	}
	h.stop()
}
