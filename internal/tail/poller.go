package tail

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"
)

// Poller looks at the live files of many Followers from one goroutine.
//
// A Follower given a Poller (Options.Poller) that finds nothing new at the
// end of its live file hands its file to the Poller and sleeps until the
// Poller finds a change: data written, or the file no longer at its path.
//
// On Linux the Poller watches each such file with inotify (one watch per
// file, kept while the Follower reads it) and reads the events once per
// tick, so a host's many quiet logs cost one goroutine reading one
// descriptor a few times a second: a Follower is woken when its file is
// written to, renamed or unlinked, within a tick. A file the kernel will
// not watch (out of inotify watches, no /proc) is polled instead, on the
// Follower's schedule (its poll interval, doubling up to PollMax), with an
// fstat, and a look at its path at most every quietLookInterval. Watched
// files are still polled, every watchedLookInterval, in case an event was
// lost.
//
// Run owns the Poller's goroutine and its inotify descriptor; a Follower
// whose Poller is not running (before Run, after it returned) makes its
// looks itself. A Poller is safe for concurrent use.
type Poller struct {
	// Unwatched, if set before Run, is called the first time a file
	// cannot be watched (no inotify instance, no watch left) and is polled
	// instead, with the reason. It is called with the Poller's lock held,
	// on any goroutine: it may log, not call the Poller.
	Unwatched func(err error)

	tick time.Duration

	mu      sync.Mutex
	running bool
	notify  *notifier // nil when not running or inotify is unavailable
	waiting map[*pollWait]struct{}
	// polled holds the waiting Followers whose files are looked at on
	// their own schedule: not watched, or watched since too short a time
	// to have seen every change. The others are looked at in a sweep
	// every watchedLookInterval.
	polled  map[*pollWait]struct{}
	sweepAt time.Time
	watched map[int32]*pollWait // by inotify watch id
	wakes   uint64              // Followers woken, in all
	told    bool                // Unwatched was called
}

// Kinds of event a notifier reports.
const (
	notifyWritten = 1 << iota // data written, or the file truncated
	notifyMoved               // renamed, unlinked or deleted: look at the path
	notifyGone                // the watch ended; the file needs a new one
)

// watchedLookInterval is how often a file watched with inotify is polled
// all the same, and its path looked at: a safety net, not the way changes
// are found.
const watchedLookInterval = 10 * time.Second

// pollWait is a Follower's registration with a Poller. The Follower fills
// in its first part, then leaves its file to the Poller until it is woken
// or withdraws; the rest is the Poller's, under its lock.
type pollWait struct {
	f         *os.File // the live file
	path      string
	opts      *Options // the Follower's: how its path is looked at
	dev, ino  uint64
	size, mod int64 // what the Follower last saw
	offset    int64 // where it is: the end of what it read
	next      time.Time
	interval  time.Duration // between looks, doubling up to max
	max       time.Duration
	lookAt    time.Time // when to look at the path next
	// lookPending: the Follower was told to look at the path (lookNow)
	// and has not yet.
	lookPending bool
	wake        chan struct{} // capacity 1

	// The Poller's: the inotify watch on watchedFile (wd 0: none), and
	// what its events said while the Follower was not waiting.
	wd          int32
	watchedFile *os.File
	written     bool
	moved       bool
	// lookNow, set before a wake, tells the Follower the file may no
	// longer be at its path: it looks at once. wokenByWrite tells it an
	// event said the file was written to.
	lookNow      bool
	wokenByWrite bool
}

// NewPoller returns a Poller that reads its file events and makes its looks
// every tick (the Followers' own intervals rounded up to it); when tick is
// 0, DefaultPollMin (100 ms): a file written without pause then wakes its
// Follower as often as the Follower would poll it, and the lines written
// in between are read in one go.
func NewPoller(tick time.Duration) *Poller {
	if tick <= 0 {
		tick = DefaultPollMin
	}
	return &Poller{tick: tick, waiting: map[*pollWait]struct{}{}, polled: map[*pollWait]struct{}{}, watched: map[int32]*pollWait{}}
}

// Run makes the looks until ctx ends, then wakes every Follower waiting on
// it, which go on looking by themselves.
func (p *Poller) Run(ctx context.Context) {
	n, err := newNotifier() // without it, every file is polled
	p.mu.Lock()
	p.running, p.notify = true, n
	if err != nil {
		p.tellLocked(err)
	}
	p.mu.Unlock()
	t := time.NewTicker(p.tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			p.mu.Lock()
			p.running = false
			p.dropNotifyLocked()
			p.mu.Unlock()
			return
		case now := <-t.C:
			p.look(now)
		}
	}
}

// look reads the file events, then looks at the files whose look is due.
// It holds the lock throughout, so a Follower cannot withdraw (and then
// close its file) during a look.
func (p *Poller) look(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.notify != nil {
		overflow, err := p.notify.read(p.eventLocked)
		switch {
		case err != nil:
			// The descriptor failed: poll every file from now on.
			p.tellLocked(err)
			p.dropNotifyLocked()
		case overflow:
			// Events were lost: any file may have changed.
			for w := range p.waiting {
				w.lookNow = true
				p.wakeLocked(w)
			}
		}
	}
	set := p.polled
	if !now.Before(p.sweepAt) {
		set, p.sweepAt = p.waiting, now.Add(watchedLookInterval)
	}
	for w := range set {
		_, scheduled := p.polled[w]
		if scheduled && now.Before(w.next) {
			continue
		}
		p.lookLocked(w, now)
	}
}

