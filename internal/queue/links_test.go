package queue

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// plantLink puts a symbolic link at path pointing at a file outside the
// queue directory, as someone able to write in the directory could, and
// returns the target's path and content.
func plantLink(t *testing.T, path string) (target string, content []byte) {
	t.Helper()
	target = filepath.Join(t.TempDir(), "target")
	content = []byte("not wharf's to write\n")
	if err := os.WriteFile(target, content, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	return target, content
}

func assertUntouched(t *testing.T, target string, content []byte) {
	t.Helper()
	got, err := os.ReadFile(target)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, content) {
		t.Errorf("the queue wrote through the planted link: %s now holds %d bytes, starting %.40q", target, len(got), got)
	}
}

// TestPlantedLinkAtTheNextSegmentIsNotFollowed: a link at the name of the
// segment the queue starts next is refused, not followed.
func TestPlantedLinkAtTheNextSegmentIsNotFollowed(t *testing.T) {
	dir := t.TempDir()
	q := openQueue(t, dir, small)
	appendRecs(t, q, 0, 1)
	q.mu.Lock()
	next := q.path(q.written)
	q.mu.Unlock()
	target, content := plantLink(t, next)

	// A record that does not fit in the current segment starts the next.
	err := q.Append(t.Context(), []byte(strings.Repeat("x", int(small.SegmentBytes))), nil)
	if err == nil {
		t.Errorf("Append started a segment through a link at %s", next)
	} else if !strings.Contains(err.Error(), next) {
		t.Errorf("the error does not name %s: %v", next, err)
	}
	assertUntouched(t, target, content)
}

// TestPlantedLinkAtTheHeadsTemporaryNameIsNotFollowed: the head file is
// written under a name no one can know in advance, so a link planted at
// the old fixed name (head.tmp) stays as it is.
func TestPlantedLinkAtTheHeadsTemporaryNameIsNotFollowed(t *testing.T) {
	dir := t.TempDir()
	q := openQueue(t, dir, small)
	appendRecs(t, q, 0, 3)
	target, content := plantLink(t, filepath.Join(dir, "head.tmp"))

	_, ends := readAll(t, q)
	q.Commit(ends[len(ends)-1])
	if err := q.flush(); err != nil {
		t.Fatal(err)
	}
	assertUntouched(t, target, content)
	if _, err := os.Stat(filepath.Join(dir, "head")); err != nil {
		t.Errorf("the head was not written: %v", err)
	}
}
