// Package datadir keeps wharf's data directory wharf's alone. Every
// directory wharf makes in it is 0700 and every file 0600, one rule for
// positions, disk queues, dead letters and the file sink's logs; files are
// opened without following symbolic links; temporary files get random
// names.
//
// Why: wharf often runs as root and appends to files in its data directory.
// If another user could write in a directory wharf writes in, they could
// put a symbolic link where a file goes (the next queue segment, the head's
// temporary file, a container's log file) and have wharf append to, or
// truncate, a file of their choosing. So at start CheckDir and CheckBelow
// refuse a directory that another user owns or that group or others may
// write in, and a symbolic link in place of a subdirectory. Once the
// directories are known to be wharf's alone, nobody else can change what is
// in them; opening files with O_NOFOLLOW still refuses a link that got
// there some other way. The directories above the data directory are the
// operator's to protect: a data directory under /tmp is fine as long as the
// data directory itself is private.
//
// The functions are safe for concurrent use; they hold no state.
package datadir

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Modes of what wharf creates: the owner alone may read and write. The
// umask can only take permissions away; Mkdir and OpenFile set these modes
// exactly on what they create.
const (
	DirMode  fs.FileMode = 0o700
	FileMode fs.FileMode = 0o600
)

// UntrustedError reports a directory wharf refuses to write in, and the
// command that fixes it.
type UntrustedError struct {
	Path    string
	Problem string // follows the path: "is writable by group and others"
	Fix     string // a command or an instruction
}

func (e *UntrustedError) Error() string {
	return "datadir: " + e.Path + " " + e.Problem + "; " + e.Fix
}

// ErrSymlink is the error of an open that met a symbolic link where wharf
// expects its own file.
var ErrSymlink = errors.New("is a symbolic link, which wharf does not follow in its data directory; remove it")

// Prepare makes dir (and missing parents) with DirMode and checks it with
// CheckDir. It is what wharf does first with data_dir.
func Prepare(dir string) error {
	if err := MkdirAll(dir); err != nil {
		return fmt.Errorf("datadir: %w", err)
	}
	return CheckDir(dir)
}

// CheckDir checks that dir, when it exists, is a directory wharf may trust:
// owned by the effective user and not writable by group or others. dir
// itself may be a symbolic link (the operator named it); its target is
// checked. A dir that does not exist passes: wharf creates it with DirMode.
func CheckDir(dir string) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("datadir: %w", err)
	}
	return check(dir, fi)
}

// CheckBelow checks the directories on the way from root down to each of
// subdirs (paths relative to root, such as "queue/loki") as CheckDir does,
// and refuses a symbolic link among them. It stops at the first missing
// component (wharf creates the rest) and at one that is not a directory
// (writing there fails and is reported then).
func CheckBelow(root string, subdirs ...string) error {
	for _, sub := range subdirs {
		p := root
		for _, part := range strings.Split(filepath.ToSlash(filepath.Clean(sub)), "/") {
			p = filepath.Join(p, part)
			fi, err := os.Lstat(p)
			if errors.Is(err, fs.ErrNotExist) {
				break
			}
			if err != nil {
				return fmt.Errorf("datadir: %w", err)
			}
			if fi.Mode()&fs.ModeSymlink != 0 {
				return &UntrustedError{Path: p, Problem: "is a symbolic link, which wharf does not follow inside its data directory",
					Fix: "remove it (rm " + shellQuote(p) + ") and point data_dir, or file.dir, at the directory it leads to"}
			}
			if !fi.IsDir() {
				break
			}
			if err := check(p, fi); err != nil {
				return err
			}
		}
	}
	return nil
}

// check applies the rule to the directory at path: owned by the effective
// user, no write permission for group or others.
func check(path string, fi fs.FileInfo) error {
	if !fi.IsDir() {
		return &UntrustedError{Path: path, Problem: "is not a directory", Fix: "point the setting at a directory"}
	}
	if uid, ok := ownerOf(fi); ok && uid != os.Geteuid() {
		me := strconv.Itoa(os.Geteuid())
		return &UntrustedError{Path: path,
			Problem: fmt.Sprintf("is owned by uid %d, not by uid %s that wharf runs as, so that user could choose which files wharf writes", uid, me),
			Fix:     "run chown -R " + me + " " + shellQuote(path) + ", or choose another directory"}
	}
	if w := fi.Mode().Perm() & 0o022; w != 0 {
		who := "group and others"
		switch w {
		case 0o020:
			who = "its group"
		case 0o002:
			who = "others"
		}
		return &UntrustedError{Path: path,
			Problem: "is writable by " + who + ", who could choose which files wharf writes",
			Fix:     "run chmod 700 " + shellQuote(path)}
	}
	return nil
}

