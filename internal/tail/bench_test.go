package tail

import (
	"bufio"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// benchFile writes a file of about size bytes of 265-byte lines (the line
// length of the measurements in docs) and returns its path and size.
func benchFile(b *testing.B, size int) (string, int64) {
	b.Helper()
	path := filepath.Join(b.TempDir(), "bench.log")
	fh, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(fh, 1<<20)
	line := `{"log":"` + strings.Repeat("y", 265-58) + `\n","stream":"stdout","time":"2026-01-02T03:04:05.123456789Z"}` + "\n"
	for n := 0; n < size; n += len(line) {
		w.WriteString(line)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	fi, _ := fh.Stat()
	fh.Close()
	return path, fi.Size()
}

// BenchmarkLineReader measures Read plus line splitting over a file in the
// page cache: the ceiling the file path puts on a pipeline.
func BenchmarkLineReader(b *testing.B) {
	path, size := benchFile(b, 256<<20)
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		f, err := Open(path, Position{}, Options{})
		if err != nil {
			b.Fatal(err)
		}
		r, _ := NewLineReader(f, LineOptions{})
		f.Stop()
		n := 0
		for {
			_, err := r.Next(context.Background())
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		f.Close()
		if n == 0 {
			b.Fatal("no lines")
		}
	}
}

// BenchmarkFollowerRead measures Read alone, with the LineReader's buffer
// size.
func BenchmarkFollowerRead(b *testing.B) {
	path, size := benchFile(b, 256<<20)
	b.SetBytes(size)
	buf := make([]byte, lineBufSize)
	for b.Loop() {
		f, err := Open(path, Position{}, Options{})
		if err != nil {
			b.Fatal(err)
		}
		f.Stop()
		for {
			_, err := f.Read(context.Background(), buf)
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		f.Close()
	}
}
