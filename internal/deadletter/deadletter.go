// Package deadletter keeps the entries a sink refused for good, or that were
// never sent because the receiver would certainly refuse them, in NDJSON
// files under the data directory, so no line vanishes without a trace. Files
// are size-capped and rotated; the oldest is removed when the cap is reached.
// Like every file wharf writes, they are 0600 in 0700 directories and never
// opened through a symbolic link (internal/datadir).
package deadletter

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/wharf-logs/wharf/internal/datadir"
	"github.com/wharf-logs/wharf/internal/entry"
	"github.com/wharf-logs/wharf/internal/filesink"
	"github.com/wharf-logs/wharf/internal/ratelog"
)

// Config says where dead letters go and how much of them is kept.
type Config struct {
	// Dir holds one <sink>.ndjson file per sink, and its rotated files.
	Dir string
	// MaxFileBytes and MaxFiles bound each sink's files: past MaxFiles the
	// oldest is removed, which is counted and logged.
	MaxFileBytes int64
	MaxFiles     int
}

// Deps are what a Writer reports to. Nil fields get a discarding logger and
// metrics registered nowhere.
type Deps struct {
	Logger  *slog.Logger
	Metrics *Metrics
}

// Writer appends dead-lettered entries to <dir>/<sink>.ndjson. Each record is
// a file sink record plus "sink", "reason" and "error" fields. It is safe for
// concurrent use.
type Writer struct {
	dir      string
	maxBytes int64
	maxFiles int
	metrics  *Metrics
	note     *ratelog.Limiter

	mu      sync.Mutex
	files   map[string]*filesink.Rotator
	buf     []byte
	lastErr error
	probed  time.Time // when Err last tried the directory after a failure
}

// probeEvery is how often Err tries whether the directory takes writes
// again after a failed DeadLetter.
const probeEvery = 10 * time.Second

// New returns a Writer for cfg; files are created on first use.
func New(cfg Config, deps Deps) *Writer {
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Metrics == nil {
		deps.Metrics = NewMetrics()
	}
	return &Writer{
		dir: cfg.Dir, maxBytes: cfg.MaxFileBytes, maxFiles: cfg.MaxFiles,
		metrics: deps.Metrics,
		note:    ratelog.New(deps.Logger, time.Minute),
		files:   map[string]*filesink.Rotator{},
	}
}

// removed counts and logs a dead-letter file a rotation removed: the entries
// in it were counted as dead-lettered, and now their last trace is gone.
func (w *Writer) removed(path string, size int64) {
	w.metrics.FilesRemoved.Inc()
	w.metrics.BytesRemoved.Add(float64(size))
	w.note.Warn("deadletter-removed", "deadletter: removed the oldest dead-letter file, past loki.dead_letter.max_files; raise it or max_file_bytes to keep more",
		"path", path, "bytes", size)
}

// DeadLetter appends entries with the sink, reason and cause that kept them
// from being delivered. The file is synced before DeadLetter returns, since
// the entries are confirmed (and their source advanced) right after. An
// error names the directory and is kept in Err until a write succeeds.
func (w *Writer) DeadLetter(sinkName, reason string, cause error, entries []entry.Entry) error {
	msg := ""
	if cause != nil {
		msg = cause.Error()
		if len(msg) > 4096 {
			msg = msg[:4096]
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	r := w.files[sinkName]
	if r == nil {
		r = filesink.NewRotator(filepath.Join(w.dir, filesink.FileName(sinkName)), w.maxBytes, w.maxFiles, true)
		r.OnRemove(w.removed)
		w.files[sinkName] = r
	}
	w.buf = w.buf[:0]
	for i := range entries {
		w.buf = filesink.AppendRecord(w.buf, &entries[i], "sink", sinkName, "reason", reason, "error", msg)
	}
	err := r.Write(w.buf)
	if err == nil {
		err = r.Sync()
	}
	if err != nil {
		err = fmt.Errorf("deadletter: cannot write in %s: %w", w.dir, err)
	}
	w.lastErr = err
	w.probed = time.Now()
	return err
}

// Err is the error of the last DeadLetter call, or nil when it succeeded.
// After a failure it tries, at most every 10 s, whether the directory takes
// a small synced write again, and forgets the error if so: dead letters can
// be rare, and readiness should not wait for the next one to recover.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.lastErr != nil && time.Since(w.probed) >= probeEvery {
		w.probed = time.Now()
		if probe(w.dir) == nil {
			w.lastErr = nil
		}
	}
	return w.lastErr
}

// probe creates, syncs and removes a one-byte file in dir.
func probe(dir string) error {
	if err := datadir.MkdirAll(dir); err != nil {
		return err
	}
	f, err := datadir.CreateTemp(dir, ".probe-*")
	if err != nil {
		return err
	}
	_, err = f.Write([]byte{'\n'})
	if err == nil {
		err = f.Sync()
	}
	f.Close()
	os.Remove(f.Name())
	return err
}

// Close closes the files.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var errs []error
	for k, r := range w.files {
		errs = append(errs, r.Close())
		delete(w.files, k)
	}
	return errors.Join(errs...)
}
