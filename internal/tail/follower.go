package tail

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
)

// ErrFileEnd is returned by Read where the byte stream is not continuous:
// at the end of a file the log has moved on from (rotated away and read to
// its end), and where a truncated file is read again from its start. The
// caller finishes what it holds (a partial line ends there); Position still
// names the end of what was read, and the next Read goes on in the next file
// or at offset 0.
var ErrFileEnd = errors.New("tail: end of file")

// ErrIdle is returned by ReadBefore when the live file has no new data and
// the deadline has passed.
var ErrIdle = errors.New("tail: no new data before the deadline")

// ErrClosed is returned by Read after Close.
var ErrClosed = errors.New("tail: follower closed")

// ErrNotRegular is wrapped in the *os.PathError for a file of a log that is
// not a regular file: a FIFO, a device, a socket or a directory. Such a file
// is closed again unread.
var ErrNotRegular = errors.New("not a regular file")

// ErrSymlink is wrapped in the *os.PathError for a file of a log that is
// reached through a symbolic link the Options do not allow following.
var ErrSymlink = errors.New("symbolic link not followed")

// errLookLater tells read, from readData, that a read now would find
// nothing: wait, then look.
var errLookLater = errors.New("tail: nothing to read yet")

// errVanished reports a file that was removed or replaced between the scan
// that chose it and its opening; the caller scans again.
var errVanished = errors.New("tail: file vanished")

// Default Options values.
const (
	DefaultPollMin    = 100 * time.Millisecond
	DefaultPollMax    = 250 * time.Millisecond
	DefaultRotateWait = time.Second
)

// A file's first bytes are checked (prefixIntact) at every look while the
// offset is below verifyAlwaysBelow, and at most every verifyInterval past it.
const (
	verifyAlwaysBelow = 64 << 10
	verifyInterval    = time.Second
)

// quietLookInterval is how often a live file that nobody writes to is
// looked for at its path and checked for its first bytes. Between those
// looks an fstat showing the same size and modification time as the last
// one is enough: a file not written to was not truncated or rewritten, and
// a writer that rotates (Docker) renames the file only when it writes,
// which the look after that write, at the usual interval, finds. Only a
// rename by someone else (logrotate) waits for the next quiet look.
const quietLookInterval = time.Second

// doneMemory is how many finished files a Follower remembers to find its
// place among the rotated files; more than any sensible max-file.
const doneMemory = 32

// GapReason says why a Gap happened.
type GapReason string

// Reasons for a Gap.
const (
	// GapRotated: the file a Position named no longer exists under any name
	// (rotated away and deleted, or its inode reused), so whatever it held
	// beyond the position was lost. Bytes is -1: its size is unknown.
	GapRotated GapReason = "rotated_unread"
	// GapTruncated: a file was truncated in place (copytruncate, Docker
	// with max-file=1) and no rotated copy held the rest; Bytes is at least
	// the data seen but not read before the truncation, -1 when unknown.
	GapTruncated GapReason = "truncated"
	// GapReplaced: the live file has the inode a Position named but not its
	// first bytes, and no rotated file has them: it was truncated in place
	// and written again, or it is a new file that reuses the inode of one
	// deleted. It is read from its start (or from the oldest rotated file,
	// all newer than the lost one). Bytes is -1.
	GapReplaced GapReason = "replaced"
	// GapCorrupt: a compressed rotated file could not be read to its end.
	GapCorrupt GapReason = "corrupt"
)

// Gap reports log data that was lost before it could be read.
type Gap struct {
	Reason GapReason
	// Path is the file involved as the Follower knew it: the live path when
	// the lost file's name is unknown.
	Path string
	// Bytes is a lower bound of the bytes lost, or -1 when unknown. Lines
	// cannot be counted: they were never read.
	Bytes int64
}

