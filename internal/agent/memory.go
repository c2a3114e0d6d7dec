package agent

import (
	"os"
	"runtime/debug"

	"github.com/wharf-logs/wharf/internal/config"
)

// memoryHeadroom is what wharf needs beyond its buffers: batches being
// encoded and sent (two per shard), readers' buffers, the runtime.
const memoryHeadroom = 24 << 20

// fileHeadroom is what each plain file followed adds: its reader holds
// about 13 KiB while it waits (goroutine stack, follower, line reader, a
// 2 KiB read buffer, a 1 KiB arena; see docs/benchmarks.md), and busy
// readers borrow larger buffers from a shared pool.
const fileHeadroom = 32 << 10

// setMemoryLimit gives the Go runtime a soft memory limit from the
// configuration (buffer.max_bytes per sink plus headroom, plus
// fileHeadroom per plain file followed) unless GOMEMLIMIT is set. Without
// it the heap may grow to twice what is live before a collection; with it
// the collector runs more often as the heap nears what wharf actually
// needs, so memory follows the buffers, not the traffic. A limit below
// what is live would instead make the collector run without pause, which is
// why it grows with the files followed. It returns the limit set, or 0.
func setMemoryLimit(cfg config.Config, sinks, files int) int64 {
	if _, ok := os.LookupEnv("GOMEMLIMIT"); ok {
		return 0
	}
	limit := memoryLimit(cfg, sinks, files)
	debug.SetMemoryLimit(limit)
	return limit
}

// memoryLimit is the soft memory limit setMemoryLimit sets.
func memoryLimit(cfg config.Config, sinks, files int) int64 {
	return int64(sinks)*int64(cfg.Buffer.MaxBytes) + memoryHeadroom + int64(files)*fileHeadroom
}
