// Package files ships plain log files: the files: entries of the
// configuration. Files are found by glob patterns, rescanned every second,
// each followed through rotation by internal/tail, split into lines or
// multi-line entries and handed to the pipeline; a file's position is saved
// once everything before it is confirmed.
//
// A pattern reaches only regular files, outside wharf's own directories,
// through no symbolic link after its first wildcard unless its entry
// follows links, and at most Config.MaxFiles at once; every path matched
// and not read is counted by reason (wharf_files_skipped_total). Opening
// never blocks and refuses what is not a regular file (see internal/tail).
//
// Every file read has one goroutine and one open descriptor, both released
// when the file is gone and read to its end. Files are found by polling, as
// the follower notices growth and rotation by polling: no inotify watch is
// needed, so it works the same on overlay and network filesystems.
package files

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wharf-logs/wharf/internal/backoff"
	"github.com/wharf-logs/wharf/internal/entry"
	"github.com/wharf-logs/wharf/internal/positions"
	"github.com/wharf-logs/wharf/internal/ratelog"
	"github.com/wharf-logs/wharf/internal/source"
	"github.com/wharf-logs/wharf/internal/tail"
)

// Source metric label of plain files.
const sourceFile = "file"

// PositionPrefix starts the positions key of a plain file, followed by its
// path.
const PositionPrefix = "file/"

const (
	// scanInterval is how often the patterns are globbed again.
	scanInterval = time.Second
	// goneAfter is how long a file's path must be missing before the file
	// is read to its end and forgotten: rotation by rename leaves the path
	// missing for a moment until the new file is created.
	goneAfter = 5 * time.Second
	// Lines are copied into arenas, each shared by many lines and never
	// reused, so the pipeline can own them. While lines come, each arena
	// is twice the size of the one before, from arenaMin up to arenaBytes;
	// a reader that waits for its file keeps at most an arenaMin one.
	arenaMin   = 1 << 10
	arenaBytes = 256 << 10
	// DefaultMaxFiles is Config.MaxFiles when 0.
	DefaultMaxFiles = 4096
)

// Config configures the plain-file source. Its values are checked by the
// caller (wharf's configuration): New does not check them again.
type Config struct {
	// Groups are the files: entries.
	Groups []Group
	// Host is the host label's value.
	Host string
	// Static are labels added to every stream (labels.static).
	Static map[string]string
	// OwnDirs are wharf's own directories (data_dir, the file sink's). No
	// file in or below them is read, whatever the patterns say: wharf would
	// ship what it writes there, again and again.
	OwnDirs []string
	// MaxFiles caps the files followed at once; DefaultMaxFiles when 0.
	// Files matched beyond it wait for a place, counted and shown in
	// wharf_files_over_limit.
	MaxFiles int
	// Poll overrides the followers' polling bounds, and Scan and GoneAfter
	// the scan interval and how long a path is missing before its file is
	// finished (tests); zero means the defaults.
	PollMin, PollMax time.Duration
	Scan, GoneAfter  time.Duration
}

// Group is one files: entry: the files its patterns name, read the same
// way.
type Group struct {
	// Paths are glob patterns of the files to read, in filepath.Match
	// syntax.
	Paths []string
	// Exclude are glob patterns of files not to read: one with a "/" is
	// matched against the whole path, one without against the file name.
	Exclude []string
	// Labels are added to the streams of these files.
	Labels map[string]string
	// StartAt is where a file found at the first scan without a saved
	// position is read from; files that appear later are read from their
	// beginning. source.StartEnd when empty.
	StartAt source.StartAt
	// MaxLineBytes caps a line or a multi-line entry.
	MaxLineBytes int
	// Multiline joins the lines of one entry.
	Multiline Multiline
	// FollowSymlinks reads files through symbolic links. Without it a link
	// the patterns match is counted and not read, and no linked directory
	// after a pattern's first wildcard is gone through; the directories
	// before it are followed, as the operator wrote them.
	FollowSymlinks bool
}

// Multiline joins continuation lines to the line that starts an entry.
type Multiline struct {
	// Start matches the first line of an entry; joining is off when nil.
	Start *regexp.Regexp
	// MaxWait sends an entry when no line came for this long.
	MaxWait time.Duration
	// MaxLines and MaxBytes send an entry when it reaches them.
	MaxLines, MaxBytes int
}

