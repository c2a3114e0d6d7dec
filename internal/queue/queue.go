// Package queue is wharf's on-disk outage queue: a bounded FIFO of records in
// append-only segment files under the data directory. While a sink is failing
// or slow the pipeline keeps reading and appends entries here, so lines Docker
// rotates away are not lost; when the sink recovers, the queue is replayed
// oldest first. Appending counts as confirming entries to their source, so an
// append is reported durable only after fsync.
//
// # On-disk format
//
// A queue directory holds segment files named <first offset>.seg, the offset
// zero-padded to 20 digits, plus a small head file. Offsets are global byte
// offsets that only grow, so a position is one int64; a new segment starts at
// the end of the previous one, and a record never spans two segments.
//
// A segment starts with a 16-byte header: "WQSG", format version (uint16,
// currently 1), two reserved bytes, the segment's record magic (uint32, random
// per segment) and the CRC-32C of the preceding 12 bytes. Records follow:
//
//	record magic uint32 | payload length uint32 | CRC-32C(payload) uint32 | payload
//
// All integers are little-endian. The magic lets a reader find the next record
// after corruption.
//
// The head file holds the committed position: "WQHD", version (uint16), two
// reserved bytes, the position (int64) and the CRC-32C of the preceding 16
// bytes. It is replaced by writing a temporary file (head.tmp-<random>),
// fsyncing it, renaming it over head and fsyncing the directory.
//
// Files are 0600 in a 0700 directory, never opened through a symbolic link,
// and temporary names are random (see internal/datadir).
//
// # Durability
//
// Records are written to the page cache by Append and fsynced by group commit:
// Run fsyncs the write segment every SyncInterval, or as soon as 16 MiB are
// waiting, and only then calls the records' onDurable callbacks, in append
// order. A segment is fsynced before the next one is started, and each new
// segment file and its directory entry are fsynced before a record is written
// to it. The committed head is persisted at the same interval, after the data,
// and at Close. After a crash the queue replays from the last persisted head,
// so records read but not yet committed are read again (at least once). A
// record cut short by a crash at the end of the last segment is cut off at
// Open; corrupt records elsewhere are skipped by the reader. Neither is an
// error: both are counted in Stats.
package queue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/wharf-logs/wharf/internal/datadir"
)

// Defaults for zero Options fields.
const (
	DefaultMaxBytes       = 1 << 30
	DefaultSegmentBytes   = 64 << 20
	DefaultSyncInterval   = 100 * time.Millisecond
	DefaultMaxRecordBytes = 64 << 20
)

const (
	// syncBytes is how much unsynced data makes Append wake Run before the
	// interval, bounding the work (and the latency) of one fsync.
	syncBytes = 16 << 20
	// smallRecord is the largest payload Append copies behind its frame
	// header to write both in one call; larger ones take two writes, which
	// cost less than the copy.
	smallRecord = 64 << 10
)

// Options configure a Queue. Zero fields take the defaults.
type Options struct {
	// MaxBytes bounds the size of the segment files, counting records that
	// are unread, read, or committed but still in a segment that is not
	// fully committed. Append blocks while a record would not fit.
	// Default 1 GiB.
	MaxBytes int64
	// SegmentBytes is the size past which a new segment file is started.
	// Default 64 MiB.
	SegmentBytes int64
	// SyncInterval is the group-commit interval. Default 100ms.
	SyncInterval time.Duration
	// MaxRecordBytes bounds one payload. Default 64 MiB, or less when
	// MaxBytes could not hold one. The reader accepts records up to the
	// larger of this and the default, so lowering it does not make records
	// already queued unreadable.
	MaxRecordBytes int64
}

