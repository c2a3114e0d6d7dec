// Package tail follows log files through rotation with exact positions: the
// json-file logs Docker writes (<id>-json.log, rotated to .1, .2... and, with
// compress=true, gzipped to .1.gz, .2.gz...) and plain log files rotated by
// rename or by copytruncate.
//
// A [Follower] reads one logical log, the live file plus the rotated files it
// has not finished, as one byte stream broken into files by [ErrFileEnd]. Its
// [Position] names a file by identity (device, inode and a fingerprint of the
// file's first bytes) and an offset in its uncompressed content, so a restart
// resumes exactly where the last confirmed byte was, whether that file is
// still live, renamed, compressed, or gone. A [LineReader] splits the stream
// into capped lines, optionally joined into multiline entries, each with the
// Position after it.
//
// The package starts no goroutines: waiting at the end of the live file is a
// timer select in the caller's Read, and change is found by polling (stat of
// the path, fstat of the open file), which needs no inotify watch and sees
// the same things on overlay and network filesystems.
package tail

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"path/filepath"
	"strconv"
	"strings"
)

// FingerprintBytes is how many leading bytes of a file its fingerprint covers
// at most. Positions record how many they cover, so changing it later keeps
// old positions valid.
const FingerprintBytes = 1024

// Position is a place in a log: a file and an offset in it.
//
// The file is named by Dev and Inode, which survive a rename, and by a
// fingerprint, which survives compression and tells a new file that reuses a
// freed inode, or a file truncated and written again, from the original:
//
//   - Fingerprint is the 64-bit FNV-1a hash of the file's first
//     FingerprintLen bytes of uncompressed content (0 when FingerprintLen is 0).
//   - FingerprintLen is min(FingerprintBytes, the file's length when it was
//     last fingerprinted). It may exceed Offset: the fingerprint covers
//     bytes the file had, read or not, and grows while the file is shorter
//     than FingerprintBytes, so a file that starts short is still
//     recognisable, ever more surely as it grows.
//   - A file matches a Position by identity when it has the same Dev and
//     Inode and its first FingerprintLen bytes hash to Fingerprint. A file
//     shorter than FingerprintLen does not match: it was truncated, or it is
//     a new file.
//   - A rotated file with another inode (a .gz written from the original, or
//     the copy copytruncate made) matches by content when FingerprintLen > 0
//     and its first FingerprintLen uncompressed bytes hash to Fingerprint.
//     With FingerprintLen 0 (the file was empty) only identity can match.
//
// Offset counts uncompressed bytes consumed from the start of the file.
// The zero Position (Inode 0) means the start of the live file.
type Position struct {
	Dev, Inode     uint64
	Offset         int64
	Fingerprint    uint64
	FingerprintLen int
}

// IsZero reports whether p names no file: the start of the live file.
func (p Position) IsZero() bool { return p.Inode == 0 }

// String encodes p for the positions store as
// "v1 <dev> <inode> <offset> <fingerprint length> <fingerprint in hex>".
func (p Position) String() string {
	b := make([]byte, 0, 64)
	b = append(b, "v1 "...)
	b = strconv.AppendUint(b, p.Dev, 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, p.Inode, 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, p.Offset, 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(p.FingerprintLen), 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, p.Fingerprint, 16)
	return string(b)
}

var errPositionSyntax = errors.New(`want "v1 <dev> <inode> <offset> <fingerprint length> <fingerprint hex>"`)

