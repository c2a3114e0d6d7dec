//go:build !unix

package tail

import "os"

// supported is false: without inode numbers a renamed file cannot be told
// from a new one, so Open refuses rather than guess.
const supported = false

func fileIdentity(os.FileInfo) (dev, ino uint64) { return 0, 0 }