// Options configures a Follower. The zero value follows one plain file with
// the default polling.
type Options struct {
	// Rotated lists the rotated files of path, oldest first, for example
	// [Numbered] for Docker's json-file and numbered logrotate files. While
	// a compressor runs, one rotated file may be listed twice, as X and
	// X.gz; the Follower reads X while it exists. Nil: rotated files are
	// not read back, so a file rotated away is read to its end through the
	// descriptor already open, and then the new live file from its start.
	Rotated func(path string) ([]string, error)
	// PollMin and PollMax bound the wait between checks at the end of the
	// live file: it starts at PollMin, doubles while nothing changes, and
	// returns to PollMin when data comes.
	PollMin, PollMax time.Duration
	// RotateWait is how long a file that is no longer live is still
	// expected to grow (a writer that has not reopened its log yet) while
	// the live file is empty. A file is left as soon as the live file has
	// data, or when it has not been written for RotateWait.
	RotateWait time.Duration
	// OnGap, if set, is called on the goroutine calling Open or Read when
	// data was lost before it could be read.
	OnGap func(Gap)
	// FollowSymlinks lets files be read through symbolic links. Without
	// it a file of the log (live or rotated) whose own name is a link is
	// not read, nor is one in a directory below Trusted that is reached
	// through a link: Open refuses such a live path with ErrSymlink, and a
	// rotated one is passed over.
	FollowSymlinks bool
	// Trusted is a directory above the log's path whose own links, and
	// those of the directories above it, are followed: the part of the
	// path the operator wrote. The directories between it and the file
	// are opened one at a time, refusing links, so one replaced by a link
	// is not followed. "" trusts every directory of the path; the file's
	// own name is still not followed without FollowSymlinks.
	Trusted string
	// Poller, if set and running, makes the looks at the live file while
	// nothing new comes, so a waiting Read sleeps until there is something
	// to read (see Poller). Nil: the Follower looks itself.
	Poller *Poller
}

// statLog is stat(2) of a file of the log, lstat(2) unless FollowSymlinks:
// a link is then seen as a link, not as its target.
func (o *Options) statLog(name string) (os.FileInfo, error) {
	if o.FollowSymlinks {
		return os.Stat(name)
	}
	return os.Lstat(name)
}

// Follower reads one logical log: the live file at a path and the rotated
// files it has not finished, oldest first, as one stream of bytes broken
// into files by ErrFileEnd.
//
// A Follower holds at most one open file descriptor, plus one more briefly
// while it inspects rotated files, and closes each file when it moves on. It
// starts no goroutines. Read, ReadBefore, Position and Close must be called
// from one goroutine at a time; Stop may be called from any goroutine.
type Follower struct {
	path string
	opts Options

	cur  *openFile // nil between files and before the live file exists
	pos  Position
	done []fileID // identities of files finished, newest last

	// restartPending: the current file was truncated; the next read goes
	// on in a copy or at 0, after the caller has seen ErrFileEnd with
	// Position still at the old end.
	restartPending bool
	oldSize        int64 // the file's size last seen before the truncation

	poll     time.Duration
	timer    *time.Timer
	pw       pollWait // registration with opts.Poller, reused
	stop     chan struct{}
	stopOnce sync.Once
	closed   bool

	// Reused from one compressed file to the next; only the current file
	// uses them, and they are dropped when a plain file is opened.
	br     *bufio.Reader
	gzr    *gzip.Reader
	gzHead *[FingerprintBytes]byte // allocated for the first compressed file
	head   [FingerprintBytes]byte
}