func (o Options) withDefaults() (Options, error) {
	for _, f := range []struct {
		name string
		v    int64
	}{{"MaxBytes", o.MaxBytes}, {"SegmentBytes", o.SegmentBytes}, {"SyncInterval", int64(o.SyncInterval)}, {"MaxRecordBytes", o.MaxRecordBytes}} {
		if f.v < 0 {
			return o, fmt.Errorf("queue: option %s is negative: %d", f.name, f.v)
		}
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.SegmentBytes == 0 {
		o.SegmentBytes = DefaultSegmentBytes
	}
	if o.SyncInterval == 0 {
		o.SyncInterval = DefaultSyncInterval
	}
	// A record must fit in an otherwise empty queue, or Append could wait
	// for room that never comes.
	room := o.MaxBytes - segHeaderLen - frameLen
	if o.MaxRecordBytes == 0 {
		o.MaxRecordBytes = min(DefaultMaxRecordBytes, room)
	}
	if o.MaxRecordBytes < 1 || o.MaxRecordBytes > room {
		return o, fmt.Errorf("queue: MaxBytes %d cannot hold a record of MaxRecordBytes %d and its %d bytes of framing", o.MaxBytes, o.MaxRecordBytes, segHeaderLen+frameLen)
	}
	if o.MaxRecordBytes > 1<<32-1 {
		return o, fmt.Errorf("queue: MaxRecordBytes %d is over the 4 GiB a frame can describe", o.MaxRecordBytes)
	}
	return o, nil
}

// ErrClosed is returned by calls on a closed Queue.
var ErrClosed = errors.New("queue: closed")

// ErrTooLarge is returned by Append for a payload over MaxRecordBytes.
var ErrTooLarge = errors.New("queue: record too large")

// Stats are a Queue's counters and gauges, for metrics and logs.
type Stats struct {
	// Bytes is what Bytes reports: appended and not yet committed.
	Bytes int64
	// DiskBytes is the size of the segment files, which Append keeps at or
	// under MaxBytes.
	DiskBytes int64
	Segments  int
	// Appends and AppendedBytes count records and payload bytes appended
	// since Open.
	Appends       int64
	AppendedBytes int64
	// Syncs counts fsyncs of appended data.
	Syncs int64
	// WriteErrors, SyncErrors, HeadErrors and RemoveErrors count failed
	// appends, fsyncs, head writes and segment deletions.
	WriteErrors  int64
	SyncErrors   int64
	HeadErrors   int64
	RemoveErrors int64
	// TornBytes is what Open cut off the end of the last segment: a record
	// being written when the process or the machine stopped.
	TornBytes int64
	// CorruptRecords counts stretches of a segment in which the reader found
	// no valid record and skipped; CorruptBytes is their size.
	CorruptRecords int64
	CorruptBytes   int64
	// MovedAside lists the files Open renamed out of the way (a corrupt head,
	// files from a newer wharf), by their new names.
	MovedAside []string
	// NewerFiles counts the MovedAside files that a newer wharf wrote, in a
	// format this one cannot read (named .newer-); the others were corrupt.
	NewerFiles int
}

// Queue is a bounded on-disk FIFO of records.
//
// Concurrency: Append may be called by one goroutine at a time and Next by
// one goroutine at a time (concurrent calls of the same method wait for each
// other); the appender and the reader may run concurrently with each other
// and with Run. Commit, Bytes, Empty, Stats and Err are safe from any
// goroutine. Close may be called from any goroutine and waits for an Append
// or Next in progress. Run must be running for onDurable callbacks to fire
// before Close.
type Queue struct {
	dir     string
	opts    Options
	maxRead int64
	// syncFile is (*os.File).Sync; tests replace it to observe or fail fsyncs.
	syncFile func(*os.File) error

	done      chan struct{} // closed by Close
	kick      chan struct{} // cap 1: wakes Run before the interval
	busy      chan struct{} // cap 1: wakes an idle Run after an append or a commit
	appendSem chan struct{} // cap 1: held by the appender
	readSem   chan struct{} // cap 1: held by the reader

	flushMu sync.Mutex // serialises flushes, so callbacks fire in order
	syncMu  sync.Mutex // held across an fsync of the write segment, and by a rollover, which closes it
	fire    []pending  // guarded by flushMu: callbacks being fired

	wbuf []byte // guarded by appendSem

	rf      *os.File // guarded by readSem: the segment being read
	rfFirst int64
	rr      recordReader

	mu       sync.Mutex
	closed   bool
	segs     []segment // by offset; the last is being written
	w        *os.File  // the last segment, open for writing; nil once closed
	written  int64     // end of the data
	synced   int64     // data before it is durable
	failedTo int64     // callbacks of records ending at or before it get syncErr
	syncErr  error
	poisoned bool  // an fsync of the write segment failed: start a new one
	head     int64 // committed position
	saved    int64 // head as last persisted; -1 when the head file must be written
	cursor   int64 // the reader's position
	cbs      []pending

	space     chan struct{} // closed when room frees up and spaceWait is set
	spaceWait bool
	data      chan struct{} // closed when a record is appended and dataWait is set
	dataWait  bool

	appendErr error
	headErr   error
	diskBytes int64
	stats     Stats
}

type segment struct {
	first int64
	size  int64
	// magic is the segment's record magic; 0 when unknown (an unreadable
	// header and no first record to learn it from), and the reader skips
	// the segment.
	magic uint32
}

func (s segment) end() int64 { return s.first + s.size }

// data is where records may start.
func (s segment) data() int64 { return s.first + segHeaderLen }

type pending struct {
	end int64
	fn  func(error)
	err error
}

// Open opens the queue in dir, creating the directory if needed, and
// recovers from what a crash or a disk fault may have left: a torn record at
// the end is cut off, a corrupt head file is moved aside and the queue starts
// from its oldest record, and files written by a newer wharf are moved aside.
// These are reported in Stats, not as errors; Open fails only when the
// directory cannot be used. It starts no goroutine.
func Open(dir string, opts Options) (*Queue, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := datadir.MkdirAll(dir); err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	q := &Queue{
		dir:       dir,
		opts:      opts,
		maxRead:   max(opts.MaxRecordBytes, DefaultMaxRecordBytes),
		syncFile:  (*os.File).Sync,
		done:      make(chan struct{}),
		kick:      make(chan struct{}, 1),
		busy:      make(chan struct{}, 1),
		appendSem: make(chan struct{}, 1),
		readSem:   make(chan struct{}, 1),
		space:     make(chan struct{}),
		data:      make(chan struct{}),
	}
	if err := q.load(); err != nil {
		if q.w != nil {
			q.w.Close()
		}
		return nil, err
	}
	return q, nil
}

func (q *Queue) path(first int64) string { return filepath.Join(q.dir, segName(first)) }

// load recovers the queue's state from the directory.
func (q *Queue) load() error {
	// Temporary head files a crash left: this version's, and the one
	// fixed name earlier versions used.
	if err := datadir.RemoveTemps(q.dir, headName); err != nil {
		return fmt.Errorf("queue: %w", err)
	}
	if err := os.Remove(filepath.Join(q.dir, oldHeadTmpName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("queue: %w", err)
	}
	head, haveHead, err := q.readHead()
	if err != nil {
		return err
	}
	// floor is where new data may start: past the head (appending below it
	// would hide records from the reader) and past any segment moved aside,
	// so offsets never repeat.
	floor := head
	segs, err := q.listSegments(&floor)
	if err != nil {
		return err
	}
	newFirst := floor
	if n := len(segs); n > 0 && segs[n-1].magic == 0 {
		if newFirst, err = q.dropHeaderless(segs[n-1], newFirst); err != nil {
			return err
		}
		segs = segs[:n-1]
	} else if n > 0 {
		if newFirst, err = q.reopenLast(&segs[n-1], newFirst); err != nil {
			return err
		}
	}
	q.segs = segs
	if q.w == nil {
		f, magic, err := q.createSegment(newFirst)
		if err != nil {
			return err
		}
		q.w = f
		q.segs = append(q.segs, segment{first: newFirst, size: segHeaderLen, magic: magic})
	}
	if !haveHead {
		head = q.segs[0].first
	}
	q.head, q.cursor, q.saved = head, head, head
	if !haveHead {
		q.saved = -1
	}
	w := q.segs[len(q.segs)-1]
	q.written, q.synced = w.end(), w.end()
	for _, s := range q.segs {
		q.diskBytes += s.size
	}
	q.removeSegments(q.consumedLocked())
	return nil
}

// dropHeaderless handles a last segment whose header cannot be read, and
// returns where new data may start. With records in it there is no magic to
// find them by: its bytes are kept aside for a human and new data starts
// after them. A segment that holds only a header being written is rewritten,
// or dropped when new data must start further on.
func (q *Queue) dropHeaderless(last segment, newFirst int64) (int64, error) {
	if last.size > segHeaderLen {
		if err := q.moveAside(q.path(last.first), "corrupt"); err != nil {
			return 0, err
		}
		return max(newFirst, last.end()), nil
	}
	q.stats.TornBytes += last.size
	if newFirst > last.first {
		if err := os.Remove(q.path(last.first)); err != nil {
			return 0, fmt.Errorf("queue: %w", err)
		}
	}
	return max(newFirst, last.first), nil
}

// reopenLast opens the last segment for appending, cutting a record torn by
// a crash off its end, and returns where new data may start. The segment is
// written to again only if new data may start at its end.
func (q *Queue) reopenLast(last *segment, newFirst int64) (int64, error) {
	f, err := datadir.OpenFile(q.path(last.first), os.O_RDWR)
	if err != nil {
		return 0, fmt.Errorf("queue: %w", err)
	}
	q.w = f
	if err := q.cutTornTail(last); err != nil {
		return 0, err
	}
	if last.end() < newFirst {
		q.w = nil
		f.Close()
	}
	return max(newFirst, last.end()), nil
}

// listSegments reads the header of every segment file. Files from a newer
// format are moved aside; floor is raised past them.
func (q *Queue) listSegments(floor *int64) ([]segment, error) {
	des, err := os.ReadDir(q.dir)
	if err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	var segs []segment
	for _, de := range des { // sorted by name, so by offset
		first, ok := parseSegName(de.Name())
		if !ok || !de.Type().IsRegular() {
			continue
		}
		s, st, err := q.inspect(first)
		if err != nil {
			return nil, err
		}
		if st == headerNewer {
			if err := q.moveAside(q.path(first), "newer"); err != nil {
				return nil, err
			}
			*floor = max(*floor, s.end())
			continue
		}
		segs = append(segs, s)
	}
	// A segment cannot reach into the next one; ignore what would.
	for i := 0; i+1 < len(segs); i++ {
		if segs[i].end() > segs[i+1].first {
			segs[i].size = segs[i+1].first - segs[i].first
		}
	}
	return segs, nil
}

// inspect reads a segment's size and header. When the header is damaged but
// the bytes after it start a valid record, that record's magic is adopted,
// so one bad sector does not cost the whole segment.
func (q *Queue) inspect(first int64) (segment, headerState, error) {
	f, err := datadir.Open(q.path(first))
	if err != nil {
		return segment{}, 0, fmt.Errorf("queue: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return segment{}, 0, fmt.Errorf("queue: %w", err)
	}
	s := segment{first: first, size: fi.Size()}
	var hdr [segHeaderLen + 4]byte
	n, err := f.ReadAt(hdr[:], 0)
	if n < len(hdr) && err != nil && !errors.Is(err, io.EOF) {
		return segment{}, 0, fmt.Errorf("queue: %w", err)
	}
	magic, st := parseSegHeader(hdr[:min(n, segHeaderLen)])
	if st == headerBad && n == len(hdr) {
		rr := recordReader{r: f, base: first, magic: le.Uint32(hdr[segHeaderLen:]), maxRec: q.maxRead}
		if _, ok, err := rr.at(s.data(), s.end(), nil); err != nil {
			return segment{}, 0, fmt.Errorf("queue: %w", err)
		} else if ok && rr.magic != 0 {
			magic, st = rr.magic, headerOK
			q.stats.CorruptRecords++
			q.stats.CorruptBytes += segHeaderLen
		}
	}
	if st == headerOK {
		s.magic = magic
	}
	return s, st, nil
}

// cutTornTail finds the end of the valid records of the last segment, whose
// file is q.w, and truncates what follows: a record that was being written
// when the process stopped. Corrupt stretches followed by valid records are
// left for the reader to skip.
func (q *Queue) cutTornTail(s *segment) error {
	rr := recordReader{r: q.w, base: s.first, magic: s.magic, maxRec: q.maxRead}
	p, end := s.data(), s.end()
	var buf []byte
	for {
		payload, _, stop, found, err := rr.next(p, end, buf)
		if err != nil {
			return fmt.Errorf("queue: %w", err)
		}
		if !found {
			break
		}
		buf, p = payload[:0], stop
	}
	if p == end {
		return nil
	}
	if err := q.w.Truncate(p - s.first); err != nil {
		return fmt.Errorf("queue: %w", err)
	}
	if err := q.syncFile(q.w); err != nil {
		return fmt.Errorf("queue: %w", err)
	}
	q.stats.TornBytes += end - p
	s.size = p - s.first
	return nil
}

// createSegment creates the segment file starting at first, with its header
// durable and its directory entry too, so records written to it are lost
// neither with the file nor with the name. O_TRUNC lets a retry after a
// failed attempt, or Open after a torn header, reuse the name.
func (q *Queue) createSegment(first int64) (*os.File, uint32, error) {
	path := q.path(first)
	f, err := datadir.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return nil, 0, fmt.Errorf("queue: %w", err)
	}
	magic := newRecordMagic()
	_, err = f.Write(appendSegHeader(nil, magic))
	if err == nil {
		err = q.syncFile(f)
	}
	if err == nil {
		err = q.syncDir()
	}
	if err != nil {
		f.Close()
		os.Remove(path)
		return nil, 0, fmt.Errorf("queue: %w", err)
	}
	return f, magic, nil
}

// Append writes one record holding a copy of payload (which the caller keeps
// owning). It blocks while the record would take the segment files over
// MaxBytes, until Commit frees a segment or ctx ends, and returns ctx.Err()
// or ErrClosed then. A disk error (ENOSPC, EROFS, EIO...) is returned at once
// and kept in Err until an append succeeds again; nothing of the record is
// then kept, and the next Append may simply be retried.
//
// onDurable, which may be nil, is called exactly once when Append returned
// nil: with nil once the record has been fsynced, or with the error of a
// failed fsync, in which case the record may be read back but may not survive
// a crash. Callbacks run on Run's goroutine (or Close's), in append order,
// and must not block or call Close.
func (q *Queue) Append(ctx context.Context, payload []byte, onDurable func(error)) error {
	if int64(len(payload)) > q.opts.MaxRecordBytes {
		return fmt.Errorf("%w: %d bytes for %s, limit %d", ErrTooLarge, len(payload), q.dir, q.opts.MaxRecordBytes)
	}
	select {
	case q.appendSem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-q.done:
		return ErrClosed
	}
	defer func() { <-q.appendSem }()

	rec := int64(frameLen + len(payload))
	if err := q.reserve(ctx, rec); err != nil {
		return err
	}
	q.mu.Lock()
	f, s := q.w, q.segs[len(q.segs)-1]
	q.mu.Unlock()
	off := s.size
	var err error
	if len(payload) <= smallRecord {
		q.wbuf = appendFrame(q.wbuf[:0], s.magic, payload)
		_, err = f.WriteAt(q.wbuf, off)
	} else {
		var hdr [frameLen]byte
		if _, err = f.WriteAt(appendFrameHeader(hdr[:0], s.magic, payload), off); err == nil {
			_, err = f.WriteAt(payload, off+frameLen)
		}
	}
	if err != nil {
		// Part of the record may have reached the file. The next append
		// overwrites it anyway; cutting it keeps the file clean should the
		// process stop first (Open would cut it as a torn tail).
		f.Truncate(off)
		err = fmt.Errorf("queue: %w", err)
		q.mu.Lock()
		q.appendErr = err
		q.stats.WriteErrors++
		q.mu.Unlock()
		return err
	}
	q.mu.Lock()
	q.segs[len(q.segs)-1].size += rec
	q.written += rec
	q.diskBytes += rec
	q.stats.Appends++
	q.stats.AppendedBytes += int64(len(payload))
	if !q.poisoned {
		q.appendErr = nil
	}
	if onDurable != nil {
		q.cbs = append(q.cbs, pending{end: q.written, fn: onDurable})
	}
	if q.dataWait {
		close(q.data)
		q.data, q.dataWait = make(chan struct{}), false
	}
	kick := q.written-q.synced >= syncBytes
	q.mu.Unlock()
	if kick {
		q.wake()
	}
	q.poke()
	return nil
}

// reserve waits until a record of rec bytes fits, and starts a new segment
// when the record should go to one.
func (q *Queue) reserve(ctx context.Context, rec int64) error {
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return ErrClosed
		}
		last := q.segs[len(q.segs)-1]
		hasRecords := last.size > segHeaderLen
		roll := q.poisoned || (hasRecords && last.size+rec > q.opts.SegmentBytes)
		need := rec
		if roll {
			need += segHeaderLen
		}
		fits := q.diskBytes+need <= q.opts.MaxBytes
		// When everything is committed but the room is still short, the
		// write segment is what holds it: a new segment lets it go.
		roll = roll || (!fits && hasRecords && q.head >= q.written)
		if fits || roll {
			q.mu.Unlock()
			if roll {
				if err := q.roll(); err != nil {
					return err
				}
			}
			if fits {
				return nil
			}
			continue
		}
		ch := q.space
		q.spaceWait = true
		q.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-q.done:
			return ErrClosed
		}
	}
}

