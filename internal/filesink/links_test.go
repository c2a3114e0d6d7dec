package filesink

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestPlantedLinkIsNotFollowed: a symbolic link where a container's file
// goes is not appended through; the send fails and the target is untouched.
func TestPlantedLinkIsNotFollowed(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(t.TempDir(), "target")
	content := []byte("not wharf's to write\n")
	if err := os.WriteFile(target, content, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(dir, "web.ndjson")); err != nil {
		t.Fatal(err)
	}
	s := newSink(t, Config{Dir: dir})
	if err := s.Send(t.Context(), batchOf(2, containerStream("web"))); err == nil {
		t.Error("Send wrote through a planted link")
	}
	if got, _ := os.ReadFile(target); !bytes.Equal(got, content) {
		t.Errorf("the sink wrote through the link: %s holds %q", target, got)
	}
}
