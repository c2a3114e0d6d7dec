package seq

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// maxTracked bounds the sequence numbers a Checker tracks, so a corrupted
// line claiming seq=10^18 cannot make it allocate without bound.
const maxTracked = 1 << 27

// Range is an inclusive run of sequence numbers.
type Range struct {
	First, Last int64
}

func (r Range) String() string {
	if r.First == r.Last {
		return fmt.Sprint(r.First)
	}
	return fmt.Sprintf("%d-%d", r.First, r.Last)
}

// Report is what one container's received lines look like against the
// sequence loggen wrote.
type Report struct {
	// Container is the key the lines were added under.
	Container string
	// Want is the number of lines loggen wrote (seq 1..Want); 0 means
	// unknown, in which case the highest received seq stands in for it.
	Want int64
	// Lines counts the parsed lines received, duplicates included.
	Lines int64
	// Unparsed counts lines that were not loggen lines (or were cut inside
	// their header), and Examples holds the first few of them.
	Unparsed int64
	Examples []string
	// Missing lists the sequence numbers never received.
	Missing []Range
	// Duplicated lists each sequence number received more than once.
	Duplicated []int64
	// OutOfOrder lists sequence numbers first received after a higher one of
	// the same stream. Order is judged per stream because Docker captures
	// stdout and stderr through separate pipes, so the two legitimately
	// interleave differently from the order loggen wrote them.
	OutOfOrder []int64
	// Unexpected counts lines whose seq is above Want.
	Unexpected int64
}

// OK reports whether every line from 1 to Want arrived exactly once, in
// order within its stream, with nothing else mixed in.
func (r Report) OK() bool {
	return r.Unparsed == 0 && len(r.Missing) == 0 && len(r.Duplicated) == 0 &&
		len(r.OutOfOrder) == 0 && r.Unexpected == 0
}

// MissingCount returns the number of sequence numbers in r.Missing.
func (r Report) MissingCount() int64 {
	var n int64
	for _, m := range r.Missing {
		n += m.Last - m.First + 1
	}
	return n
}

// String summarises r on one line, listing at most a few numbers of each kind.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d lines for want %d", r.Container, r.Lines, r.Want)
	if n := r.MissingCount(); n > 0 {
		fmt.Fprintf(&b, "; %d missing: %s", n, list(r.Missing))
	}
	if len(r.Duplicated) > 0 {
		fmt.Fprintf(&b, "; %d duplicated: %s", len(r.Duplicated), list(r.Duplicated))
	}
	if len(r.OutOfOrder) > 0 {
		fmt.Fprintf(&b, "; %d out of order: %s", len(r.OutOfOrder), list(r.OutOfOrder))
	}
	if r.Unexpected > 0 {
		fmt.Fprintf(&b, "; %d above want", r.Unexpected)
	}
	if r.Unparsed > 0 {
		fmt.Fprintf(&b, "; %d unparsed, e.g. %q", r.Unparsed, r.Examples)
	}
	return b.String()
}

func list[T any](s []T) string {
	const show = 10
	parts := make([]string, 0, show+1)
	for i, v := range s {
		if i == show {
			parts = append(parts, "...")
			break
		}
		parts = append(parts, fmt.Sprint(v))
	}
	return strings.Join(parts, ",")
}

// Checker accumulates the lines received per container and reports gaps,
// duplicates and reordering. It is safe for concurrent use; its memory is one
// byte per sequence number plus the anomalies found.
type Checker struct {
	mu    sync.Mutex
	byKey map[string]*tally
}

type tally struct {
	counts     []uint8 // counts[seq-1], saturating at 255
	maxSeq     int64
	last       [2]int64 // highest seq seen per stream: out, err
	lines      int64
	unparsed   int64
	examples   []string
	outOfOrder []int64
}

// NewChecker returns an empty Checker.
func NewChecker() *Checker {
	return &Checker{byKey: make(map[string]*tally)}
}

// Add records one received line (with or without its newline) under
// container and reports whether it parsed as a loggen line.
func (c *Checker) Add(container, line string) bool {
	n, stream, _, ok := ParseLine(line)
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.byKey[container]
	if t == nil {
		t = &tally{}
		c.byKey[container] = t
	}
	if !ok || n < 1 || n > maxTracked {
		t.unparsed++
		if len(t.examples) < 3 {
			ex := line
			if len(ex) > 80 {
				ex = ex[:80] + "..."
			}
			t.examples = append(t.examples, ex)
		}
		return false
	}
	t.lines++
	if int64(len(t.counts)) < n {
		t.counts = slices.Grow(t.counts, int(n)-len(t.counts))[:n]
	}
	first := t.counts[n-1] == 0
	if t.counts[n-1] < 255 {
		t.counts[n-1]++
	}
	s := 0
	if stream == StreamErr {
		s = 1
	}
	if first && n < t.last[s] {
		t.outOfOrder = append(t.outOfOrder, n)
	}
	t.last[s] = max(t.last[s], n)
	t.maxSeq = max(t.maxSeq, n)
	return true
}

// Containers returns the keys lines were added under, sorted.
func (c *Checker) Containers() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	keys := make([]string, 0, len(c.byKey))
	for k := range c.byKey {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Report checks the lines received for container against a loggen run that
// wrote want lines (0 if unknown).
func (c *Checker) Report(container string, want int64) Report {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := Report{Container: container, Want: want}
	t := c.byKey[container]
	if t == nil {
		if want > 0 {
			r.Missing = []Range{{1, want}}
		}
		return r
	}
	if want == 0 {
		want = t.maxSeq
	}
	r.Lines, r.Unparsed = t.lines, t.unparsed
	r.Examples = slices.Clone(t.examples)
	r.OutOfOrder = slices.Clone(t.outOfOrder)
	for i := int64(0); i < want; i++ {
		var n uint8
		if i < int64(len(t.counts)) {
			n = t.counts[i]
		}
		seq := i + 1
		switch {
		case n == 0:
			if k := len(r.Missing); k > 0 && r.Missing[k-1].Last == seq-1 {
				r.Missing[k-1].Last = seq
			} else {
				r.Missing = append(r.Missing, Range{seq, seq})
			}
		case n > 1:
			r.Duplicated = append(r.Duplicated, seq)
		}
	}
	for i := want; i < int64(len(t.counts)); i++ {
		r.Unexpected += int64(t.counts[i])
	}
	return r
}

// Verify checks every container of want (container -> lines written, 0 if
// unknown) and also fails for lines received under any other key. It
// returns nil when everything arrived exactly once and in order, or an error
// with one line per faulty container.
func (c *Checker) Verify(want map[string]int64) error {
	var errs []error
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if r := c.Report(k, want[k]); !r.OK() {
			errs = append(errs, errors.New("seq: "+r.String()))
		}
	}
	for _, k := range c.Containers() {
		if _, ok := want[k]; !ok {
			errs = append(errs, fmt.Errorf("seq: lines received for unexpected container %s", k))
		}
	}
	return errors.Join(errs...)
}

// CheckLines is a shortcut for checking the lines of a single container.
func CheckLines(container string, lines []string, want int64) Report {
	c := NewChecker()
	for _, l := range lines {
		c.Add(container, l)
	}
	return c.Report(container, want)
}
