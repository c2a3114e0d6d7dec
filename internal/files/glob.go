package files

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Reasons a path a pattern matches is not read: the reason label of
// wharf_files_skipped_total.
const (
	// skipSymlink: a link (to a file, or to a directory the pattern goes
	// through) in an entry without follow_symlinks.
	skipSymlink = "symlink"
	// skipNotRegular: a FIFO, a device, a socket, or a link to one.
	skipNotRegular = "not_regular"
	// skipDirectory: a directory matched where a file was expected.
	skipDirectory = "directory"
	// skipCompressed: a .gz file, read only as a rotated copy of a live
	// file.
	skipCompressed = "compressed"
	// skipOwn: a file in wharf's own directories (data_dir, the file
	// sink's), which wharf would ship again and again.
	skipOwn = "own_directory"
	// skipLimit: max_followed_files are followed already; the file waits
	// for a place.
	skipLimit = "limit"
)

var skipReasons = []string{skipSymlink, skipNotRegular, skipDirectory, skipCompressed, skipOwn, skipLimit}

// hit is a path a pattern matches: a regular file to read (reason ""), or
// one that is not read, and why.
type hit struct {
	path, reason string
}

// globber finds what a pattern matches, as filepath.Glob does, but
//
//   - without following links, unless follow: a link the pattern matches
//     is reported, not read, and a linked directory is not gone through.
//     The directories before the pattern's first wildcard (trusted) are
//     the operator's own choice and are followed;
//   - with the type of each match from the directory listing (d_type), so
//     a scan costs a read of each directory and no stat per file;
//   - opening each directory with O_DIRECTORY|O_NONBLOCK (and O_NOFOLLOW
//     below trusted), so a FIFO or a link swapped in for a directory
//     blocks nothing and is not followed;
//   - leaving out wharf's own directories.
type globber struct {
	follow bool
	own    *ownDirs
}

// splitPattern returns the directory of pattern before its first component
// with a wildcard, and the components from there on. A pattern without a
// wildcard splits into its directory and its file name.
func splitPattern(pattern string) (trusted string, rest []string) {
	pattern = filepath.Clean(pattern)
	parts := strings.Split(pattern, string(filepath.Separator))
	first := len(parts) - 1
	for i, p := range parts {
		if hasMeta(p) {
			first = i
			break
		}
	}
	trusted = strings.Join(parts[:first], string(filepath.Separator))
	switch {
	case trusted == "" && filepath.IsAbs(pattern):
		trusted = string(filepath.Separator)
	case trusted == "":
		trusted = "."
	}
	return trusted, parts[first:]
}

// hasMeta reports whether a pattern component has filepath.Match's special
// characters.
func hasMeta(p string) bool { return strings.ContainsAny(p, `*?[\`) }

// glob appends to hits what pattern matches.
func (g *globber) glob(pattern string, hits []hit) []hit {
	trusted, rest := splitPattern(pattern)
	dirs := []string{trusted}
	for i, comp := range rest {
		last := i == len(rest)-1
		var next []string
		for _, d := range dirs {
			nofollow := !g.follow && d != trusted
			reason := ""
			if last && g.own.contains(d) {
				reason = skipOwn
			}
			each := func(name string, typ fs.FileMode) {
				p := filepath.Join(d, name)
				typ = g.resolve(p, typ)
				switch {
				case !last:
					if typ.IsDir() {
						next = append(next, p)
					} else if typ&fs.ModeSymlink != 0 && isDir(p) {
						hits = append(hits, hit{p, skipSymlink})
					}
				case reason != "":
					hits = append(hits, hit{p, reason})
				default:
					hits = append(hits, hit{p, kindReason(typ)})
				}
			}
			if !hasMeta(comp) {
				if typ, ok := lstatType(filepath.Join(d, comp)); ok {
					each(comp, typ)
				}
				continue
			}
			listDir(d, nofollow, func(de fs.DirEntry) {
				if ok, _ := filepath.Match(comp, de.Name()); ok {
					each(de.Name(), de.Type())
				}
			})
		}
		dirs = next
	}
	return hits
}

// lstatType returns the type of path, not following a link at its end.
func lstatType(path string) (fs.FileMode, bool) {
	fi, err := os.Lstat(path)
	if err != nil {
		return 0, false
	}
	return fi.Mode().Type(), true
}

// resolve returns the type of what a link at path points to, when links
// are followed; otherwise, or for anything but a link, typ.
func (g *globber) resolve(path string, typ fs.FileMode) fs.FileMode {
	if !g.follow || typ&fs.ModeSymlink == 0 {
		return typ
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fs.ModeIrregular // dangling: nothing to read, counted as not_regular
	}
	return fi.Mode().Type()
}

// kindReason is why a match of the given type is not read, "" for a
// regular file.
func kindReason(typ fs.FileMode) string {
	switch {
	case typ.IsRegular():
		return ""
	case typ&fs.ModeSymlink != 0:
		return skipSymlink
	case typ.IsDir():
		return skipDirectory
	default:
		return skipNotRegular
	}
}

// isDir reports whether path is, or links to, a directory.
func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

// listDir calls fn for each entry of the directory dir, read in batches so
// that memory does not grow with the directory. nofollow refuses dir if it
// is a link. A directory that cannot be read lists nothing: the next scan
// tries again.
func listDir(dir string, nofollow bool, fn func(fs.DirEntry)) {
	f, err := openDir(dir, nofollow)
	if err != nil {
		return
	}
	defer f.Close()
	for {
		ents, err := f.ReadDir(256)
		for _, e := range ents {
			fn(e)
		}
		if err != nil || len(ents) == 0 {
			return // io.EOF, or an error: what was read is used
		}
	}
}

// ownDirs are wharf's own directories, as configured (absolute) and with
// their links resolved, which a scan refreshes: a directory may be created
// after the source starts.
type ownDirs struct {
	abs      []string
	resolved []string
	// real caches the resolved path of each directory listed during one
	// scan.
	real map[string]string
}

func newOwnDirs(dirs []string) *ownDirs {
	o := &ownDirs{real: map[string]string{}}
	for _, d := range dirs {
		if d == "" {
			continue
		}
		if a, err := filepath.Abs(d); err == nil {
			o.abs = append(o.abs, a)
		}
	}
	return o
}

// refresh resolves the directories' links again, at the start of a scan.
func (o *ownDirs) refresh() {
	o.resolved = o.resolved[:0]
	for _, a := range o.abs {
		if r, err := filepath.EvalSymlinks(a); err == nil {
			o.resolved = append(o.resolved, r)
		}
	}
	o.real = map[string]string{}
}

// contains reports whether dir is one of the directories or below one, by
// its path or by the path its links resolve to.
func (o *ownDirs) contains(dir string) bool {
	if o == nil || len(o.abs) == 0 {
		return false
	}
	a, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	if under(a, o.abs) {
		return true
	}
	r, ok := o.real[a]
	if !ok {
		r, err = filepath.EvalSymlinks(a)
		if err != nil {
			r = a
		}
		o.real[a] = r
	}
	return under(r, o.resolved)
}

// under reports whether path is one of roots or below one.
func under(path string, roots []string) bool {
	for _, r := range roots {
		if path == r || strings.HasPrefix(path, r+string(filepath.Separator)) || r == string(filepath.Separator) {
			return true
		}
	}
	return false
}
