//go:build unix

package files

import (
	"os"

	"golang.org/x/sys/unix"
)

// openDir opens a directory to list it. O_DIRECTORY refuses anything else
// before it is opened (a FIFO put in its place would block a plain open),
// and nofollow refuses a link.
func openDir(dir string, nofollow bool) (*os.File, error) {
	flags := unix.O_RDONLY | unix.O_CLOEXEC | unix.O_DIRECTORY | unix.O_NONBLOCK
	if nofollow {
		flags |= unix.O_NOFOLLOW
	}
	fd, err := unix.Open(dir, flags, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "fcntl", Path: dir, Err: err}
	}
	return os.NewFile(uintptr(fd), dir), nil
}
