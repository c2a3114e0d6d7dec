package pipeline

import (
	"context"
	"errors"
	"time"

	"github.com/wharf-logs/wharf/internal/backoff"
	"github.com/wharf-logs/wharf/internal/entry"
	"github.com/wharf-logs/wharf/internal/queue"
)

// The disk queue is in the path only while a sink falls behind. Entries go
// to memory while the sink's shards have room. When one is full, the output
// starts spilling: from then on every submission is appended to the queue
// (and confirmed to its source once fsynced), while a replayer reads the
// queue in order and feeds the shards as they drain. When the replayer has
// pushed everything queued, the next submission goes back to memory. Everything in memory is older
// than everything in the queue, and the queue is read in order, so each
// stream is still sent oldest first; a queue left by a previous run is
// replayed before anything new.

// submitQueued submits to an output that has a disk queue. When the queue
// cannot be written it retries, pausing the source; each attempt looks
// again whether the replayer has caught up, and then goes to memory.
func (o *output) submitQueued(ctx context.Context, entries []entry.Entry) error {
	for attempt := 0; ; attempt++ {
		select {
		case o.sem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		n, err := o.submitOnce(ctx, entries)
		<-o.sem
		if !errors.Is(err, errQueueWrite) {
			return err
		}
		entries = entries[n:]
		if !backoff.Sleep(ctx, queueRetry.Step(attempt)) {
			return ctx.Err()
		}
	}
}

// queueRetry spaces the attempts to write a failing disk queue: 1 s doubling
// to 10 s, without jitter (there is one appender per queue).
var queueRetry = backoff.Policy{Min: time.Second, Max: 10 * time.Second}

// errQueueWrite reports an append to the disk queue that failed and may be
// retried.
var errQueueWrite = errors.New("pipeline: disk queue write failed")

// submitOnce sends entries to memory or appends them to the queue, holding
// sem. On errQueueWrite the first n entries were queued.
func (o *output) submitOnce(ctx context.Context, entries []entry.Entry) (n int, err error) {
	if o.spilling && o.replayIdle() {
		// Everything queued is in the shards already, so new entries
		// may follow it through memory (also when the queue can no longer
		// be written: the source is then held back only until the sink
		// has taken what was queued).
		o.spilling = false
		o.p.deps.Logger.Info("sink caught up; disk queue drained", "sink", o.name)
	}
	if !o.spilling && o.waitRoom(ctx) {
		// Only the holder of sem pushes while not spilling, and the
		// replayer is idle, so the room just seen is still there.
		return len(entries), o.push(ctx, entries)
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if !o.spilling {
		o.spilling = true
		o.p.deps.Logger.Info("sink is falling behind; queueing to disk until it catches up", "sink", o.name)
	}
	return o.spill(ctx, entries)
}

// replayIdle reports whether the replayer has pushed to the shards every
// record in the queue: none is unread, and none is between Next and push.
func (o *output) replayIdle() bool {
	return o.Queue.Empty() && o.replayedTo.Load() >= o.Queue.Cursor()
}

// waitRoom reports whether every shard has room, waiting up to SpillAfter
// for full ones to send.
func (o *output) waitRoom(ctx context.Context) bool {
	wait := o.SpillAfter
	if wait == 0 {
		wait = DefaultSpillAfter
	}
	var deadline time.Time
	for _, s := range o.shards {
		if s.bufferedBytes() < s.max {
			continue
		}
		if wait < 0 {
			return false
		}
		if deadline.IsZero() {
			deadline = time.Now().Add(wait)
		}
		if !s.waitSpace(ctx, deadline) {
			return false
		}
	}
	return true
}

// ackRun is a run of entries sharing an Ack.
type ackRun struct {
	ack *entry.Ack
	n   int
}

func ackRuns(entries []entry.Entry) []ackRun {
	var runs []ackRun
	for i := range entries {
		if a := entries[i].Ack; a != nil {
			if k := len(runs) - 1; k >= 0 && runs[k].ack == a {
				runs[k].n++
			} else {
				runs = append(runs, ackRun{a, 1})
			}
		}
	}
	return runs
}

// spill appends entries to the queue and returns how many it appended. They
// are confirmed (for this sink) once the record is fsynced. A disk error
// returns errQueueWrite: the caller retries, pausing the source, rather than
// falling back to memory, which would put new entries ahead of queued ones.
func (o *output) spill(ctx context.Context, entries []entry.Entry) (int, error) {
	o.enc = queue.AppendEntries(o.enc[:0], entries)
	runs := ackRuns(entries)
	m := o.p.deps.Metrics
	n := len(entries)
	durable := func(err error) {
		if err != nil {
			// The record may not survive a crash: leave its entries
			// unconfirmed, so the source reads them again after a restart.
			o.p.warn.Warn("queue-sync:"+o.name, "disk queue fsync failed; queued entries stay unconfirmed", "sink", o.name, "error", err)
			return
		}
		for _, r := range runs {
			r.ack.Done(r.n)
		}
	}
	err := o.Queue.Append(ctx, o.enc, durable)
	switch {
	case err == nil:
		m.QueuedEntries.WithLabelValues(o.name).Add(float64(n))
		return n, nil
	case ctx.Err() != nil:
		return 0, ctx.Err()
	case errors.Is(err, queue.ErrClosed):
		return 0, errClosed
	case errors.Is(err, queue.ErrTooLarge) && len(entries) > 1:
		half := len(entries) / 2
		done, err := o.spill(ctx, entries[:half])
		if err != nil {
			return done, err
		}
		done, err = o.spill(ctx, entries[half:])
		return half + done, err
	}
	m.SourceErrors.WithLabelValues("queue", "write").Inc()
	o.p.warn.Warn("queue-write:"+o.name, "cannot write the disk queue; reading pauses until it can", "sink", o.name, "error", err)
	return 0, errQueueWrite
}

// replay feeds the shards from the queue until ctx ends.
func (o *output) replay(ctx context.Context) {
	var dec queue.Decoder
	m := o.p.deps.Metrics
	for {
		payload, end, err := o.Queue.Next(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, queue.ErrClosed) {
				return
			}
			o.p.warn.Warn("queue-read:"+o.name, "cannot read the disk queue", "sink", o.name, "error", err)
			if !backoff.Sleep(ctx, time.Second) {
				return
			}
			continue
		}
		entries, err := dec.Decode(payload)
		ack := o.commits.Mark(end)
		if err != nil {
			m.EntriesDropped.WithLabelValues(o.name, "queue_corrupt").Inc()
			o.p.warn.Warn("queue-corrupt:"+o.name, "skipping an undecodable disk queue record", "sink", o.name, "error", err)
			ack.Done(1)
			o.replayedTo.Store(end)
			continue
		}
		for i := range entries {
			entries[i].Ack = ack
		}
		ack.Add(len(entries))
		m.ReplayedEntries.WithLabelValues(o.name).Add(float64(len(entries)))
		if err := o.push(ctx, entries); err != nil {
			return // left uncommitted: replayed again next time
		}
		ack.Done(1)
		o.replayedTo.Store(end) // the next submission may go to memory: see replayIdle
	}
}