// ParsePosition decodes what String wrote. It accepts only that canonical
// form, so ParsePosition(s) succeeds exactly when s == p.String() for the
// returned p, and it rejects impossible values: a negative offset, a
// fingerprint length outside [0, FingerprintBytes], a fingerprint without
// bytes, and a position without an inode that is not all zero.
func ParsePosition(s string) (Position, error) {
	f := strings.Split(s, " ")
	if len(f) != 6 || f[0] != "v1" {
		return Position{}, fmt.Errorf("tail: position %q: %w", s, errPositionSyntax)
	}
	var u [5]uint64
	for i, name := range [...]string{"dev", "inode", "offset", "fingerprint length", "fingerprint"} {
		base := 10
		if i == 4 {
			base = 16
		}
		v, err := strconv.ParseUint(f[i+1], base, 64)
		if err != nil || (i == 2 && v > math.MaxInt64) || (i == 3 && v > FingerprintBytes) {
			return Position{}, fmt.Errorf("tail: position %q: bad %s %q", s, name, f[i+1])
		}
		u[i] = v
	}
	p := Position{Dev: u[0], Inode: u[1], Offset: int64(u[2]), FingerprintLen: int(u[3]), Fingerprint: u[4]}
	switch {
	case p.FingerprintLen == 0 && p.Fingerprint != 0:
		return Position{}, fmt.Errorf("tail: position %q: fingerprint of no bytes", s)
	case p.Inode == 0 && p != (Position{}):
		return Position{}, fmt.Errorf("tail: position %q: no inode but not the zero position", s)
	case p.String() != s:
		// Leading zeros, a "+" or upper-case hex: refused so that a position
		// has one spelling and a store can compare them as strings.
		return Position{}, fmt.Errorf("tail: position %q: not in canonical form", s)
	}
	return p, nil
}

// FNV-1a, 64 bits: fixed forever, since fingerprints are persisted; the
// running hash of a prefix is the state, so a fingerprint extends cheaply.
const (
	fnvOffset uint64 = 14695981039346656037
	fnvPrime  uint64 = 1099511628211
)

// fnvAdd continues the FNV-1a hash h (fnvOffset for no bytes) over b.
func fnvAdd(h uint64, b []byte) uint64 {
	for _, c := range b {
		h ^= uint64(c)
		h *= fnvPrime
	}
	return h
}

// fingerprint is the Fingerprint of a prefix whose running FNV state is h and
// length n: 0 for no bytes, as Position documents.
func fingerprint(h uint64, n int) uint64 {
	if n == 0 {
		return 0
	}
	return h
}

// EndOf returns the Position right after the last complete line of the file
// at path: where a reader that should skip what the file holds now starts.
// A last line without its "\n" yet is left to be read whole. A missing file
// gives the zero Position (its start, once it appears) and no error. The
// file is opened as a Follower with opts would open it: a link, a FIFO or a
// device is refused (ErrSymlink, ErrNotRegular), without blocking.
func EndOf(path string, opts Options) (Position, error) {
	if opts.Trusted != "" {
		opts.Trusted = filepath.Clean(opts.Trusted)
	}
	f, fi, err := opts.openLog(filepath.Clean(path))
	if errors.Is(err, fs.ErrNotExist) {
		return Position{}, nil
	}
	if err != nil {
		return Position{}, fmt.Errorf("tail: %w", err)
	}
	defer f.Close()
	p := Position{}
	p.Dev, p.Inode = fileIdentity(fi)
	var head [FingerprintBytes]byte
	n, err := io.ReadFull(f, head[:min(int64(len(head)), fi.Size())])
	if err != nil {
		return Position{}, fmt.Errorf("tail: read %s: %w", path, err)
	}
	p.FingerprintLen = n
	p.Fingerprint = fingerprint(fnvAdd(fnvOffset, head[:n]), n)
	// Back up to the last '\n' within the last 64 KiB; a longer last line
	// is joined in the middle, as a line that long would be cut anyway.
	size := fi.Size()
	back := min(size, 64<<10)
	buf := make([]byte, back)
	if _, err := f.ReadAt(buf, size-back); err != nil && !errors.Is(err, io.EOF) {
		return Position{}, fmt.Errorf("tail: read %s: %w", path, err)
	}
	p.Offset = size
	if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
		p.Offset = size - back + int64(i) + 1
	} else if back == size {
		p.Offset = 0
	}
	return p, nil
}
