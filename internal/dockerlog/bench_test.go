package dockerlog

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// benchText returns realistic log lines of n bytes (newline included) in
// three flavours: plain text like loggen's, a JSON log line whose quotes
// Docker escapes, and text with non-ASCII characters.
func benchText(kind string, n int) []byte {
	var s string
	switch kind {
	case "plain":
		s = "seq=1234567 stream=out sent=1795743028053204776 the quick brown fox jumps over the lazy dog while five boxing wizards jump quickly and pack my box with five dozen liquor jugs as a wharf crane swings the next crate ashore; "
	case "escapes":
		s = `{"level":"info","ts":"2026-11-26T23:35:52.891Z","caller":"server/handler.go:142","msg":"request served","method":"GET","path":"/api/v1/items?id=42&sort=asc","status":200,"bytes":5123,"duration":0.0123,"ua":"curl/8.5.0","trace":"<none>"}	`
	case "utf8":
		s = "seq=1234567 stream=out sent=1795743028053204776 Grüße aus Köln — naïve café, 日本語のログ行、emoji 😀 and more plain ASCII text to fill the line up to its size. "
	}
	for len(s) < n {
		s += s
	}
	return []byte(s[:n-1] + "\n")
}

func benchRecord(kind string) []byte {
	return appendDockerRecord(nil, benchText(kind, 265), "stdout", time.Date(2026, 11, 26, 23, 35, 52, 891162506, time.UTC), "")
}

var benchKinds = []string{"plain", "escapes", "utf8"}

func BenchmarkDecode(b *testing.B) {
	for _, kind := range benchKinds {
		line := benchRecord(kind)
		b.Run(kind, func(b *testing.B) {
			b.SetBytes(int64(len(line) + 1))
			b.ReportAllocs()
			dst := make([]byte, 0, 1024)
			for b.Loop() {
				_, d, err := Decode(line, dst[:0])
				if err != nil {
					b.Fatal(err)
				}
				dst = d
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds()/1e6, "Mlines/s")
		})
	}
}

// BenchmarkDecodeEncodingJSON is the baseline: the same records through
// encoding/json, as the daemon decodes them.
func BenchmarkDecodeEncodingJSON(b *testing.B) {
	for _, kind := range benchKinds {
		line := benchRecord(kind)
		b.Run(kind, func(b *testing.B) {
			b.SetBytes(int64(len(line) + 1))
			b.ReportAllocs()
			for b.Loop() {
				var v struct {
					Log    string    `json:"log"`
					Stream string    `json:"stream"`
					Time   time.Time `json:"time"`
				}
				if err := json.Unmarshal(line, &v); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds()/1e6, "Mlines/s")
		})
	}
}

// cycleReader serves a file's bytes over and over, so a benchmark reads as
// many lines as it needs from a small file held in memory.
type cycleReader struct {
	data []byte
	pos  int
}

func (c *cycleReader) Read(p []byte) (int, error) {
	n := copy(p, c.data[c.pos:])
	c.pos += n
	if c.pos == len(c.data) {
		c.pos = 0
	}
	return n, nil
}

func benchFile(kind string, lines int) []byte {
	var file []byte
	t := time.Date(2026, 11, 26, 23, 35, 52, 891162506, time.UTC)
	text := benchText(kind, 265)
	for i := range lines {
		stream := "stdout"
		if i%5 == 4 {
			stream = "stderr"
		}
		file = appendDockerRecord(file, text, stream, t.Add(time.Duration(i)*1013*time.Nanosecond), "")
		file = append(file, '\n')
	}
	return file
}

func BenchmarkReader(b *testing.B) {
	for _, kind := range benchKinds {
		file := benchFile(kind, 4096)
		perLine := int64(len(file) / 4096)
		for _, mode := range []string{"Next", "NextAppend"} {
			b.Run(fmt.Sprintf("%s/%s", kind, mode), func(b *testing.B) {
				r := NewFileReader(&cycleReader{data: file}, 0, 0)
				b.SetBytes(perLine)
				b.ReportAllocs()
				var dst []byte
				for b.Loop() {
					var err error
					if mode == "Next" {
						_, err = r.Next()
					} else {
						if len(dst) > 256<<10 {
							dst = dst[:0]
						}
						_, dst, err = r.NextAppend(dst)
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds()/1e6, "Mlines/s")
			})
		}
	}
}

// BenchmarkReaderFile reads a 32 MiB json-file log from disk (the page
// cache, after the first pass), syscalls included, as wharf reads a busy
// container's log: one op is the whole file.
func BenchmarkReaderFile(b *testing.B) {
	for _, kind := range benchKinds {
		b.Run(kind, func(b *testing.B) {
			one := benchFile(kind, 4096)
			var data []byte
			for len(data) < 32<<20 {
				data = append(data, one...)
			}
			path := filepath.Join(b.TempDir(), "c-json.log")
			if err := os.WriteFile(path, data, 0o600); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			var lines int
			for b.Loop() {
				f, err := os.Open(path)
				if err != nil {
					b.Fatal(err)
				}
				r := NewFileReader(f, 0, 0)
				var dst []byte
				for {
					_, dst, err = r.NextAppend(dst[:0])
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					lines++
				}
				f.Close()
			}
			b.ReportMetric(float64(lines)/b.Elapsed().Seconds()/1e6, "Mlines/s")
		})
	}
}

// BenchmarkReaderSplitLines reads 40 KiB lines, each split by Docker into
// three records.
func BenchmarkReaderSplitLines(b *testing.B) {
	text := []byte(strings.Repeat("0123456789abcdef", 40<<10/16))
	var file []byte
	t := time.Date(2026, 11, 26, 23, 35, 52, 891162506, time.UTC)
	for i := range 16 {
		parts := dockerParts(append(text, '\n'))
		for _, p := range parts {
			file = appendDockerRecord(file, p, "stdout", t.Add(time.Duration(i)), "")
			file = append(file, '\n')
		}
	}
	r := NewFileReader(&cycleReader{data: file}, 0, 0)
	b.SetBytes(int64(len(file) / 16))
	b.ReportAllocs()
	var dst []byte
	for b.Loop() {
		var err error
		_, dst, err = r.NextAppend(dst[:0])
		if err != nil {
			b.Fatal(err)
		}
	}
}

// dockerParts cuts a line as Docker's copier does: into parts of 16 KiB,
// the newline counted.
func dockerParts(line []byte) [][]byte {
	var parts [][]byte
	for len(line) > partSize {
		parts = append(parts, line[:partSize])
		line = line[partSize:]
	}
	return append(parts, line)
}

var _ io.Reader = (*cycleReader)(nil)