// roll starts a new segment at the end of the data. The current one is
// fsynced first, since its descriptor is closed here and Run could no longer
// sync it. Only the appender calls roll.
func (q *Queue) roll() error {
	q.syncMu.Lock()
	defer q.syncMu.Unlock()
	q.mu.Lock()
	old, end, synced := q.w, q.written, q.synced
	q.mu.Unlock()
	if end > synced {
		if err := q.syncFile(old); err != nil {
			err = fmt.Errorf("queue: %w", err)
			q.mu.Lock()
			q.failSyncLocked(end, err)
			q.mu.Unlock()
			return err
		}
	}
	f, magic, err := q.createSegment(end)
	if err != nil {
		q.mu.Lock()
		q.appendErr = err
		q.stats.WriteErrors++
		q.mu.Unlock()
		return err
	}
	q.mu.Lock()
	if end > synced {
		q.stats.Syncs++
	}
	q.segs = append(q.segs, segment{first: end, size: segHeaderLen, magic: magic})
	q.w = f
	q.written = end + segHeaderLen
	q.synced = q.written
	q.diskBytes += segHeaderLen
	q.poisoned, q.appendErr = false, nil
	victims := q.consumedLocked()
	q.mu.Unlock()
	old.Close()
	q.removeSegments(victims)
	q.wake() // the old segment's callbacks are due
	return nil
}

