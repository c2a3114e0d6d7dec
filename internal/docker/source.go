package docker

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wharf-logs/wharf/internal/backoff"
	"github.com/wharf-logs/wharf/internal/entry"
	"github.com/wharf-logs/wharf/internal/positions"
	"github.com/wharf-logs/wharf/internal/ratelog"
	"github.com/wharf-logs/wharf/internal/source"
	"github.com/wharf-logs/wharf/internal/tail"
)

// ReadMode is how container logs are read, as written in docker.read_from.
type ReadMode string

const (
	// ReadAuto reads the json-file from disk when it can, through the
	// Engine API otherwise.
	ReadAuto ReadMode = "auto"
	// ReadFile reads the json-file from disk only; other containers are
	// reported and not read.
	ReadFile ReadMode = "file"
	// ReadAPI reads through the Engine API only.
	ReadAPI ReadMode = "api"
)

// Config configures the Docker source. Its values are checked by the
// caller (wharf's configuration), so NewSource only fills in zero fields.
type Config struct {
	// ReadFrom is how container logs are read; ReadAuto when empty.
	ReadFrom ReadMode
	// StartAt is where containers that already exist when the source
	// starts, have no saved position and were not created after the
	// history mark are read from; source.StartEnd when empty.
	StartAt source.StartAt
	// MaxLineBytes caps lines; longer ones are truncated with a marker.
	// 256 KiB when zero.
	MaxLineBytes int
	// StartupConcurrency bounds concurrent inspections and stream opens; 8
	// when zero.
	StartupConcurrency int
	// MinBackoff and MaxBackoff bound reconnection waits.
	MinBackoff, MaxBackoff time.Duration
}

// SourceDeps are the Docker source's collaborators.
type SourceDeps struct {
	Client  *Client
	Out     source.Submitter
	Labeler *Labeler
	Filter  *Filter
	Logger  *slog.Logger
	// Metrics are what the Docker source counts; fresh ones, registered
	// nowhere, when nil.
	Metrics *Metrics
	// SourceMetrics are the counters every source keeps; fresh ones,
	// registered nowhere, when nil.
	SourceMetrics *source.Metrics
	// Lost counts log data gone before it could be read, by reason, once
	// per loss: the pipeline's wharf_entries_dropped_total curried with
	// sink="none". Nil counts nothing.
	Lost *prometheus.CounterVec
	// SelfID is wharf's own container id when it runs in one; its logs are
	// never collected.
	SelfID string
	// Positions keeps each container's confirmed position across restarts;
	// nil keeps positions in memory only.
	Positions *positions.Store
	// Readers, if set, is told of each reader goroutine as it starts (+1)
	// and ends (-1), on that goroutine: what wharf holds grows with the
	// containers read (the agent sizes the memory limit from it). It must
	// not block.
	Readers func(delta int)
	Now     func() time.Time
}

// Source discovers containers from one list plus the event stream and runs
// one log reader per running container. It owns the discovery goroutine and
// the readers: Run returns only after all of them have exited.
type Source struct {
	cfg  Config
	deps SourceDeps
	warn *ratelog.Limiter
	sem  chan struct{} // bounds concurrent inspect+open

	mu         sync.Mutex
	containers map[string]*watched
	readers    sync.WaitGroup
	started    int64           // Unix ns when Run began
	runCtx     context.Context // Run's context, which readers live under
	up         bool            // event stream connected

	// poller makes the looks at the json-files of the readers with
	// nothing new to read; its goroutine runs for the whole of Run.
	poller *tail.Poller

	// history is the history mark the positions carried when Run began (0:
	// none, a first run), mark the mark now; clockBehind reports a history
	// mark ahead of the clock. They belong to Run's goroutine. See
	// history.go.
	history, mark int64
	clockBehind   bool
}

// watched is the state of one known container. Fields are guarded by
// Source.mu except where noted.
type watched struct {
	id        string
	name      string // as the list or the last event gave it, for messages
	reading   bool   // a reader goroutine runs for it
	wake      bool   // the container (re)started while its reader ran
	destroyed bool
	stale     bool // its reader gave up on errors; read again on reconnect
	skip      bool // filtered out: never read
	// pos is where the next read starts; only the reader goroutine touches
	// it, and only one reader runs per container.
	pos position
	// tracker turns confirmations into the saved position; nil without a
	// positions store. savedPos is the position last handed to it.
	tracker  *positions.Tracker
	savedPos string
	// saved: a position was saved by an earlier run, so the container was
	// being read; if it stopped while wharf was down, what it wrote last
	// is still to be read.
	saved bool
	// dies counts die events; follower is the json-file follower of a
	// running file reader, stopped at die so the reader finishes.
	dies     int
	follower interface{ Stop() }
	// kicks counts the reasons given to read the container (it started,
	// or was found to have run); readKicks is kicks as it was when a read
	// of its log last ended cleanly. While kicks is ahead, a run of the
	// container has not been read, and a container found gone took it
	// along.
	kicks, readKicks int
	// info is the container as last inspected, and streams its streams;
	// a rename event replaces both while the reader runs, so lines read
	// from then on carry the new name.
	info    Container
	streams atomic.Pointer[streamPair]
}

