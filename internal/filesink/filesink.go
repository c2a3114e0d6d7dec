// Package filesink writes log entries to NDJSON files under a directory, one
// file per stream origin (a container name or a file path), rotated by size,
// with a cap on the size of them all. It is wharf's embedded default
// destination and stays a real option beside Loki.
package filesink

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/wharf-logs/wharf/internal/entry"
	"github.com/wharf-logs/wharf/internal/ratelog"
)

// Config configures the file sink.
type Config struct {
	Dir          string
	MaxFileBytes int64
	MaxFiles     int
	// MaxTotalBytes caps the size of the sink's files in Dir, rotated ones
	// included: beyond it the least recently modified are removed (see
	// Send). 0 sets no cap.
	MaxTotalBytes int64
	// Fsync syncs each batch before it is confirmed, every file it wrote,
	// including those closed before the batch ended. Without it, a batch is
	// confirmed once the kernel has it, which survives a crash of wharf but
	// not of the machine.
	Fsync bool
	// MaxOpen bounds open files; the least recently written is closed first.
	MaxOpen int
	// IdleClose closes files not written for this long (Run does, whether
	// more batches come or not), so origins that went away (exited
	// containers) hold no descriptor.
	IdleClose time.Duration
}

// Deps are the file sink's collaborators.
type Deps struct {
	Logger *slog.Logger // removals and close errors are logged here, rate-limited; discarded when nil
	// Metrics are what the sink counts; fresh ones, registered nowhere,
	// when nil.
	Metrics *Metrics
}

// Sink is the file sink. Send is called by one goroutine at a time (it has
// one shard) and Run beside it; Close after the last Send, once Run has
// returned.
type Sink struct {
	cfg      Config
	metrics  *Metrics
	note     *ratelog.Limiter
	now      func() time.Time
	syncFile func(*os.File) error // (*os.File).Sync when nil; tests replace it

	mu    sync.Mutex // held by Send for a whole batch, and by Run to close idle files
	files map[string]*openFile
	buf   []byte
	disk  int64 // bytes of the sink's files in Dir; -1 until measured
}

type openFile struct {
	rot  *Rotator
	used time.Time
}

// New returns a file sink writing under cfg.Dir. It creates nothing until
// the first write.
func New(cfg Config, deps Deps) (*Sink, error) {
	if cfg.Dir == "" {
		return nil, errors.New("filesink: no directory")
	}
	if cfg.MaxTotalBytes < 0 {
		return nil, errors.New("filesink: negative total size cap")
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
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Metrics == nil {
		deps.Metrics = NewMetrics()
	}
	return &Sink{
		cfg:     cfg,
		metrics: deps.Metrics,
		note:    ratelog.New(deps.Logger.With("sink", "file"), 10*time.Second),
		now:     time.Now,
		files:   map[string]*openFile{},
		disk:    -1,
	}, nil
}

// Name implements sink.Sink.
func (s *Sink) Name() string { return "file" }

// Send writes every entry of b to its origin's file, then syncs if asked.
// A write error (disk full, read-only) is returned as retryable: the batch
// stays unconfirmed and is written again once the disk accepts it.
//
// When the sink's files then hold more than MaxTotalBytes, the least
// recently modified are removed (see keepTotal).
func (s *Sink) Send(ctx context.Context, b *entry.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.disk < 0 {
		s.measure()
	}
	touched := make([]*openFile, 0, len(b.Streams))
	for i := range b.Streams {
		se := &b.Streams[i]
		f, err := s.file(se.Stream.Origin, now)
		if err != nil {
			return retryable(err)
		}
		s.buf = s.buf[:0]
		for j := range se.Entries {
			s.buf = AppendRecord(s.buf, &se.Entries[j])
			if len(s.buf) >= 256<<10 {
				if err := s.write(f, s.buf); err != nil {
					return retryable(err)
				}
				s.buf = s.buf[:0]
			}
		}
		if len(s.buf) > 0 {
			if err := s.write(f, s.buf); err != nil {
				return retryable(err)
			}
		}
		touched = append(touched, f)
	}
	// A file closed on the way (to stay within MaxOpen) was synced then.
	for _, f := range touched {
		if err := f.rot.Sync(); err != nil {
			return retryable(err)
		}
	}
	s.closeIdle(now)
	s.keepTotal()
	return nil
}

// write appends p to f's file and counts it in the sink's size.
func (s *Sink) write(f *openFile, p []byte) error {
	if err := f.rot.Write(p); err != nil {
		return err
	}
	s.addDisk(int64(len(p)))
	return nil
}

// file returns the open file of origin, closing the least recently used one
// when too many are open. An error is that file's failed sync or close.
func (s *Sink) file(origin string, now time.Time) (*openFile, error) {
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
			err := s.files[lru].rot.Close()
			delete(s.files, lru)
			if err != nil {
				return nil, err
			}
		}
		f = &openFile{rot: NewRotator(filepath.Join(s.cfg.Dir, name), s.cfg.MaxFileBytes, s.cfg.MaxFiles, s.cfg.Fsync)}
		f.rot.syncFile, f.rot.removed = s.syncFile, s.rotatedAway
		s.files[name] = f
	}
	f.used = now
	return f, nil
}

