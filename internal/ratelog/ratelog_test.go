package ratelog

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func newTestLimiter(buf *bytes.Buffer, now *time.Time) *Limiter {
	l := New(slog.New(slog.NewTextHandler(buf, nil)), 10*time.Second)
	l.now = func() time.Time { return *now }
	return l
}

func TestSuppressesWithinTheInterval(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(1000, 0)
	l := newTestLimiter(&buf, &now)
	l.Warn("k", "first")
	l.Warn("k", "second")
	l.Warn("other", "other key")
	now = now.Add(10 * time.Second)
	l.Warn("k", "third")
	out := buf.String()
	for _, want := range []string{"first", "other key", "third", "suppressed=1"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "second") {
		t.Errorf("a repeat within the interval was logged:\n%s", out)
	}
}

// Keys that name things which come and go (a container per key) do not
// pile up: those idle for an interval are forgotten.
func TestIdleKeysAreForgotten(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(1000, 0)
	l := newTestLimiter(&buf, &now)
	for i := range 10000 {
		l.Warn(fmt.Sprint("container:", i), "gone")
		now = now.Add(100 * time.Millisecond) // 100 keys per interval
	}
	if n := len(l.keys); n > 4*100 {
		t.Fatalf("%d keys held after 10,000 over 100 intervals, want about the last interval's 100", n)
	}
	// A key still in its interval is remembered and still suppressed.
	l.Warn("container:9999", "again")
	if strings.Contains(buf.String(), "again") {
		t.Fatal("a key logged within the interval was forgotten")
	}
}