// streamPair holds a container's stdout and stderr streams.
type streamPair [2]*entry.Stream

// setInfoLocked records what the reader inspected and builds its streams.
func (s *Source) setInfoLocked(w *watched, info Container) {
	w.info = info
	out, errs := s.deps.Labeler.Streams(info)
	w.streams.Store(&streamPair{out, errs})
}

// NewSource returns a Docker source. It starts nothing.
func NewSource(cfg Config, deps SourceDeps) (*Source, error) {
	if deps.Client == nil || deps.Out == nil || deps.Labeler == nil || deps.Filter == nil {
		return nil, errors.New("docker: source needs a client, an output, a labeler and a filter")
	}
	if cfg.ReadFrom == "" {
		cfg.ReadFrom = ReadAuto
	}
	if cfg.StartAt == "" {
		cfg.StartAt = source.StartEnd
	}
	if cfg.MaxLineBytes <= 0 {
		cfg.MaxLineBytes = 256 << 10
	}
	if cfg.StartupConcurrency <= 0 {
		cfg.StartupConcurrency = 8
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 500 * time.Millisecond
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = 30 * time.Second
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Metrics == nil {
		deps.Metrics = NewMetrics()
	}
	if deps.SourceMetrics == nil {
		deps.SourceMetrics = source.NewMetrics()
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	s := &Source{
		cfg:        cfg,
		deps:       deps,
		warn:       ratelog.New(deps.Logger, 30*time.Second),
		sem:        make(chan struct{}, cfg.StartupConcurrency),
		containers: map[string]*watched{},
		poller:     tail.NewPoller(0),
	}
	s.poller.Unwatched = func(err error) {
		deps.Logger.Warn("cannot watch quiet container logs with inotify; polling them instead, which costs more CPU (raise fs.inotify.max_user_watches or max_user_instances)", "error", err)
	}
	return s, nil
}

// protocolError counts err if it is a ProtocolError and returns its kind,
// "" otherwise.
func (s *Source) protocolError(err error) string {
	var pe *ProtocolError
	if !errors.As(err, &pe) {
		return ""
	}
	s.deps.Metrics.ProtocolErrors.WithLabelValues(pe.Kind).Inc()
	return pe.Kind
}

// lost counts a loss of log data before it could be read.
func (s *Source) lost(reason string) {
	if s.deps.Lost != nil {
		s.deps.Lost.WithLabelValues(reason).Inc()
	}
}

// Connected reports whether the Docker event stream is up.
func (s *Source) Connected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.up
}

// Run discovers containers and reads their logs until ctx ends. It returns
// ctx's error after every reader has stopped.
func (s *Source) Run(ctx context.Context) error {
	s.started = s.deps.Now().UnixNano()
	s.runCtx = ctx
	s.history = s.loadHistory()
	s.mark = s.history
	defer s.readers.Wait()
	s.readers.Go(func() { s.poller.Run(ctx) })
	// since is the time of the last event seen, for replay after a
	// reconnect; at the start, the history mark, to learn of the containers
	// that ran and were removed while wharf was not watching.
	since := s.history
	if s.history > s.started+int64(historyMargin) {
		// The events since the mark are stamped by a clock now behind it:
		// there is no telling which came after it.
		s.clockBehind, since = true, 0
		s.deps.Logger.Warn("the clock is behind wharf's history of this daemon (stepped back while wharf was stopped?): every container without a saved position is read from its first line, and containers removed meanwhile cannot be counted",
			"history", time.Unix(0, s.history).UTC())
	}
	first := true // no list has been reconciled yet
	for attempt := 0; ; attempt++ {
		began := time.Now()
		listed, err := s.session(ctx, &since, first)
		s.setUp(false)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if listed {
			first = false
		}
		refused := s.protocolError(err)
		if refused == KindEventTooLarge || refused == KindMalformed {
			// Replaying from the last good event would meet the bad one
			// again: the next stream starts from now, and its list shows
			// what is there.
			since = 0
		}
		if err == nil || (listed && refused == "" && time.Since(began) >= s.cfg.MinBackoff) {
			// The stream was healthy before it ended, or before it broke:
			// a connection that drops after a while is a first failure,
			// not one more of a series, or waits would grow with every
			// drop. One that breaks at once, or on an answer wharf
			// refuses, still backs off.
			attempt = 0
		}
		s.deps.Metrics.Reconnects.Inc()
		wait := backoff.Policy{Min: s.cfg.MinBackoff, Max: s.cfg.MaxBackoff}.Wait(attempt)
		if refused != "" {
			// Said apart from ordinary drops, which are rate-limited
			// together and would hide it.
			s.warn.Warn("docker-refused:"+refused, "refused an answer of the Docker Engine; the event stream is dropped and opened again", "host", s.deps.Client.Host(), "error", err, "wait", wait.Round(time.Millisecond))
		} else {
			s.warn.Warn("docker-events", "docker event stream lost, reconnecting", "host", s.deps.Client.Host(), "error", err, "wait", wait.Round(time.Millisecond))
		}
		if !backoff.Sleep(ctx, wait) {
			return ctx.Err()
		}
	}
}

func (s *Source) setUp(up bool) {
	s.mu.Lock()
	s.up = up
	s.mu.Unlock()
	if up {
		s.deps.Metrics.Up.Set(1)
	} else {
		s.deps.Metrics.Up.Set(0)
	}
}

// session is one connection to the daemon: open the event stream, list
// containers to learn what happened before it was open, then follow events
// until the stream breaks. It returns nil when the stream was healthy and
// ended, an error when it could not be set up or broke.
func (s *Source) session(ctx context.Context, since *int64, first bool) (listed bool, err error) {
	if _, err := s.deps.Client.Negotiate(ctx); err != nil {
		return false, err
	}
	// Open events before listing so nothing falls between the two: a
	// container created after the list is in the stream, and events for
	// listed containers are handled idempotently.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events, err := s.deps.Client.Events(ctx, *since)
	if err != nil {
		return false, err
	}
	defer events.Close()
	listedAt := s.deps.Now().UnixNano()
	list, err := s.deps.Client.List(ctx)
	if err != nil {
		return false, err
	}
	s.setUp(true)
	s.reconcile(list, first)
	s.advance(listedAt)
	for {
		ev, err := events.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return true, nil
			}
			return true, err
		}
		*since = ev.TimeNano
		s.handle(ev)
		s.advance(ev.TimeNano)
	}
}

