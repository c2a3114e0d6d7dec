package positions

import (
	"sync/atomic"

	"github.com/wharf-logs/wharf/internal/entry"
)

// Tracker advances one source's position as its entries are confirmed. The
// source calls Mark for each group of entries it hands off, in order, with
// the position reached after them; the group's Ack resolves when every entry
// is confirmed by every sink, and the stored position then moves to the
// newest group with no unresolved group before it (see entry.Ordered).
//
// Mark and Forget are called by the source, one at a time; Acks resolve on sink
// goroutines. A Tracker is safe for that use.
type Tracker struct {
	store     *Store
	key       string
	order     *entry.Ordered[mark]
	forgotten atomic.Bool
}

// mark is a tracked group's position, or the Forget that follows the last
// group.
type mark struct {
	pos    string
	forget bool
}

// Tracker returns the tracker of key.
func (s *Store) Tracker(key string) *Tracker {
	t := &Tracker{store: s, key: key}
	t.order = entry.NewOrdered(t.advance)
	return t
}

// Mark returns the Ack for entries that bring the source to pos. The Ack
// holds one reference for the caller, released with Done(1) after the
// entries were submitted; a Mark with no entries resolves then.
func (t *Tracker) Mark(pos string) *entry.Ack {
	return t.order.Mark(mark{pos: pos})
}

// advance stores the position every group up to m has been confirmed to.
// Once Forget was called, positions are no longer stored: the forget mark,
// reached when every earlier group is confirmed, deletes the key.
func (t *Tracker) advance(m mark) {
	switch {
	case m.forget:
		t.store.Delete(t.key)
	case t.forgotten.Load():
	default:
		t.store.Set(t.key, m.pos)
	}
}

// Forget removes the source's position for good once everything it handed
// off is confirmed: a destroyed container, a file gone for good. It is the
// source's last call on the tracker.
func (t *Tracker) Forget() {
	t.forgotten.Store(true)
	t.order.Mark(mark{forget: true}).Done(1)
}