// openFile is the file a Follower is reading.
type openFile struct {
	f    *os.File
	name string
	gz   bool
	r    io.Reader // f, or the gzip reader over it
	// head holds decompressed bytes read ahead to fingerprint a compressed
	// file and not yet returned; skip counts bytes still to discard to
	// reach the start offset.
	head []byte
	skip int64
	err  error // a decompression error met while reading head

	verify bool // check the first bytes before reading on

	size  int64 // size at the last fstat
	mod   int64 // modification time at the last fstat, Unix ns
	grew  bool  // bytes were read since the last atEnd
	short bool  // the last read returned less than asked
	// toldIdle: a caller handing off was told ErrIdle after a short read;
	// its next read that may wait waits before reading.
	toldIdle bool
	// checked: the first bytes were checked after the last wait, before
	// the bytes read since (see atEnd).
	checked    bool
	live       bool      // the last look at the path found this file there
	prefix     []byte    // the file's first bytes as last verified (a prefix of what the fingerprint covers)
	verifiedAt time.Time // when prefix was last checked
	// lookSize and lookMod are the file's size and modification time at
	// the last look that found it live with its first bytes intact, at
	// lookedAt (see quietLookInterval).
	lookSize int64
	lookMod  int64 // Unix ns
	lookedAt time.Time
	// lookPending: the Poller said the file may have left its path, and
	// no look at the path has been made since.
	lookPending bool
	// woken: the Poller woke the Follower for a write to the file.
	woken    bool
	spins    int       // fstat saw more than read returned, in a row
	endSince time.Time // first time at the end while not live; zero when live or reading
}

// fileID identifies a file the Follower has finished.
type fileID struct {
	dev, ino uint64
	fp       uint64
	fpLen    int
}

