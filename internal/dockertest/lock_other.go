//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package dockertest

// lockFile does nothing where flock is unavailable: concurrent test packages
// may then build the image twice, which costs time but stays correct because
// the tag is derived from the binary.
func lockFile(path string) (unlock func(), err error) {
	return func() {}, nil
}
