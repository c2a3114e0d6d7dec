//go:build !linux

package tail

import "os"

// fstat returns the size and modification time (Unix ns) of an open file.
func fstat(f *os.File) (size, mod int64, err error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	return fi.Size(), fi.ModTime().UnixNano(), nil
}
