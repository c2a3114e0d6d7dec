package pipeline

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/wharf-logs/wharf/internal/entry"
	"github.com/wharf-logs/wharf/internal/entrytest"
	"github.com/wharf-logs/wharf/internal/sink"
)

// lockedBuffer is a log destination safe for the pipeline's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestMisconfiguredSinkKeepsTheBatch: while the receiver refuses the sink
// as misconfigured, the batch is kept unconfirmed and retried, the sink is
// down and reported misconfigured with the receiver's URL and status,
// nothing is dead-lettered, and an error is logged once a minute; when the
// receiver accepts, the batch is delivered and the sink is up again.
func TestMisconfiguredSinkKeepsTheBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		refused := &sink.MisconfiguredError{Err: errors.New("status 401: invalid token"), URL: "http://loki/push", Status: 401}
		var accepting atomic.Bool
		f.fail = func(int, *entry.Batch) error {
			if !accepting.Load() {
				return refused
			}
			return nil
		}
		var logs lockedBuffer
		dead := &fakeDead{}
		m := NewMetrics()
		p, _ := New([]Output{testOutput(f, 1<<20)}, Deps{Metrics: m, DeadLetter: dead, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		wait := run(t, p)
		a := entrytest.NewAck()
		if err := p.Submit(t.Context(), []entry.Entry{{Time: 1, Line: []byte("x"), Stream: streams(1)[0], Ack: a.Ack}}); err != nil {
			t.Fatal(err)
		}
		a.Done(1)
		time.Sleep(150 * time.Second)
		synctest.Wait()

		if a.Resolved() {
			t.Fatal("the batch was confirmed while the receiver refuses it")
		}
		if dead.entries != 0 || testutil.CollectAndCount(m.EntriesDropped) != 0 {
			t.Fatalf("dead-lettered %d entries, dropped series %d", dead.entries, testutil.CollectAndCount(m.EntriesDropped))
		}
		if up := testutil.ToFloat64(m.SinkUp.WithLabelValues("fake")); up != 0 {
			t.Fatalf("wharf_sink_up = %v", up)
		}
		failing := p.Failing()
		if len(failing) != 1 || failing[0].Sink != "fake" || failing[0].Misconfigured == nil ||
			failing[0].Misconfigured.URL != "http://loki/push" || failing[0].Misconfigured.Status != 401 {
			t.Fatalf("Failing() = %+v, want the sink misconfigured with its URL and status", failing)
		}
		if n := strings.Count(logs.String(), "level=ERROR msg=\"sink misconfigured"); n != 3 {
			t.Fatalf("%d error lines in 150 s, want one a minute (3):\n%s", n, logs.String())
		}
		if !strings.Contains(logs.String(), "url=http://loki/push status=401") {
			t.Fatalf("the log line does not name the URL and status:\n%s", logs.String())
		}

		accepting.Store(true)
		if err := wait(); err != nil {
			t.Fatal(err)
		}
		if !a.Resolved() || testutil.ToFloat64(m.EntriesSent.WithLabelValues("fake")) != 1 {
			t.Fatal("not delivered once the receiver accepts")
		}
		if len(p.Failing()) != 0 || testutil.ToFloat64(m.SinkUp.WithLabelValues("fake")) != 1 {
			t.Fatalf("still failing after delivery: %+v", p.Failing())
		}
	})
}

