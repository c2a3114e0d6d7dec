// Package pipeline carries entries from sources to sinks: a byte-bounded
// buffer per sink, batching by size and age, delivery with retries, and the
// confirmations that flow back to sources.
//
// Each sink gets a number of shards (one, or the sink's Shards()); a stream
// always goes to the same shard, and each shard is one goroutine that sends
// one batch at a time, so a stream is never in two requests at once and its
// entries are sent oldest first. Retries are a timer in that goroutine, and
// so are the probes that end a long retry wait once the receiver is back:
// the number of goroutines is fixed by configuration, never by traffic.
//
// Only a sink's final refusal (sink.RejectedError: Loki's 400) gives a batch
// up, to the dead-letter file. A receiver that refuses the sink as
// misconfigured (wrong credentials or URL) is retried like one that is down,
// with the sink reported as misconfigured; a batch too large for the
// receiver is sent in halves.
//
// When a sink's buffer is full, Submit blocks: sources pause and stop
// reading (backpressure); nothing is dropped for lack of room. A sink with a
// disk queue submits through its spill.Spool instead, which sends entries to
// the disk while the buffer stays full and feeds them back in order.
package pipeline

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wharf-logs/wharf/internal/backoff"
	"github.com/wharf-logs/wharf/internal/entry"
	"github.com/wharf-logs/wharf/internal/queue"
	"github.com/wharf-logs/wharf/internal/ratelog"
	"github.com/wharf-logs/wharf/internal/sink"
	"github.com/wharf-logs/wharf/internal/source"
	"github.com/wharf-logs/wharf/internal/spill"
	"golang.org/x/sync/errgroup"
)

// Output configures how entries reach one sink.
type Output struct {
	Sink sink.Sink
	// MaxBytes bounds the entries buffered for this sink, over all shards.
	MaxBytes int64
	// BatchBytes and BatchWait close a batch when its lines reach BatchBytes
	// or its first entry has waited BatchWait.
	BatchBytes int
	BatchWait  time.Duration
	// MinBackoff and MaxBackoff bound the wait between retries of a batch.
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// Queue, when set, takes entries while the sink falls behind, so
	// sources keep reading through an outage. The pipeline hands it to the
	// sink's spill.Spool, which decides memory or disk, and which runs and
	// closes it.
	Queue *queue.Queue
	// SpillAfter is how long a submission waits for room in memory before
	// it goes to the queue: a sink that is only busy frees room within it,
	// and its sources then wait for it instead of paying for a round trip
	// through the disk. 0 means DefaultSpillAfter; negative spills at once.
	SpillAfter time.Duration
	// ProbeEvery is how often a sink.Prober is probed while a batch waits
	// out a retry wait longer than this, so that delivery resumes within
	// about ProbeEvery of the receiver taking requests again however long
	// the wait has grown. 0 means DefaultProbeEvery.
	ProbeEvery time.Duration
}

// DefaultSpillAfter is Output.SpillAfter's default.
const DefaultSpillAfter = time.Second

// DefaultProbeEvery is Output.ProbeEvery's default: delivery resumes within
// about two seconds of the receiver coming back, and a receiver that is down
// gets at most about one small request a second from a sink however many
// shards it has, besides each shard's batch at the pace of the backoff.
const DefaultProbeEvery = 2 * time.Second

// reasonTooLarge is the reason an entry is dead-lettered under when the
// receiver refuses it for its size (sink.TooLargeError) on its own.
const reasonTooLarge = "too_large"

// DeadLetterer records entries a sink refused for good, or that were never
// sent because they would certainly be refused.
type DeadLetterer interface {
	DeadLetter(sinkName, reason string, cause error, entries []entry.Entry) error
}

// Deps are the pipeline's collaborators.
type Deps struct {
	Logger *slog.Logger
	// Metrics are what the pipeline counts; Spill what the spools of the
	// outputs with a disk queue count. Fresh ones, registered nowhere,
	// when nil.
	Metrics *Metrics
	Spill   *spill.Metrics
	// QueueErrors counts failed disk queue writes, by kind: the sources'
	// wharf_source_errors_total curried with source="queue". Fresh, and
	// registered nowhere, when nil.
	QueueErrors *prometheus.CounterVec
	DeadLetter  DeadLetterer // may be nil: refused entries are then only counted and logged
	Now         func() time.Time
}