// failSyncLocked records that data up to end may not be durable.
func (q *Queue) failSyncLocked(end int64, err error) {
	q.failedTo = max(q.failedTo, end)
	q.syncErr, q.appendErr = err, err
	q.poisoned = true
	q.stats.SyncErrors++
}

func (q *Queue) wake() {
	select {
	case q.kick <- struct{}{}:
	default:
	}
}

// ProbeInterval is how often an idle Run tries the disk after a failed
// append.
const ProbeInterval = time.Second

func (q *Queue) appendFailing() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.appendErr != nil && !q.closed
}

// probe starts a new segment, as the next append would, unless an append is
// in progress (which finds out by itself): on success the append error is
// cleared.
func (q *Queue) probe() {
	select {
	case q.appendSem <- struct{}{}:
	default:
		return
	}
	defer func() { <-q.appendSem }()
	if q.appendFailing() {
		q.roll()
	}
}

// poke tells an idle Run that there is something to sync or persist.
func (q *Queue) poke() {
	select {
	case q.busy <- struct{}{}:
	default:
	}
}

// idle reports whether a group commit would have nothing to do: everything
// appended is synced, every callback fired and the head persisted.
func (q *Queue) idle() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.written <= q.synced && len(q.cbs) == 0 && (q.w == nil || q.head == q.saved)
}

