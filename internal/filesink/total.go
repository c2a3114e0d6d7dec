package filesink

import (
	"cmp"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// diskFile is one of the sink's files found in its directory.
type diskFile struct {
	name     string
	size     int64
	modified time.Time
	rotation int // N for name.ndjson.N, 0 for the current name.ndjson
}

// scan lists the sink's files in its directory, and their total size: the
// regular files named *.ndjson and *.ndjson.N. Nothing else there is
// counted or ever removed.
func (s *Sink) scan() ([]diskFile, int64, error) {
	ents, err := os.ReadDir(s.cfg.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	var found []diskFile
	var total int64
	for _, e := range ents {
		rot, ok := rotationOf(e.Name())
		if !ok || !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		found = append(found, diskFile{name: e.Name(), size: info.Size(), modified: info.ModTime(), rotation: rot})
		total += info.Size()
	}
	return found, total, nil
}

// rotationOf reports whether name is one of the sink's file names, and its
// rotation number (0 for a current file).
func rotationOf(name string) (int, bool) {
	if strings.HasSuffix(name, ".ndjson") {
		return 0, true
	}
	i := strings.LastIndexByte(name, '.')
	if i < 0 || !strings.HasSuffix(name[:i], ".ndjson") || len(name)-i-1 < 1 || len(name)-i-1 > 4 {
		return 0, false
	}
	n := 0
	for _, c := range name[i+1:] {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n > 0
}

// measure sets the sink's size from its directory. When the directory
// cannot be read the size stays unknown (and the cap unchecked) until a
// later Send reads it.
func (s *Sink) measure() {
	_, total, err := s.scan()
	if err != nil {
		s.note.Warn("scan", "cannot list the file sink's directory; file.max_total_bytes is not enforced until it can", "dir", s.cfg.Dir, "error", err)
		return
	}
	s.disk = total
	s.metrics.DiskBytes.Set(float64(total))
}

// addDisk adds n (negative for a removal) to the sink's size, when known.
func (s *Sink) addDisk(n int64) {
	if s.disk < 0 {
		return
	}
	s.disk += n
	s.metrics.DiskBytes.Set(float64(s.disk))
}

// rotatedAway accounts for a file a rotation removed: the oldest of its
// origin's MaxFiles.
func (s *Sink) rotatedAway(path string, size int64) {
	s.addDisk(-size)
	s.metrics.removed(ReasonMaxFiles, size)
	s.note.Log(slog.LevelInfo, ReasonMaxFiles, "rotated file removed: its origin has file.max_files files", "file", path, "bytes", size)
}

// keepTotal removes files while the sink's hold more than MaxTotalBytes:
// the least recently modified first, of equal age the rotated ones first,
// the oldest rotation first. Files open for writing go only when the others
// are not enough, the least recently written first (a removed open file is
// closed first; its origin's next line starts a new one). Once over the
// cap, it removes down to 31/32 of it, so that the directory is not listed
// again at every write. Each removal is counted; one line per call is logged.
func (s *Sink) keepTotal() {
	limit := s.cfg.MaxTotalBytes
	if limit <= 0 || s.disk <= limit {
		return
	}
	found, total, err := s.scan()
	if err != nil {
		s.note.Warn("scan", "cannot list the file sink's directory; file.max_total_bytes is not enforced until it can", "dir", s.cfg.Dir, "error", err)
		return
	}
	s.disk = total
	defer func() { s.metrics.DiskBytes.Set(float64(s.disk)) }()
	if total <= limit {
		return
	}
	slices.SortFunc(found, func(a, b diskFile) int {
		ao, bo := s.files[a.name], s.files[b.name]
		switch {
		case ao != nil && bo != nil:
			return ao.used.Compare(bo.used)
		case ao != nil:
			return 1
		case bo != nil:
			return -1
		}
		if c := a.modified.Compare(b.modified); c != 0 {
			return c
		}
		return cmp.Compare(b.rotation, a.rotation)
	})
	target := limit - limit/32
	var n int
	var freed int64
	var first diskFile
	for _, f := range found {
		if s.disk <= target {
			break
		}
		if o := s.files[f.name]; o != nil {
			if err := o.rot.Close(); err != nil {
				s.note.Warn("close", "closing a file to remove it failed", "file", o.rot.path, "error", err)
			}
			delete(s.files, f.name)
		}
		if err := os.Remove(filepath.Join(s.cfg.Dir, f.name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.note.Warn("remove", "cannot remove a file to keep file.max_total_bytes", "dir", s.cfg.Dir, "error", err)
			continue
		}
		s.disk -= f.size
		s.metrics.removed(ReasonMaxTotalBytes, f.size)
		if n == 0 {
			first = f
		}
		n++
		freed += f.size
	}
	if n > 0 {
		s.note.Warn(ReasonMaxTotalBytes, "file sink over file.max_total_bytes: least recently modified files removed",
			"dir", s.cfg.Dir, "files", n, "bytes", freed, "first", first.name, "first_modified", first.modified.UTC().Format(time.RFC3339),
			"max_total_bytes", limit, "now_bytes", s.disk)
	}
}
