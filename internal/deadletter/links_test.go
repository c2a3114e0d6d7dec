package deadletter

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPlantedLinkIsNotFollowed: a symbolic link where a dead-letter file
// goes is not appended through; the dead letter fails, naming the
// directory, and the link's target is untouched.
func TestPlantedLinkIsNotFollowed(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dead-letter")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "target")
	content := []byte("not wharf's to write\n")
	if err := os.WriteFile(target, content, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(dir, "loki.ndjson")); err != nil {
		t.Fatal(err)
	}
	w := New(Config{Dir: dir, MaxFileBytes: 1 << 20, MaxFiles: 3}, Deps{})
	defer w.Close()
	err := w.DeadLetter("loki", "too_old", errors.New("too old"), entries(2, "old"))
	if err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("DeadLetter through a planted link: %v, want an error naming %s", err, dir)
	}
	if got, _ := os.ReadFile(target); !bytes.Equal(got, content) {
		t.Errorf("the dead letter was written through the link: %s holds %q", target, got)
	}
}
