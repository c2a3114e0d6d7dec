// Package filesink writes log entries to NDJSON files under a directory, one
// file per stream origin (a container name or a file path), rotated by size.
// It is wharf's embedded default destination and stays a real option beside
// Loki.
package filesink

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"time"

	"github.com/wharf-logs/wharf/internal/entry"
)

// Config configures the file sink.
type Config struct {
	Dir          string
	MaxFileBytes int64
	MaxFiles     int
	// Fsync syncs each batch before it is confirmed. Without it, a batch is
	// confirmed once the kernel has it, which survives a crash of wharf but
	// not of the machine.
	Fsync bool
	// MaxOpen bounds open files; the least recently written is closed first.
	MaxOpen int
	// IdleClose closes files not written for this long, so origins that went
	// away (destroyed containers) hold no descriptor.
	IdleClose time.Duration
}

// Sink is the file sink. Send is called by one goroutine at a time (it has
// one shard); Close after the last Send.
type Sink struct {
	cfg   Config
	files map[string]*openFile
	buf   []byte
	now   func() time.Time
}

type openFile struct {
	rot  *Rotator
	used time.Time
}

// New returns a file sink writing under cfg.Dir. It creates nothing until
// the first write.
func New(cfg Config) (*Sink, error) {
	if cfg.Dir == "" {
		return nil, errors.New("filesink: no directory")
	}
	if cfg.MaxFileBytes <= 0 {
		cfg.MaxFileBytes = 100 << 20
	}
	if cfg.MaxOpen <= 0 {
		cfg.MaxOpen = 64
	}
	if cfg.IdleClose <= 0 {
		cfg.IdleClose = 10 * time.Second
	}
	return &Sink{cfg: cfg, files: map[string]*openFile{}, now: time.Now}, nil
}

// Name implements sink.Sink.
func (s *Sink) Name() string { return "file" }

// Send writes every entry of b to its origin's file, then syncs if asked.
// A write error (disk full, read-only) is returned as retryable: the batch
// stays unconfirmed and is written again once the disk accepts it.
func (s *Sink) Send(ctx context.Context, b *entry.Batch) error {
	now := s.now()
	touched := make([]*openFile, 0, len(b.Streams))
	for i := range b.Streams {
		se := &b.Streams[i]
		f := s.file(se.Stream.Origin, now)
		s.buf = s.buf[:0]
		for j := range se.Entries {
			s.buf = AppendRecord(s.buf, &se.Entries[j])
			if len(s.buf) >= 256<<10 {
				if err := f.rot.Write(s.buf); err != nil {
					return retryable(err)
				}
				s.buf = s.buf[:0]
			}
		}
		if len(s.buf) > 0 {
			if err := f.rot.Write(s.buf); err != nil {
				return retryable(err)
			}
		}
		touched = append(touched, f)
	}
	for _, f := range touched {
		if err := f.rot.Sync(); err != nil {
			return retryable(err)
		}
	}
	s.closeIdle(now)
	return nil
}

// file returns the open file of origin, closing the least recently used one
// when too many are open.
func (s *Sink) file(origin string, now time.Time) *openFile {
	name := FileName(origin)
	f := s.files[name]
	if f == nil {
		if len(s.files) >= s.cfg.MaxOpen {
			var lru string
			for k, v := range s.files {
				if lru == "" || v.used.Before(s.files[lru].used) {
					lru = k
				}
			}
			s.files[lru].rot.Close()
			delete(s.files, lru)
		}
		f = &openFile{rot: NewRotator(filepath.Join(s.cfg.Dir, name), s.cfg.MaxFileBytes, s.cfg.MaxFiles, s.cfg.Fsync)}
		s.files[name] = f
	}
	f.used = now
	return f
}

func (s *Sink) closeIdle(now time.Time) {
	for k, f := range s.files {
		if now.Sub(f.used) > s.cfg.IdleClose {
			f.rot.Close()
			delete(s.files, k)
		}
	}
}

// Close closes every open file.
func (s *Sink) Close() error {
	var errs []error
	for k, f := range s.files {
		errs = append(errs, f.rot.Close())
		delete(s.files, k)
	}
	return errors.Join(errs...)
}

// FileName maps an origin to a safe file name: path separators and other
// unsafe bytes become '_', and ".ndjson" is appended.
func FileName(origin string) string {
	if origin == "" {
		origin = "unknown"
	}
	var b strings.Builder
	for _, c := range origin {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
			b.WriteRune(c)
		default:
			b.WriteByte('_')
		}
	}
	name := strings.TrimLeft(b.String(), ".")
	if name == "" {
		name = "_"
	}
	if len(name) > 200 {
		name = name[:200]
	}
	return name + ".ndjson"
}
