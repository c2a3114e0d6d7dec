// Package ratelog limits how often a repeating warning is logged, so a sink
// outage or a flood of bad lines cannot flood wharf's own log. Suppressed
// occurrences are counted and reported with the next message that gets
// through.
package ratelog

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Limiter logs at most one message per key per interval. The zero value is
// not usable; use New. A Limiter is safe for concurrent use. Keys may name
// things that come and go (a container, a file): a key not logged for an
// interval is forgotten, so the keys held are those of the last interval.
type Limiter struct {
	log      *slog.Logger
	interval time.Duration
	now      func() time.Time

	mu      sync.Mutex
	keys    map[string]*state
	sweepAt int // forget idle keys when this many are held
}

// minSweep is the fewest keys held before idle ones are forgotten.
const minSweep = 64

type state struct {
	last       time.Time
	suppressed int
}

// New returns a Limiter writing to log at most once per interval per key.
func New(log *slog.Logger, interval time.Duration) *Limiter {
	return &Limiter{log: log, interval: interval, now: time.Now, keys: map[string]*state{}, sweepAt: minSweep}
}

// Log logs msg at level unless a message with the same key was logged less
// than the interval ago. When earlier messages were suppressed, their number
// is added as the "suppressed" attribute.
func (l *Limiter) Log(level slog.Level, key, msg string, args ...any) {
	if !l.log.Enabled(context.Background(), level) {
		return
	}
	now := l.now()
	l.mu.Lock()
	s := l.keys[key]
	if s == nil {
		if len(l.keys) >= l.sweepAt {
			l.sweepLocked(now)
		}
		s = &state{}
		l.keys[key] = s
	}
	if !s.last.IsZero() && now.Sub(s.last) < l.interval {
		s.suppressed++
		l.mu.Unlock()
		return
	}
	n := s.suppressed
	s.last, s.suppressed = now, 0
	l.mu.Unlock()
	if n > 0 {
		args = append(args, slog.Int("suppressed", n))
	}
	l.log.Log(context.Background(), level, msg, args...)
}

// Warn is Log at warning level.
func (l *Limiter) Warn(key, msg string, args ...any) { l.Log(slog.LevelWarn, key, msg, args...) }

// sweepLocked forgets the keys not logged for an interval: logging one again
// would go through anyway, and only the count of its suppressed messages,
// which no later message of it may ever report, is lost. Sweeping again only
// once the keys have doubled keeps the cost per Log constant.
func (l *Limiter) sweepLocked(now time.Time) {
	for k, s := range l.keys {
		if now.Sub(s.last) >= l.interval {
			delete(l.keys, k)
		}
	}
	l.sweepAt = max(minSweep, 2*len(l.keys))
}
