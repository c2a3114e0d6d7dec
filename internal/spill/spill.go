// Package spill decides where a sink's entries wait: in memory while the
// sink keeps up, in its disk queue while it falls behind. A [Spool] owns
// that decision and everything on the disk side of it: the queue, the
// record codec, the replay of queued records into memory, and their commits
// in order as the sink confirms them. The pipeline submits to the Spool and
// gives it the sink's memory (its shards) to feed, so entries flow one way:
// pipeline -> Spool -> (memory | queue -> memory) -> shards -> sink.
//
// The queue is in the path only while the sink falls behind. Entries go to
// memory while it has room. When it stays full for Config.After, the Spool
// starts spilling: from then on every submission is appended to the queue
// (and confirmed to its source once fsynced), while the replayer reads the
// queue in order and pushes to memory as it drains. When the replayer has
// pushed everything queued, the next submission goes to memory again.
// Everything in memory is older than everything in the queue, and the queue
// is read in order, so each stream is still sent oldest first; a queue left
// by a previous run is replayed before anything new.
//
// Spilling only on stall, rather than writing everything through the queue
// as Prometheus' and Alloy's write-ahead logs do, is a measured choice
// (docs/benchmarks.md, 2026-12-07): reading a 1 GiB json-file on one core
// (bench/readbench), wharf took a median 5.07 CPU-s per GiB writing through
// against 3.05 spilling on stall, and read 106 MiB/s against 191. Writing
// through was faster only where a second core took the queue's work
// (BenchmarkDelivery, at 1.6 to 1.8 times the CPU), and it would hold
// sources back while the queue's disk fails with the sink healthy.
package spill

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wharf-logs/wharf/internal/backoff"
	"github.com/wharf-logs/wharf/internal/entry"
	"github.com/wharf-logs/wharf/internal/queue"
	"github.com/wharf-logs/wharf/internal/ratelog"
)

// Memory is the in-memory buffer of one sink that a Spool feeds.
type Memory interface {
	// Push hands entries over, waiting for room. It fails only when ctx
	// ends or the memory no longer takes entries.
	Push(ctx context.Context, entries []entry.Entry) error
	// WaitRoom reports whether there is room for a push, waiting up to
	// wait for it (not at all when wait <= 0) or until ctx ends.
	WaitRoom(ctx context.Context, wait time.Duration) bool
}

// Config configures a Spool.
type Config struct {
	// Name is the sink's, for logs and metric labels.
	Name string
	// Queue is the sink's disk queue. The Spool owns it from New on: Run
	// runs its group commits and closes it.
	Queue *queue.Queue
	// After is how long a submission waits for room in memory before it
	// goes to the queue: a sink that is only busy frees room within it,
	// and its sources then wait for it instead of paying for a round trip
	// through the disk. Zero or negative spills at once.
	After time.Duration
}

// Deps are a Spool's collaborators; all are required.
type Deps struct {
	Memory  Memory
	Logger  *slog.Logger
	Metrics *Metrics
	// Dropped counts records that cannot be decoded (reason
	// queue_corrupt): the pipeline's wharf_entries_dropped_total curried
	// with the sink.
	Dropped *prometheus.CounterVec
	// QueueErrors counts failed appends to the queue (kind write):
	// wharf_source_errors_total curried with source="queue".
	QueueErrors *prometheus.CounterVec
	Warn        *ratelog.Limiter
}

// Spool is one sink's spill path: it owns the sink's disk queue, decides
// for each submission between memory and the queue, replays the queue into
// memory and commits its records in order. Submit and Stop are safe from any
// goroutine (submissions take turns); Run is called once, and owns the
// replayer and the queue's group commits.
type Spool struct {
	cfg  Config
	deps Deps
	q    *queue.Queue

	// sem serialises submissions; spilling and enc are guarded by it.
	sem      chan struct{}
	spilling bool
	enc      []byte
	// replayedTo is the queue position after the last record the replayer
	// pushed to memory.
	replayedTo atomic.Int64
	// commits commits records in order as their entries are confirmed,
	// whatever order the sink confirms them in.
	commits *entry.Ordered[int64]

	stopping context.Context // done once Stop is called
	stop     context.CancelFunc
}