// Next returns the next record after the read cursor and advances the
// cursor past it, blocking until one is appended, ctx ends (ctx.Err()) or the
// queue is closed (ErrClosed). The payload is a new slice owned by the
// caller; end is the position to pass to Commit once its contents are
// delivered. Reading does not consume: after a restart the queue is replayed
// from the last committed position. Next returns records appended but not yet
// fsynced. Corrupt records are skipped and counted in Stats.
func (q *Queue) Next(ctx context.Context) (payload []byte, end int64, err error) {
	return q.next(ctx, true)
}

// errEmpty is returned by next when it is told not to wait.
var errEmpty = errors.New("queue: empty")

func (q *Queue) next(ctx context.Context, wait bool) ([]byte, int64, error) {
	select {
	case q.readSem <- struct{}{}:
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	case <-q.done:
		return nil, 0, ErrClosed
	}
	defer func() { <-q.readSem }()
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return nil, 0, ErrClosed
		}
		s, p, ok := q.locateLocked(q.cursor)
		if !ok {
			ch := q.data
			q.dataWait = true
			lastFirst := q.segs[len(q.segs)-1].first
			q.mu.Unlock()
			if q.rf != nil && q.rfFirst != lastFirst {
				// Do not hold on to a segment Commit may delete.
				q.rf.Close()
				q.rf = nil
			}
			if !wait {
				return nil, 0, errEmpty
			}
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, 0, ctx.Err()
			case <-q.done:
				return nil, 0, ErrClosed
			}
		}
		q.mu.Unlock()

		payload, start, stop, found, err := q.readAt(s, p)
		if err != nil {
			return nil, 0, err
		}
		q.mu.Lock()
		if start > p {
			q.stats.CorruptRecords++
			q.stats.CorruptBytes += start - p
		}
		q.cursor = stop
		q.mu.Unlock()
		if found {
			return payload, stop, nil
		}
	}
}

