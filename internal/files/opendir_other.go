//go:build !unix

package files

import "os"

// openDir opens a directory to list it.
func openDir(dir string, _ bool) (*os.File, error) { return os.Open(dir) }
