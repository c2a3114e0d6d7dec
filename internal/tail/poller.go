package tail

import (
	"context"
	"os"
	"sync"
	"time"
)

// Poller looks at the live files of many Followers from one goroutine.
//
// A Follower given a Poller (Options.Poller) that finds nothing new at the
// end of its live file hands its next looks to the Poller and sleeps: the
// Poller makes them, on the Follower's own schedule (its poll interval,
// doubling up to PollMax), with an fstat, and wakes the Follower only when
// the file's size or modification time changed, or when a look at its path
// (made at most every quietLookInterval) no longer finds it there. A host's
// many quiet logs then cost one goroutine waking a few times a second, not
// one per log: the fstats stay, the scheduling of a goroutine per look goes.
//
// Run owns the Poller's goroutine; a Follower whose Poller is not running
// (before Run, after it returned) makes its looks itself. A Poller is safe
// for concurrent use.
type Poller struct {
	tick time.Duration

	mu      sync.Mutex
	running bool
	waiting map[*pollWait]struct{}
	wakes   uint64 // Followers woken, in all
}

// pollWait is a Follower's registration with a Poller. The Follower fills
// it in, then leaves its file to the Poller until it is woken or withdraws.
type pollWait struct {
	f         *os.File // the live file
	path      string
	dev, ino  uint64
	size, mod int64 // what the Follower last saw
	next      time.Time
	interval  time.Duration // between looks, doubling up to max
	max       time.Duration
	lookAt    time.Time     // when to look at the path next
	wake      chan struct{} // capacity 1
}

// NewPoller returns a Poller that looks at its Followers' files every tick
// (their own intervals rounded up to it); 50 ms when tick is 0.
func NewPoller(tick time.Duration) *Poller {
	if tick <= 0 {
		tick = 50 * time.Millisecond
	}
	return &Poller{tick: tick, waiting: map[*pollWait]struct{}{}}
}

// Run makes the looks until ctx ends, then wakes every Follower waiting on
// it, which go on looking by themselves.
func (p *Poller) Run(ctx context.Context) {
	p.mu.Lock()
	p.running = true
	p.mu.Unlock()
	t := time.NewTicker(p.tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			p.mu.Lock()
			p.running = false
			for w := range p.waiting {
				p.wakeLocked(w)
			}
			p.mu.Unlock()
			return
		case now := <-t.C:
			p.look(now)
		}
	}
}

// look looks at the files whose look is due. It holds the lock throughout,
// so a Follower cannot withdraw (and then close its file) during a look.
func (p *Poller) look(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for w := range p.waiting {
		if now.Before(w.next) {
			continue
		}
		size, mod, err := fstat(w.f)
		if err != nil || size != w.size || mod != w.mod {
			p.wakeLocked(w)
			continue
		}
		if !now.Before(w.lookAt) {
			st, err := os.Stat(w.path)
			if err != nil {
				p.wakeLocked(w)
				continue
			}
			if dev, ino := fileIdentity(st); dev != w.dev || ino != w.ino {
				p.wakeLocked(w)
				continue
			}
			w.lookAt = now.Add(quietLookInterval)
		}
		w.next = now.Add(w.interval)
		w.interval = min(2*w.interval, w.max)
	}
}

func (p *Poller) wakeLocked(w *pollWait) {
	p.wakes++
	delete(p.waiting, w)
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// add registers w, unless the Poller is not running.
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
	p.waiting[w] = struct{}{}
	return true
}

// remove withdraws w; once it returns, the Poller no longer uses w's file.
func (p *Poller) remove(w *pollWait) {
	p.mu.Lock()
	delete(p.waiting, w)
	p.mu.Unlock()
}

// Waiting returns the number of Followers waiting on the Poller.
func (p *Poller) Waiting() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.waiting)
}
