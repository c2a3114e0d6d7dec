package tail

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// FuzzFollowerFiles reads a log whose oldest rotated file holds arbitrary
// bytes under a .gz name, resuming at an arbitrary offset in it. Whatever
// the bytes, the Follower must not panic or fail, and must go on to the
// newer files intact.
func FuzzFollowerFiles(f *testing.F) {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte("old line 1\nold line 2\n"))
	zw.Close()
	f.Add(b.Bytes(), []byte("middle\n"), uint16(0))
	f.Add(b.Bytes(), []byte("no newline"), uint16(5))
	f.Add(b.Bytes()[:len(b.Bytes())-3], []byte(""), uint16(100))
	f.Add([]byte("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"), []byte("x\n"), uint16(1))
	f.Fuzz(func(t *testing.T, gz, plain []byte, off uint16) {
		dir := t.TempDir()
		path := filepath.Join(dir, "c-json.log")
		for name, data := range map[string][]byte{path + ".2.gz": gz, path + ".1": plain, path: []byte("live\n")} {
			if err := os.WriteFile(name, data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		var content []byte
		if zr, err := gzip.NewReader(bytes.NewReader(gz)); err == nil {
			content, err = io.ReadAll(zr)
			if err != nil {
				content = nil // damaged: only a prefix could be read
			}
		}
		dev, ino := ident(t, path+".2.gz")
		var g gaps
		fl, err := Open(path, Position{Dev: dev, Inode: ino, Offset: int64(off)}, g.opts(withRotated(fast)))
		if err != nil {
			t.Fatal(err)
		}
		defer fl.Close()
		got, _ := readToEOF(t, fl)
		tail := string(plain) + "live\n"
		if !bytes.HasSuffix([]byte(got), []byte(tail)) {
			t.Fatalf("read %q, want it to end with %q", got, tail)
		}
		if content != nil && len(g.list()) == 0 {
			want := ""
			if int(off) < len(content) {
				want = string(content[off:])
			}
			if got != want+tail {
				t.Fatalf("read %q, want %q", got, want+tail)
			}
		}
		for _, x := range g.list() {
			if x.Reason != GapCorrupt {
				t.Fatalf("gap %+v", x)
			}
		}
	})
}
