//go:build unix

package deadletter

import (
	"errors"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/wharf-logs/wharf/internal/diskfulltest"
)

// TestDeadLetterDiskFullFailsWholeAndRecovers: a dead letter that does not
// fit fails with the disk's error (the pipeline then counts its entries as
// dead_letter_failed), leaves no partial record, and the next one lands
// after the last whole record once there is room.
func TestDeadLetterDiskFullFailsWholeAndRecovers(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "loki.ndjson")
	w := New(Config{Dir: dir, MaxFileBytes: 1 << 20, MaxFiles: 2}, Deps{})
	defer w.Close()
	if err := w.DeadLetter("loki", "invalid", nil, entries(2, "before")); err != nil {
		t.Fatal(err)
	}
	size := len(readRecords(t, path))
	lift := diskfulltest.Limit(t, 300) // less than the records already there and the next
	err := w.DeadLetter("loki", "invalid", errors.New("status 400"), entries(5, "full"))
	lift()
	if !errors.Is(err, syscall.EFBIG) {
		t.Fatalf("DeadLetter on a full disk: %v, want EFBIG", err)
	}
	if !errors.Is(w.Err(), syscall.EFBIG) {
		t.Fatalf("Err after the failed write: %v", w.Err())
	}
	if r := readRecords(t, path); len(r) != size {
		t.Fatalf("%d records after the failed write, want the %d before it and nothing partial", len(r), size)
	}
	if err := w.DeadLetter("loki", "invalid", nil, entries(1, "after")); err != nil {
		t.Fatalf("after space returned: %v", err)
	}
	if err := w.Err(); err != nil {
		t.Fatalf("Err after a write succeeded: %v", err)
	}
	r := readRecords(t, path)
	if len(r) != size+1 || r[len(r)-1].Line != "after 0" {
		t.Fatalf("records %+v", r)
	}
}