// ErrClosed is returned by Submit once Run has closed the queue.
var ErrClosed = errors.New("spill: closed")

// queueRetry spaces the attempts to write a failing disk queue: 1 s doubling
// to 10 s, without jitter (there is one appender per queue).
var queueRetry = backoff.Policy{Min: time.Second, Max: 10 * time.Second}

// errQueueWrite reports an append to the disk queue that failed and may be
// retried.
var errQueueWrite = errors.New("spill: disk queue write failed")

// New returns a Spool for cfg.Queue. It starts nothing. What a previous run
// left in the queue goes to memory before anything submitted.
func New(cfg Config, deps Deps) *Spool {
	s := &Spool{cfg: cfg, deps: deps, q: cfg.Queue, sem: make(chan struct{}, 1)}
	s.spilling = !s.q.Empty()
	s.replayedTo.Store(s.q.Cursor())
	s.commits = entry.NewOrdered(s.q.Commit)
	s.stopping, s.stop = context.WithCancel(context.Background())
	return s
}

// Submit hands entries to memory or appends them to the queue. It blocks
// while memory is full and the spool is not spilling (up to After), while
// the queue is full, and while the queue cannot be written (retrying, so the
// source pauses instead of losing entries). It returns ctx.Err() if ctx ends
// first, the memory's error, or ErrClosed; entries not handed off then are
// never confirmed. Entries appended to the queue are confirmed for this sink
// once fsynced.
func (s *Spool) Submit(ctx context.Context, entries []entry.Entry) error {
	for attempt := 0; ; attempt++ {
		select {
		case s.sem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		n, err := s.submitOnce(ctx, entries)
		<-s.sem
		if !errors.Is(err, errQueueWrite) {
			return err
		}
		// Each attempt looks again whether the replayer has caught up, and
		// then goes to memory.
		entries = entries[n:]
		if !backoff.Sleep(ctx, queueRetry.Step(attempt)) {
			return ctx.Err()
		}
	}
}

// submitOnce sends entries to memory or appends them to the queue, holding
// sem. On errQueueWrite the first n entries were queued.
func (s *Spool) submitOnce(ctx context.Context, entries []entry.Entry) (n int, err error) {
	if s.spilling && s.replayIdle() {
		// Everything queued is in memory already, so new entries may
		// follow it there (also when the queue can no longer be written:
		// the source is then held back only until the sink has taken what
		// was queued).
		s.spilling = false
		s.deps.Logger.Info("sink caught up; disk queue drained", "sink", s.cfg.Name)
	}
	if !s.spilling && s.deps.Memory.WaitRoom(ctx, s.cfg.After) {
		// Only the holder of sem pushes while not spilling, and the
		// replayer is idle, so the room just seen is still there.
		return len(entries), s.deps.Memory.Push(ctx, entries)
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if !s.spilling {
		s.spilling = true
		s.deps.Logger.Info("sink is falling behind; queueing to disk until it catches up", "sink", s.cfg.Name)
	}
	return s.append(ctx, entries)
}

// replayIdle reports whether the replayer has pushed to memory every record
// in the queue: none is unread, and none is between Next and Push.
func (s *Spool) replayIdle() bool {
	return s.q.Empty() && s.replayedTo.Load() >= s.q.Cursor()
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

// append appends entries to the queue as one record and returns how many it
// appended. They are confirmed (for this sink) once the record is fsynced. A
// disk error returns errQueueWrite: Submit retries, pausing the source,
// rather than falling back to memory, which would put new entries ahead of
// queued ones.
func (s *Spool) append(ctx context.Context, entries []entry.Entry) (int, error) {
	s.enc = queue.AppendEntries(s.enc[:0], entries)
	runs := ackRuns(entries)
	m := s.deps.Metrics
	n := len(entries)
	durable := func(err error) {
		if err != nil {
			// The record may not survive a crash: leave its entries
			// unconfirmed, so the source reads them again after a restart.
			s.deps.Warn.Warn("queue-sync:"+s.cfg.Name, "disk queue fsync failed; queued entries stay unconfirmed", "sink", s.cfg.Name, "error", err)
			return
		}
		for _, r := range runs {
			r.ack.Done(r.n)
		}
	}
	err := s.q.Append(ctx, s.enc, durable)
	switch {
	case err == nil:
		m.EntriesWritten.WithLabelValues(s.cfg.Name).Add(float64(n))
		return n, nil
	case ctx.Err() != nil:
		return 0, ctx.Err()
	case errors.Is(err, queue.ErrClosed):
		return 0, ErrClosed
	case errors.Is(err, queue.ErrTooLarge) && len(entries) > 1:
		half := len(entries) / 2
		done, err := s.append(ctx, entries[:half])
		if err != nil {
			return done, err
		}
		done, err = s.append(ctx, entries[half:])
		return half + done, err
	}
	s.deps.QueueErrors.WithLabelValues("write").Inc()
	s.deps.Warn.Warn("queue-write:"+s.cfg.Name, "cannot write the disk queue; reading pauses until it can", "sink", s.cfg.Name, "error", err)
	return 0, errQueueWrite
}

// Stop ends the replay: what is still queued stays there for the next
// start, and memory can drain. Submissions may go on until Run has returned.
// Stop is safe from any goroutine, at any time, more than once.
func (s *Spool) Stop() { s.stop() }

// Run replays the queue into memory until Stop is called or ctx ends, and
// runs the queue's group commits until ctx ends; then it makes a last group
// commit, closes the queue (saving its head) and returns. The caller ends
// ctx once memory has stopped confirming entries, so that what it confirmed
// is saved. Run owns its two goroutines and returns after both have exited.
func (s *Spool) Run(ctx context.Context) {
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopReplay := context.AfterFunc(s.stopping, cancel)
	defer stopReplay()
	var commits sync.WaitGroup
	commits.Go(func() { s.q.Run(ctx) })
	s.replay(rctx)
	commits.Wait()
	if err := s.q.Close(); err != nil {
		s.deps.Logger.Error("closing the disk queue", "sink", s.cfg.Name, "error", err)
	}
}

// replay feeds memory from the queue until ctx ends.
func (s *Spool) replay(ctx context.Context) {
	var dec queue.Decoder
	m := s.deps.Metrics
	for {
		payload, end, err := s.q.Next(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, queue.ErrClosed) {
				return
			}
			s.deps.Warn.Warn("queue-read:"+s.cfg.Name, "cannot read the disk queue", "sink", s.cfg.Name, "error", err)
			if !backoff.Sleep(ctx, time.Second) {
				return
			}
			continue
		}
		entries, err := dec.Decode(payload)
		ack := s.commits.Mark(end)
		if err != nil {
			s.deps.Dropped.WithLabelValues("queue_corrupt").Inc()
			s.deps.Warn.Warn("queue-corrupt:"+s.cfg.Name, "skipping an undecodable disk queue record", "sink", s.cfg.Name, "error", err)
			ack.Done(1)
			s.replayedTo.Store(end)
			continue
		}
		for i := range entries {
			entries[i].Ack = ack
		}
		ack.Add(len(entries))
		m.EntriesReplayed.WithLabelValues(s.cfg.Name).Add(float64(len(entries)))
		if err := s.deps.Memory.Push(ctx, entries); err != nil {
			return // left uncommitted: replayed again next time
		}
		ack.Done(1)
		s.replayedTo.Store(end) // the next submission may go to memory: see replayIdle
	}
}
