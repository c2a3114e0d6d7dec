package agent

import (
	"os"
	"runtime/debug"
	"sync"

	"github.com/wharf-logs/wharf/internal/config"
)

// memoryHeadroom is what wharf needs beyond its buffers and its readers:
// batches being encoded and sent (two per shard), a few readers catching up
// at once, the runtime.
const memoryHeadroom = 24 << 20

// readerMemory is the allowance per container being read. A quiet reader
// holds about 30 KiB, its goroutine's stack and what it reads through (see
// internal/docker); the rest leaves the collector room. Without it a
// thousand quiet containers filled the fixed limit by themselves, and the
// collector ran back to back, scanning every reader's stack each time.
const readerMemory = 48 << 10

// fileMemory is the allowance per plain file followed: its reader holds
// about 13 KiB while it waits (goroutine stack, follower, line reader, a
// 2 KiB read buffer, a 1 KiB arena; see docs/benchmarks.md), and busy
// readers borrow larger buffers from a shared pool.
const fileMemory = 32 << 10

// memoryLimit keeps the Go runtime's soft memory limit at buffer.max_bytes
// per sink, plus headroom, plus an allowance per container being read and
// per plain file followed. With the limit the collector runs more often as
// the heap nears what wharf actually needs, so memory follows the buffers
// and the readers, not the traffic; without it the heap may grow to twice
// what is live, and a limit below what the readers hold would make the
// collector run without pause. It does nothing when GOMEMLIMIT is set. It is
// safe for concurrent use.
type memoryLimit struct {
	base int64 // 0: GOMEMLIMIT is set, the limit is left alone
	set  func(int64) int64

	mu      sync.Mutex
	started bool
	readers int // containers being read
	files   int // plain files followed
	applied int64
}

func newMemoryLimit(cfg config.Config, sinks int) *memoryLimit {
	m := &memoryLimit{set: debug.SetMemoryLimit}
	if _, ok := os.LookupEnv("GOMEMLIMIT"); !ok {
		m.base = int64(sinks)*int64(cfg.Buffer.MaxBytes) + memoryHeadroom
	}
	return m
}

// start sets the limit, and from then on follows the readers. It returns
// the limit set, or 0.
func (m *memoryLimit) start() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.started = true
	return m.applyLocked(true)
}

// addReaders is told of container readers starting (delta > 0) and ending.
func (m *memoryLimit) addReaders(delta int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.readers += delta
	m.applyLocked(false)
}

// following is told how many plain files are followed now.
func (m *memoryLimit) following(n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.files = n
	m.applyLocked(false)
}

// want is the limit for the readers and files counted now; 0 when the
// limit is left alone.
func (m *memoryLimit) wantLocked() int64 {
	if m.base == 0 {
		return 0
	}
	return m.base + int64(max(m.readers, 0))*readerMemory + int64(max(m.files, 0))*fileMemory
}

// applyLocked sets the limit if it moved by a MiB or more since it was last
// set (or always, with force), and returns it; 0 when the limit is left
// alone.
func (m *memoryLimit) applyLocked(force bool) int64 {
	limit := m.wantLocked()
	if limit == 0 || !m.started {
		return 0
	}
	if d := limit - m.applied; force || d >= 1<<20 || d <= -1<<20 {
		m.set(limit)
		m.applied = limit
	}
	return m.applied
}
