package positions

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestPlantedLinkIsNotFollowed: a symbolic link where the positions file
// goes is neither read nor written through: Open refuses it, naming the
// path, and the target is untouched.
func TestPlantedLinkIsNotFollowed(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(t.TempDir(), "target")
	content := Encode(map[string]string{"file/x": "someone else's"})
	if err := os.WriteFile(target, content, 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "positions")
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	s, _, err := Open(path, nil)
	if err == nil {
		if _, ok := s.Get("file/x"); ok {
			t.Error("Open read the positions through a planted link")
		}
		s.Set("file/y", "mine")
		s.Flush()
		t.Errorf("Open accepted a symbolic link at %s", path)
	} else if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("the error does not name %s as a symbolic link: %v", path, err)
	}
	if got, _ := os.ReadFile(target); !bytes.Equal(got, content) {
		t.Errorf("the target of the link was changed: %q", got)
	}
}

// TestModesIgnoreTheUmask: the directory Open creates is 0700 and the
// positions file 0600, even under a umask of 0.
func TestModesIgnoreTheUmask(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "data")
	path := filepath.Join(dir, "positions")
	s, _, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Set("file/x", "1")
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{dir: os.ModeDir | 0o700, path: 0o600} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s has mode %v, want %v", p, fi.Mode(), want)
		}
	}
}