// readAt reads the first valid record at or after p in segment s.
func (q *Queue) readAt(s segment, p int64) (payload []byte, start, stop int64, found bool, err error) {
	if s.magic == 0 {
		return nil, s.end(), s.end(), false, nil
	}
	if q.rf == nil || q.rfFirst != s.first {
		if q.rf != nil {
			q.rf.Close()
			q.rf = nil
		}
		f, err := datadir.Open(q.path(s.first))
		if errors.Is(err, fs.ErrNotExist) {
			// Deleted behind the queue's back: nothing to read in it.
			return nil, s.end(), s.end(), false, nil
		}
		if err != nil {
			return nil, p, p, false, fmt.Errorf("queue: %w", err)
		}
		q.rf, q.rfFirst = f, s.first
		q.rr = recordReader{r: f, base: s.first, magic: s.magic, maxRec: q.maxRead, chunk: q.rr.chunk}
	}
	payload, start, stop, found, err = q.rr.next(p, s.end(), nil)
	if err != nil {
		return nil, p, p, false, fmt.Errorf("queue: %w", err)
	}
	return payload, start, stop, found, nil
}

// locateLocked returns the segment holding the first unread byte at or after
// pos, skipping segment headers and gaps left by files moved aside, and the
// position of that byte. ok is false when everything has been read.
func (q *Queue) locateLocked(pos int64) (s segment, p int64, ok bool) {
	for _, s := range q.segs {
		if p := max(pos, s.data()); p < s.end() {
			return s, p, true
		}
	}
	return segment{}, pos, false
}

