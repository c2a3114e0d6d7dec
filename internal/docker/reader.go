package docker

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/wharf-logs/wharf/internal/backoff"
	"github.com/wharf-logs/wharf/internal/dockerlog"
)

// read runs the reader of one container until the container stops, is
// destroyed or filtered out, the daemon becomes unreachable, or ctx ends.
// It reopens the stream from its position when the stream breaks while the
// container runs, and goes on when the container restarts meanwhile.
func (s *Source) read(ctx context.Context, w *watched) {
	failures, idle := 0, 0
	for {
		before := w.pos
		s.mu.Lock()
		kicks := w.kicks
		s.mu.Unlock()
		more, err := s.readOnce(ctx, w)
		if ctx.Err() != nil {
			s.finish(w)
			return
		}
		if err == nil {
			// The log was read until its stream ended cleanly (or will not
			// be read): whatever the kicks so far were for was read, as
			// far as the Engine sent it.
			s.mu.Lock()
			w.readKicks = kicks
			s.mu.Unlock()
		}
		if err != nil {
			s.protocolError(err)
			if w.pos != before {
				// The stream delivered lines before it broke, so the daemon
				// was reachable: a first failure, not one more of a series.
				// Otherwise every dropped connection would count, and a
				// long-lived stream would be given up after a few drops.
				failures = 0
			}
			failures++
			if IsNotFound(err) || failures > 5 {
				// Gone, or the daemon is unreachable: discovery re-kicks the
				// reader when it reconnects and finds the container running.
				stale := !IsNotFound(err)
				if stale {
					s.warn.Warn("read-fail", "giving up reading a container until docker is reachable again", "container", w.id, "error", err)
				} else {
					s.goneUnread(w)
				}
				if s.stopReading(w, stale) {
					// Kicked meanwhile (it restarted, or discovery found it
					// running after a reconnect): that kick was taken, so
					// this reader must go on.
					failures = 0
					continue
				}
				return
			}
			s.deps.SourceMetrics.ReaderReconnects.WithLabelValues(sourceAPI).Inc()
			s.warn.Warn("read-retry", "container log stream broke, reopening", "container", w.id, "error", err)
			if !backoff.Sleep(ctx, backoff.Policy{Min: s.cfg.MinBackoff, Max: s.cfg.MaxBackoff}.Wait(failures-1)) {
				s.finish(w)
				return
			}
			continue
		}
		failures = 0
		if more {
			// The stream ended while the container ran. Reading again at
			// once is right after a stop (the rest of the log follows); a
			// daemon that keeps ending streams with nothing new gets a
			// growing pause instead of a busy loop.
			if w.pos == before {
				idle++
				if idle > 1 && !backoff.Sleep(ctx, backoff.Policy{Min: s.cfg.MinBackoff, Max: s.cfg.MaxBackoff}.Wait(idle-2)) {
					s.finish(w)
					return
				}
			} else {
				idle = 0
			}
			continue
		}
		if !s.finish(w) {
			return
		}
	}
}

// readOnce inspects the container, chooses how to read its log (from its
// json-file, or through the Engine API), reads from w.pos to the end of what
// is there and returns. more reports that the container was running when the
// stream ended, so the caller should read again.
func (s *Source) readOnce(ctx context.Context, w *watched) (more bool, err error) {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	s.mu.Lock()
	dies := w.dies
	s.mu.Unlock()
	info, err := s.deps.Client.Inspect(ctx, w.id)
	if err != nil {
		<-s.sem
		return false, err
	}
	if !s.deps.Filter.Keep(info) {
		<-s.sem
		s.deps.Logger.Debug("container filtered out", "container", info.Name)
		return false, nil
	}
	s.mu.Lock()
	s.setInfoLocked(w, info)
	s.mu.Unlock()
	fromFile, why := s.fileReadable(info)
	if s.cfg.ReadFrom == ReadFile && !fromFile {
		<-s.sem
		s.deps.SourceMetrics.Errors.WithLabelValues(sourceFile, "unreadable").Inc()
		s.warn.Warn("file-unreadable:"+w.id, "container log cannot be read from disk and read_from is file; it is not collected (read_from: auto falls back to the Engine API)", "container", info.Name, "reason", why)
		return false, nil
	}
	if fromFile {
		return s.readFile(ctx, w, info, dies)
	}
	if s.cfg.ReadFrom == ReadAuto {
		s.deps.Logger.Debug("reading through the Engine API", "container", info.Name, "reason", why)
	}
	return s.readAPI(ctx, w, info)
}