// Open returns a Follower of the log at path, positioned at start.
//
// The zero Position starts at the beginning of the live file. Otherwise the
// file start names is looked for, in this order (see Position for matching):
// the live file by identity, then the rotated files newest first by identity
// or, for a compressed file or a copytruncate copy, by content. It is read
// from start.Offset, then every newer file from 0, then the live file. When
// it is found nowhere, a Gap is reported (GapRotated; GapReplaced when the
// live file has its inode but other first bytes) and reading starts at the
// oldest file listed: with numbered rotation a file disappears only after
// every older one did, so every file still there is newer than it.
//
// A missing live file is not an error: Read waits for it to appear. Open
// reads at most the first FingerprintBytes of each file it inspects; a
// compressed file is decompressed up to start.Offset by the first Read.
func Open(path string, start Position, opts Options) (*Follower, error) {
	if !supported {
		return nil, fmt.Errorf("tail: %s: following files needs inode numbers, which this system lacks", path)
	}
	if path == "" {
		return nil, errors.New("tail: empty path")
	}
	if opts.PollMin < 0 || opts.PollMax < 0 || opts.RotateWait < 0 {
		return nil, fmt.Errorf("tail: %s: negative poll interval or rotate wait", path)
	}
	if opts.PollMin == 0 {
		opts.PollMin = DefaultPollMin
		if opts.PollMax > 0 {
			opts.PollMin = min(DefaultPollMin, opts.PollMax)
		}
	}
	if opts.PollMax == 0 {
		opts.PollMax = max(DefaultPollMax, opts.PollMin)
	}
	if opts.PollMin > opts.PollMax {
		return nil, fmt.Errorf("tail: %s: poll minimum %v above maximum %v", path, opts.PollMin, opts.PollMax)
	}
	if opts.RotateWait == 0 {
		opts.RotateWait = DefaultRotateWait
	}
	if opts.Trusted != "" {
		opts.Trusted = filepath.Clean(opts.Trusted)
	}
	f := &Follower{path: filepath.Clean(path), opts: opts, poll: opts.PollMin, stop: make(chan struct{})}
	if fi, err := opts.statLog(f.path); err == nil && !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("tail: %w", refusal(f.path, fi))
	}
	var err error
	if start.IsZero() {
		err = f.next()
	} else {
		err = f.locate(start)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Read reads the next bytes of the log into p. At the end of a file that is
// no longer live it returns ErrFileEnd, and the next Read goes on in the next
// newer file. At the end of the live file it waits, polling, for more data
// or a rotation; it returns io.EOF there instead once Stop was called, and
// ctx.Err() when ctx ends. Read returns n > 0 only with a nil error.
// Errors other than these come from the file system; the Follower stays
// usable and a later Read tries again.
func (f *Follower) Read(ctx context.Context, p []byte) (int, error) {
	return f.read(ctx, p, time.Time{})
}

// ReadBefore is Read that waits at the end of the live file only until
// deadline, then returns ErrIdle. A deadline that has passed makes it read
// what is there without waiting at all, so a caller can hand off what it
// holds before it blocks.
func (f *Follower) ReadBefore(ctx context.Context, p []byte, deadline time.Time) (int, error) {
	if deadline.IsZero() {
		deadline = time.Unix(0, 1) // passed: zero means "no deadline" inside
	}
	return f.read(ctx, p, deadline)
}

// Position returns the position after the last byte Read returned: where a
// Follower opened with it resumes. Between files it is the end of the file
// just finished.
func (f *Follower) Position() Position { return f.pos }

// Stop makes Read return io.EOF at the end of the live file instead of
// waiting, after reading what every file holds. It wakes a waiting Read. It
// is safe to call from any goroutine, more than once.
func (f *Follower) Stop() { f.stopOnce.Do(func() { close(f.stop) }) }

func (f *Follower) stopped() bool {
	select {
	case <-f.stop:
		return true
	default:
		return false
	}
}

// Close closes the open file. Read then returns ErrClosed.
func (f *Follower) Close() error {
	if f.closed {
		return nil
	}
	f.closed = true
	if f.timer != nil {
		f.timer.Stop()
	}
	if f.opts.Poller != nil {
		f.opts.Poller.forget(&f.pw)
	}
	if f.cur != nil {
		err := f.cur.f.Close()
		f.cur = nil
		if err != nil {
			return fmt.Errorf("tail: close %s: %w", f.path, err)
		}
	}
	return nil
}

func (f *Follower) read(ctx context.Context, p []byte, deadline time.Time) (int, error) {
	if f.closed {
		return 0, ErrClosed
	}
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		c, err := f.current(ctx, deadline)
		if err != nil {
			return 0, err
		}
		if c == nil {
			continue // waited for a file to appear
		}
		// quiet holds the file's fstat when nothing was written to it
		// while we waited: there is nothing to read, and the checks at the
		// end need no second fstat.
		var quiet *fileState
		if c.verify {
			// After a wait, before reading on: a file truncated and written
			// again past our offset meanwhile shows only in its first bytes.
			c.verify = false
			if !c.gz && len(c.head) == 0 {
				// Woken by a write event, there is something to read:
				// no fstat is needed to know.
				if !c.woken {
					size, mod, err := fstat(c.f)
					if err != nil {
						return 0, fmt.Errorf("tail: %w", err)
					}
					if size >= f.pos.Offset {
						// What a wait hands the Poller after reading up
						// to this size: without it the Poller would
						// compare the file with an older size and wake
						// us for nothing.
						c.size, c.mod = size, mod
					}
					if size == f.pos.Offset {
						quiet = &fileState{size: size, mod: mod}
					}
				}
				c.woken = false
				if quiet == nil {
					if !f.prefixIntact() {
						f.truncated(f.pos.Offset)
						return 0, ErrFileEnd
					}
					c.checked = true
				}
			}
		}
		if c.skip > 0 {
			if err := f.skipCompressed(c, p); err != nil {
				return 0, err
			}
			continue
		}
		if quiet == nil {
			n, err := f.readData(c, p, deadline)
			if errors.Is(err, errLookLater) {
				c.verify = true
				if err := f.wait(ctx, deadline); err != nil {
					return 0, err
				}
				continue
			}
			if n > 0 || err != nil {
				return n, err
			}
		}
		// At the end of what the live file holds.
		again, end, err := f.atEnd(quiet)
		switch {
		case err != nil:
			return 0, err
		case end:
			return 0, ErrFileEnd
		case again:
			continue
		case f.stopped():
			return 0, io.EOF
		}
		c.verify = true
		if err := f.wait(ctx, deadline); err != nil {
			return 0, err
		}
	}
}

