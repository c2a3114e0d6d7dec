//go:build unix

package tail

import (
	"errors"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// openLog opens name, a file of the log, for reading, as o allows: without
// blocking (open(2) of a FIFO for reading waits for a writer, forever if none
// comes) and, unless o.FollowSymlinks, without following a symbolic link
// that is the file's own name or a directory below o.Trusted. The type is
// checked on the descriptor, so what is read is what was checked: anything
// but a regular file is closed again and refused with ErrNotRegular, a link
// with ErrSymlink.
//
// Directories below o.Trusted are opened one at a time with O_NOFOLLOW and
// the file relative to the last of them, so a directory replaced by a link
// after the caller looked at it is refused, not followed.
func (o *Options) openLog(name string) (*os.File, os.FileInfo, error) {
	const base = unix.O_RDONLY | unix.O_CLOEXEC
	flags := base | unix.O_NONBLOCK
	if !o.FollowSymlinks {
		flags |= unix.O_NOFOLLOW
	}
	var fd int
	var err error
	if rel, ok := o.below(name); ok && !o.FollowSymlinks {
		fd, err = openBeneath(o.Trusted, rel, flags)
	} else {
		fd, err = unix.Open(name, flags, 0)
	}
	if err != nil {
		return nil, nil, openError(name, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, nil, &os.PathError{Op: "fstat", Path: name, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, nil, &os.PathError{Op: "open", Path: name, Err: ErrNotRegular}
	}
	// Regular files ignore O_NONBLOCK; clearing it keeps the descriptor
	// out of the runtime's poller.
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, nil, &os.PathError{Op: "fcntl", Path: name, Err: err}
	}
	fh := os.NewFile(uintptr(fd), name)
	fi, err := fh.Stat()
	if err != nil {
		fh.Close()
		return nil, nil, err
	}
	return fh, fi, nil
}

// below returns name relative to o.Trusted when name is in a directory
// under it (not directly in it: then O_NOFOLLOW on the name suffices).
func (o *Options) below(name string) (string, bool) {
	if o.Trusted == "" {
		return "", false
	}
	rel, ok := strings.CutPrefix(name, o.Trusted+string(filepath.Separator))
	if !ok || !strings.ContainsRune(rel, filepath.Separator) {
		return "", false
	}
	return rel, true
}

// openBeneath opens dir, following links (it was named by the operator),
// then each directory of rel refusing links, then rel's last component with
// flags, and returns the last descriptor.
func openBeneath(dir, rel string, flags int) (int, error) {
	dfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_DIRECTORY, 0)
	if err != nil {
		return -1, err
	}
	parts := strings.Split(rel, string(filepath.Separator))
	for _, p := range parts[:len(parts)-1] {
		if p == "" || p == "." {
			continue
		}
		if p == ".." {
			unix.Close(dfd)
			return -1, unix.EACCES
		}
		next, err := unix.Openat(dfd, p, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
		if err == unix.ENOTDIR {
			// Linux refuses a link with O_DIRECTORY|O_NOFOLLOW as not a
			// directory; say which it is.
			var st unix.Stat_t
			if unix.Fstatat(dfd, p, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
				err = unix.ELOOP
			}
		}
		unix.Close(dfd)
		if err != nil {
			return -1, err
		}
		dfd = next
	}
	fd, err := unix.Openat(dfd, parts[len(parts)-1], flags, 0)
	unix.Close(dfd)
	return fd, err
}

// openError describes a failed open: a link refused by O_NOFOLLOW is
// ErrSymlink; the rest keeps its errno (ENOENT is fs.ErrNotExist).
func openError(name string, err error) error {
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.EMLINK) {
		// O_NOFOLLOW on a link: ELOOP, EMLINK on FreeBSD (which open(2)
		// gives for nothing else).
		return &os.PathError{Op: "open", Path: name, Err: ErrSymlink}
	}
	return &os.PathError{Op: "open", Path: name, Err: err}
}
