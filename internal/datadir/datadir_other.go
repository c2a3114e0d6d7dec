//go:build !unix

package datadir

import "io/fs"

// Systems without O_NOFOLLOW or uids: the checks that need them are left
// out.
const (
	oNofollow = 0
	oCloexec  = 0
)

func ownerOf(fs.FileInfo) (int, bool) { return 0, false }

func isLoop(error) bool { return false }