// Run closes the files not written for IdleClose until ctx ends, so that
// origins that stopped writing hold no descriptor even when no later batch
// comes to close them. It wakes when the next open file reaches IdleClose
// (every IdleClose when none is open) and returns nil when ctx ends. The
// owner of the goroutines that call Send runs it.
func (s *Sink) Run(ctx context.Context) error {
	timer := time.NewTimer(s.cfg.IdleClose)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		s.mu.Lock()
		next := s.closeIdle(s.now())
		s.mu.Unlock()
		timer.Reset(next)
	}
}

// closeIdle closes the files not written for IdleClose and returns how long
// until the next open one will have been (IdleClose when none is open).
func (s *Sink) closeIdle(now time.Time) time.Duration {
	next := s.cfg.IdleClose
	for k, f := range s.files {
		if left := f.used.Add(s.cfg.IdleClose).Sub(now); left > 0 {
			next = min(next, left)
			continue
		}
		if err := f.rot.Close(); err != nil {
			s.note.Warn("close", "closing an idle file failed", "file", f.rot.path, "error", err)
		}
		delete(s.files, k)
	}
	return next
}

// Close closes every open file.
func (s *Sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for k, f := range s.files {
		errs = append(errs, f.rot.Close())
		delete(s.files, k)
	}
	return errors.Join(errs...)
}

// maxName is the longest name FileName gives, before ".ndjson": room is
// left for rotation suffixes within the usual 255-byte limit.
const maxName = 200

// FileName maps an origin to the name of its file in the sink's directory.
//
// An origin that is already a plain file name of at most 200 bytes
// (letters, digits, '-', '_' and '.', not starting with '.'), as every
// Docker container name is, is kept as it is: "web" writes web.ndjson.
// Any other origin has every other character replaced by '_' and leading
// dots dropped, is cut to 191 bytes, and gets '@' and the first 8 hex
// digits of its SHA-256 appended: "/var/log/app.log" writes
// _var_log_app.log@f3e23ba3.ndjson. So the names stay readable and the same
// at every start, origins that differ only where they were changed or cut
// get files of their own, and, since '@' never appears in a kept name, no
// origin's file can be another's.
func FileName(origin string) string {
	if len(origin) <= maxName && plainName(origin) {
		return origin + ".ndjson"
	}
	var b strings.Builder
	for _, c := range origin {
		if c < 0x80 && safeByte(byte(c)) {
			b.WriteRune(c)
		} else {
			b.WriteByte('_')
		}
	}
	stem := strings.TrimLeft(b.String(), ".")
	switch {
	case origin == "":
		stem = "unknown"
	case stem == "":
		stem = "_"
	}
	sum := sha256.Sum256([]byte(origin))
	return stem[:min(len(stem), maxName-9)] + "@" + hex.EncodeToString(sum[:4]) + ".ndjson"
}

// plainName reports whether s can be a file name as it is.
func plainName(s string) bool {
	if s == "" || s[0] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !safeByte(s[i]) {
			return false
		}
	}
	return true
}

func safeByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
}
