package tail

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"

	"github.com/klauspost/compress/gzip"
)

// openAttempts bounds how often a Follower scans again, in one call, when
// files move under it between the scan and the open.
const openAttempts = 5

// cand is a file of the log as one scan saw it.
type cand struct {
	name     string
	dev, ino uint64
	size     int64 // on disk: compressed for a .gz
	gz, live bool

	probed bool
	moved  bool   // gone from its name when probed
	head   []byte // up to FingerprintBytes of uncompressed content
}

// scan lists the log's files, oldest first: the rotated files Options.Rotated
// names that exist, then the live file if it exists. A rotated file X is
// taken plain while X exists and as X.gz otherwise, whichever of the two was
// listed: a compressor writes X.gz completely before it removes X, so X.gz
// is only read once it is whole.
//
// Listing and stat race with rotation. Files are looked at newest first, so
// a file renamed to an older name during the scan is seen twice rather than
// missed; a file rotated past the end of the listing can still be missed.
// Callers verify a file's identity when they open it, and require a missing
// file to stay missing over two scans before they act on its absence.
func (f *Follower) scan() ([]cand, error) {
	var names []string
	if f.opts.Rotated != nil {
		var err error
		if names, err = f.opts.Rotated(f.path); err != nil {
			return nil, fmt.Errorf("tail: list rotated files of %s: %w", f.path, err)
		}
	}
	live, liveOK := f.statCand(f.path, false)
	cands := make([]cand, 0, len(names)+1)
	taken := make(map[string]bool, len(names))
	for i := len(names) - 1; i >= 0; i-- {
		// Both forms are looked at, listed or not: the listing may predate
		// the compressor's start or end.
		plain := strings.TrimSuffix(names[i], ".gz")
		if plain == f.path || taken[plain] {
			continue
		}
		taken[plain] = true
		if c, ok := f.statCand(plain, false); ok {
			cands = append(cands, c)
		} else if c, ok := f.statCand(plain+".gz", true); ok {
			cands = append(cands, c)
		}
	}
	slices.Reverse(cands)
	if liveOK {
		live.live = true
		cands = append(cands, live)
	}
	return cands, nil
}

// statCand returns name as a candidate if it is a regular file (not a link
// to one, unless the Options allow following links).
func (f *Follower) statCand(name string, gz bool) (cand, bool) {
	fi, err := f.opts.statLog(name)
	if err != nil || !fi.Mode().IsRegular() {
		return cand{}, false
	}
	dev, ino := fileIdentity(fi)
	return cand{name: name, dev: dev, ino: ino, size: fi.Size(), gz: gz}, true
}

// probe reads up to FingerprintBytes of c's uncompressed content, once. A
// file that is no longer under c's name (renamed or removed since the scan)
// is marked moved and has no head, as is one replaced by something that
// may not be read (a link, a FIFO). Probing opens a descriptor for the
// duration of the call only.
func (c *cand) probe(o *Options) []byte {
	if c.probed {
		return c.head
	}
	c.probed = true
	fh, fi, err := o.openLog(c.name)
	if err != nil {
		c.moved = vanished(err)
		return nil
	}
	defer fh.Close()
	if dev, ino := fileIdentity(fi); dev != c.dev || ino != c.ino {
		c.moved = true
		return nil
	}
	buf := make([]byte, FingerprintBytes)
	var n int
	if c.gz {
		zr, err := gzip.NewReader(bufio.NewReaderSize(fh, 4096))
		if err != nil {
			return nil
		}
		// A damaged archive still has the prefix it could give.
		n, _ = readFull(zr, buf)
	} else {
		n, err = fh.ReadAt(buf, 0)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil
		}
	}
	c.head = buf[:n]
	return c.head
}

// match is the outcome of comparing a file with a fingerprint.
type match int

const (
	noMatch match = iota
	matched
	moved // the file left its name before it could be read: scan again
)

// prefixMatches tells whether c's first fpLen uncompressed bytes hash to fp.
// A file shorter than fpLen does not match.
func (c *cand) prefixMatches(o *Options, fp uint64, fpLen int) match {
	if fpLen == 0 {
		return matched
	}
	h := c.probe(o)
	switch {
	case c.moved:
		return moved
	case len(h) >= fpLen && fnvAdd(fnvOffset, h[:fpLen]) == fp:
		return matched
	}
	return noMatch
}

// vanished reports an open that failed because the name no longer holds
// the regular file a scan saw there: it was removed or renamed, or replaced
// by a link or a FIFO. The caller scans again, and the scan passes over what
// is there now.
func vanished(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrSymlink) || errors.Is(err, ErrNotRegular)
}