// TestTooLargeBatchIsSentInHalves: a batch the receiver refuses for its
// size is split in halves until each part gets through; an entry refused
// on its own is dead-lettered as too_large. Each stream's entries still
// arrive in order, each once.
func TestTooLargeBatchIsSentInHalves(t *testing.T) {
	const limit = 1000 // line bytes the receiver takes in one request
	f := newFake()
	f.fail = func(_ int, b *entry.Batch) error {
		if b.Bytes > limit {
			return &sink.TooLargeError{Err: errors.New("413 request entity too large")}
		}
		return nil
	}
	dead := &fakeDead{}
	m := NewMetrics()
	out := testOutput(f, 1<<20)
	out.BatchBytes = 64 << 10
	p, _ := New([]Output{out}, Deps{Metrics: m, DeadLetter: dead})
	wait := run(t, p)
	ss := streams(3)
	line := bytes.Repeat([]byte("x"), 50)
	a := entrytest.NewAck()
	var es []entry.Entry
	for i := range 100 {
		for k, s := range ss {
			l := line
			if i == 40 && k == 1 {
				l = bytes.Repeat([]byte("B"), 2*limit) // too large on its own
			}
			es = append(es, entry.Entry{Time: int64(i + 1), Line: l, Stream: s, Ack: a.Ack})
		}
	}
	if err := p.Submit(t.Context(), es); err != nil {
		t.Fatal(err)
	}
	a.Done(1)
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	for k, s := range ss {
		got := f.got[s.Key]
		want := 100
		if k == 1 {
			want = 99
		}
		if len(got) != want {
			t.Fatalf("%s: %d entries delivered, want %d", s.Key, len(got), want)
		}
		for i := 1; i < len(got); i++ {
			if got[i] <= got[i-1] {
				t.Fatalf("%s: entry %d has time %d after %d: out of order", s.Key, i, got[i], got[i-1])
			}
		}
	}
	if dead.entries != 1 || dead.reasons[reasonTooLarge] != 1 {
		t.Fatalf("dead letters %v, want the one entry too large on its own", dead.reasons)
	}
	if got := testutil.ToFloat64(m.EntriesDropped.WithLabelValues("fake", reasonTooLarge)); got != 1 {
		t.Fatalf("dropped{too_large} = %v", got)
	}
	if got := testutil.ToFloat64(m.EntriesSent.WithLabelValues("fake")); got != 299 {
		t.Fatalf("sent = %v, want 299", got)
	}
	if !a.Resolved() {
		t.Fatal("entries not confirmed")
	}
}

func TestSplit(t *testing.T) {
	ss := streams(2)
	add := func(b *entry.Batch, s *entry.Stream, tm int64, n int) {
		b.Add(entry.Entry{Time: tm, Line: bytes.Repeat([]byte("x"), n), Stream: s})
	}
	for _, tc := range []struct {
		name        string
		build       func(b *entry.Batch)
		first, rest int // entries
	}{
		{"even", func(b *entry.Batch) {
			for i := range 4 {
				add(b, ss[0], int64(i), 10)
				add(b, ss[1], int64(i), 10)
			}
		}, 4, 4},
		{"large first", func(b *entry.Batch) { add(b, ss[0], 1, 100); add(b, ss[0], 2, 1); add(b, ss[1], 1, 1) }, 1, 2},
		{"large last", func(b *entry.Batch) { add(b, ss[0], 1, 1); add(b, ss[0], 2, 1); add(b, ss[1], 1, 100) }, 2, 1},
		{"two", func(b *entry.Batch) { add(b, ss[0], 1, 0); add(b, ss[0], 2, 0) }, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := new(entry.Batch)
			tc.build(b)
			first, rest := split(b)
			if first.Entries != tc.first || rest.Entries != tc.rest || first.Bytes+rest.Bytes != b.Bytes {
				t.Fatalf("split %d entries into %d and %d, want %d and %d", b.Entries, first.Entries, rest.Entries, tc.first, tc.rest)
			}
			// Each stream: the first part's entries come before the second's.
			for _, s := range ss {
				var last int64 = -1
				for _, part := range []*entry.Batch{first, rest} {
					for _, se := range part.Streams {
						if se.Stream != s {
							continue
						}
						for _, e := range se.Entries {
							if e.Time <= last {
								t.Fatalf("%s out of order across the parts", s.Key)
							}
							last = e.Time
						}
					}
				}
			}
		})
	}
}
