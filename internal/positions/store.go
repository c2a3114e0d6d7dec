// Package positions keeps the durable position of every source: how far its
// entries have been confirmed (delivered, dead-lettered or durably queued).
// A position only advances when every earlier entry of its source is
// confirmed, never on hand-off, so a restart or a kill -9 loses nothing and
// re-sends at most what was in flight.
//
// Positions are opaque strings to this package; each source encodes its own
// (a Docker reader its per-stream timestamps, a file reader its inode and
// offset). They are written atomically (temp file, fsync, rename, fsync of
// the directory) at an interval and at shutdown, with a version and a
// checksum. The file is 0600 and never read or written through a symbolic
// link (see internal/datadir).
package positions

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wharf-logs/wharf/internal/datadir"
)

// Version is the positions file format this build writes and reads.
const Version = 1

const magic = "wharf-positions"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrNewerVersion reports a positions file written by a newer wharf.
var ErrNewerVersion = errors.New("positions: file written by a newer version of wharf")

// Store holds the positions of all sources and persists them. It is safe for
// concurrent use.
type Store struct {
	path string
	log  *slog.Logger

	// modTime is when the file loaded at Open was last written: the last
	// save of the run that wrote it. Zero when none was loaded.
	modTime time.Time

	mu        sync.Mutex
	positions map[string]string
	dirty     bool
	lastErr   error
	writes    int64
	failures  int64
}

// Open loads the positions file at path. A missing file is an empty store. A
// file that cannot be decoded is moved aside, to <path>.newer-<unix seconds>
// when a newer wharf wrote it (the problem then wraps ErrNewerVersion) and to
// <path>.corrupt-<unix seconds> otherwise (corrupt, truncated), reported in
// the returned problem, and the store starts empty: sources then start by
// their start_at setting. Only an unreadable file or directory is an error.
func Open(path string, log *slog.Logger) (s *Store, problem error, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s = &Store{path: path, log: log, positions: map[string]string{}}
	dir := filepath.Dir(path)
	if err := datadir.MkdirAll(dir); err != nil {
		return nil, nil, fmt.Errorf("positions: %w", err)
	}
	if err := datadir.RemoveTemps(dir, filepath.Base(path)); err != nil {
		return nil, nil, fmt.Errorf("positions: %w", err)
	}
	data, err := datadir.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("positions: %w", err)
	}
	pos, derr := Decode(data)
	if derr != nil {
		why := "corrupt"
		if errors.Is(derr, ErrNewerVersion) {
			// A downgrade, not damage: the file is whole, only unreadable here.
			why = "newer"
		}
		aside := fmt.Sprintf("%s.%s-%d", path, why, time.Now().Unix())
		if rerr := os.Rename(path, aside); rerr != nil {
			return nil, nil, fmt.Errorf("positions: %s is unusable (%v) and cannot be moved aside: %w", path, derr, rerr)
		}
		return s, fmt.Errorf("positions: %s is unusable, moved to %s; sources start by start_at: %w", path, aside, derr), nil
	}
	s.positions = pos
	if fi, err := os.Stat(path); err == nil {
		s.modTime = fi.ModTime()
	}
	return s, nil, nil
}

// ModTime returns when the positions file loaded by Open was last written,
// which is when the run that wrote it last saved: a source whose positions
// carry no time of their own (a file written by an older wharf) can take it
// as the end of what that run saw. It is zero when no file was loaded (none,
// or one moved aside).
func (s *Store) ModTime() time.Time { return s.modTime }

// Get returns the position of key.
func (s *Store) Get(key string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.positions[key]
	return p, ok
}

// Set records the position of key; it is written at the next Flush.
func (s *Store) Set(key, pos string) {
	s.mu.Lock()
	if s.positions[key] != pos {
		s.positions[key] = pos
		s.dirty = true
	}
	s.mu.Unlock()
}

// Delete forgets key.
func (s *Store) Delete(key string) {
	s.mu.Lock()
	if _, ok := s.positions[key]; ok {
		delete(s.positions, key)
		s.dirty = true
	}
	s.mu.Unlock()
}

// Keys returns the keys starting with prefix, sorted.
func (s *Store) Keys(prefix string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for k := range s.positions {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// Err is the error of the last failed write, or nil once a write succeeds.
func (s *Store) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastErr
}

// WriteErrors is the number of writes of the positions file that failed.
func (s *Store) WriteErrors() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failures
}

// Flush writes the positions if they changed since the last write. On error
// the store stays dirty and the next Flush tries again; positions already on
// disk stay valid.
func (s *Store) Flush() error {
	s.mu.Lock()
	if !s.dirty {
		s.mu.Unlock()
		return nil
	}
	data := Encode(s.positions)
	s.dirty = false
	s.mu.Unlock()

	err := writeAtomic(s.path, data)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.dirty = true
		s.lastErr = err
		s.failures++
		return err
	}
	s.lastErr = nil
	s.writes++
	return nil
}

// Run flushes every interval until ctx ends. The caller flushes once more
// after the pipeline has stopped (see Flush), so the last confirmations are
// kept.
func (s *Store) Run(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := s.Flush(); err != nil {
			if !failing {
				s.log.Error("cannot write positions; they are kept in memory and written when the disk accepts them", "path", s.path, "error", err)
			}
			failing = true
		} else if failing {
			s.log.Info("positions written again", "path", s.path)
			failing = false
		}
	}
}

// writeAtomic replaces path with data: temp file, fsync, rename, fsync dir.
func writeAtomic(path string, data []byte) error {
	if err := datadir.WriteFile(path, data, nil); err != nil {
		// The *PathError names the file already.
		return fmt.Errorf("positions: %w", err)
	}
	return nil
}

// Encode renders positions in the file format: a header line
//
//	wharf-positions <version> <crc32c of body, hex> <body length>
//
// followed by the body, a JSON object of key to position.
func Encode(positions map[string]string) []byte {
	body, _ := json.Marshal(positions) // a map of strings always marshals
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %d %08x %d\n", magic, Version, crc32.Checksum(body, castagnoli), len(body))
	b.Write(body)
	b.WriteByte('\n')
	return b.Bytes()
}

// Decode parses a positions file, checking its version, length and checksum.
func Decode(data []byte) (map[string]string, error) {
	header, rest, ok := bytes.Cut(data, []byte{'\n'})
	if !ok {
		return nil, errors.New("positions: no header line")
	}
	f := strings.Fields(string(header))
	if len(f) != 4 || f[0] != magic {
		return nil, errors.New("positions: not a positions file")
	}
	v, err := strconv.Atoi(f[1])
	if err != nil || v < 1 {
		return nil, fmt.Errorf("positions: bad version %q", f[1])
	}
	if v > Version {
		return nil, fmt.Errorf("%w (version %d, this wharf reads %d)", ErrNewerVersion, v, Version)
	}
	sum, err := strconv.ParseUint(f[2], 16, 32)
	if err != nil {
		return nil, fmt.Errorf("positions: bad checksum %q", f[2])
	}
	n, err := strconv.Atoi(f[3])
	if err != nil || n < 0 || n > len(rest) {
		return nil, fmt.Errorf("positions: body length %q does not match the file (%d bytes)", f[3], len(rest))
	}
	body := rest[:n]
	if uint32(sum) != crc32.Checksum(body, castagnoli) {
		return nil, errors.New("positions: checksum mismatch")
	}
	pos := map[string]string{}
	if err := json.Unmarshal(body, &pos); err != nil {
		return nil, fmt.Errorf("positions: body: %w", err)
	}
	return pos, nil
}
