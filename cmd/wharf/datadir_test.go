package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRunRefusesAnUntrustedDataDir: wharf runs as root and appends to files
// in its data directory, so a directory someone else can write in would let
// them choose, by planting a link, which file it appends to. `wharf run`
// exits 2 with one line naming the directory and the command that fixes it,
// whether the fault is data_dir's, a subdirectory's or a file.dir's outside
// data_dir.
func TestRunRefusesAnUntrustedDataDir(t *testing.T) {
	const nobody = 65534
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, data, fileDir string) (bad string)
		fix   string
	}{
		{"data_dir owned by another user", func(t *testing.T, data, _ string) string {
			mkdir(t, data, 0o700)
			chown(t, data, nobody)
			return data
		}, "chown"},
		{"data_dir writable by its group", func(t *testing.T, data, _ string) string {
			mkdir(t, data, 0o770)
			return data
		}, "chmod 700"},
		{"data_dir writable by others", func(t *testing.T, data, _ string) string {
			mkdir(t, data, 0o703)
			return data
		}, "chmod 700"},
		{"queue owned by another user", func(t *testing.T, data, _ string) string {
			bad := filepath.Join(data, "queue")
			mkdir(t, bad, 0o700)
			chown(t, bad, nobody)
			return bad
		}, "chown"},
		{"a sink's queue writable by others", func(t *testing.T, data, _ string) string {
			bad := filepath.Join(data, "queue", "loki")
			mkdir(t, bad, 0o777)
			return bad
		}, "chmod 700"},
		{"dead-letter writable by its group", func(t *testing.T, data, _ string) string {
			bad := filepath.Join(data, "dead-letter")
			mkdir(t, bad, 0o770)
			return bad
		}, "chmod 700"},
		{"logs is a link", func(t *testing.T, data, _ string) string {
			mkdir(t, data, 0o700)
			elsewhere := t.TempDir()
			bad := filepath.Join(data, "logs")
			if err := os.Symlink(elsewhere, bad); err != nil {
				t.Fatal(err)
			}
			return bad
		}, "symbolic link"},
		{"file.dir outside data_dir writable by others", func(t *testing.T, _, fileDir string) string {
			mkdir(t, fileDir, 0o777)
			return fileDir
		}, "chmod 700"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			data := filepath.Join(root, "data")
			fileDir := ""
			if strings.Contains(tc.name, "file.dir") {
				fileDir = filepath.Join(root, "files")
			}
			bad := tc.setup(t, data, fileDir)
			body := "data_dir: " + data + "\nlisten: \"\"\ndocker: {enabled: false}\n" +
				"file: {enabled: true, dir: \"" + fileDir + "\"}\n" +
				"loki: {url: \"http://127.0.0.1:1/loki/api/v1/push\"}\n"
			code, stderr := runBounded(t, "run", "--config", writeConfig(t, body))
			if code != exitUsage {
				t.Fatalf("exit %d, want %d\nstderr: %s", code, exitUsage, stderr)
			}
			if n := strings.Count(strings.TrimSpace(stderr), "\n") + 1; n != 1 {
				t.Errorf("%d lines on stderr, want one:\n%s", n, stderr)
			}
			if !strings.Contains(stderr, bad) || !strings.Contains(stderr, tc.fix) {
				t.Errorf("stderr does not name %s and %q:\n%s", bad, tc.fix, stderr)
			}
		})
	}
}

func mkdir(t *testing.T, dir string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
}

func chown(t *testing.T, path string, uid int) {
	t.Helper()
	if err := os.Chown(path, uid, -1); err != nil {
		t.Skipf("cannot give %s to another user (tests run as root here): %v", path, err)
	}
}
