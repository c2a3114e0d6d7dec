package docker

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/wharf-logs/wharf/internal/entry"
)

// Submission limits: a reader hands entries to the pipeline when it has this
// many, or sooner when no more input is buffered.
const (
	submitEntries = 1024
	submitBytes   = 512 << 10
)

// read runs the reader of one container until the container stops, is
// destroyed or filtered out, the daemon becomes unreachable, or ctx ends.
// It reopens the stream from its position when the stream breaks while the
// container runs, and goes on when the container restarts meanwhile.
func (s *Source) read(ctx context.Context, w *watched) {
	m := s.deps.Metrics.ContainersWatched.WithLabelValues("api")
	m.Inc()
	defer m.Dec()
	failures, idle := 0, 0
	for {
		before := w.pos
		more, err := s.readOnce(ctx, w)
		if ctx.Err() != nil {
			s.finish(w)
			return
		}
		if err != nil {
			failures++
			if IsNotFound(err) || failures > 5 {
				// Gone, or the daemon is unreachable: discovery re-kicks the
				// reader when it reconnects and finds the container running.
				if !IsNotFound(err) {
					s.warn.Warn("read-fail", "giving up reading a container until docker is reachable again", "container", w.id, "error", err)
					s.mu.Lock()
					w.stale = true
					s.mu.Unlock()
				}
				s.finish(w)
				return
			}
			s.deps.Metrics.ReaderReconnects.WithLabelValues(sourceAPI).Inc()
			s.warn.Warn("read-retry", "container log stream broke, reopening", "container", w.id, "error", err)
			if !sleep(ctx, backoff(s.cfg.MinBackoff, s.cfg.MaxBackoff, failures-1)) {
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
				if idle > 1 && !sleep(ctx, backoff(s.cfg.MinBackoff, s.cfg.MaxBackoff, idle-2)) {
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

// readOnce inspects the container, opens its log stream from w.pos and reads
// it to the end. more reports that the container was running when the
// stream ended, so the caller should read again.
func (s *Source) readOnce(ctx context.Context, w *watched) (more bool, err error) {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
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
	body, err := s.deps.Client.Logs(ctx, w.id, LogsOptions{Since: w.pos.since(), Follow: true})
	<-s.sem
	if err != nil {
		var apiErr *APIError
		if errors.As(err, &apiErr) && apiErr.Status == 409 {
			// Dead or being removed: its log is gone with it.
			s.deps.Logger.Debug("container is being removed; nothing more to read", "container", info.Name)
			return false, nil
		}
		if errors.As(err, &apiErr) && apiErr.Status != 404 && (apiErr.Status < 500 || apiErr.Status == 501) {
			// The log driver cannot be read back (none, syslog, ...): report
			// it once per container and stop trying.
			s.deps.Metrics.SourceErrors.WithLabelValues(sourceAPI, "unreadable").Inc()
			s.deps.Logger.Warn("container logs cannot be read through the Engine API; they are not collected", "container", info.Name, "driver", info.LogDriver, "error", err)
			return false, nil
		}
		return false, err
	}
	defer body.Close()
	s.deps.Logger.Debug("reading container", "container", info.Name, "since", w.pos.since(), "tty", info.TTY)

	ls := NewLogStream(body, info.TTY, s.cfg.MaxLineBytes)
	batch := make([]entry.Entry, 0, 64)
	batchBytes := 0
	// The reopened log replays lines already read: per stream, skip until
	// the first line past the stream's position. Skipping stops there for
	// good, so a clock that steps back later cannot hide new lines.
	replaying := [2]bool{true, true}
	seen := [2]int{}
	read, readBytes, truncated := 0, 0, 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		s.deps.Metrics.EntriesRead.WithLabelValues(sourceAPI).Add(float64(read))
		s.deps.Metrics.BytesRead.WithLabelValues(sourceAPI).Add(float64(readBytes))
		if truncated > 0 {
			s.deps.Metrics.LinesTruncated.WithLabelValues(sourceAPI).Add(float64(truncated))
		}
		read, readBytes, truncated = 0, 0, 0
		if w.tracker != nil {
			ack := w.tracker.Mark(w.pos.String())
			for i := range batch {
				batch[i].Ack = ack
			}
			defer ack.Done(1)
		}
		err := s.deps.Out.Submit(ctx, batch)
		// The pipeline owns the entries now; a new slice keeps them intact.
		batch = make([]entry.Entry, 0, cap(batch))
		batchBytes = 0
		return err
	}
	add := func(line LogLine) error {
		k := 0
		if line.Stream == StreamStderr {
			k = 1
		}
		p := &w.pos.streams[k]
		if line.Time == 0 {
			// No valid timestamp prefix: keep the line, in its place.
			line.Time = max(p.time, s.deps.Now().UnixNano())
		}
		if replaying[k] {
			if line.Time < p.time || (line.Time == p.time && seen[k] < p.count) {
				if line.Time == p.time {
					seen[k]++
				}
				return nil
			}
			replaying[k] = false
		}
		if line.Time == p.time {
			p.count++
		} else {
			*p = streamPos{time: line.Time, count: 1}
		}
		batch = append(batch, entry.Entry{Time: line.Time, Line: line.Line, Stream: w.streams.Load()[k]})
		batchBytes += len(line.Line)
		read++
		readBytes += len(line.Line)
		if line.Truncated {
			truncated++
		}
		if len(batch) >= submitEntries || batchBytes >= submitBytes || ls.Buffered() == 0 {
			return flush()
		}
		return nil
	}
	// A line without newline is held until the next read shows whether the
	// stream ended right after it. A follow stream often ends at container
	// exit before the daemon has sent the rest of the log, so a partial line
	// at the end of a stream opened while the container ran is not kept: the
	// next read, after the container stopped, brings it whole (or again
	// partial, and then final).
	var held []LogLine
	for {
		line, err := ls.Next()
		if err == nil && line.Partial {
			held = append(held, line)
			continue
		}
		var daemonErr *LogDaemonError
		if errors.As(err, &daemonErr) {
			s.deps.Metrics.SourceErrors.WithLabelValues(sourceAPI, "daemon").Inc()
			s.warn.Warn("daemon-log-error", "docker reported an error while reading a container log", "container", info.Name, "error", err)
			continue
		}
		if !(errors.Is(err, io.EOF) && info.Running) {
			for _, h := range held {
				if aerr := add(h); aerr != nil {
					return false, aerr
				}
			}
		}
		held = held[:0]
		if err != nil {
			if ferr := flush(); ferr != nil {
				return false, ferr
			}
			if errors.Is(err, io.EOF) {
				return info.Running, nil
			}
			return false, err
		}
		if err := add(line); err != nil {
			return false, err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
