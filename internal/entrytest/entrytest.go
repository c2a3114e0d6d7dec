// Package entrytest gives tests an acknowledgement they can watch: an
// entry.Ack that records when it resolves, as a source's positions tracker
// would learn it.
package entrytest

import (
	"sync/atomic"

	"github.com/wharf-logs/wharf/internal/entry"
)

// Ack is an entry.Ack whose resolution a test can observe. Like the Ack it
// wraps, it starts with one hold for its creator.
type Ack struct {
	*entry.Ack
	resolved atomic.Bool
}

// NewAck returns an Ack holding one reference for its creator.
func NewAck() *Ack {
	a := &Ack{}
	a.Ack = entry.NewAck(func(*entry.Ack) { a.resolved.Store(true) })
	return a
}

// Resolved reports whether every reference has been released: every entry
// that carried the Ack was confirmed, and its creator let go.
func (a *Ack) Resolved() bool { return a.resolved.Load() }