// readFull reads into buf until it is full, the reader ends (io.EOF is not
// an error here) or fails.
func readFull(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		if m == 0 {
			return n, io.ErrNoProgress
		}
	}
	return n, nil
}

// locate opens the file start names at start.Offset, as Open documents.
func (f *Follower) locate(start Position) error {
	sure := false
	for attempt := 0; attempt < 4*openAttempts; attempt++ {
		cands, err := f.scan()
		if err != nil {
			return err
		}
		off, k, lost := f.find(cands, start)
		if k == -2 || k == -1 && !sure {
			// Files moved while we looked, or not found: look again, as
			// rotation may have been under way.
			sure = k == -1
			continue
		}
		if k == -1 {
			if len(cands) == 0 {
				f.gap(Gap{Reason: lost, Path: f.path, Bytes: -1})
				return nil // Read waits for the live file
			}
			k = 0 // every file still there is newer than the lost one
		}
		var want *Position
		if off > 0 {
			want = &start
		}
		o, pos, err := f.openCand(&cands[k], off, want)
		if errors.Is(err, errVanished) {
			continue
		}
		if err != nil {
			return err
		}
		if lost != "" {
			f.gap(Gap{Reason: lost, Path: f.path, Bytes: -1})
		}
		f.cur, f.pos = o, pos
		return nil
	}
	// Files keep moving: begin with the live file when it is there.
	return f.next()
}

// find looks for the file p names among cands. It returns the index of the
// file to start in and the offset there; k is -1 when p's file is found
// nowhere, -2 when a file moved while it was being looked at. lost says why
// data was lost on the way, if it was.
//
// The live file matches only by identity: another file with the same first
// bytes is a new file that starts like the old one. A rotated file matches
// by identity or, when its content moved to a new inode, by content: a
// compressed file always; a plain one only when the live file kept p's
// inode but not p's bytes, so it was truncated in place and the rotated file
// may be the copy copytruncate made. The newest match wins, since a newer
// file sharing a prefix with an older one is the likelier continuation.
//
// A live file that kept p's inode but not p's bytes and has no copy was
// truncated in place, or its inode was reused after p's file was deleted.
// Either way every rotated file still there is newer than p's: with
// numbered rotation, files are deleted oldest first, and a copytruncate
// copy is made when its original is truncated.
func (f *Follower) find(cands []cand, p Position) (off int64, k int, lost GapReason) {
	liveKept := false
	if n := len(cands); n > 0 && cands[n-1].live {
		c := &cands[n-1]
		if c.dev == p.Dev && c.ino == p.Inode {
			switch c.prefixMatches(&f.opts, p.Fingerprint, p.FingerprintLen) {
			case moved:
				return 0, -2, ""
			case matched:
				if c.size >= p.Offset {
					return p.Offset, n - 1, ""
				}
			}
			liveKept = true
		}
	}
	for i := len(cands) - 1; i >= 0; i-- {
		c := &cands[i]
		if c.live {
			continue
		}
		same := c.dev == p.Dev && c.ino == p.Inode
		byContent := p.FingerprintLen > 0 && (c.gz || liveKept)
		if !same && !byContent {
			continue
		}
		switch c.prefixMatches(&f.opts, p.Fingerprint, p.FingerprintLen) {
		case moved:
			return 0, -2, ""
		case noMatch:
			continue
		}
		if !c.gz && c.size < p.Offset {
			if same {
				return 0, i, GapTruncated // truncated in place, then rotated
			}
			continue // a copy of an earlier state
		}
		return p.Offset, i, ""
	}
	if liveKept {
		return 0, -1, GapReplaced
	}
	return 0, -1, GapRotated
}

// next opens the file after the newest one finished: the newest listed file
// that matches a finished one is where the log stands, and the file listed
// after it comes next. With nothing finished yet it is the live file. A
// finished file found nowhere (deleted after it was read, or compressed with
// an empty fingerprint) puts the log at its oldest file, once a second scan
// agrees. When no file is due, or files keep moving under the scans, next
// leaves cur nil and Read waits a poll interval before it tries again.
func (f *Follower) next() error {
	sure := false
	for attempt := 0; attempt < openAttempts; attempt++ {
		cands, err := f.scan()
		if err != nil {
			return err
		}
		k, state := f.successor(cands)
		switch {
		case state == moved:
			continue
		case state == noMatch && !sure:
			sure = true
			continue
		case k < 0:
			return nil
		}
		o, pos, err := f.openCand(&cands[k], 0, nil)
		if errors.Is(err, errVanished) {
			continue
		}
		if err != nil {
			return err
		}
		f.cur, f.pos = o, pos
		return nil
	}
	return nil
}