// lookLocked looks at w's file: an fstat, and the path when its look is
// due. It wakes w at a change; otherwise it schedules the next look, or
// leaves a watched file to the events and the sweeps.
func (p *Poller) lookLocked(w *pollWait, now time.Time) {
	size, mod, err := fstat(w.f)
	changed := size != w.size || mod != w.mod
	if w.wd > 0 {
		// Watched: events tell of writes; this look, a safety net, wakes
		// the Follower only for data it has not read.
		changed = size != w.offset
	}
	if err != nil || changed {
		p.wakeLocked(w)
		return
	}
	if !now.Before(w.lookAt) || w.wd > 0 {
		st, err := w.opts.statLog(w.path)
		if err != nil {
			w.lookNow = true
			p.wakeLocked(w)
			return
		}
		if dev, ino := fileIdentity(st); dev != w.dev || ino != w.ino {
			w.lookNow = true
			p.wakeLocked(w)
			return
		}
		w.lookAt = now.Add(quietLookInterval)
	}
	if w.wd > 0 {
		delete(p.polled, w)
		return
	}
	w.next = now.Add(w.interval)
	w.interval = min(2*w.interval, w.max)
}

// eventLocked takes one inotify event: it wakes the Follower of the file if
// it waits, and otherwise keeps what happened for its next wait.
func (p *Poller) eventLocked(wd int32, kind int) {
	w := p.watched[wd]
	if w == nil {
		return
	}
	if kind&notifyGone != 0 {
		delete(p.watched, wd)
		w.wd, w.watchedFile = 0, nil
	}
	w.written = w.written || kind&notifyWritten != 0
	w.moved = w.moved || kind&(notifyMoved|notifyGone) != 0
	if _, ok := p.waiting[w]; ok && (w.written || w.moved) {
		p.wakeLocked(w)
	}
}

func (p *Poller) wakeLocked(w *pollWait) {
	p.wakes++
	delete(p.waiting, w)
	delete(p.polled, w)
	w.lookNow = w.lookNow || w.moved
	w.wokenByWrite = w.written
	w.written, w.moved = false, false
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// add registers w, unless the Poller is not running. The first time w
// brings a file, the file is watched (if it can be). A file changed since
// w last waited wakes it at once.
func (p *Poller) add(w *pollWait) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.running {
		return false
	}
	select {
	case <-w.wake: // a wake-up left from an earlier wait
	default:
	}
	w.lookNow = false
	fresh := p.notify != nil && w.watchedFile != w.f
	if fresh {
		p.watchLocked(w)
	}
	p.waiting[w] = struct{}{}
	// A watched file needs no looks but the sweeps: its writes and renames
	// come as events, or came while w was away (w.written, w.moved). Looks
	// on w's schedule remain for a file not watched, one just watched
	// (the first look finds what was written before the watch), and one
	// whose rename w was told of but has not looked into (it read data
	// instead): that look is made at the next tick.
	if w.wd == 0 || fresh || w.lookPending {
		if w.lookPending {
			w.next = time.Time{}
		}
		p.polled[w] = struct{}{}
	}
	if w.written || w.moved {
		p.wakeLocked(w)
	}
	return true
}

// watchLocked watches w's file in place of the one it watched before. It
// is tried once per file: a kernel out of watches is not asked again at
// every wait, and the file is polled.
func (p *Poller) watchLocked(w *pollWait) {
	p.unwatchLocked(w)
	w.watchedFile = w.f
	wd, err := p.notify.watch(w.f)
	if err != nil {
		p.tellLocked(fmt.Errorf("watch %s: %w", w.path, err))
		return
	}
	w.wd = wd
	w.written, w.moved = false, false
	if other := p.watched[wd]; other != nil && other != w {
		// The same file followed twice: the kernel gives one watch. The
		// other Follower falls back to polling.
		other.wd = 0
		if _, ok := p.waiting[other]; ok {
			p.polled[other] = struct{}{}
		}
	}
	p.watched[wd] = w
}

// remove withdraws w; once it returns, the Poller no longer uses w's file.
// Its watch stays, for the Follower's next wait on the same file.
func (p *Poller) remove(w *pollWait) {
	p.mu.Lock()
	delete(p.waiting, w)
	delete(p.polled, w)
	p.mu.Unlock()
}

// forget withdraws w and ends its watch: its Follower is closing.
func (p *Poller) forget(w *pollWait) {
	p.mu.Lock()
	delete(p.waiting, w)
	delete(p.polled, w)
	p.unwatchLocked(w)
	p.mu.Unlock()
}

func (p *Poller) unwatchLocked(w *pollWait) {
	if w.wd == 0 {
		return
	}
	if p.watched[w.wd] == w {
		delete(p.watched, w.wd)
		if p.notify != nil {
			p.notify.unwatch(w.wd)
		}
	}
	w.wd, w.watchedFile = 0, nil
}

// dropNotifyLocked closes the inotify descriptor and forgets every watch.
// The waiting Followers are woken: those that wait again are polled.
func (p *Poller) dropNotifyLocked() {
	for w := range p.waiting {
		w.lookNow = true
		p.wakeLocked(w)
	}
	for wd, w := range p.watched {
		w.wd, w.watchedFile = 0, nil
		delete(p.watched, wd)
	}
	if p.notify != nil {
		p.notify.close()
		p.notify = nil
	}
}

// tellLocked calls Unwatched, once.
func (p *Poller) tellLocked(err error) {
	if p.Unwatched != nil && !p.told {
		p.told = true
		p.Unwatched(err)
	}
}

// Waiting returns the number of Followers waiting on the Poller.
func (p *Poller) Waiting() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.waiting)
}