// unreadLocked counts the record bytes at or after pos.
func (q *Queue) unreadLocked(pos int64) int64 {
	var n int64
	for _, s := range q.segs {
		n += max(0, s.end()-max(pos, s.data()))
	}
	return n
}

// Commit marks every record up to end (a value returned by Next) consumed:
// after a restart the queue resumes there. Calls must come in order; an end
// at or before the last one is ignored, and an end beyond what Next returned
// is cut to it. Segments left fully consumed are deleted, which is what lets
// a blocked Append continue; Commit deletes them itself, one unlink each.
// The head is persisted by Run and Close, not here. Commit does not wait for
// the appender or the reader and is safe from any goroutine.
func (q *Queue) Commit(end int64) {
	q.mu.Lock()
	end = min(end, q.cursor)
	if end <= q.head {
		q.mu.Unlock()
		return
	}
	q.head = end
	victims := q.consumedLocked()
	q.mu.Unlock()
	q.removeSegments(victims)
	q.poke()
}

// consumedLocked takes the segments below the head out of the queue's
// accounting, wakes a waiting appender, and returns their paths to delete.
// The write segment always stays.
func (q *Queue) consumedLocked() []string {
	var victims []string
	keep := q.segs[:0]
	for i, s := range q.segs {
		if i < len(q.segs)-1 && (s.end() <= q.head || s.size <= segHeaderLen) {
			victims = append(victims, q.path(s.first))
			q.diskBytes -= s.size
			continue
		}
		keep = append(keep, s)
	}
	clear(q.segs[len(keep):])
	q.segs = keep
	if len(victims) > 0 && q.spaceWait {
		close(q.space)
		q.space, q.spaceWait = make(chan struct{}), false
	}
	return victims
}

// removeSegments deletes consumed segment files. Not syncing the directory
// is deliberate: a deleted segment that comes back after a crash lies below
// the head, or is replayed, which at-least-once allows.
func (q *Queue) removeSegments(paths []string) {
	for _, p := range paths {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			q.mu.Lock()
			q.stats.RemoveErrors++
			q.mu.Unlock()
		}
	}
}

// Bytes reports the record bytes appended and not yet committed.
func (q *Queue) Bytes() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.unreadLocked(q.head)
}

// Cursor is the position after the last record Next returned, as the end
// Next returned with it; at Open it is the committed head.
func (q *Queue) Cursor() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.cursor
}

// Empty reports whether the reader has reached the end of what was appended
// so far, so that Next would block. Records read may still await Commit.
func (q *Queue) Empty() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.unreadLocked(q.cursor) == 0
}

// Err reports the disk error that made the last append, fsync or head write
// fail, until an append (for a head write: a head write) succeeds again.
func (q *Queue) Err() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.appendErr != nil {
		return q.appendErr
	}
	return q.headErr
}