// successor returns the index in cands of the file to read next, or -1 when
// none is due. state is noMatch when files were finished but none of them is
// among cands, moved when a file moved while it was being looked at.
func (f *Follower) successor(cands []cand) (k int, state match) {
	if len(f.done) == 0 {
		if n := len(cands); n > 0 && cands[n-1].live {
			return n - 1, matched
		}
		return -1, matched
	}
	for i := len(cands) - 1; i >= 0; i-- {
		if cands[i].live {
			continue
		}
		switch f.isDone(&cands[i]) {
		case moved:
			return -1, moved
		case matched:
			if i+1 < len(cands) {
				return i + 1, matched
			}
			return -1, matched // the live file is missing: wait for it
		}
	}
	if len(cands) == 0 {
		return -1, noMatch
	}
	return 0, noMatch
}

// isDone tells whether c is a file already finished: the same inode with the
// same first bytes, or, for a compressed file, the same first bytes as a
// finished file (the compressor's output). The first bytes guard against an
// inode freed by a deleted file and reused by a newer one.
func (f *Follower) isDone(c *cand) match {
	for j := len(f.done) - 1; j >= 0; j-- {
		d := &f.done[j]
		if !(c.dev == d.dev && c.ino == d.ino) && !(c.gz && d.fpLen > 0) {
			continue
		}
		if m := c.prefixMatches(&f.opts, d.fp, d.fpLen); m != noMatch {
			return m
		}
	}
	return noMatch
}

// openCand opens c at off (uncompressed bytes) and returns it with its
// Position, fingerprinted afresh. want, if not nil, must still match the
// file's first bytes: a file replaced since it was chosen is errVanished,
// like one removed or renamed.
func (f *Follower) openCand(c *cand, off int64, want *Position) (*openFile, Position, error) {
	fh, fi, err := f.opts.openLog(c.name)
	if vanished(err) {
		return nil, Position{}, errVanished
	}
	if err != nil {
		return nil, Position{}, fmt.Errorf("tail: %w", err)
	}
	dev, ino := fileIdentity(fi)
	if dev != c.dev || ino != c.ino {
		fh.Close()
		return nil, Position{}, errVanished
	}
	o := &openFile{f: fh, name: c.name, gz: c.gz, r: fh, size: fi.Size()}
	if c.live {
		// Found at the path just now, as it is now: its first wait may be
		// on the Poller, and its first look at the path needs no second
		// check of its first bytes if it was not written to meanwhile.
		o.live = true
		o.lookSize, o.lookMod = fi.Size(), fi.ModTime().UnixNano()
	}
	var head []byte
	if c.gz {
		if f.br == nil {
			f.br = bufio.NewReaderSize(fh, 64<<10)
		} else {
			f.br.Reset(fh)
		}
		if f.gzr == nil {
			f.gzr, err = gzip.NewReader(f.br)
		} else {
			err = f.gzr.Reset(f.br)
		}
		if err != nil {
			o.err = err // reported as GapCorrupt by the first read
		} else {
			o.r = f.gzr
			var n int
			if f.gzHead == nil {
				f.gzHead = new([FingerprintBytes]byte)
			}
			n, o.err = readFull(f.gzr, f.gzHead[:])
			head = f.gzHead[:n]
		}
	} else {
		// Past the compressed files: what decompressing them needed
		// (about 100 KiB) is not kept while the live file is followed.
		f.br, f.gzr = nil, nil
		n, err := fh.ReadAt(f.head[:], 0)
		if err != nil && !errors.Is(err, io.EOF) {
			fh.Close()
			return nil, Position{}, fmt.Errorf("tail: read %s: %w", c.name, err)
		}
		head = f.head[:n]
	}
	if want != nil && want.FingerprintLen > 0 &&
		(len(head) < want.FingerprintLen || fnvAdd(fnvOffset, head[:want.FingerprintLen]) != want.Fingerprint) {
		fh.Close()
		return nil, Position{}, errVanished
	}
	pos := Position{Dev: dev, Inode: ino, Offset: off, FingerprintLen: len(head)}
	pos.Fingerprint = fingerprint(fnvAdd(fnvOffset, head), len(head))
	switch {
	case c.gz && off <= int64(len(head)):
		o.head = head[off:]
	case c.gz:
		o.skip = off - int64(len(head))
	case off > 0:
		if _, err := fh.Seek(off, io.SeekStart); err != nil {
			fh.Close()
			return nil, Position{}, fmt.Errorf("tail: seek %s: %w", c.name, err)
		}
	}
	return o, pos, nil
}
