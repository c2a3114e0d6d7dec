package entry

import "sync/atomic"

// Ack counts the outstanding confirmations of a group of entries handed off
// together by one source. It starts with one hold owned by its creator, so a
// group is not resolved while the source is still handing entries off; the
// pipeline adds one per entry per sink, and each sink calls Done when it has
// delivered, dead-lettered or durably queued entries. When the count reaches
// zero the resolve callback runs once, on the goroutine that made the last
// Done call.
//
// Ack is safe for concurrent use.
type Ack struct {
	pending atomic.Int64
	resolve func(*Ack)
}

// NewAck returns an Ack holding one reference for its creator. resolve, which
// may be nil, runs when every reference has been released.
func NewAck(resolve func(*Ack)) *Ack {
	a := &Ack{resolve: resolve}
	a.pending.Store(1)
	return a
}

// Add adds n outstanding confirmations.
func (a *Ack) Add(n int) { a.pending.Add(int64(n)) }

// Done releases n confirmations.
func (a *Ack) Done(n int) {
	v := a.pending.Add(-int64(n))
	if v == 0 && a.resolve != nil {
		a.resolve(a)
	}
	if v < 0 {
		panic("entry: Ack released more than it held")
	}
}

// AckEntries releases one confirmation for each of entries, calling Done once
// per run of entries that share an Ack.
func AckEntries(entries []Entry) {
	var cur *Ack
	n := 0
	for i := range entries {
		a := entries[i].Ack
		if a != cur {
			if cur != nil {
				cur.Done(n)
			}
			cur, n = a, 0
		}
		n++
	}
	if cur != nil {
		cur.Done(n)
	}
}
