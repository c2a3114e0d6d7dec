package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/wharf-logs/wharf/internal/entry"
	"github.com/wharf-logs/wharf/internal/entrytest"
	"github.com/wharf-logs/wharf/internal/sink"
)

// probingFake is a fakeSink that is a sink.Prober. While down, its sends
// fail as retryable; its probes fail too unless probeUp says otherwise.
type probingFake struct {
	*fakeSink
	down    atomic.Bool
	probeUp func() bool // nil: the probe answers as the sends do
	probes  atomic.Int64
	sends   atomic.Int64
}

func newProbingFake() *probingFake {
	f := &probingFake{fakeSink: newFake()}
	f.fail = func(int, *entry.Batch) error {
		f.sends.Add(1)
		if f.down.Load() {
			return sink.Retryable(errors.New("503 service unavailable"), 0)
		}
		return nil
	}
	return f
}

func (f *probingFake) Probe(ctx context.Context) error {
	f.probes.Add(1)
	up := !f.down.Load()
	if f.probeUp != nil {
		up = f.probeUp()
	}
	if !up {
		return sink.Retryable(errors.New("503 service unavailable"), 0)
	}
	return nil
}

// defaultBackoffOutput is testOutput with wharf's default retry waits
// (loki.min_backoff 500ms, loki.max_backoff 5m).
func defaultBackoffOutput(s sink.Sink) Output {
	o := testOutput(s, 1<<20)
	o.MinBackoff, o.MaxBackoff = 500*time.Millisecond, 5*time.Minute
	return o
}

// TestDeliveryResumesWithinSecondsOfRecovery: however long the receiver was
// down, and so however long the retry wait has grown, the batch goes out
// within a few seconds of the receiver accepting again; meanwhile the full
// batch is sent only as the backoff says, the rest are cheap probes.
func TestDeliveryResumesWithinSecondsOfRecovery(t *testing.T) {
	for _, outage := range []time.Duration{2 * time.Minute, 10 * time.Minute, time.Hour} {
		t.Run(fmt.Sprint(outage), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newProbingFake()
				f.down.Store(true)
				p, _ := New([]Output{defaultBackoffOutput(f)}, Deps{})
				wait := run(t, p)
				a := entrytest.NewAck()
				if err := p.Submit(t.Context(), []entry.Entry{{Time: 1, Line: []byte("x"), Stream: streams(1)[0], Ack: a.Ack}}); err != nil {
					t.Fatal(err)
				}
				a.Done(1)
				time.Sleep(outage)
				f.down.Store(false)
				recovered := time.Now()
				sendsDuringOutage := f.sends.Load()
				for !a.Resolved() && time.Since(recovered) < 10*time.Minute {
					time.Sleep(100 * time.Millisecond)
				}
				took := time.Since(recovered)
				if took > 5*time.Second {
					t.Errorf("delivered %v after the receiver came back from a %v outage, want within 5s", took, outage)
				}
				t.Logf("outage %v: delivered %v after recovery; %d full sends and %d probes during the outage", outage, took, sendsDuringOutage, f.probes.Load())
				// Backoff from 0.5 s doubling to 5 min: about 8 attempts to
				// reach the cap, then one per 2.5 to 5 minutes.
				if maxSends := int64(10 + outage/(150*time.Second)); sendsDuringOutage > maxSends {
					t.Errorf("%d full sends during a %v outage, want at most %d: the backoff is not kept", sendsDuringOutage, outage, maxSends)
				}
				if err := wait(); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}

// TestProbeThatSucceedsWhileSendsFailIsNotTrusted: a receiver may take a
// probe (no entries) and still fail every push, as Loki's distributor does
// while its ingesters are down. The batch is then sent again at the
// backoff's pace, not at every probe.
func TestProbeThatSucceedsWhileSendsFailIsNotTrusted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newProbingFake()
		f.down.Store(true)
		f.probeUp = func() bool { return true }
		p, _ := New([]Output{defaultBackoffOutput(f)}, Deps{})
		wait := run(t, p)
		if err := p.Submit(t.Context(), []entry.Entry{{Time: 1, Line: []byte("x"), Stream: streams(1)[0]}}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Minute)
		if n := f.sends.Load(); n > 15 {
			t.Errorf("%d full sends in 10 minutes with every probe answered and every send failing, want the backoff's pace (at most 15)", n)
		}
		t.Logf("%d full sends and %d probes in 10 minutes", f.sends.Load(), f.probes.Load())
		f.down.Store(false)
		if err := wait(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestRateLimitedWaitIsNotProbed: a receiver that rate-limits is up; a
// probe cannot tell when it takes more, so none is sent.
func TestRateLimitedWaitIsNotProbed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newProbingFake()
		f.fail = func(n int, _ *entry.Batch) error {
			if n < 10 {
				return &sink.RetryableError{Err: errors.New("429 rate limited"), RateLimited: true}
			}
			return nil
		}
		p, _ := New([]Output{defaultBackoffOutput(f)}, Deps{})
		wait := run(t, p)
		if err := p.Submit(t.Context(), []entry.Entry{{Time: 1, Line: []byte("x"), Stream: streams(1)[0]}}); err != nil {
			t.Fatal(err)
		}
		if err := wait(); err != nil {
			t.Fatal(err)
		}
		if n := f.probes.Load(); n != 0 {
			t.Fatalf("%d probes of a receiver that rate-limits", n)
		}
	})
}

// TestProbesAreSharedByShards: the shards of a sink waiting together share
// each probe's answer, so the receiver gets about one probe per period from
// the sink, not one per shard.
func TestProbesAreSharedByShards(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newProbingFake()
		f.shards = 4
		f.down.Store(true)
		m := NewMetrics()
		p, _ := New([]Output{defaultBackoffOutput(f)}, Deps{Metrics: m})
		wait := run(t, p)
		produce(t, t.Context(), p, streams(16), 1, nil)
		time.Sleep(10 * time.Minute)
		// One probe per half period at most: 600.
		if n := f.probes.Load(); n > 600 || n < 150 {
			t.Errorf("%d probes by 4 shards in 10 minutes at a period of %v, want one per half period at most (600), one per period at least (300)", n, DefaultProbeEvery)
		}
		if got, want := testutil.ToFloat64(m.SinkProbes.WithLabelValues("fake", "down")), float64(f.probes.Load()); got != want {
			t.Errorf("wharf_sink_probes_total{result=down} = %v, want %v", got, want)
		}
		f.down.Store(false)
		if err := wait(); err != nil {
			t.Fatal(err)
		}
		if got := testutil.ToFloat64(m.SinkProbes.WithLabelValues("fake", "up")); got < 1 {
			t.Errorf("wharf_sink_probes_total{result=up} = %v after recovery", got)
		}
	})
}
