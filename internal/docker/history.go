package docker

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The Docker source keeps, beside each container's position, one position of
// its own: the history mark, how far its knowledge of the daemon's
// containers reaches. Every container created before the mark was known to
// the run that saved it, and so has a position of its own unless it was
// filtered out. It is the time of the newest container event handled, or
// the time a container list was asked for, whichever is later: events come
// in order, so every container whose create event came before the mark was
// seen, and a list shows every container registered when it is made.
//
// At the next start the mark divides containers without a position in two:
// those created before it (less historyMargin) existed while wharf watched
// and were left out on purpose, and are read by start_at like containers of
// a first run; those created after it ran while wharf was not watching (an
// upgrade, a restart, a crash) and are read from their first line, even
// when they have exited since. The events replayed from the mark tell of the
// containers that ran in that window and were removed before wharf came back
// (docker run --rm): their logs are gone, and each is counted and logged.
//
// The mark is saved in the positions file under historyKey, in the same
// file and write as the containers' positions, so a mark on disk never runs
// ahead of the positions saved with it. A file written by a wharf that kept
// no mark is taken to end at its modification time (the last save of that
// run); a file with no Docker positions at all, or none, is a first run.
const historyKey = "docker"

// historyMargin is how much earlier than the mark a container must have
// been created to count as known. Docker stamps a container's Created time
// when it starts creating it, and registers it (so lists show it) and sends
// its create event only once its filesystem layer is made, which can take
// seconds on a busy disk; the margin covers that and any skew between
// wharf's clock and a remote daemon's. A container created inside the margin
// that the last run did see has a position, which wins; one it did not see
// is read from its first line, which loses nothing.
const historyMargin = time.Minute

// formatHistory encodes a mark for the positions file: "e1 <unix ns>".
func formatHistory(t int64) string { return "e1 " + strconv.FormatInt(t, 10) }

// parseHistory decodes what formatHistory wrote.
func parseHistory(s string) (int64, error) {
	f := strings.Fields(s)
	if len(f) != 2 || f[0] != "e1" {
		return 0, fmt.Errorf("docker: history mark %q: want \"e1 <unix ns>\"", s)
	}
	t, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil || t <= 0 {
		return 0, fmt.Errorf("docker: history mark %q: bad time", s)
	}
	return t, nil
}

// loadHistory returns the mark the positions carry, 0 when wharf has no
// history of this daemon (no positions, or none of Docker's).
func (s *Source) loadHistory() int64 {
	st := s.deps.Positions
	if st == nil {
		return 0
	}
	if v, ok := st.Get(historyKey); ok {
		t, err := parseHistory(v)
		if err == nil {
			return t
		}
		s.deps.Logger.Warn("ignoring an unreadable history mark in the positions; taking the file's modification time", "mark", v, "error", err)
	}
	if len(st.Keys(positionPrefix)) == 0 || st.ModTime().IsZero() {
		return 0
	}
	s.deps.Logger.Info("the positions carry no history mark (written by an older wharf); containers created since the file was last written are read from their first line", "written", st.ModTime().UTC())
	return st.ModTime().UnixNano()
}

// inGap reports whether a container found at startup was created after the
// history mark, while wharf was not watching.
func (s *Source) inGap(c Container) bool {
	if s.history == 0 {
		return false
	}
	if s.clockBehind {
		// Created times and the mark come from clocks that disagree: take
		// every container wharf has no position of as new, which at worst
		// reads one that a filter left out before from its first line.
		return true
	}
	if c.Created.IsZero() {
		return false
	}
	// The list gives whole seconds: compare in seconds, rounding the
	// container's time down, which can only count it in.
	return c.Created.Unix() >= (s.history-int64(historyMargin))/int64(time.Second)
}

// advance moves the history mark to t (Unix ns) if that is later, once
// everything seen up to t has been recorded. Only Run's goroutine calls it.
func (s *Source) advance(t int64) {
	if t <= s.mark || s.deps.Positions == nil {
		return
	}
	s.mark = t
	s.deps.Positions.Set(historyKey, formatHistory(t))
}