// Deps are the source's collaborators.
type Deps struct {
	Out       source.Submitter
	Positions *positions.Store
	Logger    *slog.Logger
	// Metrics are what the plain-file source counts, SourceMetrics what
	// every source does.
	Metrics       *Metrics
	SourceMetrics *source.Metrics
	// Lost counts log data gone before it could be read, by reason, once
	// per loss: the pipeline's wharf_entries_dropped_total curried with
	// sink="none". Nil counts nothing.
	Lost *prometheus.CounterVec
	// Now is the wall clock lines are stamped with; time.Now when nil.
	Now func() time.Time
	// Following, if set, is called on Run's goroutine with the number of
	// files followed whenever a scan changes it (the agent sizes the soft
	// memory limit by it).
	Following func(n int)
}

// Source reads the configured plain log files.
type Source struct {
	cfg  Config
	deps Deps
	warn *ratelog.Limiter

	// files, noted, own and following are owned by Run's goroutine.
	files     map[string]*watched
	following int // len(files) as last reported to Deps.Following
	// noted holds the paths skipped at the last scan, with the reason, so
	// that a skip is counted and logged once while it lasts.
	noted map[string]string
	own   *ownDirs
	// poller watches the files of readers with nothing new to read.
	poller *tail.Poller
	wg     sync.WaitGroup
}

// target is a file a scan found to read: the files: entry whose pattern
// matched it, and the directory that pattern names before its first
// wildcard.
type target struct {
	group   *Group
	trusted string
}

// watched is a file being read.
type watched struct {
	path         string
	follower     *tail.Follower
	tracker      *positions.Tracker
	done         chan struct{}
	missingSince time.Time
	stopped      bool // Stop was called: the file is gone
}

// New returns a Source; it starts nothing.
func New(cfg Config, deps Deps) (*Source, error) {
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Out == nil || deps.Positions == nil || deps.Metrics == nil || deps.SourceMetrics == nil {
		return nil, errors.New("files: missing output, positions or metrics")
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if cfg.Scan <= 0 {
		cfg.Scan = scanInterval
	}
	cfg.Groups = slices.Clone(cfg.Groups)
	for i := range cfg.Groups {
		if cfg.Groups[i].StartAt == "" {
			cfg.Groups[i].StartAt = source.StartEnd
		}
	}
	if cfg.GoneAfter <= 0 {
		cfg.GoneAfter = goneAfter
	}
	if cfg.MaxFiles <= 0 {
		cfg.MaxFiles = DefaultMaxFiles
	}
	s := &Source{
		cfg: cfg, deps: deps, warn: ratelog.New(deps.Logger, 30*time.Second),
		files: map[string]*watched{}, noted: map[string]string{}, own: newOwnDirs(cfg.OwnDirs),
		poller: tail.NewPoller(0),
	}
	s.poller.Unwatched = func(err error) {
		deps.Logger.Warn("cannot watch quiet log files with inotify; polling them instead, which costs more CPU (raise fs.inotify.max_user_watches or max_user_instances)", "error", err)
	}
	deps.SourceMetrics.Expose(sourceFile)
	return s, nil
}

// Run reads the files until ctx ends, then waits for every reader to stop.
// Lines read but not confirmed when it stops are read again on the next
// start, from the saved positions. A file that cannot be read is reported
// and tried again on the next scan, so Run has no error to return.
func (s *Source) Run(ctx context.Context) {
	defer s.wg.Wait()
	s.wg.Go(func() { s.poller.Run(ctx) })
	s.scan(ctx, true)
	t := time.NewTicker(s.cfg.Scan)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.scan(ctx, false)
		}
	}
}

