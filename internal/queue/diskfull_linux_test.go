package queue

import (
	"errors"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/wharf-logs/wharf/internal/diskfulltest"
)

// After a failed append nothing may be appended again (the pipeline sends
// through memory once the sink is back): Run itself tries the disk, and Err
// clears once it takes a new segment. The queue is on a tmpfs filled up for
// real (root only).
func TestFailedAppendClearsWithoutAnotherAppend(t *testing.T) {
	dir := diskfulltest.Tmpfs(t, "1m")
	q := openQueue(t, dir, Options{SyncInterval: 5 * time.Millisecond})
	appendRecs(t, q, 0, 10)
	run(t, q)
	filler := diskfulltest.Fill(t, dir)
	big := make([]byte, 8<<10)
	if err := q.Append(t.Context(), big, nil); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Append on a full disk: %v, want ENOSPC", err)
	}
	time.Sleep(ProbeInterval + ProbeInterval/2) // a probe while the disk is still full
	if err := q.Err(); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Err() = %v while the disk is full", err)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * ProbeInterval)
	for q.Err() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("Err() = %v %v after the disk recovered, with no append", q.Err(), 3*ProbeInterval)
		}
		time.Sleep(10 * time.Millisecond)
	}
	appendRecs(t, q, 100, 101)
	got, _ := readAll(t, q)
	wantRecs(t, got, append(seq(0, 10), 100)...)
}