// current returns the file to read, restarting after a truncation or
// opening the next file when none is open. It returns nil, nil after
// waiting for a file to appear, and io.EOF when none will because Stop was
// called.
func (f *Follower) current(ctx context.Context, deadline time.Time) (*openFile, error) {
	if f.restartPending {
		if err := f.restart(); err != nil {
			return nil, err
		}
	}
	if f.cur != nil {
		return f.cur, nil
	}
	if err := f.next(); err != nil {
		return nil, err
	}
	if f.cur != nil {
		return f.cur, nil
	}
	if f.stopped() {
		return nil, io.EOF
	}
	return nil, f.wait(ctx, deadline)
}

// skipCompressed moves towards the position in a compressed file, which
// cannot seek: it decompresses into p and discards. It returns ErrFileEnd
// when the file ends before the position.
func (f *Follower) skipCompressed(c *openFile, p []byte) error {
	n, err := c.read(p[:min(int64(len(p)), c.skip)])
	c.skip -= int64(n)
	if n > 0 {
		return nil
	}
	f.pos.Offset -= c.skip // shorter than the position: finished
	c.skip = 0
	if err != nil && err != io.EOF {
		f.gap(Gap{Reason: GapCorrupt, Path: c.name, Bytes: -1})
	}
	f.finish()
	return ErrFileEnd
}

// readData reads what c holds into p. It returns 0, nil at the end of what
// the live file holds for now; ErrFileEnd when a compressed file is done;
// ErrIdle when the caller's deadline has passed and a read would find
// nothing new.
func (f *Follower) readData(c *openFile, p []byte, deadline time.Time) (int, error) {
	handingOff := func() bool { return !deadline.IsZero() && !time.Now().Before(deadline) }
	if c.grew && !c.gz && len(c.head) == 0 {
		// The last read came up short, at the end of what was written a
		// moment ago: a read now would find nothing. A caller handing
		// off what it holds is told so at once; the read that follows,
		// which may wait, waits before it reads, and the checks at the
		// end are made after the wait.
		switch {
		case c.short && handingOff():
			c.short, c.toldIdle = false, true
			return 0, ErrIdle
		case (c.short || c.toldIdle) && !handingOff():
			c.short, c.toldIdle = false, false
			return 0, errLookLater
		}
	}
	n, err := c.read(p)
	c.short, c.toldIdle = n > 0 && n < len(p), false
	if n > 0 {
		f.consumed(p[:n])
		c.grew = true
		c.spins, c.endSince = 0, time.Time{}
		f.poll = f.opts.PollMin
		return n, nil
	}
	if err != nil && err != io.EOF {
		if c.gz {
			// A damaged archive cannot be read past the damage; what
			// follows it is lost, the newer files are not.
			f.gap(Gap{Reason: GapCorrupt, Path: c.name, Bytes: -1})
			f.finish()
			return 0, ErrFileEnd
		}
		return 0, fmt.Errorf("tail: read %s: %w", c.name, err)
	}
	if c.gz {
		f.finish() // a compressed file is complete when it is listed
		return 0, ErrFileEnd
	}
	if handingOff() && c.grew {
		// A caller handing off what it holds: nothing more is there
		// right now. The checks at the end are made by the next
		// waiting read.
		return 0, ErrIdle
	}
	return 0, nil
}

// read reads from the head read ahead, then from the file.
func (c *openFile) read(p []byte) (int, error) {
	if len(c.head) > 0 {
		n := copy(p, c.head)
		c.head = c.head[n:]
		return n, nil
	}
	if c.err != nil {
		return 0, c.err
	}
	return c.r.Read(p)
}

// consumed advances the position over b, the bytes just returned, and
// extends the fingerprint with those of them it does not cover yet.
func (f *Follower) consumed(b []byte) {
	p := &f.pos
	if p.FingerprintLen < FingerprintBytes {
		from := int64(p.FingerprintLen) - p.Offset
		to := min(int64(len(b)), FingerprintBytes-p.Offset)
		// from < 0 only if the file shrank between fingerprint and read;
		// the truncation check will restart it anyway.
		if from >= 0 && from < to {
			state := fnvOffset
			if p.FingerprintLen > 0 {
				state = p.Fingerprint
			}
			p.Fingerprint = fnvAdd(state, b[from:to])
			p.FingerprintLen += int(to - from)
		}
	}
	p.Offset += int64(len(b))
}

