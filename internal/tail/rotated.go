package tail

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Numbered lists the names path is rotated to by numbered renames, oldest
// first: path.N ... path.2, path.1, each plain or compressed (path.N.gz), as
// Docker's json-file driver (max-file, compress) and logrotate without
// dateext name them. While a compressor runs, both path.N and path.N.gz
// exist and both are listed, the .gz first.
//
// The directory is read once. A rotation renames files one at a time,
// oldest first, so a directory read in the middle of one can miss a number
// that is filled a moment later. Besides every number it saw, Numbered
// therefore lists the numbers from 1 to one past the highest, but no further
// than two past the count of numbers it saw, naming path.N for a number it
// did not see; the Follower looks at path.N and path.N.gz for each name and
// skips what does not exist. Rotated files are numbered from 1 without gaps,
// so this covers them; a stray high number (app.log.65535) costs one name,
// not one per number below it. A missing directory lists nothing.
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
	fill := min(top+1, uint64(len(forms))+2)
	nums := make([]uint64, 0, len(forms)+int(fill))
	for n := range forms {
		if n > fill {
			nums = append(nums, n)
		}
	}
	for n := uint64(1); n <= fill; n++ {
		nums = append(nums, n)
	}
	slices.Sort(nums)
	names := make([]string, 0, len(nums)+len(forms))
	for _, n := range slices.Backward(nums) {
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
