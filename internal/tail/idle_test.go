package tail

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"
)

// held is the memory a LineReader keeps in its buffers between calls.
func (r *LineReader) heldBytes() int {
	return cap(r.buf) + cap(r.out) + r.long.Cap() + cap(r.ent.Bytes)
}

// TestIdleLineReaderHoldsNoLargeBuffer: a reader waiting at the end of its
// file keeps only a small buffer, whatever it needed before (a long line,
// a truncated one, a big multiline entry): a host may follow thousands of
// files that are mostly idle. It reads on as before once lines come.
func TestIdleLineReaderHoldsNoLargeBuffer(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts LineOptions
	}{
		{"lines", LineOptions{MaxLine: 200 << 10}},
		{"multiline", LineOptions{MaxLine: 200 << 10, Start: regexp.MustCompile(`^\S`), MaxBytes: 1 << 20, MaxWait: time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLog(t)
			l.write(100)
			appendFile(t, l.path, strings.Repeat("x", 300<<10)+"\n") // cut at MaxLine
			appendFile(t, l.path, strings.Repeat(" y\n", 50<<10))    // continuation lines
			f, err := Open(l.path, Position{}, fast)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			r, err := NewLineReader(f, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			ctx := t.Context()
			n := 0
			for {
				// A deadline well past the time the joining of the last
				// entry takes, even under -race: ErrIdle then means
				// everything was read and handed out.
				_, err := r.NextBefore(ctx, time.Now().Add(time.Second))
				if errors.Is(err, ErrIdle) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				n++
			}
			if n == 0 {
				t.Fatal("nothing read")
			}
			if h := r.heldBytes(); h > idleBufSize {
				t.Errorf("idle reader holds %d bytes of buffers, want at most %d", h, idleBufSize)
			}
			appendFile(t, l.path, "after 1\nafter 2\n")
			got := []string{}
			for len(got) < 2 {
				ln, err := r.NextBefore(ctx, time.Now().Add(10*time.Second))
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, string(ln.Bytes))
			}
			if got[0] != "after 1" || got[1] != "after 2" {
				t.Fatalf("after the idle wait: %.40q... (%d bytes), %.40q...", got[0], len(got[0]), got[1])
			}
		})
	}
}