// fileState is what an fstat tells of the current file.
type fileState struct {
	size, mod int64 // mod: modification time, Unix ns
}

// atEnd decides what to do when read found no more bytes in an uncompressed
// file: read again (again), report the end of a stretch (end), or neither,
// and then wait. known is the file's fstat when the caller just made one,
// nil otherwise.
func (f *Follower) atEnd(known *fileState) (again, end bool, err error) {
	c := f.cur
	var now fileState
	if known != nil {
		now = *known
	} else if now.size, now.mod, err = fstat(c.f); err != nil {
		return false, false, fmt.Errorf("tail: %w", err)
	}
	size := now.size
	switch {
	case size < f.pos.Offset:
		// Truncated in place. What was between our offset and the size we
		// last saw is gone unless a rotated copy has it; look at the next
		// read, after the caller has closed what it holds.
		f.truncated(c.size)
		return false, true, nil
	case size > f.pos.Offset && c.spins < 3:
		// Written between our read and the fstat. The bound guards against
		// a file system whose size runs ahead of what read returns.
		c.size = size
		c.spins++
		return true, false, nil
	}
	c.size, c.mod = size, now.mod
	grew := c.grew
	c.grew = false
	checked := c.checked
	c.checked = false
	if grew && c.live && !f.stopped() {
		// The live file grew since the last look: it is still the live
		// one or was just rotated and is being finished; either way it is
		// read on, and the rename is looked for once it stops growing.
		// This spares a stat of the path per poll while data comes. Its
		// first bytes were checked before the bytes read since, if they
		// came after a wait; otherwise now.
		if !checked && !f.prefixIntact() {
			f.truncated(f.pos.Offset)
			return false, true, nil
		}
		return false, false, nil
	}
	clock := time.Now()
	untouched := size == c.lookSize && now.mod == c.lookMod
	if !grew && c.live && !f.stopped() && untouched && clock.Sub(c.lookedAt) < quietLookInterval {
		// Not written to since the last look, a moment ago.
		return false, false, nil
	}
	st, serr := f.opts.statLog(f.path)
	c.lookPending = false
	c.live = serr == nil && sameFile(st, &f.pos)
	if c.live {
		c.endSince = time.Time{}
		if !untouched && !f.prefixIntact() {
			// Truncated and written again past our offset between two
			// checks: the size never showed it, the first bytes do. (A
			// file not written to since the last look cannot have been.)
			f.truncated(f.pos.Offset)
			return false, true, nil
		}
		c.lookSize, c.lookMod, c.lookedAt = size, now.mod, clock
		return false, false, nil
	}
	if serr != nil && !errors.Is(serr, fs.ErrNotExist) {
		return false, false, fmt.Errorf("tail: stat %s: %w", f.path, serr)
	}
	// No longer the live file. It may have grown between the fstat above
	// and the rename: look again now that the rename is seen.
	if now.size, now.mod, err = fstat(c.f); err != nil {
		return false, false, fmt.Errorf("tail: %w", err)
	}
	if size = now.size; size > f.pos.Offset && c.spins < 3 {
		c.size = size
		c.spins++
		return true, false, nil
	}
	// A writer may still append to it until it reopens its log, and it
	// surely has once the new file has data.
	if c.endSince.IsZero() {
		c.endSince = clock
	}
	liveHasData := serr == nil && st.Size() > 0
	quiet := clock.Sub(time.Unix(0, now.mod)) >= f.opts.RotateWait || clock.Sub(c.endSince) >= f.opts.RotateWait
	if liveHasData || quiet || f.stopped() {
		f.finish()
		return false, true, nil
	}
	return false, false, nil
}

