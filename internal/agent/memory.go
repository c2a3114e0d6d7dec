package agent

import (
	"os"
	"runtime/debug"

	"github.com/wharf-logs/wharf/internal/config"
)

// memoryHeadroom is what wharf needs beyond its buffers: batches being
// encoded and sent (two per shard), readers' buffers, the runtime.
const memoryHeadroom = 24 << 20

// setMemoryLimit gives the Go runtime a soft memory limit from the
// configuration (buffer.max_bytes per sink plus headroom) unless GOMEMLIMIT
// is set. Without it the heap may grow to twice what is live before a
// collection; with it the collector runs more often as the heap nears what
// wharf actually needs, so memory follows the buffers, not the traffic. It
// returns the limit set, or 0.
func setMemoryLimit(cfg config.Config, sinks int) int64 {
	if _, ok := os.LookupEnv("GOMEMLIMIT"); ok {
		return 0
	}
	limit := int64(sinks)*int64(cfg.Buffer.MaxBytes) + memoryHeadroom
	debug.SetMemoryLimit(limit)
	return limit
}
