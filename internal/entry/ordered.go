package entry

import "sync"

// Ordered advances over groups of entries in the order they were handed off,
// whatever order their confirmations come in: a group counts only once it
// and every group marked before it are resolved. A source's position
// (positions.Tracker) and the disk queue's committed record (internal/spill)
// both advance this way.
//
// Mark registers the next group with its value and returns the group's Ack.
// Each time an Ack resolves and the run of resolved groups at the front
// grows, advance is called once with the value of the newest group of that
// run, and the run is dropped. advance runs on the goroutine that made the
// last Done call, with Ordered's lock held: calls never overlap and their
// values come in Mark order, so advance may store its value as it is. It must
// be quick and must not call Mark or Pending.
//
// Mark must be called in hand-off order (by one goroutine, or serialised by
// the caller); Mark and Pending are safe concurrently with Acks resolving.
type Ordered[T any] struct {
	advance func(T)

	mu      sync.Mutex
	pending []*orderedMark[T]
}

type orderedMark[T any] struct {
	v    T
	done bool
}

// NewOrdered returns an Ordered calling advance as groups are confirmed.
func NewOrdered[T any](advance func(T)) *Ordered[T] {
	return &Ordered[T]{advance: advance}
}

// Mark registers a group that brings its owner to v and returns its Ack,
// holding one reference for the caller: release it with Done(1) once the
// group's entries are handed off. A group with no entries resolves then.
func (o *Ordered[T]) Mark(v T) *Ack {
	m := &orderedMark[T]{v: v}
	o.mu.Lock()
	o.pending = append(o.pending, m)
	o.mu.Unlock()
	return NewAck(func(*Ack) { o.resolve(m) })
}

func (o *Ordered[T]) resolve(m *orderedMark[T]) {
	o.mu.Lock()
	defer o.mu.Unlock()
	m.done = true
	n := 0
	for n < len(o.pending) && o.pending[n].done {
		n++
	}
	if n == 0 {
		return
	}
	v := o.pending[n-1].v
	clear(o.pending[:n])
	o.pending = o.pending[n:]
	o.advance(v)
}