// Stats returns a snapshot of the queue's counters.
func (q *Queue) Stats() Stats {
	q.mu.Lock()
	defer q.mu.Unlock()
	st := q.stats
	st.MovedAside = append([]string(nil), q.stats.MovedAside...)
	st.Bytes = q.unreadLocked(q.head)
	st.DiskBytes = q.diskBytes
	st.Segments = len(q.segs)
	return st
}

// Run performs the group commits: every SyncInterval, or sooner when much
// has been appended, it fsyncs what was appended, calls the onDurable
// callbacks of the records now durable, and persists the committed head.
// While there is nothing to commit it sleeps until an Append or a Commit, so
// an unused queue costs no wake-ups; but while the last append failed it
// tries, every ProbeInterval, whether the disk takes a new segment, so Err
// clears when the disk recovers even if nothing is appended any more. It
// returns nil when ctx ends, after a last group commit, or when the queue is
// closed. Disk errors do not stop it; they reach the callbacks, Err and
// Stats. Run starts no goroutine; call it once.
func (q *Queue) Run(ctx context.Context) error {
	t := time.NewTimer(q.opts.SyncInterval)
	defer t.Stop()
	idle := false // nothing to commit: t runs only to probe after a failed append
	for {
		var busy <-chan struct{}
		if idle {
			busy = q.busy
		}
		select {
		case <-t.C:
			if idle {
				q.probe()
			}
		case <-busy:
			// Work came: commit it an interval from now, with what follows.
			idle = false
			t.Reset(q.opts.SyncInterval)
			continue
		case <-q.kick:
		case <-ctx.Done():
			q.flush()
			return nil
		case <-q.done:
			return nil
		}
		q.flush()
		idle = q.idle()
		switch {
		case !idle:
			t.Reset(q.opts.SyncInterval)
		case q.appendFailing():
			t.Reset(ProbeInterval)
		default:
			t.Stop()
		}
	}
}

// flush is one group commit. It returns the first error it met.
func (q *Queue) flush() error {
	q.flushMu.Lock()
	defer q.flushMu.Unlock()
	return q.flushLocked()
}

func (q *Queue) flushLocked() error {
	q.syncMu.Lock()
	q.mu.Lock()
	f, target, head := q.w, q.written, q.head
	need := f != nil && target > q.synced
	q.mu.Unlock()
	var err error
	if need {
		err = q.syncFile(f)
	}
	q.mu.Lock()
	if need {
		if err == nil {
			q.synced = max(q.synced, target)
			q.stats.Syncs++
		} else {
			err = fmt.Errorf("queue: %w", err)
			q.failSyncLocked(target, err)
		}
	}
	q.syncMu.Unlock()
	fire := q.takeDueLocked(q.fire[:0])
	persist := f != nil && head != q.saved
	q.mu.Unlock()

	for i := range fire {
		fire[i].fn(fire[i].err)
	}
	clear(fire)
	q.fire = fire[:0]

	if persist {
		herr := q.writeHead(head)
		q.mu.Lock()
		if herr == nil {
			q.saved = head
		} else {
			q.stats.HeadErrors++
		}
		q.headErr = herr
		q.mu.Unlock()
		if err == nil {
			err = herr
		}
	}
	return err
}

// takeDueLocked moves the callbacks whose outcome is known to dst.
func (q *Queue) takeDueLocked(dst []pending) []pending {
	n := 0
	for ; n < len(q.cbs); n++ {
		p := q.cbs[n]
		if p.end <= q.failedTo {
			p.err = q.syncErr
		} else if p.end > q.synced {
			break
		}
		dst = append(dst, p)
	}
	clear(q.cbs[:n])
	q.cbs = q.cbs[n:]
	if len(q.cbs) == 0 {
		q.cbs = q.cbs[:0:0]
	}
	return dst
}

// Close stops the queue: blocked and later calls return ErrClosed, a final
// group commit fsyncs what was appended and persists the head, the remaining
// onDurable callbacks are called on Close's goroutine, and the files are
// closed. It waits for an Append or Next in progress to return. Calling it
// again returns nil.
func (q *Queue) Close() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	q.closed = true
	close(q.done)
	q.mu.Unlock()
	q.appendSem <- struct{}{}
	q.readSem <- struct{}{}

	q.flushMu.Lock()
	defer q.flushMu.Unlock()
	err := q.flushLocked()
	q.mu.Lock()
	w := q.w
	q.w = nil
	q.mu.Unlock()
	if cerr := w.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("queue: %w", cerr)
	}
	if q.rf != nil {
		q.rf.Close()
		q.rf = nil
	}
	return err
}