// reconcile brings the known set in line with a fresh list: new containers
// are added (and read if running), vanished ones are marked destroyed, and
// running ones get their reader back if it stopped while disconnected.
//
// At the first list, a container without a saved position that was created
// after the history mark ran while wharf was not watching: it is read from
// its first line, and read even if it has exited since.
func (s *Source) reconcile(list []Summary, first bool) {
	seen := make(map[string]bool, len(list))
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range list {
		seen[c.ID] = true
		w := s.containers[c.ID]
		added := w == nil
		gap := false
		if added {
			name := ""
			if len(c.Names) > 0 {
				name = strings.TrimPrefix(c.Names[0], "/")
			}
			ct := Container{ID: c.ID, Name: name, Image: c.Image, Labels: c.Labels}
			if c.Created > 0 {
				ct.Created = time.Unix(c.Created, 0)
			}
			gap = first && s.inGap(ct)
			w = s.addLocked(c.ID, first && !gap, ct)
		}
		switch {
		case c.State == "running" || c.State == "paused" || c.State == "restarting":
			s.kickLocked(w)
		case added && !first, w.stale, added && w.saved, gap && c.State != "created":
			// It ran while the event stream was down (a restarted daemon
			// loses its events), its reader gave up during the outage, or
			// it stopped, or ran and stopped, while wharf was not running:
			// read what it left. (A container only created has no log yet;
			// its start event kicks it.)
			s.kickLocked(w)
		}
	}
	for id, w := range s.containers {
		if !seen[id] {
			s.destroyLocked(w)
		}
	}
	if first && s.deps.Positions != nil {
		// Containers destroyed while wharf was not running: their logs are
		// gone, and so is any use for their positions.
		for _, key := range s.deps.Positions.Keys(positionPrefix) {
			if !seen[strings.TrimPrefix(key, positionPrefix)] {
				s.deps.Positions.Delete(key)
			}
		}
	}
}

