package tail

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Numbered lists the names path is rotated to by numbered renames, oldest
// first: path.N ... path.2, path.1, each plain or compressed (path.N.gz), as
// Docker's json-file driver (max-file, compress) and logrotate without
// dateext name them. While a compressor runs, both path.N and path.N.gz
// exist and both are listed, the .gz first.
//
// A rotation renames files one at a time, oldest first, so a directory read
// in the middle of one can miss a number that is filled a moment later.
// Numbered therefore lists every number from 1 to one past the highest it
// saw, naming path.N for a number it did not see; the Follower looks at
// path.N and path.N.gz for each name and skips what does not exist. A
// missing directory lists nothing.
//
// It suits Options.Rotated.
func Numbered(path string) ([]string, error) {
	dir, base := filepath.Split(path)
	ents, err := os.ReadDir(filepath.Clean(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("tail: %w", err)
	}
	// forms[n]: bit 1 plain seen, bit 2 compressed seen.
	forms := map[uint64]int{}
	top := uint64(0)
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), base+".")
		if !ok || e.IsDir() {
			continue
		}
		num, gz := strings.CutSuffix(rest, ".gz")
		n, err := strconv.ParseUint(num, 10, 16)
		// Only canonical numbers: "01" or "+1" are not a rotation's.
		if err != nil || n == 0 || strconv.FormatUint(n, 10) != num {
			continue
		}
		forms[n] |= 1 << btou(gz)
		top = max(top, n)
	}
	if top == 0 {
		return nil, nil
	}
	var names []string
	for n := top + 1; n >= 1; n-- {
		name := filepath.Join(dir, base+"."+strconv.FormatUint(n, 10))
		if forms[n]&2 != 0 {
			names = append(names, name+".gz")
		}
		if forms[n]&1 != 0 || forms[n] == 0 {
			names = append(names, name)
		}
	}
	return names, nil
}

func btou(b bool) uint {
	if b {
		return 1
	}
	return 0
}
