// Package backoff is how wharf waits between attempts: an exponential
// policy with jitter, and a sleep that ends with its context. Retries stay in
// the loop that owns the work (a sink's shard, a Docker reader, the disk
// queue's appender); this package only says how long, and waits.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Policy is an exponential backoff: the wait before retry n (from 0) doubles
// from Min and stops growing at Max. The zero Policy waits 0. A Policy is a
// value; it is safe for concurrent use.
type Policy struct {
	Min time.Duration
	Max time.Duration
}

// Step returns the n-th wait without jitter: Min doubled n times, at most
// Max (and Max when Max is below Min).
func (p Policy) Step(n int) time.Duration {
	d := p.Min
	for i := 0; i < n && d > 0 && d < p.Max; i++ {
		if d > p.Max/2 {
			d = p.Max // doubling would pass Max, or overflow
			break
		}
		d *= 2
	}
	return min(d, p.Max)
}

// Wait returns the n-th wait with jitter: a random duration in [d/2, d] for
// d = Step(n), so that clients which failed together do not all retry
// together.
func (p Policy) Wait(n int) time.Duration {
	d := p.Step(n)
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d/2+1)
}

// Sleep blocks for d and reports true, or returns false as soon as ctx ends.
// It leaves no timer or goroutine behind.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