// Pipeline is safe for concurrent Submit calls from any number of sources.
type Pipeline struct {
	outs []*output
	deps Deps
	warn *ratelog.Limiter
	// alarm logs that a sink is misconfigured, once a minute: an operator
	// must act, and the line must neither flood the log nor be missed.
	alarm *ratelog.Limiter
}

// New returns a pipeline delivering to outs. It starts nothing; Run does.
func New(outs []Output, deps Deps) (*Pipeline, error) {
	if len(outs) == 0 {
		return nil, errors.New("pipeline: no sinks")
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Metrics == nil {
		deps.Metrics = NewMetrics()
	}
	if deps.Spill == nil {
		deps.Spill = spill.NewMetrics()
	}
	if deps.QueueErrors == nil {
		deps.QueueErrors = source.NewMetrics().Errors.MustCurryWith(prometheus.Labels{"source": "queue"})
	}
	p := &Pipeline{deps: deps, warn: ratelog.New(deps.Logger, 10*time.Second), alarm: ratelog.New(deps.Logger, time.Minute)}
	for _, o := range outs {
		if o.Sink == nil || o.MaxBytes <= 0 || o.BatchBytes <= 0 || o.BatchWait <= 0 || o.MinBackoff <= 0 || o.MaxBackoff < o.MinBackoff {
			return nil, errors.New("pipeline: output needs a sink, positive sizes, a batch wait and backoffs")
		}
		n := 1
		if s, ok := o.Sink.(sink.Sharded); ok && s.Shards() > 1 {
			n = s.Shards()
		}
		if o.ProbeEvery <= 0 {
			o.ProbeEvery = DefaultProbeEvery
		}
		out := &output{Output: o, p: p, name: o.Sink.Name(), retry: backoff.Policy{Min: o.MinBackoff, Max: o.MaxBackoff}}
		out.prep, _ = o.Sink.(sink.Preparer)
		out.prober, _ = o.Sink.(sink.Prober)
		for range n {
			out.shards = append(out.shards, newShard(out, max(1, o.MaxBytes/int64(n))))
		}
		if o.Queue != nil {
			after := o.SpillAfter
			if after == 0 {
				after = DefaultSpillAfter
			}
			out.spool = spill.New(spill.Config{Name: out.name, Queue: o.Queue, After: after}, spill.Deps{
				Memory:      out.shards,
				Logger:      deps.Logger,
				Metrics:     deps.Spill,
				Dropped:     deps.Metrics.EntriesDropped.MustCurryWith(prometheus.Labels{"sink": out.name}),
				QueueErrors: deps.QueueErrors,
				Warn:        p.warn,
			})
		}
		deps.Metrics.SinkUp.WithLabelValues(out.name).Set(1)
		p.outs = append(p.outs, out)
	}
	return p, nil
}

// Submit hands entries to every sink. It blocks while a sink's buffer is
// full and returns ctx.Err() if ctx ends first; entries not handed off then
// are never confirmed, so their source does not advance past them.
//
// Each entry's Ack gets one reference per sink before Submit returns (or
// fails); the caller keeps its own hold on the Ack and releases it after
// Submit. The pipeline owns entries from the call on; the caller must not
// modify them or their lines, but may reuse the slice itself.
func (p *Pipeline) Submit(ctx context.Context, entries []entry.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	addAcks(entries, len(p.outs))
	for _, o := range p.outs {
		if err := o.submit(ctx, entries); err != nil {
			return err
		}
	}
	return nil
}

// addAcks adds n references per entry to their Acks, once per run of
// entries sharing an Ack.
func addAcks(entries []entry.Entry, n int) {
	var cur *entry.Ack
	k := 0
	for i := range entries {
		if a := entries[i].Ack; a != cur {
			if cur != nil {
				cur.Add(k * n)
			}
			cur, k = a, 0
		}
		k++
	}
	if cur != nil {
		cur.Add(k * n)
	}
}

// Close tells the pipeline no more entries will be submitted: Run sends what
// is buffered without waiting for batches to fill, then returns.
func (p *Pipeline) Close() {
	p.stopReplays()
	for _, o := range p.outs {
		for _, s := range o.shards {
			s.close()
		}
	}
}

// Run delivers entries until Close has been called and everything buffered
// has been delivered (it then returns nil), or until ctx ends (it returns
// ctx.Err(), abandoning what is left unconfirmed). It owns one goroutine per
// shard and returns only after all have exited.
//
// With disk queues it also runs each output's spill.Spool (its replay and
// group commits); queues are closed (head saved) before Run returns.
func (p *Pipeline) Run(ctx context.Context) error {
	// Spools make a last group commit after the shards have stopped, even
	// when ctx ended: what the shards confirmed must be saved.
	sctx, stopSpools := context.WithCancel(context.WithoutCancel(ctx))
	var spools sync.WaitGroup
	for _, o := range p.outs {
		if o.spool != nil {
			spools.Go(func() { o.spool.Run(sctx) })
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, o := range p.outs {
		for _, s := range o.shards {
			g.Go(func() error { return s.run(gctx) })
		}
	}
	err := g.Wait()
	p.stopReplays() // when ctx ended; after Close they have stopped already
	stopSpools()
	spools.Wait()
	return err
}

// stopReplays stops feeding the shards from the disk queues.
func (p *Pipeline) stopReplays() {
	for _, o := range p.outs {
		if o.spool != nil {
			o.spool.Stop()
		}
	}
}

// Failure is a sink whose last delivery attempt failed.
type Failure struct {
	Sink string
	// Misconfigured is the last error of a receiver refusing the sink as
	// misconfigured (wrong credentials or URL, say); nil when the sink
	// fails otherwise (the receiver down, overloaded or unreachable).
	Misconfigured *sink.MisconfiguredError
}

// Failing reports the sinks whose last delivery attempt failed.
func (p *Pipeline) Failing() []Failure {
	var out []Failure
	for _, o := range p.outs {
		failing := false
		var mis *sink.MisconfiguredError
		for _, s := range o.shards {
			since, m := s.failing()
			failing = failing || since != 0
			if mis == nil {
				mis = m
			}
		}
		if failing {
			out = append(out, Failure{Sink: o.name, Misconfigured: mis})
		}
	}
	return out
}

// BufferedBytes is the sum of bytes buffered for all sinks.
func (p *Pipeline) BufferedBytes() int64 {
	var n int64
	for _, o := range p.outs {
		n += o.bufferedBytes()
	}
	return n
}

type output struct {
	Output
	p      *Pipeline
	name   string
	prep   sink.Preparer
	prober sink.Prober // nil when the sink cannot be probed
	shards memory
	retry  backoff.Policy // waits between attempts of a batch

	// The last probe, whose answer the output's shards share for half a
	// probe period.
	probeMu  sync.Mutex
	probedAt time.Time
	probeErr error
	// spool, with a disk queue, decides whether submissions go to the
	// shards or to the queue, and feeds the shards from the queue.
	spool *spill.Spool
}

func (o *output) submit(ctx context.Context, entries []entry.Entry) error {
	if o.spool == nil {
		return o.shards.Push(ctx, entries)
	}
	err := o.spool.Submit(ctx, entries)
	if errors.Is(err, spill.ErrClosed) {
		return errClosed
	}
	return err
}

func (o *output) bufferedBytes() int64 {
	var n int64
	for _, s := range o.shards {
		n += s.bufferedBytes()
	}
	return n
}

// memory is an output's shards taken as one buffer: what Submit pushes to
// when the output has no disk queue, and otherwise the spill.Memory its
// Spool feeds. Push and WaitRoom are safe from any goroutine.
type memory []*shard

// Push hands entries to their shards, waiting for room; see shard.push.
func (m memory) Push(ctx context.Context, entries []entry.Entry) error {
	if len(m) == 1 {
		return m[0].push(ctx, entries)
	}
	parts := make([][]entry.Entry, len(m))
	for i := range entries {
		k := entries[i].Stream.Hash % uint64(len(m))
		parts[k] = append(parts[k], entries[i])
	}
	for k, part := range parts {
		if len(part) == 0 {
			continue
		}
		if err := m[k].push(ctx, part); err != nil {
			return err
		}
	}
	return nil
}

// WaitRoom reports whether every shard has room, waiting up to wait for
// full ones to send (not at all when wait <= 0).
func (m memory) WaitRoom(ctx context.Context, wait time.Duration) bool {
	var deadline time.Time
	for _, s := range m {
		if s.bufferedBytes() < s.max {
			continue
		}
		if wait <= 0 {
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

var errClosed = errors.New("pipeline: closed")

// maxRetryAfter caps the wait a receiver may ask for with Retry-After.
const maxRetryAfter = time.Hour

// shard is one sequential sender for a subset of a sink's streams, with its
// own bounded FIFO of entry slices fed by Submit.
type shard struct {
	o   *output
	max int64

	mu      sync.Mutex
	queue   [][]entry.Entry
	bytes   int64
	closed  bool
	ready   chan struct{} // cap 1: wakes the sender
	space   chan struct{} // closed and replaced when room frees up
	waiters int

	oldestTime int64 // guarded by mu: oldest entry time in queue or batch
	inflight   int64 // guarded by mu: oldest entry time of a staged batch in flight
	failSince  int64 // guarded by mu
	// misconfigured is the last error of a receiver refusing the shard's
	// attempts as misconfigured, while they fail so; guarded by mu.
	misconfigured *sink.MisconfiguredError

	// trustProbes is whether a probe the receiver took means a send would
	// get through: it stops being so when a send made on a probe's word
	// fails, and is so again after a delivery. Owned by the goroutine that
	// delivers.
	trustProbes bool
}

func newShard(o *output, max int64) *shard {
	return &shard{o: o, max: max, ready: make(chan struct{}, 1), space: make(chan struct{}), trustProbes: true}
}

func sizeOf(entries []entry.Entry) int64 {
	var n int64
	for i := range entries {
		n += int64(entries[i].Size())
	}
	return n
}

// push appends entries, waiting while the shard is over budget. A push is
// admitted when the shard is below its budget, even if it overshoots, so an
// oversized slice cannot wait forever.
func (s *shard) push(ctx context.Context, entries []entry.Entry) error {
	n := sizeOf(entries)
	s.mu.Lock()
	for s.bytes >= s.max && !s.closed {
		ch := s.space
		s.waiters++
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			s.mu.Lock()
			s.waiters--
			s.mu.Unlock()
			return ctx.Err()
		}
		s.mu.Lock()
		s.waiters--
	}
	if s.closed {
		s.mu.Unlock()
		return errClosed
	}
	s.queue = append(s.queue, entries)
	s.bytes += n
	s.mu.Unlock()
	select {
	case s.ready <- struct{}{}:
	default:
	}
	return nil
}

// waitSpace waits until the shard is below its budget, and reports
// whether it is, giving up at deadline or when ctx ends.
func (s *shard) waitSpace(ctx context.Context, deadline time.Time) bool {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.bytes >= s.max && !s.closed {
		d := time.Until(deadline)
		if d <= 0 {
			return false
		}
		if timer == nil {
			timer = time.NewTimer(d)
		}
		ch := s.space
		s.waiters++
		s.mu.Unlock()
		var ok bool
		select {
		case <-ch:
			ok = true
		case <-timer.C:
		case <-ctx.Done():
		}
		s.mu.Lock()
		s.waiters--
		if !ok {
			return false
		}
	}
	return !s.closed
}

// take moves entries from the queue into b until b holds limit bytes of
// lines. It reports whether the shard is closed and empty.
func (s *shard) take(b *entry.Batch, limit int, prep func(*entry.Entry) bool) (drained bool) {
	s.mu.Lock()
	var freed int64
	for len(s.queue) > 0 && b.Bytes < limit {
		head := s.queue[0]
		i := 0
		for ; i < len(head) && b.Bytes < limit; i++ {
			freed += int64(head[i].Size())
			if prep(&head[i]) {
				b.Add(head[i])
			}
		}
		if i == len(head) {
			s.queue[0] = nil
			s.queue = s.queue[1:]
		} else {
			s.queue[0] = head[i:]
		}
	}
	s.bytes -= freed
	if freed > 0 && s.waiters > 0 {
		close(s.space)
		s.space = make(chan struct{})
	}
	s.oldestTime = b.Oldest
	if b.Entries == 0 && len(s.queue) > 0 && len(s.queue[0]) > 0 {
		s.oldestTime = s.queue[0][0].Time
	}
	drained = s.closed && len(s.queue) == 0
	s.mu.Unlock()
	return drained
}

func (s *shard) close() {
	s.mu.Lock()
	s.closed = true
	if s.waiters > 0 {
		close(s.space)
		s.space = make(chan struct{})
	}
	s.mu.Unlock()
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

func (s *shard) bufferedBytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes
}

func (s *shard) oldest() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inflight != 0 && (s.oldestTime == 0 || s.inflight < s.oldestTime) {
		return s.inflight
	}
	return s.oldestTime
}

func (s *shard) setInflight(oldest int64) {
	s.mu.Lock()
	s.inflight = oldest
	s.mu.Unlock()
}

func (s *shard) failingSince() int64 {
	since, _ := s.failing()
	return since
}

// failing returns when the shard's failing batch first failed (0 when none
// is failing) and, when the receiver refuses it as misconfigured, the last
// such error.
func (s *shard) failing() (since int64, mis *sink.MisconfiguredError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failSince, s.misconfigured
}

func (s *shard) setFailing(since int64) {
	s.mu.Lock()
	s.failSince = since
	if since == 0 {
		s.misconfigured = nil
	}
	s.mu.Unlock()
}

func (s *shard) setMisconfigured(mis *sink.MisconfiguredError) {
	s.mu.Lock()
	s.misconfigured = mis
	s.mu.Unlock()
}

// run is the shard's batching loop. With a sink.Stager the batch is
// encoded here and sent by a second goroutine (see stagedSender), so the
// next batch is built and encoded while one is in flight; otherwise each
// batch is sent here.
func (s *shard) run(ctx context.Context) error {
	o := s.o
	prep := func(e *entry.Entry) bool {
		if o.prep == nil {
			return true
		}
		reason := o.prep.Prepare(e, o.p.deps.Now())
		if reason == "" {
			return true
		}
		o.p.refuse(o.name, reason, nil, []entry.Entry{*e})
		return false
	}
	var staged *stagedSender
	if st, ok := o.Sink.(sink.Stager); ok {
		staged = newStagedSender(s, st)
		var sender sync.WaitGroup
		sender.Go(func() { staged.loop(ctx) })
		defer sender.Wait()
		defer staged.stop()
	}
	b := new(entry.Batch)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var first time.Time // when the batch got its first entry
	for {
		drained := s.take(b, o.BatchBytes, prep)
		if b.Entries > 0 && first.IsZero() {
			first = o.p.deps.Now()
			timer.Reset(o.BatchWait)
		}
		full := b.Bytes >= o.BatchBytes
		if b.Entries > 0 && (full || drained || !o.p.deps.Now().Before(first.Add(o.BatchWait))) {
			timer.Stop()
			if staged != nil {
				next, err := staged.send(ctx, b)
				if err != nil {
					return err
				}
				b = next
			} else {
				if err := s.deliver(ctx, b, func(ctx context.Context) error { return o.Sink.Send(ctx, b) }); err != nil {
					return err
				}
				b.Reset()
			}
			first = time.Time{}
			continue
		}
		if drained {
			if staged != nil {
				return staged.stop()
			}
			return nil
		}
		select {
		case <-s.ready:
		case <-timer.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// stagedSender delivers a shard's staged batches one at a time, in order,
// on its own goroutine. Two batches take turns: one in flight, the other
// being filled and staged.
type stagedSender struct {
	s      *shard
	st     sink.Stager
	jobs   chan stagedJob
	free   chan *entry.Batch
	done   chan struct{}
	err    error // set before done is closed
	closed bool
}

type stagedJob struct {
	b       *entry.Batch
	send    func(context.Context) error
	release func()
}

// newStagedSender returns a stagedSender; the shard's run starts its loop
// and waits for it.
func newStagedSender(s *shard, st sink.Stager) *stagedSender {
	t := &stagedSender{s: s, st: st, jobs: make(chan stagedJob), free: make(chan *entry.Batch, 1), done: make(chan struct{})}
	t.free <- new(entry.Batch)
	return t
}

// loop sends the batches handed to it until stop is called or a delivery
// ends with ctx.
func (t *stagedSender) loop(ctx context.Context) {
	defer close(t.done)
	for j := range t.jobs {
		err := t.s.deliver(ctx, j.b, j.send)
		j.release()
		t.s.setInflight(0)
		j.b.Reset()
		t.free <- j.b
		if err != nil {
			t.err = err
			return
		}
	}
}

// send stages b, waits for the batch before it to be done, hands b over
// and returns an empty batch to fill next.
func (t *stagedSender) send(ctx context.Context, b *entry.Batch) (*entry.Batch, error) {
	send, release := t.st.Stage(b)
	var next *entry.Batch
	select {
	case next = <-t.free:
	case <-t.done:
		release()
		return nil, t.err
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
	t.s.setInflight(b.Oldest)
	select {
	case t.jobs <- stagedJob{b, send, release}:
		return next, nil
	case <-t.done: // it failed after freeing next
		release()
		return nil, t.err
	}
}

// stop waits for the batch in flight and ends the goroutine.
func (t *stagedSender) stop() error {
	if !t.closed {
		t.closed = true
		close(t.jobs)
	}
	<-t.done
	return t.err
}

// deliver sends b until the sink accepts it or refuses it for good, waiting
// between attempts; a batch the receiver refuses for its size is sent in
// halves instead (see split), and an entry too large on its own is
// dead-lettered. It returns an error only when ctx ends; the entries not
// yet confirmed are then left unconfirmed.
//
// A receiver that refuses the batch as misconfigured (sink.
// MisconfiguredError) has taken none of it: the batch is kept and retried
// as after any other retryable failure, the sink reported down and
// misconfigured, and one line a minute logged at error level. While a
// retry wait is long, a sink.Prober is probed to end it as soon as the
// receiver takes requests again (see pause).
func (s *shard) deliver(ctx context.Context, b *entry.Batch, send func(context.Context) error) error {
	o := s.o
	m := o.p.deps.Metrics
	var rest []*entry.Batch // the parts of b still to send, in order, after a 413
	cur := b
	attempt := 0
	probed := false // the attempt was made on a probe's word, before its time
	for {
		err := send(ctx)
		if err != nil && ctx.Err() != nil {
			return ctx.Err()
		}
		var (
			mis   *sink.MisconfiguredError
			big   *sink.TooLargeError
			retry *sink.RetryableError
		)
		switch {
		case err == nil:
			if attempt > 0 {
				o.p.deps.Logger.Info("sink recovered", "sink", o.name, "attempts", attempt+1)
			}
			s.trustProbes = true
			s.setFailing(0)
			m.SinkUp.WithLabelValues(o.name).Set(1)
			m.EntriesSent.WithLabelValues(o.name).Add(float64(cur.Entries))
			m.BytesSent.WithLabelValues(o.name).Add(float64(cur.Bytes))
			cur.Ack()
		case errors.As(err, &big) && cur.Entries > 1:
			// Nothing was taken: send the entries again in two parts.
			first, second := split(cur)
			rest = append([]*entry.Batch{first, second}, rest...)
			o.p.warn.Warn("too_large:"+o.name, "batch too large for the receiver, sending it in halves; lower the batch size", "sink", o.name, "entries", cur.Entries, "bytes", cur.Bytes, "error", err)
		case errors.As(err, &big):
			s.setFailing(0)
			m.SinkUp.WithLabelValues(o.name).Set(1)
			o.p.rejected(o.name, &sink.RejectedError{Err: err, Reason: reasonTooLarge}, cur)
			cur.Ack()
		case errors.As(err, &mis) || errors.As(err, &retry):
			if probed {
				s.trustProbes = false // the probe went through, the send did not
			}
			if attempt == 0 {
				s.setFailing(o.p.deps.Now().UnixNano())
			}
			m.SinkUp.WithLabelValues(o.name).Set(0)
			m.PushRetries.WithLabelValues(o.name).Inc()
			wait, after := o.retry.Wait(attempt), time.Duration(0)
			if retry != nil && retry.After > 0 {
				// The receiver knows best when it can take the batch again;
				// only an absurd Retry-After is cut short.
				after = min(retry.After, maxRetryAfter)
				wait = max(wait, after)
			}
			s.setMisconfigured(mis)
			if mis != nil {
				o.p.alarm.Log(slog.LevelError, "misconfigured:"+o.name, "sink misconfigured: the receiver refuses wharf's requests; entries are kept and sent again once it takes them",
					"sink", o.name, "url", mis.URL, "status", mis.Status, "error", err, "entries", cur.Entries)
			} else {
				o.p.warn.Warn("retry:"+o.name, "delivery failed, will retry", "sink", o.name, "error", err, "attempt", attempt+1, "wait", wait.Round(time.Millisecond), "entries", cur.Entries)
			}
			var ok bool
			if ok, probed = s.pause(ctx, wait, after, retry == nil || !retry.RateLimited); !ok {
				return ctx.Err()
			}
			attempt++
			continue
		default:
			s.setFailing(0)
			m.SinkUp.WithLabelValues(o.name).Set(1)
			o.p.rejected(o.name, err, cur)
			cur.Ack()
		}
		// cur is confirmed, or split into rest: go on with the next part.
		if len(rest) == 0 {
			return nil
		}
		part := rest[0]
		cur, rest = part, rest[1:]
		send = func(ctx context.Context) error { return o.Sink.Send(ctx, part) }
		attempt, probed = 0, false
	}
}

// pause waits d before the next attempt of a batch and reports whether it
// did (false when ctx ended first). When the sink is a sink.Prober, probe
// is set and d is longer than the probe period, it probes the receiver
// about every period meanwhile, the first time not before after (the wait
// the receiver asked for), and ends the wait early, reporting early, when
// a probe shows the receiver taking requests again: a probe taken after one
// refused in this wait, or, while probes are trusted, any probe taken.
//
// So a receiver that stays down gets the whole batch only at the pace of the
// backoff, and a small request every period in between; the batch goes out
// within about a period of the receiver coming back.
func (s *shard) pause(ctx context.Context, d, after time.Duration, probe bool) (ok, early bool) {
	o := s.o
	if o.prober == nil || !probe || d <= o.ProbeEvery {
		return backoff.Sleep(ctx, d), false
	}
	period := backoff.Policy{Min: o.ProbeEvery, Max: o.ProbeEvery}
	end := time.Now().Add(d)
	next := max(after, period.Wait(0))
	refused := false
	for {
		left := time.Until(end)
		if next >= left {
			return backoff.Sleep(ctx, left), false
		}
		if !backoff.Sleep(ctx, next) {
			return false, false
		}
		err := o.probe(ctx)
		if ctx.Err() != nil {
			return false, false
		}
		var mis *sink.MisconfiguredError
		switch {
		case err == nil && (refused || s.trustProbes):
			return true, true
		case errors.As(err, &mis):
			s.setMisconfigured(mis)
		case err != nil:
			s.setMisconfigured(nil) // refused otherwise now: down, not misconfigured
		}
		refused = refused || err != nil
		next = period.Wait(0)
	}
}

// probe asks the receiver whether it takes requests (sink.Prober). The
// output's shards share each answer for half a probe period, so the
// receiver gets about one probe a period from the sink, however many
// shards wait.
func (o *output) probe(ctx context.Context) error {
	o.probeMu.Lock()
	if !o.probedAt.IsZero() && time.Since(o.probedAt) < o.ProbeEvery/2 {
		err := o.probeErr
		o.probeMu.Unlock()
		return err
	}
	o.probeMu.Unlock()
	err := o.prober.Probe(ctx)
	if ctx.Err() != nil {
		return err
	}
	result := "up"
	if err != nil {
		result = "down"
	}
	o.p.deps.Metrics.SinkProbes.WithLabelValues(o.name, result).Inc()
	o.probeMu.Lock()
	o.probedAt, o.probeErr = time.Now(), err
	o.probeMu.Unlock()
	return err
}

// split divides b, which holds two entries at least, into two non-empty
// batches of about half its line bytes each. The first holds a prefix of
// b's entries taken stream by stream, the second the rest, so the older
// entries of a stream the cut goes through are in the first part, which is
// sent first.
func split(b *entry.Batch) (first, second *entry.Batch) {
	first, second = new(entry.Batch), new(entry.Batch)
	half := b.Bytes / 2
	n := 0
	cut := false
	for i := range b.Streams {
		for _, e := range b.Streams[i].Entries {
			n++
			cut = cut || n == b.Entries || first.Entries > 0 && first.Bytes+len(e.Line) > half
			if cut {
				second.Add(e)
			} else {
				first.Add(e)
			}
		}
	}
	return first, second
}

// rejected accounts for a batch the sink refused for good: the entries the
// receiver named are counted as dropped, the rest as sent (Loki ingests the
// valid part of a partially refused push), and the whole batch goes to the
// dead-letter file, because which entries were kept cannot be known.
func (p *Pipeline) rejected(name string, err error, b *entry.Batch) {
	m := p.deps.Metrics
	var rej *sink.RejectedError
	reason := "invalid"
	counts := map[string]int{}
	if errors.As(err, &rej) {
		reason = rej.Reason
		for r, n := range rej.Rejected {
			counts[r] += n
		}
	}
	total := 0
	for _, n := range counts {
		total += n
	}
	if total == 0 || total > b.Entries {
		clear(counts)
		counts[reason] = b.Entries
		total = b.Entries
	}
	for r, n := range counts {
		m.EntriesDropped.WithLabelValues(name, r).Add(float64(n))
	}
	if rest := b.Entries - total; rest > 0 {
		m.EntriesSent.WithLabelValues(name).Add(float64(rest))
	}
	p.warn.Warn("rejected:"+name+":"+reason, "batch refused for good, written to the dead-letter file", "sink", name, "reason", reason, "entries", b.Entries, "rejected", total, "error", err)
	if p.deps.DeadLetter == nil {
		return
	}
	for i := range b.Streams {
		if derr := p.deps.DeadLetter.DeadLetter(name, reason, err, b.Streams[i].Entries); derr != nil {
			m.EntriesDropped.WithLabelValues(name, "dead_letter_failed").Add(float64(len(b.Streams[i].Entries)))
			p.warn.Warn("deadletter:"+name, "cannot write the dead-letter file; refused entries are lost", "sink", name, "error", derr)
		} else {
			m.DeadLettered.WithLabelValues(name, reason).Add(float64(len(b.Streams[i].Entries)))
		}
	}
}

// refuse dead-letters entries that were never sent because the sink would
// certainly refuse them, and confirms them.
func (p *Pipeline) refuse(name, reason string, cause error, entries []entry.Entry) {
	m := p.deps.Metrics
	m.EntriesDropped.WithLabelValues(name, reason).Add(float64(len(entries)))
	p.warn.Warn("refused:"+name+":"+reason, "entry not sent: the receiver would refuse it; written to the dead-letter file", "sink", name, "reason", reason)
	if p.deps.DeadLetter != nil {
		if err := p.deps.DeadLetter.DeadLetter(name, reason, cause, entries); err != nil {
			m.EntriesDropped.WithLabelValues(name, "dead_letter_failed").Add(float64(len(entries)))
			p.warn.Warn("deadletter:"+name, "cannot write the dead-letter file; refused entries are lost", "sink", name, "error", err)
		} else {
			m.DeadLettered.WithLabelValues(name, reason).Add(float64(len(entries)))
		}
	}
	entry.AckEntries(entries)
}
