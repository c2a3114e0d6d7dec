package datadir

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// umask0 sets the umask to 0, which grants whatever is asked, until the
// test ends.
func umask0(t *testing.T) {
	old := syscall.Umask(0)
	t.Cleanup(func() { syscall.Umask(old) })
}

func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode()
}

// plant puts a link at path to a file outside, returning the file and its
// content.
func plant(t *testing.T, path string) (string, []byte) {
	t.Helper()
	target := filepath.Join(t.TempDir(), "target")
	content := []byte("someone else's\n")
	if err := os.WriteFile(target, content, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	return target, content
}

func untouched(t *testing.T, target string, content []byte) {
	t.Helper()
	if got, err := os.ReadFile(target); err != nil || !bytes.Equal(got, content) {
		t.Errorf("%s changed through the link: %q, %v", target, got, err)
	}
}

func TestPrepareMakesPrivateDirectories(t *testing.T) {
	umask0(t)
	root := t.TempDir()
	dir := filepath.Join(root, "a", "b", "data")
	if err := Prepare(dir); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(root, "a"), filepath.Join(root, "a", "b"), dir} {
		if m := mode(t, p); m != fs.ModeDir|DirMode {
			t.Errorf("%s: mode %v, want %v", p, m, fs.ModeDir|DirMode)
		}
	}
	// An existing directory that passes is left as it is.
	old := filepath.Join(root, "old")
	if err := os.Mkdir(old, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := Prepare(old); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, old); m != fs.ModeDir|0o750 {
		t.Errorf("existing directory changed to %v", m)
	}
}

func TestCheckDir(t *testing.T) {
	root := t.TempDir()
	mk := func(name string, perm fs.FileMode, uid int) string {
		p := filepath.Join(root, name)
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, perm); err != nil {
			t.Fatal(err)
		}
		if uid >= 0 {
			if err := os.Chown(p, uid, -1); err != nil {
				t.Skipf("cannot chown (not root?): %v", err)
			}
		}
		return p
	}
	good := mk("good", 0o755, -1)
	link := filepath.Join(root, "link")
	if err := os.Symlink(good, link); err != nil {
		t.Fatal(err)
	}
	badLink := filepath.Join(root, "bad-link")
	if err := os.Symlink(mk("open", 0o777, -1), badLink); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(root, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path    string
		problem string // "" for none
		fix     string
	}{
		{good, "", ""},
		{filepath.Join(root, "missing"), "", ""},
		{link, "", ""},
		{mk("group", 0o770, -1), "is writable by its group", "chmod 700 " + filepath.Join(root, "group")},
		{mk("others", 0o703, -1), "is writable by others", "chmod 700"},
		{mk("both", 0o777, -1), "is writable by group and others", "chmod 700"},
		{mk("sticky", 0o1777, -1), "is writable by group and others", "chmod 700"},
		{mk("nobody", 0o700, 65534), "is owned by uid 65534, not by uid", "chown -R"},
		{badLink, "is writable by group and others", "chmod 700"},
		{file, "is not a directory", "directory"},
	} {
		err := CheckDir(tc.path)
		if tc.problem == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.path, err)
			}
			continue
		}
		var ue *UntrustedError
		if !errors.As(err, &ue) || ue.Path != tc.path || !strings.Contains(err.Error(), tc.problem) || !strings.Contains(err.Error(), tc.fix) {
			t.Errorf("%s: %v; want an *UntrustedError saying %q and %q", tc.path, err, tc.problem, tc.fix)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: the error has more than one line: %q", tc.path, err)
		}
	}
}

func TestCheckBelow(t *testing.T) {
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "queue", "loki"), 0o700))
	must(CheckBelow(root, "queue/loki", "queue/file", "dead-letter", "logs"))

	must(os.WriteFile(filepath.Join(root, "dead-letter"), nil, 0o600))
	must(CheckBelow(root, "dead-letter")) // not a directory: reported when written

	must(os.Chmod(filepath.Join(root, "queue", "loki"), 0o775))
	err := CheckBelow(root, "dead-letter", "queue/loki")
	if err == nil || !strings.Contains(err.Error(), filepath.Join(root, "queue", "loki")+" is writable by its group") {
		t.Errorf("group-writable queue/loki: %v", err)
	}
	must(os.Chmod(filepath.Join(root, "queue", "loki"), 0o700))

	must(os.Symlink(t.TempDir(), filepath.Join(root, "logs")))
	err = CheckBelow(root, "queue/loki", "logs")
	if err == nil || !strings.Contains(err.Error(), filepath.Join(root, "logs")+" is a symbolic link") {
		t.Errorf("linked logs: %v", err)
	}
}

func TestOpenFile(t *testing.T) {
	umask0(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	f, err := OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("one\n")
	f.Close()
	if m := mode(t, path); m != FileMode {
		t.Errorf("created with mode %v, want %v", m, FileMode)
	}
	f, err = OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("two\n")
	f.Close()
	if b, _ := ReadFile(path); string(b) != "one\ntwo\n" {
		t.Errorf("content %q", b)
	}

	for _, flag := range []int{os.O_RDONLY, os.O_RDWR, os.O_WRONLY | os.O_APPEND | os.O_CREATE, os.O_RDWR | os.O_CREATE | os.O_TRUNC} {
		link := filepath.Join(t.TempDir(), "link")
		target, content := plant(t, link)
		f, err := OpenFile(link, flag)
		if err == nil {
			f.Close()
		}
		if !errors.Is(err, ErrSymlink) || !strings.Contains(err.Error(), link) {
			t.Errorf("flag %#x: %v, want an error naming %s with ErrSymlink", flag, err, link)
		}
		untouched(t, target, content)
	}
	if _, err := ReadFile(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing: %v", err)
	}
}

func TestWriteFile(t *testing.T) {
	umask0(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "positions")
	target, content := plant(t, path)
	if err := WriteFile(path, []byte("new"), nil); err != nil {
		t.Fatal(err)
	}
	untouched(t, target, content)
	if b, _ := ReadFile(path); string(b) != "new" {
		t.Errorf("content %q", b)
	}
	if m := mode(t, path); m != FileMode {
		t.Errorf("mode %v, want %v", m, FileMode)
	}

	failing := errors.New("sync failed")
	err := WriteFile(path, []byte("newer"), func(*os.File) error { return failing })
	if !errors.Is(err, failing) {
		t.Errorf("failing sync: %v", err)
	}
	if b, _ := ReadFile(path); string(b) != "new" {
		t.Errorf("content %q after a failed write", b)
	}
	des, _ := os.ReadDir(dir)
	if len(des) != 1 {
		t.Errorf("files left: %v", des)
	}

	// A crash between creating the temporary file and renaming it.
	for _, name := range []string{"positions.tmp-123", "positions.tmp-456", "head.tmp-1", "positions.tmpx"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := RemoveTemps(dir, "positions"); err != nil {
		t.Fatal(err)
	}
	var left []string
	des, _ = os.ReadDir(dir)
	for _, de := range des {
		left = append(left, de.Name())
	}
	if strings.Join(left, " ") != "head.tmp-1 positions positions.tmpx" {
		t.Errorf("left %v", left)
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/var/lib/wharf": "/var/lib/wharf",
		"/tmp/a b":       "'/tmp/a b'",
		"/tmp/it's":      `'/tmp/it'\''s'`,
		"/tmp/$(reboot)": "'/tmp/$(reboot)'",
		"./wharf-data":   "./wharf-data",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}
