package agent

import (
	"testing"

	"github.com/wharf-logs/wharf/internal/config"
)

// TestMemoryLimitFollowsReaders: the soft memory limit grows with the
// containers being read and shrinks as they go, by readerMemory each, in
// steps of at least a MiB; GOMEMLIMIT leaves it alone.
func TestMemoryLimitFollowsReaders(t *testing.T) {
	var cfg config.Config
	cfg.Buffer.MaxBytes = 8 << 20
	var got []int64
	m := newMemoryLimit(cfg, 1)
	m.set = func(v int64) int64 { got = append(got, v); return 0 }
	base := int64(8<<20 + memoryHeadroom)

	m.addReaders(5) // before start: counted, not applied
	if len(got) != 0 {
		t.Fatalf("limit set before start: %v", got)
	}
	if l := m.start(); l != base+5*readerMemory {
		t.Fatalf("start set %d, want %d", l, base+5*readerMemory)
	}
	for range 995 {
		m.addReaders(1)
	}
	if last := got[len(got)-1]; last < base+990*readerMemory || last > base+1000*readerMemory {
		t.Errorf("with 1,000 readers the limit is %d MiB, want about %d MiB", last>>20, (base+1000*readerMemory)>>20)
	}
	if n := len(got); n > 1+1000*readerMemory/(1<<20)+1 {
		t.Errorf("the limit was set %d times for 995 readers; want steps of a MiB", n)
	}
	for range 1000 {
		m.addReaders(-1)
	}
	if last := got[len(got)-1]; last > base+readerMemory*(1<<20/readerMemory) {
		t.Errorf("with no reader left the limit is %d, want about %d", last, base)
	}

	t.Setenv("GOMEMLIMIT", "1GiB")
	m = newMemoryLimit(cfg, 1)
	m.set = func(v int64) int64 { t.Errorf("limit set to %d although GOMEMLIMIT is set", v); return 0 }
	if l := m.start(); l != 0 {
		t.Errorf("start returned %d with GOMEMLIMIT set", l)
	}
	m.addReaders(10)
}
