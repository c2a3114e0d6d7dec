package filesink

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Path is the current file's path.
func (r *Rotator) Path() string { return r.path }

// numbered returns an NDJSON record carrying n, padded to size bytes.
func numbered(n, size int) []byte {
	b := fmt.Appendf(nil, `{"n":%d,"pad":"`, n)
	for len(b) < size-3 {
		b = append(b, 'x')
	}
	return append(b, '"', '}', '\n')
}

// readNumbers parses an NDJSON file of numbered records, failing on a
// partial or invalid record.
func readNumbers(t *testing.T, path string) []int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		t.Errorf("%s does not end with a newline: %q", path, b[max(0, len(b)-40):])
	}
	var out []int
	for _, line := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var r struct {
			N *int `json:"n"`
		}
		if err := json.Unmarshal(line, &r); err != nil || r.N == nil {
			t.Fatalf("%s: invalid record %q: %v", path, line, err)
		}
		out = append(out, *r.N)
	}
	return out
}

// files lists the names in dir.
func files(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestRotatorKeepsMaxFiles(t *testing.T) {
	for _, tc := range []struct {
		maxFiles  int
		wantFiles []string
	}{
		{0, []string{"web.ndjson"}}, // at least one
		{1, []string{"web.ndjson"}},
		{2, []string{"web.ndjson", "web.ndjson.1"}},
		{4, []string{"web.ndjson", "web.ndjson.1", "web.ndjson.2", "web.ndjson.3"}},
	} {
		t.Run(fmt.Sprint("max_files=", tc.maxFiles), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "web.ndjson")
			const maxBytes = 200
			r := NewRotator(path, maxBytes, tc.maxFiles, false)
			if r.Path() != path {
				t.Errorf("Path() = %q", r.Path())
			}
			const n = 50
			for i := range n {
				if err := r.Write(numbered(i, 30+i%40)); err != nil {
					t.Fatal(err)
				}
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			if got := files(t, dir); !slices.Equal(got, tc.wantFiles) {
				t.Fatalf("files %q, want %q", got, tc.wantFiles)
			}
			// Oldest first, the kept files hold the newest records in order,
			// none split, none missing between them.
			var all []int
			for i := len(tc.wantFiles) - 1; i >= 0; i-- {
				p := filepath.Join(dir, tc.wantFiles[i])
				if st, _ := os.Stat(p); st.Size() > maxBytes {
					t.Errorf("%s is %d bytes, over %d", p, st.Size(), maxBytes)
				}
				all = append(all, readNumbers(t, p)...)
			}
			if len(all) == 0 || all[len(all)-1] != n-1 {
				t.Fatalf("records %v do not end with the last one written", all)
			}
			for i := 1; i < len(all); i++ {
				if all[i] != all[i-1]+1 {
					t.Fatalf("records %v are not the contiguous newest ones", all)
				}
			}
		})
	}
}

func TestRotatorNeverSplitsARecord(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "big.ndjson")
	r := NewRotator(path, 100, 3, false)
	defer r.Close()
	for i, size := range []int{300, 60, 300, 60, 30} {
		if err := r.Write(numbered(i, size)); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			// Alone in an empty file: written there, nothing rotated.
			if got := files(t, dir); !slices.Equal(got, []string{"big.ndjson"}) {
				t.Errorf("files after a first record over the limit: %q", got)
			}
		}
	}
	// 300 (dropped: max 3 files) | 60 | 300 (alone, over the limit) | 60+30
	want := map[string][]int{"big.ndjson.2": {1}, "big.ndjson.1": {2}, "big.ndjson": {3, 4}}
	if got := files(t, dir); len(got) != len(want) {
		t.Errorf("files %q", got)
	}
	for name, w := range want {
		if got := readNumbers(t, filepath.Join(dir, name)); !slices.Equal(got, w) {
			t.Errorf("%s holds %v, want %v", name, got, w)
		}
	}
}

func TestRotatorContinuesExistingFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "web.ndjson")
	a := NewRotator(path, 200, 2, true)
	if err := a.Write(numbered(0, 150)); err != nil {
		t.Fatal(err)
	}
	if err := a.Sync(); err != nil {
		t.Fatal(err)
	}
	a.Close()
	// A new rotator (wharf restarted) counts what the file holds.
	b := NewRotator(path, 200, 2, true)
	defer b.Close()
	if err := b.Write(numbered(1, 100)); err != nil {
		t.Fatal(err)
	}
	if got := readNumbers(t, path+".1"); !slices.Equal(got, []int{0}) {
		t.Errorf("rotated file holds %v, want [0]", got)
	}
	if got := readNumbers(t, path); !slices.Equal(got, []int{1}) {
		t.Errorf("current file holds %v, want [1]", got)
	}
	// Closing and writing again reopens and appends.
	b.Close()
	if err := b.Write(numbered(2, 50)); err != nil {
		t.Fatal(err)
	}
	if got := readNumbers(t, path); !slices.Equal(got, []int{1, 2}) {
		t.Errorf("after reopening: %v, want [1 2]", got)
	}
}

func TestRotatorOpenErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(dir string) string // returns the rotator's path
	}{
		{"path is a directory", func(dir string) string {
			p := filepath.Join(dir, "web.ndjson")
			os.Mkdir(p, 0o750)
			return p
		}},
		{"parent is a file", func(dir string) string {
			p := filepath.Join(dir, "file")
			os.WriteFile(p, nil, 0o640)
			return filepath.Join(p, "web.ndjson")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.setup(t.TempDir())
			r := NewRotator(path, 100, 2, false)
			defer r.Close()
			err := r.Write(numbered(0, 20))
			if err == nil || !strings.HasPrefix(err.Error(), "filesink: ") || !strings.Contains(err.Error(), filepath.Dir(path)) {
				t.Errorf("Write = %v, want a filesink error naming the path", err)
			}
		})
	}
}
