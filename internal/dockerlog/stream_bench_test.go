package dockerlog

import (
	"strings"
	"testing"
)

// lsCycleReader returns block over and over, like a body that never ends.
type lsCycleReader struct {
	block []byte
	pos   int
}

func (r *lsCycleReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.block[r.pos:])
		n += c
		r.pos = (r.pos + c) % len(r.block)
	}
	return n, nil
}

// lsBenchBlock returns 1000 lines of n bytes as Docker sends them, and the
// bytes per line.
func lsBenchBlock(tty bool, n int) ([]byte, int) {
	var b strings.Builder
	const lines = 1000
	for i := range lines {
		line := lsPattern("bench:", n)
		if tty {
			b.WriteString(lsRawLine(i, line+"\r\n"))
		} else {
			b.WriteString(lsMuxLine(byte(1+i%4/3), i, line+"\n"))
		}
	}
	return []byte(b.String()), b.Len() / lines
}

func BenchmarkLogStream(b *testing.B) {
	for _, bc := range []struct {
		name string
		tty  bool
		size int
	}{
		{"mux/265B", false, 265},
		{"raw/265B", true, 265},
		{"mux/40KiB", false, 40 << 10},
		{"raw/40KiB", true, 40 << 10},
	} {
		block, perLine := lsBenchBlock(bc.tty, bc.size)
		b.Run(bc.name+"/Next", func(b *testing.B) {
			s := NewStream(&lsCycleReader{block: block}, bc.tty, 0)
			b.SetBytes(int64(perLine))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Next(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bc.name+"/NextAppend", func(b *testing.B) {
			s := NewStream(&lsCycleReader{block: block}, bc.tty, 0)
			arena := make([]byte, 0, 1<<20)
			b.SetBytes(int64(perLine))
			b.ReportAllocs()
			for b.Loop() {
				if len(arena) > cap(arena)-bc.size-64 {
					arena = arena[:0]
				}
				var err error
				if _, arena, err = s.NextAppend(arena); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
