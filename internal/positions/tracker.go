package positions

import (
	"sync"

	"github.com/wharf-logs/wharf/internal/entry"
)

// Tracker advances one source's position as its entries are confirmed. The
// source calls Mark for each group of entries it hands off, in order, with
// the position reached after them; the group's Ack resolves when every entry
// is confirmed by every sink, and the stored position then moves to the
// newest group with no unresolved group before it.
//
// Mark is called by the source's goroutine; Acks resolve on sink goroutines.
// A Tracker is safe for that use.
type Tracker struct {
	store *Store
	key   string

	mu        sync.Mutex
	pending   []*mark
	forgotten bool
}

type mark struct {
	pos  string
	done bool
}

// Tracker returns the tracker of key.
func (s *Store) Tracker(key string) *Tracker {
	return &Tracker{store: s, key: key}
}

// Mark returns the Ack for entries that bring the source to pos. The Ack
// holds one reference for the caller, released with Done(1) after the
// entries were submitted; a Mark with no entries resolves then.
func (t *Tracker) Mark(pos string) *entry.Ack {
	m := &mark{pos: pos}
	t.mu.Lock()
	t.pending = append(t.pending, m)
	t.mu.Unlock()
	return entry.NewAck(func(*entry.Ack) { t.resolve(m) })
}

func (t *Tracker) resolve(m *mark) {
	t.mu.Lock()
	defer t.mu.Unlock()
	m.done = true
	n := 0
	for n < len(t.pending) && t.pending[n].done {
		n++
	}
	if n == 0 {
		return
	}
	last := t.pending[n-1].pos
	clear(t.pending[:n])
	t.pending = t.pending[n:]
	if t.forgotten {
		if len(t.pending) == 0 {
			t.store.Delete(t.key)
		}
		return
	}
	t.store.Set(t.key, last)
}

// Pending is the number of handed-off groups not yet confirmed.
func (t *Tracker) Pending() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.pending)
}

// Forget removes the source's position for good once everything it handed
// off is confirmed: a destroyed container, a file gone for good.
func (t *Tracker) Forget() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.forgotten = true
	if len(t.pending) == 0 {
		t.store.Delete(t.key)
	}
}