// readAPI reads the container's log through the Engine API. It is called
// holding s.sem, which it releases once the stream is open.
func (s *Source) readAPI(ctx context.Context, w *watched, info Container) (more bool, err error) {
	since := w.pos.since()
	if newest := w.pos.newest(); newest > s.deps.Now().UnixNano() {
		// The clock is behind the last line read: it was stepped back.
		// Lines written since carry earlier times than that line, and
		// a reopen by time would leave them out; read the log from its
		// first line, skipping what was read, by order rather than time.
		since = 0
		s.warn.Warn("clock-behind:"+w.id, "the clock is behind the last log line read; reading the log again from its start to find the lines written since", "container", info.Name, "last_line", time.Unix(0, newest).UTC())
	}
	body, err := s.deps.Client.Logs(ctx, w.id, LogsOptions{Since: since, Follow: true})
	<-s.sem
	if err != nil {
		var apiErr *APIError
		if errors.As(err, &apiErr) && apiErr.Status == 409 {
			// Dead or being removed: its log is gone with it, and with it
			// whatever the Engine had not sent yet (a follow stream can
			// end at exit before the last lines). How many is unknown:
			// count the event, as for a file rotated away unread.
			s.lost("removed_unread")
			s.warn.Warn("removed:"+w.id, "container removed before its log was read to the end through the Engine API; its last lines may be lost (read_from: auto or file reads them from disk)", "container", info.Name)
			return false, nil
		}
		if errors.As(err, &apiErr) && apiErr.Status != 404 && (apiErr.Status < 500 || apiErr.Status == 501) {
			// The log driver cannot be read back (none, syslog, ...): report
			// it once per container and stop trying.
			s.deps.SourceMetrics.Errors.WithLabelValues(sourceAPI, "unreadable").Inc()
			s.deps.Logger.Warn("container logs cannot be read through the Engine API; they are not collected", "container", info.Name, "driver", info.LogDriver, "error", err)
			return false, nil
		}
		return false, err
	}
	defer body.Close()
	watching := s.deps.Metrics.ContainersWatched.WithLabelValues("api")
	watching.Inc()
	defer watching.Dec()
	s.deps.Logger.Debug("reading container", "container", info.Name, "read_from", "api", "since", w.pos.since(), "tty", info.TTY)
	return s.readStream(ctx, w, info, body)
}

// readStream reads the lines of a logs body to its end. more reports that
// the body ended cleanly while the container ran, so the caller should read
// again.
func (s *Source) readStream(ctx context.Context, w *watched, info Container, body io.Reader) (more bool, err error) {
	ls := dockerlog.NewStream(body, info.TTY, s.cfg.MaxLineBytes)
	b := s.newBatcher(ctx, w, sourceAPI, true)
	// A line without newline is held until the next read shows whether the
	// stream ended right after it. A follow stream often ends at container
	// exit before the daemon has sent the rest of the log, so a partial line
	// at the end of a stream opened while the container ran is not kept: the
	// next read, after the container stopped, brings it whole (or again
	// partial, and then final).
	var held []dockerlog.Line
	for {
		b.room()
		line, arena, err := ls.NextAppend(b.arena)
		b.arena = arena
		var daemonErr *dockerlog.DaemonError
		switch {
		case err == nil && line.Partial:
			held = append(held, line)
			continue
		case errors.As(err, &daemonErr):
			s.deps.SourceMetrics.Errors.WithLabelValues(sourceAPI, "daemon").Inc()
			s.warn.Warn("daemon-log-error", "docker reported an error while reading a container log", "container", info.Name, "error", err)
			continue
		}
		if !(errors.Is(err, io.EOF) && info.Running) {
			for _, h := range held {
				if aerr := b.add(h, nil); aerr != nil {
					return false, aerr
				}
			}
		}
		held = held[:0]
		if err != nil {
			if ferr := b.flush(); ferr != nil {
				return false, ferr
			}
			if errors.Is(err, io.EOF) {
				return info.Running, nil
			}
			return false, err
		}
		if err := b.add(line, nil); err != nil {
			return false, err
		}
		if ls.Buffered() == 0 {
			// All that came is read: hand it off, and give back an arena
			// a burst made grow before waiting for the next.
			if err := b.flush(); err != nil {
				return false, err
			}
			b.idle()
		}
	}
}

// goneUnread handles a container found removed by its reader: if it ran
// since a read of its log last ended cleanly (a docker run --rm that ended
// before its reader got to it, or one that ran and was removed while wharf
// was not running), what it wrote is gone unread. How many lines is
// unknown: the loss is counted once, as for a file rotated away unread.
func (s *Source) goneUnread(w *watched) {
	s.mu.Lock()
	unread := w.kicks > w.readKicks
	w.readKicks = w.kicks
	name := w.name
	s.mu.Unlock()
	if !unread {
		return
	}
	s.lost("removed_unread")
	s.warn.Warn("removed-unread", "container removed before its log was read; what it wrote is lost (counted in wharf_entries_dropped_total{reason=\"removed_unread\"})", "container", name, "id", w.id)
}