// scan globs the patterns, starts a reader for each new file while fewer
// than MaxFiles are followed, stops the readers of files gone for
// goneAfter, and forgets readers that ended.
func (s *Source) scan(ctx context.Context, first bool) {
	now := time.Now()
	found, skips := s.match()
	for path, w := range s.files {
		select {
		case <-w.done:
			delete(s.files, path) // ended: gone, or an error; found again below if still there
			continue
		default:
		}
		if _, ok := found[path]; ok {
			w.missingSince = time.Time{}
			continue
		}
		if w.missingSince.IsZero() {
			w.missingSince = now
		} else if !w.stopped && now.Sub(w.missingSince) >= s.cfg.GoneAfter {
			// Gone for good: read what is left, then forget it.
			w.stopped = true
			w.follower.Stop()
		}
	}
	if first {
		s.resumeMissing(ctx, found, skips)
	}
	paths := make([]string, 0, len(found))
	for p := range found {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	over := 0
	for _, path := range paths {
		if _, ok := s.files[path]; ok {
			continue
		}
		if len(s.files) >= s.cfg.MaxFiles {
			over++
			skips[path] = skipLimit
			continue
		}
		s.start(ctx, path, found[path], first, now)
	}
	s.deps.Metrics.OverLimit.Set(float64(over))
	s.noteSkips(skips)
	if n := len(s.files); n != s.following && s.deps.Following != nil {
		s.following = n
		s.deps.Following(n)
	}
}

// resumeMissing handles positions saved for files whose path is missing at
// startup: a file still wanted by the configuration is followed from its
// position (its rotated files may hold unread lines) and forgotten once gone
// for goneAfter; a position no pattern wants any more is dropped.
func (s *Source) resumeMissing(ctx context.Context, found map[string]target, skips map[string]string) {
	for _, key := range s.deps.Positions.Keys(PositionPrefix) {
		path := strings.TrimPrefix(key, PositionPrefix)
		if _, ok := found[path]; ok {
			continue
		}
		if _, ok := skips[path]; ok {
			continue // there, but not to be read
		}
		t, ok := s.wanted(path)
		if !ok {
			s.deps.Positions.Delete(key)
			s.deps.Logger.Info("dropping the saved position of a file no files: entry reads any more", "path", path)
			continue
		}
		if len(s.files) >= s.cfg.MaxFiles {
			continue // its position stays for when there is room
		}
		s.start(ctx, path, t, true, time.Now())
		if w := s.files[path]; w != nil {
			w.missingSince = time.Now()
		}
	}
}

// match returns the files the patterns name now, each with the first
// files: entry that names it, and the paths they match that are not read,
// with the reason.
func (s *Source) match() (map[string]target, map[string]string) {
	found := map[string]target{}
	skips := map[string]string{}
	s.own.refresh()
	var hits []hit
	for i := range s.cfg.Groups {
		src := &s.cfg.Groups[i]
		g := globber{follow: src.FollowSymlinks, own: s.own}
		for _, pattern := range src.Paths {
			trusted, _ := splitPattern(pattern)
			hits = g.glob(pattern, hits[:0])
			for _, h := range hits {
				path := filepath.Clean(h.path)
				if _, ok := found[path]; ok || excluded(src.Exclude, path) {
					continue
				}
				if _, ok := skips[path]; ok {
					continue
				}
				switch {
				case h.reason != "":
					skips[path] = h.reason
				default:
					found[path] = target{group: src, trusted: trusted}
				}
			}
		}
	}
	for path := range found {
		plain, gz := strings.CutSuffix(path, ".gz")
		switch live := rotatedOf(plain); {
		case live != "" && s.follows(live, found):
			// Read through the live file's follower, in order.
			delete(found, path)
		case gz:
			delete(found, path)
			skips[path] = skipCompressed
		}
	}
	return found, skips
}

// follows reports whether the live file path is read, or about to be: found
// now, being read (its path may be missing for a moment while it is
// rotated), or with a position saved.
func (s *Source) follows(path string, found map[string]target) bool {
	if _, ok := found[path]; ok {
		return true
	}
	if _, ok := s.files[path]; ok {
		return true
	}
	_, ok := s.deps.Positions.Get(PositionPrefix + path)
	return ok
}

// wanted returns the files: entry whose patterns name path (which need not
// exist), outside wharf's own directories.
func (s *Source) wanted(path string) (target, bool) {
	if s.own.contains(filepath.Dir(path)) {
		return target{}, false
	}
	for i := range s.cfg.Groups {
		src := &s.cfg.Groups[i]
		for _, pattern := range src.Paths {
			if ok, _ := filepath.Match(pattern, path); ok && !excluded(src.Exclude, path) {
				trusted, _ := splitPattern(pattern)
				return target{group: src, trusted: trusted}, true
			}
		}
	}
	return target{}, false
}

// excluded reports whether path matches an exclusion pattern: a pattern
// with a "/" is matched against the whole path, one without against the
// file name.
func excluded(patterns []string, path string) bool {
	for _, p := range patterns {
		name := path
		if !strings.Contains(p, "/") {
			name = filepath.Base(path)
		}
		if ok, _ := filepath.Match(p, name); ok {
			return true
		}
	}
	return false
}

var numbered = regexp.MustCompile(`^(.+)\.[0-9]+$`)

// rotatedOf returns the live file a numbered rotated file (app.log.1)
// belongs to, or "".
func rotatedOf(path string) string {
	if m := numbered.FindStringSubmatch(path); m != nil {
		return m[1]
	}
	return ""
}

// noteSkips counts and logs each path skipped now that was not skipped for
// the same reason at the last scan, and forgets the paths no longer
// skipped, so that what is remembered is bounded by what the patterns
// match. Logging is rate-limited per reason: a directory filled with
// links is one warning every 30 s with the number suppressed.
func (s *Source) noteSkips(skips map[string]string) {
	for path, reason := range skips {
		if s.noted[path] == reason {
			continue
		}
		s.deps.Metrics.Skipped.WithLabelValues(reason).Inc()
		level, msg := slog.LevelInfo, "not reading a file the files: patterns match"
		switch reason {
		case skipSymlink:
			level, msg = slog.LevelWarn, "not reading a symbolic link the files: patterns match; set follow_symlinks on the entry to read through links"
		case skipOwn:
			level, msg = slog.LevelWarn, "not reading a file in wharf's own directories (data_dir, file.dir), which the files: patterns match"
		case skipLimit:
			level, msg = slog.LevelWarn, "max_followed_files files are followed; a file the files: patterns match waits for a place"
		}
		s.warn.Log(level, "skip:"+reason, msg, "path", path, "reason", reason)
	}
	for path := range s.noted {
		if _, ok := skips[path]; !ok {
			delete(s.noted, path)
		}
	}
	for path, reason := range skips {
		s.noted[path] = reason
	}
}

// start opens path at its saved position (or by start_at) and starts its
// reader.
func (s *Source) start(ctx context.Context, path string, t target, first bool, now time.Time) {
	src := t.group
	key := PositionPrefix + path
	pos := tail.Position{}
	if saved, ok := s.deps.Positions.Get(key); ok {
		p, err := tail.ParsePosition(saved)
		if err != nil {
			s.deps.Logger.Warn("ignoring an unreadable saved file position; reading by start_at", "path", path, "position", saved, "error", err)
			s.deps.SourceMetrics.Errors.WithLabelValues(sourceFile, "bad_position").Inc()
		} else {
			pos = p
		}
	}
	opts := tail.Options{
		Rotated:        tail.Numbered,
		PollMin:        s.cfg.PollMin,
		PollMax:        s.cfg.PollMax,
		FollowSymlinks: src.FollowSymlinks,
		Trusted:        t.trusted,
		Poller:         s.poller,
		OnGap: func(g tail.Gap) {
			if s.deps.Lost != nil {
				s.deps.Lost.WithLabelValues(string(g.Reason)).Inc()
			}
			s.warn.Log(slog.LevelError, "gap:"+path, "part of a log file was gone before it could be read", "path", path, "reason", g.Reason, "file", g.Path, "bytes", g.Bytes)
		},
	}
	if pos.IsZero() && first && src.StartAt == source.StartEnd {
		p, err := tail.EndOf(path, opts)
		if err != nil {
			s.failed(path, "open", err)
			return
		}
		pos = p
	}
	f, err := tail.Open(path, pos, opts)
	if err != nil {
		s.failed(path, "open", err)
		return
	}
	lr, err := tail.NewLineReader(f, tail.LineOptions{
		MaxLine:  src.MaxLineBytes,
		Start:    src.Multiline.Start,
		MaxWait:  src.Multiline.MaxWait,
		MaxBytes: src.Multiline.MaxBytes,
		MaxLines: src.Multiline.MaxLines,
	})
	if err != nil {
		f.Close()
		s.failed(path, "open", err)
		return
	}
	w := &watched{path: path, follower: f, tracker: s.deps.Positions.Tracker(key), done: make(chan struct{})}
	s.files[path] = w
	r := &reader{s: s, w: w, lr: lr, stream: s.stream(path, src), ctx: ctx, batch: source.NewBatch(s.deps.Out, s.deps.SourceMetrics, sourceFile)}
	s.deps.Logger.Debug("reading file", "path", path, "position", f.Position().String(), "saved", !pos.IsZero())
	s.wg.Go(r.run)
}

func (s *Source) failed(path, kind string, err error) {
	s.deps.SourceMetrics.Errors.WithLabelValues(sourceFile, kind).Inc()
	s.warn.Warn(kind+":"+path, "cannot read a log file; trying again", "path", path, "error", err)
}

// stream is the stream of a file's lines: filename, host, labels.static and
// the entry's labels.
func (s *Source) stream(path string, src *Group) *entry.Stream {
	m := map[string]string{}
	for k, v := range s.cfg.Static {
		m[k] = v
	}
	for k, v := range src.Labels {
		m[k] = v
	}
	m["filename"] = path
	m["host"] = s.cfg.Host
	labels := make(entry.Labels, 0, len(m))
	for k, v := range m {
		if v != "" {
			labels = append(labels, entry.Label{Name: k, Value: source.CapLabelValue(v)})
		}
	}
	sort.Slice(labels, func(i, j int) bool { return labels[i].Name < labels[j].Name })
	return entry.NewStream(labels, nil, path)
}

// clockStep is how far behind the last stamp the wall clock must be for
// stamp to take it as stepped back. Stamps run ahead of the clock only by
// 1 ns per line read within one clock reading, far less than this.
const clockStep = time.Second

// stamp returns the time for a line read at now after one stamped last: the
// read time, kept increasing within the file so equal readings keep its
// order. When the wall clock has stepped back (NTP correcting a clock that
// ran ahead), the new time is taken, out of order with the lines before the
// step: going on from last, 1 ns a line, would stamp every line until the
// clock caught up with the old, wrong time, and past loki.max_future all of
// them would be dead-lettered as too_new.
func stamp(now, last int64) int64 {
	if now > last || last-now > int64(clockStep) {
		return now
	}
	return last + 1
}

// reader reads one file on its own goroutine.
type reader struct {
	s      *Source
	w      *watched
	lr     *tail.LineReader
	stream *entry.Stream
	ctx    context.Context

	batch *source.Batch
	end   tail.Position
	last  int64
	arena []byte
	grow  int // the size of the next arena
}

func (r *reader) run() {
	s, w := r.s, r.w
	defer close(w.done)
	defer w.follower.Close()
	g := s.deps.Metrics.Watched
	g.Inc()
	defer g.Dec()
	for {
		deadline := time.Time{}
		if r.batch.Len() > 0 {
			deadline = time.Unix(0, 1) // hand off what is held before waiting
		}
		l, err := r.lr.NextBefore(r.ctx, deadline)
		if deadline.IsZero() && errors.Is(err, tail.ErrIdle) {
			r.idle()
			l, err = r.lr.Next(r.ctx)
		}
		switch {
		case err == nil:
			if err := r.add(l); err != nil {
				return
			}
		case errors.Is(err, tail.ErrIdle):
			if err := r.flush(); err != nil {
				return
			}
		case errors.Is(err, io.EOF):
			// Stopped because the file is gone, and read to its end.
			if err := r.flush(); err != nil {
				return
			}
			w.tracker.Forget()
			s.deps.Logger.Debug("file gone and read to its end", "path", w.path)
			return
		case r.ctx.Err() != nil:
			return
		default:
			if err := r.flush(); err != nil {
				return
			}
			s.failed(w.path, "read", err)
			if !backoff.Sleep(r.ctx, time.Second) {
				return
			}
		}
	}
}

// add takes one line or entry.
func (r *reader) add(l tail.Line) error {
	t := stamp(r.s.deps.Now().UnixNano(), r.last)
	r.last = t
	if cap(r.arena)-len(r.arena) < len(l.Bytes) {
		r.grow = min(max(2*r.grow, arenaMin), arenaBytes)
		r.arena = make([]byte, 0, max(r.grow, len(l.Bytes)))
	}
	n := len(r.arena)
	r.arena = append(r.arena, l.Bytes...)
	line := r.arena[n:len(r.arena):len(r.arena)]
	r.end = l.End
	if r.batch.Add(entry.Entry{Time: t, Line: line, Stream: r.stream}, l.Truncated) {
		return r.flush()
	}
	return nil
}

// idle is called before the reader waits for its file to grow, with
// nothing held: a large arena is let go (the lines in it belong to the
// pipeline now), and the next one starts small.
func (r *reader) idle() {
	if cap(r.arena) > arenaMin {
		r.arena = nil
	}
	r.grow = 0
}

// flush hands the batch to the pipeline with an Ack that saves the position
// after its last line once every entry is confirmed.
func (r *reader) flush() error {
	if r.batch.Len() == 0 {
		return nil
	}
	return r.batch.HandOff(r.ctx, r.w.tracker.Mark(r.end.String()))
}
