// Package sink defines what a destination of log entries implements and how
// it reports the outcome of one delivery attempt.
//
// A Sink makes exactly one attempt per Send call. Retries, backoff, batching
// and acknowledgement live in the pipeline that owns the batch, so a sink
// never starts goroutines per request or per retry.
package sink

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/wharf-logs/wharf/internal/entry"
)

// Sink delivers batches of entries somewhere.
//
// Send is called by one goroutine per shard; a sink with Shards() > 1 must be
// safe for concurrent Send calls on different batches. The pipeline guarantees
// that entries of one stream are never in two concurrent Sends.
type Sink interface {
	// Name is a short, stable name used in metrics and logs ("loki", "file").
	Name() string
	// Send makes one attempt to deliver b. It returns nil when the whole batch
	// was accepted; a *RetryableError when the same batch may be sent again;
	// a *MisconfiguredError when the receiver refused it for a reason no
	// batch can change, to be sent again once that is fixed; a
	// *TooLargeError when the batch may be sent again in smaller parts; or
	// any other error when the batch is final and must not be resent (see
	// *RejectedError).
	Send(ctx context.Context, b *entry.Batch) error
	// Close releases the sink's resources after the last Send has returned.
	Close() error
}

// RetryableError reports a failure after which the same batch may be sent
// again: a network error, a timeout, a rate limit or a server error.
type RetryableError struct {
	Err error
	// After is the wait the receiver asked for (Retry-After), or 0.
	After time.Duration
	// RateLimited is set when the receiver is up but asks for less: a
	// probe (see Prober) cannot tell when it will take more, so the wait
	// is not cut short by one.
	RateLimited bool
}

func (e *RetryableError) Error() string { return e.Err.Error() }
func (e *RetryableError) Unwrap() error { return e.Err }

// Retryable wraps err as retryable after the given wait (0 for none).
func Retryable(err error, after time.Duration) error {
	return &RetryableError{Err: err, After: after}
}

// MisconfiguredError reports that the receiver refused a batch for a
// reason of configuration, its own or the sender's, that no change to the
// batch can fix: credentials or tenant refused (HTTP 401, 403), a wrong URL
// or method (404, 405), a redirect. Nothing of the batch was taken, so it is
// kept and sent again, unchanged, once the receiver accepts it; meanwhile
// the sink is down and must be reported as misconfigured, naming URL and
// Status.
type MisconfiguredError struct {
	Err error
	// URL is the receiver's, without credentials.
	URL string
	// Status is the HTTP status of the answer, or 0.
	Status int
}

func (e *MisconfiguredError) Error() string { return e.Err.Error() }
func (e *MisconfiguredError) Unwrap() error { return e.Err }

// TooLargeError reports that the receiver refused a batch for its size
// (HTTP 413, often a proxy's body limit). Nothing of it was taken, so its
// entries may be sent again in smaller batches; a single entry refused so
// is too large for the receiver.
type TooLargeError struct {
	Err error
}

func (e *TooLargeError) Error() string { return e.Err.Error() }
func (e *TooLargeError) Unwrap() error { return e.Err }

// RejectedError reports that the receiver refused a batch for good. The
// receiver may have accepted part of it (Loki's partial success), so the batch
// must never be resent.
type RejectedError struct {
	Err error
	// Reason is the dominant reason, a short metric label value such as
	// "too_old", "line_too_long" or "invalid".
	Reason string
	// Rejected counts entries the receiver reported as rejected, by reason.
	// When nil, every entry of the batch is counted under Reason.
	Rejected map[string]int
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("%v (reason %s)", e.Err, e.Reason)
}
func (e *RejectedError) Unwrap() error { return e.Err }

// IsRetryable reports whether err allows resending the batch, and the wait
// the receiver asked for.
func IsRetryable(err error) (bool, time.Duration) {
	var r *RetryableError
	if errors.As(err, &r) {
		return true, r.After
	}
	return false, 0
}

// Prober is implemented by sinks that can ask the receiver, with a request
// that carries no entries, whether a Send would get through now: it goes
// the way a Send goes (same URL, credentials, tenant) at a fraction of the
// cost. The pipeline probes while a batch waits out a long retry wait, so
// that delivery resumes within seconds of the receiver taking requests
// again, without sending the whole batch at that pace to a receiver that is
// down. Probe returns nil when the receiver took the request, or an error
// classified as Send's are. It is safe for concurrent use.
//
// A receiver may take a probe and still refuse a Send (Loki's distributor
// answers an empty push without asking its ingesters), so a successful probe
// is a hint, not a promise; the pipeline stops trusting it when it misled.
type Prober interface {
	Probe(ctx context.Context) error
}

// Sharded is implemented by sinks that accept concurrent Sends. The pipeline
// spreads streams over Shards() goroutines by stream hash.
type Sharded interface {
	Shards() int
}

// Preparer is implemented by sinks that check or adjust each entry before it
// is batched, to keep entries out of a request that would certainly be
// refused (too old, too far in the future, too long). Prepare may replace
// e.Line with a new slice but must never modify the bytes of the old one,
// which other sinks share. It returns "" to keep the entry, or the reason it
// must be dead-lettered instead of sent.
type Preparer interface {
	Prepare(e *entry.Entry, now time.Time) (dropReason string)
}

// Stager is implemented by sinks that can do the work of a Send ahead of the
// attempt, so the pipeline encodes a batch while the one before it is still
// in flight and a stream's batches still go out one at a time, in order.
// Stage does that work on b and returns send, which makes one attempt as
// Send would (the pipeline calls it again to retry), and release, called
// once when b is done with; b is not modified in between.
type Stager interface {
	Stage(b *entry.Batch) (send func(ctx context.Context) error, release func())
}
