//go:build unix

package datadir

import (
	"errors"
	"io/fs"
	"syscall"
)

const (
	oNofollow = syscall.O_NOFOLLOW
	oCloexec  = syscall.O_CLOEXEC
)

// ownerOf returns the uid owning fi's file.
func ownerOf(fi fs.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}

// isLoop reports the error of an O_NOFOLLOW open of a symbolic link.
func isLoop(err error) bool { return errors.Is(err, syscall.ELOOP) }
