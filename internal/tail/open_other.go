//go:build !unix

package tail

import "os"

// openLog opens name for reading and refuses anything but a regular file.
// Following files needs inode numbers, which these systems lack (Open
// refuses them), so only EndOf comes here.
func (o *Options) openLog(name string) (*os.File, os.FileInfo, error) {
	fh, err := os.Open(name)
	if err != nil {
		return nil, nil, err
	}
	fi, err := fh.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = &os.PathError{Op: "open", Path: name, Err: ErrNotRegular}
	}
	if err != nil {
		fh.Close()
		return nil, nil, err
	}
	return fh, fi, nil
}
