//go:build unix

package queue

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wharf-logs/wharf/internal/diskfulltest"
)

func TestDiskFullFailsAppendAndRecovers(t *testing.T) {
	for _, tc := range []struct {
		name string
		// limit returns the file size limit given the write segment's size.
		limit func(size int64) uint64
		// roll makes the next record need a new segment.
		roll bool
	}{
		// Part of the next record fits: the write is cut short.
		{"mid-record", func(size int64) uint64 { return uint64(size) + 20 }, false},
		// The new segment's header cannot be written.
		{"new segment", func(int64) uint64 { return 8 }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := Options{SyncInterval: time.Hour}
			q := openQueue(t, dir, opts)
			appendRecs(t, q, 0, 10)
			size := q.segsSnapshot()[0].size
			if tc.roll {
				q.opts.SegmentBytes = size
			}
			lift := diskfulltest.Limit(t, tc.limit(size))
			for i := 10; i < 13; i++ {
				err := q.Append(t.Context(), rec(i), nil)
				if !errors.Is(err, syscall.EFBIG) {
					lift()
					t.Fatalf("Append over the size limit: %v, want EFBIG", err)
				}
				if !strings.HasPrefix(err.Error(), "queue: ") || !strings.Contains(err.Error(), dir) {
					t.Errorf("error %q does not name the file", err)
				}
			}
			if err := q.Err(); !errors.Is(err, syscall.EFBIG) {
				t.Errorf("Err() = %v while the disk is full", err)
			}
			lift()

			appendRecs(t, q, 100, 103)
			if err := q.Err(); err != nil {
				t.Errorf("Err() = %v after the disk recovered", err)
			}
			if st := q.Stats(); st.WriteErrors != 3 {
				t.Errorf("WriteErrors = %d, want 3", st.WriteErrors)
			}
			if n := len(segFiles(t, dir)); tc.roll != (n > 1) {
				t.Errorf("%d segment files", n)
			}
			got, _ := readAll(t, q)
			wantRecs(t, got, append(seq(0, 10), 100, 101, 102)...)
			if err := q.Close(); err != nil {
				t.Fatal(err)
			}
			// Nothing of the failed records was left behind.
			q = openQueue(t, dir, opts)
			if st := q.Stats(); st.TornBytes != 0 || st.CorruptRecords != 0 {
				t.Errorf("after reopening: %+v", st)
			}
			got, _ = readAll(t, q)
			wantRecs(t, got, append(seq(0, 10), 100, 101, 102)...)
			matches, _ := filepath.Glob(filepath.Join(dir, "*"))
			for _, m := range matches {
				if fi, err := os.Stat(m); err == nil && fi.Size() == 0 {
					t.Errorf("empty file %s left behind", m)
				}
			}
		})
	}
}

func TestDiskFullFailsHeadWriteAndRecovers(t *testing.T) {
	dir := t.TempDir()
	q := openQueue(t, dir, Options{SyncInterval: time.Hour})
	appendRecs(t, q, 0, 10)
	_, ends := readAll(t, q)
	q.Commit(ends[4])
	lift := diskfulltest.Limit(t, 8)
	err := q.flush()
	lift()
	if !errors.Is(err, syscall.EFBIG) {
		t.Fatalf("flush with no room for the head: %v", err)
	}
	if err := q.Err(); !errors.Is(err, syscall.EFBIG) {
		t.Fatalf("Err() = %v", err)
	}
	if err := q.flush(); err != nil {
		t.Fatal(err)
	}
	if err := q.Err(); err != nil {
		t.Fatalf("Err() = %v after the head was written", err)
	}
	if st := q.Stats(); st.HeadErrors != 1 {
		t.Errorf("HeadErrors = %d", st.HeadErrors)
	}
	q.Close()
	q = openQueue(t, dir, Options{})
	got, _ := readAll(t, q)
	wantRecs(t, got, seq(5, 10)...)
}
