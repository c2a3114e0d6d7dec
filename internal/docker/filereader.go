package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/wharf-logs/wharf/internal/dockerlog"
	"github.com/wharf-logs/wharf/internal/tail"
)

// fileReadable reports whether the container's log can be read from its
// json-file here, or why not.
func (s *Source) fileReadable(info Container) (bool, string) {
	switch {
	case s.cfg.ReadFrom == ReadAPI:
		return false, "read_from is api"
	case !s.deps.Client.Local():
		return false, "the Docker daemon is remote (" + s.deps.Client.Host() + ")"
	case info.LogDriver != "json-file":
		return false, "log driver " + info.LogDriver + " has no json-file"
	case info.LogPath == "":
		return false, "the daemon reports no log path"
	}
	f, err := os.Open(info.LogPath)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			// Not written yet (created, never started): the Follower
			// waits for it to appear.
			return true, ""
		}
		return false, err.Error()
	}
	f.Close()
	return true, ""
}

// followerReader gives a Follower the io.Reader shape the json-file reader
// wants. With a deadline set, Read returns tail.ErrIdle instead of waiting
// past it, which is how the reader learns to hand off what it holds.
type followerReader struct {
	f        *tail.Follower
	ctx      context.Context
	deadline time.Time
	// ended makes Read report io.EOF: the file ended, and the reader of it
	// must take only what it buffered, not the next file's bytes.
	ended bool
}

func (r *followerReader) Read(p []byte) (int, error) {
	if r.ended {
		return 0, io.EOF
	}
	if r.deadline.IsZero() {
		return r.f.Read(r.ctx, p)
	}
	return r.f.ReadBefore(r.ctx, p, r.deadline)
}

// readFile reads the container's log from its json-file (and the files it
// was rotated to) until the container stops or ctx ends. It is called
// holding s.sem, which it releases once the file is open. dies is the
// container's die count before it was inspected: a die since then stops the
// follower at once.
func (s *Source) readFile(ctx context.Context, w *watched, info Container, dies int) (more bool, err error) {
	start := tail.Position{}
	if w.pos.hasFile {
		start = w.pos.file.tail
	}
	gaps := 0
	f, err := tail.Open(info.LogPath, start, tail.Options{
		Rotated: tail.Numbered,
		Poller:  s.poller,
		OnGap: func(g tail.Gap) {
			gaps++
			s.lost(string(g.Reason))
			s.deps.Logger.Error("part of a container log was gone before it could be read", "container", info.Name, "reason", g.Reason, "file", g.Path, "bytes", g.Bytes)
		},
	})
	<-s.sem
	if err != nil {
		return false, fmt.Errorf("docker: container %s: %w", info.Name, err)
	}
	defer f.Close()
	// The saved place in the file applies only if the follower found that
	// file; otherwise reading starts at the beginning of a newer one, and
	// the position's times tell what was read already.
	resume := w.pos.hasFile && gaps == 0 && f.Position().Offset == start.Offset
	s.mu.Lock()
	w.follower = f
	if !info.Running || w.dies != dies || w.destroyed {
		f.Stop() // stopped: read what there is and finish
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		w.follower = nil
		s.mu.Unlock()
	}()
	watching := s.deps.Metrics.ContainersWatched.WithLabelValues("file")
	watching.Inc()
	defer watching.Dec()
	s.deps.Logger.Debug("reading container", "container", info.Name, "read_from", "file", "path", info.LogPath, "resume", w.pos.hasFile)

	fr := &followerReader{f: f, ctx: ctx}
	// Without a file position the log is read from the start of the file
	// and what the position's times say was read is skipped.
	j := &jsonFile{f: f, fr: fr, b: s.newBatcher(ctx, w, sourceFile, !resume)}
	if resume {
		j.jr = dockerlog.NewFileReaderAt(fr, w.pos.file.line, s.cfg.MaxLineBytes)
	} else {
		j.jr = dockerlog.NewFileReader(fr, f.Position().Offset, s.cfg.MaxLineBytes)
	}
	return false, s.followFile(j, info)
}

// jsonFile is the reading of one container's json-file log: the follower,
// the FileReader of the file being read and the batcher its lines go to.
// It belongs to the goroutine of readFile.
type jsonFile struct {
	f  *tail.Follower
	fr *followerReader
	jr *dockerlog.FileReader
	b  *batcher
}

// add hands a line to the batcher with its place in the file.
func (j *jsonFile) add(l dockerlog.Line) error {
	tp := j.f.Position()
	tp.Offset = l.Pos.Resume
	return j.b.add(l, &tp)
}

// finish takes the lines a finished file still holds.
func (j *jsonFile) finish() error {
	for {
		j.b.room()
		l, arena, err := j.jr.NextAppend(j.b.arena)
		if errors.Is(err, io.EOF) {
			break
		}
		if err == nil {
			j.b.arena = arena
			if err := j.add(l); err != nil {
				return err
			}
			continue
		}
		if !errors.Is(err, dockerlog.ErrCorruptRecord) {
			break
		}
	}
	for {
		l, err := j.jr.Flush()
		if err != nil {
			return nil
		}
		if err := j.add(l); err != nil {
			return err
		}
	}
}

// followFile reads j's lines through rotations until the container stops
// (the follower then reports io.EOF) or an error ends it.
func (s *Source) followFile(j *jsonFile, info Container) error {
	fr, b := j.fr, j.b
	idle := false // out of lines: what was held is handed off and released
	for {
		// Before waiting for more, hand off what is held and give back
		// what a busy spell made grow: the read with a passed deadline
		// returns tail.ErrIdle instead of waiting.
		fr.deadline = time.Time{}
		if !idle {
			fr.deadline = time.Unix(0, 1)
		}
		b.room()
		l, arena, err := j.jr.NextAppend(b.arena)
		if !errors.Is(err, tail.ErrIdle) {
			idle = false
		}
		switch {
		case err == nil:
			b.arena = arena
			if err := j.add(l); err != nil {
				return err
			}
		case errors.Is(err, dockerlog.ErrCorruptRecord):
			s.deps.SourceMetrics.Errors.WithLabelValues(sourceFile, "corrupt_record").Inc()
			s.warn.Warn("corrupt-record", "skipping a corrupt json-file record", "container", info.Name, "error", err)
		case errors.Is(err, tail.ErrIdle):
			if err := b.flush(); err != nil {
				return err
			}
			b.idle()
			j.jr.Release()
			idle = true
		case errors.Is(err, tail.ErrFileEnd):
			// Rotated away and read to its end: what it still holds is
			// complete, and the next file starts a new reader.
			fr.ended = true
			err := j.finish()
			fr.ended = false
			if err != nil {
				return err
			}
			j.jr = dockerlog.NewFileReader(fr, 0, s.cfg.MaxLineBytes)
		case errors.Is(err, io.EOF):
			// Stopped: the container is not running and everything is read.
			if err := j.finish(); err != nil {
				return err
			}
			return b.flush()
		default:
			if ferr := b.flush(); ferr != nil {
				return ferr
			}
			return err
		}
	}
}