// addLocked registers a container. Containers that existed before wharf
// started are read from start_at; those created since, from their first line
// (the caller counts those created while wharf was not running as created
// since, see inGap).
//
// Filters are applied here, from what the list or the event tells, so a
// container that is not collected never gets a reader (nor a goroutine).
//
// A saved position wins over both. A new container's starting point is saved
// at once, so a restart of wharf before its first line is confirmed still
// reads it from there rather than by start_at.
func (s *Source) addLocked(id string, existedAtStart bool, c Container) *watched {
	w := &watched{id: id, name: c.Name, skip: !s.deps.Filter.Keep(c)}
	if existedAtStart && s.cfg.StartAt == source.StartEnd {
		w.pos = startPosition(s.started)
	}
	if st := s.deps.Positions; st != nil && !w.skip {
		key := positionKey(id)
		w.tracker = st.Tracker(key)
		if saved, ok := st.Get(key); ok {
			if p, err := parsePosition(saved); err == nil {
				w.pos, w.saved = p, true
			} else {
				s.deps.Logger.Warn("ignoring an unreadable saved position; reading by start_at", "container", id, "position", saved, "error", err)
				st.Set(key, w.pos.String())
			}
		} else {
			st.Set(key, w.pos.String())
		}
	}
	s.containers[id] = w
	s.deps.Metrics.ContainersDiscovered.Inc()
	return w
}

func (s *Source) handle(ev Event) {
	action := ev.Action
	if !slices.Contains(watchedActions, action) {
		// Asked for in the daemon's filter, so seen only from a broken or
		// hostile socket: one series for all, not one per made-up action.
		action = "other"
	}
	s.deps.Metrics.Events.WithLabelValues(action).Inc()
	if ev.ID == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.containers[ev.ID]
	switch ev.Action {
	case "create", "start", "restart", "unpause":
		if w == nil {
			w = s.addLocked(ev.ID, false, eventContainer(ev))
		}
		if ev.Action != "create" {
			s.kickLocked(w)
		}
	case "die":
		if w != nil {
			w.dies++
			if w.follower != nil {
				w.follower.Stop()
			}
		}
	case "destroy":
		if w != nil {
			s.destroyLocked(w)
		}
	case "rename":
		if w == nil {
			return
		}
		name := strings.TrimPrefix(ev.Attributes["name"], "/")
		if name != "" {
			w.name = name
		}
		if w.info.ID != "" && name != "" {
			info := w.info
			info.Name = name
			s.setInfoLocked(w, info)
		}
		// A name filter may now match or not; a running reader finishes
		// its stream either way, and the filter applies from the next one.
		wasSkipped := w.skip
		w.skip = !s.deps.Filter.Keep(eventContainer(ev))
		if wasSkipped && !w.skip {
			s.kickLocked(w)
		}
	}
}

// kickLocked makes sure a reader runs for w.
func (s *Source) kickLocked(w *watched) {
	if w.destroyed || w.skip || w.id == s.deps.SelfID {
		return
	}
	w.kicks++
	if w.reading {
		w.wake = true
		return
	}
	w.reading = true
	w.wake, w.stale = false, false
	s.readers.Go(func() {
		if s.deps.Readers != nil {
			s.deps.Readers(1)
			defer s.deps.Readers(-1)
		}
		s.read(s.runCtx, w)
	})
}

func (s *Source) destroyLocked(w *watched) {
	w.destroyed = true
	if w.follower != nil {
		w.follower.Stop()
	}
	if !w.reading {
		delete(s.containers, w.id)
		if w.tracker != nil {
			w.tracker.Forget()
		}
	}
}

// finish is called by a reader that is about to exit. It reports whether
// the reader must go on instead, because the container restarted meanwhile.
func (s *Source) finish(w *watched) (again bool) { return s.stopReading(w, false) }

// stopReading is finish for a reader that may be giving up on errors: with
// stale set, the container is marked for discovery to read again when it
// reconnects, in the same step that ends the reader, so no kick falls
// between the two.
func (s *Source) stopReading(w *watched, stale bool) (again bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w.wake && !w.destroyed {
		w.wake = false
		return true
	}
	w.reading = false
	if stale {
		w.stale = true
	}
	if w.destroyed {
		delete(s.containers, w.id)
		if w.tracker != nil {
			w.tracker.Forget()
		}
	}
	return false
}

// eventContainer is what an event tells of its container: the name, the
// image and the labels, which Docker puts among the event's attributes.
func eventContainer(ev Event) Container {
	labels := make(map[string]string, len(ev.Attributes))
	for k, v := range ev.Attributes {
		switch k {
		case "name", "image", "exitCode", "oldName", "signal":
		default:
			labels[k] = v
		}
	}
	return Container{ID: ev.ID, Name: strings.TrimPrefix(ev.Attributes["name"], "/"), Image: ev.Attributes["image"], Labels: labels}
}
