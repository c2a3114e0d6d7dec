package backoff

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

func TestWaitDoublesToMaxWithJitter(t *testing.T) {
	p := Policy{Min: 100 * time.Millisecond, Max: 800 * time.Millisecond}
	for n, d := range []time.Duration{100, 200, 400, 800, 800, 800} {
		d *= time.Millisecond
		if got := p.Step(n); got != d {
			t.Errorf("Step(%d) = %v, want %v", n, got, d)
		}
		seen := map[time.Duration]bool{}
		for range 200 {
			got := p.Wait(n)
			if got < d/2 || got > d {
				t.Fatalf("Wait(%d) = %v, want within [%v, %v]", n, got, d/2, d)
			}
			seen[got] = true
		}
		if len(seen) < 10 {
			t.Errorf("Wait(%d): only %d distinct waits in 200; no jitter", n, len(seen))
		}
	}
	if got := p.Wait(1000); got > p.Max {
		t.Errorf("wait after 1000 attempts = %v, beyond the maximum", got)
	}
}

func TestStepEdges(t *testing.T) {
	for _, tc := range []struct {
		p    Policy
		n    int
		want time.Duration
	}{
		{Policy{Min: time.Second, Max: 10 * time.Second}, 3, 8 * time.Second},
		{Policy{Min: time.Second, Max: 10 * time.Second}, 4, 10 * time.Second},
		{Policy{Min: time.Second, Max: 10 * time.Second}, 1 << 30, 10 * time.Second},
		{Policy{Min: time.Second, Max: time.Duration(1<<63 - 1)}, 100, time.Duration(1<<63 - 1)},
		{Policy{Min: time.Second, Max: time.Millisecond}, 0, time.Millisecond},
		{Policy{}, 5, 0},
	} {
		if got := tc.p.Step(tc.n); got != tc.want {
			t.Errorf("%+v.Step(%d) = %v, want %v", tc.p, tc.n, got, tc.want)
		}
	}
	if got := (Policy{}).Wait(3); got != 0 {
		t.Errorf("zero policy waits %v", got)
	}
}

func TestSleep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		if !Sleep(t.Context(), time.Second) || time.Since(start) != time.Second {
			t.Fatalf("Sleep(1s) returned after %v", time.Since(start))
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		start = time.Now()
		if Sleep(ctx, time.Hour) || time.Since(start) != time.Second {
			t.Fatalf("Sleep past its context's end returned true, or after %v", time.Since(start))
		}
	})
}