// prefixIntact reports whether the current file still starts with the bytes
// its fingerprint covers.
func (f *Follower) prefixIntact() bool {
	n := f.pos.FingerprintLen
	if n == 0 {
		return true
	}
	c := f.cur
	now := time.Now()
	if f.pos.Offset >= verifyAlwaysBelow && now.Sub(c.verifiedAt) < verifyInterval {
		// Past the first 64 KiB, a truncation shows as a size below the
		// offset unless the file is written past it again between two
		// looks, which takes that much within a poll: checking the first
		// bytes once a second is enough there.
		return true
	}
	c.verifiedAt = now
	got, err := c.f.ReadAt(f.head[:n], 0)
	if got < n {
		return err != nil && !errors.Is(err, io.EOF) // an I/O error is no evidence
	}
	// Comparing with the bytes verified last time is cheaper than hashing;
	// the hash is needed only when the fingerprint has grown since.
	if len(c.prefix) == n {
		return bytes.Equal(f.head[:n], c.prefix)
	}
	if fnvAdd(fnvOffset, f.head[:n]) != f.pos.Fingerprint {
		return false
	}
	c.prefix = append(c.prefix[:0], f.head[:n]...)
	return true
}

// truncated records that the current file restarts at 0 on the next read;
// oldSize is the largest size it was seen to have before.
func (f *Follower) truncated(oldSize int64) {
	f.restartPending = true
	f.oldSize = max(oldSize, f.pos.Offset)
}

// restart handles a truncation found earlier: it continues in a rotated copy
// of the file holding the bytes after our offset (copytruncate), or reads
// the file again from 0 and reports what was lost.
func (f *Follower) restart() error {
	f.restartPending = false
	c := f.cur
	if f.opts.Rotated != nil && f.pos.FingerprintLen > 0 {
		cands, err := f.scan()
		if err != nil {
			return err
		}
		for i := len(cands) - 1; i >= 0; i-- {
			k := &cands[i]
			if k.live || (k.dev == f.pos.Dev && k.ino == f.pos.Inode) {
				continue
			}
			if !k.gz && k.size < f.pos.Offset || k.prefixMatches(&f.opts, f.pos.Fingerprint, f.pos.FingerprintLen) != matched {
				continue
			}
			o, pos, err := f.openCand(k, f.pos.Offset, &f.pos)
			if errors.Is(err, errVanished) {
				break // read the live file again from 0, as without a copy
			}
			if err != nil {
				return err
			}
			if !k.gz && f.oldSize > k.size {
				// Written after the copy was taken, before the truncation.
				f.gap(Gap{Reason: GapTruncated, Path: f.path, Bytes: f.oldSize - k.size})
			}
			c.f.Close()
			f.cur, f.pos = o, pos
			return nil
		}
	}
	f.gap(Gap{Reason: GapTruncated, Path: f.path, Bytes: f.oldSize - f.pos.Offset})
	if _, err := c.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("tail: seek %s: %w", c.name, err)
	}
	n, err := c.f.ReadAt(f.head[:], 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("tail: read %s: %w", c.name, err)
	}
	f.pos.Offset = 0
	f.pos.FingerprintLen = n
	f.pos.Fingerprint = fingerprint(fnvAdd(fnvOffset, f.head[:n]), n)
	c.size, c.prefix = 0, c.prefix[:0]
	c.lookSize, c.lookMod = -1, 0
	return nil
}

// finish closes the current file, which the log has moved on from, and
// remembers it so the next newer file can be found.
func (f *Follower) finish() {
	f.cur.f.Close()
	if f.cur.gz {
		// The decompressor and its buffer (some 100 KiB) are made again
		// for the next compressed file, if any: a reader that caught up
		// waits at the live file, maybe for days, and holds none.
		f.br, f.gzr = nil, nil
	}
	f.cur = nil
	if len(f.done) == doneMemory {
		copy(f.done, f.done[1:])
		f.done = f.done[:doneMemory-1]
	}
	f.done = append(f.done, fileID{dev: f.pos.Dev, ino: f.pos.Inode, fp: f.pos.Fingerprint, fpLen: f.pos.FingerprintLen})
}

