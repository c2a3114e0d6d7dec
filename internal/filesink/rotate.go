package filesink

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/wharf-logs/wharf/internal/datadir"
)

// Rotator appends to a file and rotates it by size: name, name.1 ... name.N,
// keeping at most MaxFiles files in all. Files are created 0600, in
// directories created 0700, and never opened through a symbolic link
// (internal/datadir). It is not safe for concurrent use.
type Rotator struct {
	path     string
	maxBytes int64
	maxFiles int
	fsync    bool

	f     *os.File
	size  int64
	dirty bool // written since the last sync

	// syncFile syncs the file: (*os.File).Sync unless a test replaces it.
	syncFile func(*os.File) error
	// removed, when set, is told of each file a rotation removes (the
	// oldest of max_files), with its size.
	removed func(path string, size int64)
}

// NewRotator returns a Rotator for path. The file is opened on first write.
func NewRotator(path string, maxBytes int64, maxFiles int, fsync bool) *Rotator {
	return &Rotator{path: path, maxBytes: maxBytes, maxFiles: max(1, maxFiles), fsync: fsync}
}

// OnRemove sets f to be told of each file a rotation removes (the oldest of
// maxFiles), with its size, so its owner can count and log the loss.
func (r *Rotator) OnRemove(f func(path string, size int64)) { r.removed = f }

// Write appends p whole, rotating first when p would take the file beyond
// its size limit (a record is never split across files).
func (r *Rotator) Write(p []byte) error {
	if r.f == nil {
		if err := r.open(); err != nil {
			return err
		}
	}
	if r.size > 0 && r.size+int64(len(p)) > r.maxBytes {
		if err := r.rotate(); err != nil {
			return err
		}
	}
	n, err := r.f.Write(p)
	if err != nil {
		// Cut a half-written record off, so the file stays valid NDJSON and
		// the retry appends whole records after the last good one.
		if n > 0 {
			_ = r.f.Truncate(r.size)
		}
		return fmt.Errorf("filesink: write %s: %w", r.path, err)
	}
	r.size += int64(n)
	r.dirty = true
	return nil
}

// Sync flushes what was written since the last sync to disk, when fsync was
// asked for.
func (r *Rotator) Sync() error {
	if r.f == nil || !r.fsync || !r.dirty {
		return nil
	}
	sync := r.syncFile
	if sync == nil {
		sync = (*os.File).Sync
	}
	if err := sync(r.f); err != nil {
		return fmt.Errorf("filesink: sync %s: %w", r.path, err)
	}
	r.dirty = false
	return nil
}

// Close syncs the current file as Sync does, so that a file closed before
// the end of a batch is as durable as the others, and closes it; a later
// Write reopens it. The file is closed even when the sync fails.
func (r *Rotator) Close() error {
	if r.f == nil {
		return nil
	}
	err := r.Sync()
	if cerr := r.f.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("filesink: close %s: %w", r.path, cerr)
	}
	r.f, r.dirty = nil, false
	return err
}

func (r *Rotator) open() error {
	if err := datadir.MkdirAll(filepath.Dir(r.path)); err != nil {
		return fmt.Errorf("filesink: %w", err)
	}
	f, err := datadir.OpenFile(r.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE)
	if err != nil {
		return fmt.Errorf("filesink: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("filesink: %w", err)
	}
	r.f, r.size = f, st.Size()
	return nil
}

// rotate shifts name.(N-1) to name.N ... name to name.1, dropping the
// oldest, and starts a new file.
func (r *Rotator) rotate() error {
	if err := r.Close(); err != nil {
		return err
	}
	if r.maxFiles == 1 {
		if err := r.remove(r.path); err != nil {
			return err
		}
		return r.open()
	}
	if err := r.remove(r.path + "." + strconv.Itoa(r.maxFiles-1)); err != nil {
		return err
	}
	for i := r.maxFiles - 2; i >= 1; i-- {
		from := r.path + "." + strconv.Itoa(i)
		if err := os.Rename(from, r.path+"."+strconv.Itoa(i+1)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("filesink: %w", err)
		}
	}
	if err := os.Rename(r.path, r.path+".1"); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("filesink: %w", err)
	}
	return r.open()
}

// remove removes the oldest file of a rotation, if there is one, and tells
// r.removed.
func (r *Rotator) remove(path string) error {
	st, statErr := os.Lstat(path)
	if err := os.Remove(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("filesink: %w", err)
	}
	if r.removed != nil && statErr == nil {
		r.removed(path, st.Size())
	}
	return nil
}
