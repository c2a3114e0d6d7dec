//go:build unix

package tail

import (
	"os"
	"syscall"
)

// supported reports whether files have the device and inode numbers the
// Follower identifies them by.
const supported = true

// fileIdentity returns the device and inode of the file fi describes.
func fileIdentity(fi os.FileInfo) (dev, ino uint64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev), uint64(st.Ino) //nolint:unconvert // int32 on darwin
	}
	return 0, 0
}