// wait sleeps for about the current poll interval, doubling it for next
// time, or until deadline, Stop or the end of ctx.
//
// The wake-up is put on a grid of the interval shared by every follower in
// the process, so followers polling at the same interval wake together: a
// host's many quiet logs then cost the process a few wake-ups a second, not
// a few per log.
func (f *Follower) wait(ctx context.Context, deadline time.Time) error {
	d := onGrid(f.poll, time.Since(gridEpoch))
	f.poll = min(2*f.poll, f.opts.PollMax)
	if c := f.cur; f.opts.Poller != nil && deadline.IsZero() && c != nil && !c.gz && c.live && !f.restartPending {
		// Nothing new at the end of the live file: let the Poller make
		// the looks, on this schedule, and sleep until one finds a change.
		now := time.Now()
		w := &f.pw
		if w.wake == nil {
			w.wake = make(chan struct{}, 1)
		}
		w.f, w.path, w.opts, w.dev, w.ino = c.f, f.path, &f.opts, f.pos.Dev, f.pos.Inode
		w.size, w.mod, w.offset = c.size, c.mod, f.pos.Offset
		w.next, w.interval, w.max = now.Add(d), f.poll, f.opts.PollMax
		w.lookAt = c.lookedAt.Add(quietLookInterval)
		w.lookPending = c.lookPending
		if c.size != c.lookSize || c.mod != c.lookMod {
			// Written since the last look at the path: look at once, as
			// the Follower would (Docker renames its log as it writes).
			w.lookAt = time.Time{}
		}
		if f.opts.Poller.add(w) {
			select {
			case <-ctx.Done():
				f.opts.Poller.remove(w)
				return ctx.Err()
			case <-f.stop:
				f.opts.Poller.remove(w)
				return nil
			case <-w.wake:
				f.poll = w.interval
				c.woken = w.wokenByWrite
				if w.lookNow {
					// Renamed, unlinked or replaced: look at the path
					// now, not a quiet second after the last look.
					c.lookedAt, c.lookPending = time.Time{}, true
				}
				return nil
			}
		}
	}
	if !deadline.IsZero() {
		left := time.Until(deadline)
		if left <= 0 {
			return ErrIdle
		}
		d = min(d, left)
	}
	if f.timer == nil {
		f.timer = time.NewTimer(d)
	} else {
		f.timer.Reset(d)
	}
	select {
	case <-ctx.Done():
		f.timer.Stop()
		return ctx.Err()
	case <-f.stop:
		f.timer.Stop()
		return nil
	case <-f.timer.C:
		return nil
	}
}

// gridEpoch is the origin of the wake-up grid.
var gridEpoch = time.Now()

// onGrid returns how long to sleep, at elapsed since gridEpoch, to wake at a
// multiple of interval that is at least half an interval away: between 0.5
// and 1.5 intervals, one on average.
func onGrid(interval, elapsed time.Duration) time.Duration {
	if interval <= 0 {
		return interval
	}
	next := (elapsed/interval + 1) * interval
	if next-elapsed < interval/2 {
		next += interval
	}
	return next - elapsed
}

func (f *Follower) gap(g Gap) {
	if f.opts.OnGap != nil {
		f.opts.OnGap(g)
	}
}

// refusal is the error for a file of a log that fi shows is not a regular
// file: ErrSymlink for a link, ErrNotRegular otherwise.
func refusal(name string, fi os.FileInfo) error {
	if fi.Mode()&fs.ModeSymlink != 0 {
		return &os.PathError{Op: "open", Path: name, Err: ErrSymlink}
	}
	return &os.PathError{Op: "open", Path: name, Err: ErrNotRegular}
}

// sameFile reports whether fi is the file p names by device and inode.
func sameFile(fi os.FileInfo, p *Position) bool {
	dev, ino := fileIdentity(fi)
	return dev == p.Dev && ino == p.Inode
}