// MkdirAll makes dir and its missing parents with DirMode, like
// os.MkdirAll. Directories that exist are left as they are.
func MkdirAll(dir string) error {
	fi, err := os.Stat(dir)
	if err == nil {
		if fi.IsDir() {
			return nil
		}
		return &fs.PathError{Op: "mkdir", Path: dir, Err: errNotDir}
	}
	if parent := filepath.Dir(dir); parent != dir {
		if err := MkdirAll(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, DirMode); err != nil {
		if fi, serr := os.Lstat(dir); serr == nil && fi.IsDir() {
			return nil // made meanwhile
		}
		return err
	}
	return os.Chmod(dir, DirMode) // what the umask took
}

var errNotDir = errors.New("not a directory")

// OpenFile opens the file at path with flag (os.O_RDONLY, os.O_RDWR,
// os.O_APPEND...), never through a symbolic link: a link there gives an
// error wrapping ErrSymlink. With os.O_CREATE a file it creates gets
// FileMode.
func OpenFile(path string, flag int) (*os.File, error) {
	create := flag&os.O_CREATE != 0
	flag = flag&^os.O_CREATE | oNofollow | oCloexec
	for {
		f, err := os.OpenFile(path, flag, 0)
		if err == nil || !create || !errors.Is(err, fs.ErrNotExist) {
			return f, linkError(err)
		}
		// O_EXCL does not follow a link either: one planted meanwhile
		// makes it fail with ErrExist, and the open above then refuses it.
		f, err = os.OpenFile(path, flag|os.O_CREATE|os.O_EXCL, FileMode)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if err := f.Chmod(FileMode); err != nil { // what the umask took
			f.Close()
			return nil, err
		}
		return f, nil
	}
}

// Open opens the file at path for reading, never through a symbolic link.
func Open(path string) (*os.File, error) { return OpenFile(path, os.O_RDONLY) }

// ReadFile reads the file at path, never through a symbolic link.
func ReadFile(path string) ([]byte, error) {
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

func linkError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) && isLoop(pe.Err) {
		return &fs.PathError{Op: pe.Op, Path: pe.Path, Err: ErrSymlink}
	}
	return err
}

// CreateTemp creates a new file in dir for pattern as os.CreateTemp does:
// a random name (so no one can plant a link at it in advance), FileMode,
// and O_EXCL, which never follows a link.
func CreateTemp(dir, pattern string) (*os.File, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(FileMode); err != nil { // what the umask took
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return f, nil
}

// WriteFile replaces the file at path with data atomically: a reader, even
// after a crash, finds the old content or the new, never a mix. It writes a
// temporary file with a random name beside path, syncs it with sync,
// renames it over path (a rename replaces a link there, never follows it)
// and syncs the directory. sync is (*os.File).Sync when nil; the
// temporary file is removed when a step fails. Errors are *fs.PathErrors
// naming the file.
func WriteFile(path string, data []byte, sync func(*os.File) error) error {
	if sync == nil {
		sync = (*os.File).Sync
	}
	dir := filepath.Dir(path)
	f, err := CreateTemp(dir, filepath.Base(path)+TempInfix+"*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = sync(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = sync(d)
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// TempInfix is what WriteFile puts between a file's name and the random
// part of its temporary file's name: positions.tmp-123456.
const TempInfix = ".tmp-"

// RemoveTemps removes the temporary files WriteFile left in dir for the
// file called name, when a crash came between their creation and their
// rename.
func RemoveTemps(dir, name string) error {
	des, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, de := range des {
		if strings.HasPrefix(de.Name(), name+TempInfix) && de.Type().IsRegular() {
			if err := os.Remove(filepath.Join(dir, de.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}

// shellQuote quotes path for a command line, when it needs it.
func shellQuote(path string) string {
	safe := func(r rune) bool {
		return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+,:@%", r)
	}
	if path != "" && strings.IndexFunc(path, func(r rune) bool { return !safe(r) }) < 0 {
		return path
	}
	return "'" + strings.ReplaceAll(path, "'", `'\''`) + "'"
}
