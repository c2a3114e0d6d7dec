package docker

import (
	"context"
	"runtime"

	"github.com/wharf-logs/wharf/internal/dockerlog"
	"github.com/wharf-logs/wharf/internal/entry"
	"github.com/wharf-logs/wharf/internal/source"
	"github.com/wharf-logs/wharf/internal/tail"
)

// Metrics labels of the two ways of reading a container's log.
const (
	sourceAPI  = "docker_api"
	sourceFile = "docker_file"
)

// Line arenas: lines are appended to a shared buffer that is never reused,
// so the pipeline can own them; a fresh one is started when less than an
// eighth of it is left. The first arena after a quiet spell is arenaMin, and
// each one filled before the reader next runs out of lines is twice as
// large, up to arenaMax: a reader catching up packs its lines into few
// allocations, and one that gets a line now and then holds a few KiB.
const (
	arenaMin = 4 << 10
	arenaMax = 256 << 10
)

// batcher turns the lines one reader reads into entries: it skips what a
// reopened log replays, keeps the container's position, and hands entries to
// the pipeline in chunks, each with an Ack from the positions tracker so
// the position is saved once they are confirmed. It belongs to the reader's
// goroutine.
type batcher struct {
	s      *Source
	w      *watched
	ctx    context.Context
	source string

	// replaying: per stream, the log was reopened by time and lines up to
	// the position come again; skip until the first line past it. Skipping
	// stops there for good, so a clock that steps back later cannot hide
	// new lines.
	replaying [2]bool
	seen      [2]int

	batch *source.Batch
	arena []byte
	// arenaSize is the size of the next arena; busy reports that the
	// current one was started since the reader last ran out of lines.
	arenaSize int
	busy      bool
}

func (s *Source) newBatcher(ctx context.Context, w *watched, label string, byTime bool) *batcher {
	return &batcher{s: s, w: w, ctx: ctx, source: label, replaying: [2]bool{byTime, byTime},
		batch:     source.NewBatch(s.deps.Out, s.deps.SourceMetrics, label),
		arenaSize: arenaMin,
	}
}

// room makes sure the arena has room for a line of ordinary length; a
// longer one makes the reader grow it.
func (b *batcher) room() {
	if cap(b.arena)-len(b.arena) >= b.arenaSize/8 {
		return
	}
	if b.busy {
		b.arenaSize = min(2*b.arenaSize, arenaMax)
	}
	b.arena = make([]byte, 0, b.arenaSize)
	b.busy = true
}

// idle is told that the reader ran out of lines and is about to wait: it
// lets go of an arena with much room left (its lines stay valid for the
// pipeline, which frees them once delivered), so that a quiet reader holds
// a few KiB (the batch holds no slice between hand-offs).
func (b *batcher) idle() {
	b.busy = false
	if cap(b.arena)-len(b.arena) > arenaMin {
		b.arena = nil
		b.arenaSize = arenaMin
	}
}

// add takes one line, as either reader returns it (its Text must not change
// afterwards). file, when set, is the follower's position in the line's
// json-file with its Offset at l.Pos.Resume: the container's position then
// records it, with l.Pos, to resume from.
func (b *batcher) add(l dockerlog.Line, file *tail.Position) error {
	k := 0
	if l.Stream == dockerlog.Stderr {
		k = 1
	}
	t := l.Time
	w := b.w
	p := &w.pos.streams[k]
	if t == 0 {
		// No valid timestamp: keep the line, in its place.
		t = max(p.time, b.s.deps.Now().UnixNano())
	}
	if b.replaying[k] {
		if t < p.time || (t == p.time && b.seen[k] < p.count) {
			if t == p.time {
				// Past the last line read, by order: whatever follows is
				// new, even with an earlier time (the clock stepped back).
				b.seen[k]++
				b.replaying[k] = b.seen[k] < p.count
			}
			if file != nil {
				w.pos.hasFile, w.pos.file = true, filePos{tail: *file, line: l.Pos}
			}
			return nil
		}
		b.replaying[k] = false
	}
	if t == p.time {
		p.count++
	} else {
		*p = streamPos{time: t, count: 1}
	}
	if file != nil {
		w.pos.hasFile, w.pos.file = true, filePos{tail: *file, line: l.Pos}
	} else {
		w.pos.hasFile = false
	}
	if b.batch.Add(entry.Entry{Time: t, Line: l.Text, Stream: w.streams.Load()[k]}, l.Truncated) {
		return b.flush()
	}
	return nil
}

// flush hands the batch to the pipeline, with an Ack that saves the
// position reached once every entry is confirmed.
func (b *batcher) flush() error {
	if b.batch.Len() == 0 {
		if b.w.tracker != nil && b.w.pos.String() != b.w.savedPos {
			// Skipped lines moved the position: record it without entries.
			ack := b.w.tracker.Mark(b.w.pos.String())
			ack.Done(1)
		}
		return nil
	}
	var ack *entry.Ack
	if b.w.tracker != nil {
		pos := b.w.pos.String()
		b.w.savedPos = pos
		ack = b.w.tracker.Mark(pos)
	}
	err := b.batch.HandOff(b.ctx, ack)
	// A reader catching up never blocks on its file, so on a single P it
	// would hold it for a whole time slice (10 ms) while a sender that Loki
	// has just answered waits to send its next batch. Yielding after each
	// hand-off keeps the senders busy.
	runtime.Gosched()
	return err
}
