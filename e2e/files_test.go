package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wharf-logs/wharf/internal/seq"
	"github.com/wharf-logs/wharf/internal/vlogstest"
)

// TestPlainFilesCopytruncate ships a plain log file rotated by copytruncate
// (copy to .1, then truncate in place, as logrotate's copytruncate does) and
// a second one rotated by rename, to VictoriaLogs, with wharf stopped and
// started again in the middle: every line arrives exactly once, with the
// configured labels, and a multi-line entry arrives whole.
func TestPlainFilesCopytruncate(t *testing.T) {
	vl := vlogstest.Start(t)
	dir := t.TempDir()
	data := t.TempDir()
	cfg := filesConfig(data, freePort(t), filepath.Join(dir, "*.log"), "e2e-files") +
		"    multiline:\n      start: '^seq='\n      max_wait: 200ms\n" +
		fmt.Sprintf("loki:\n  url: %s\n  batch_wait: 200ms\n", vl.PushURL())
	binary(t)
	w := startWharf(t, data, cfg)

	f := seq.Format{Size: 120}
	const perFile = 6000
	copied, renamed := filepath.Join(dir, "copied.log"), filepath.Join(dir, "renamed.log")
	write := func(path string, from, to int64) {
		t.Helper()
		fh, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer fh.Close()
		var buf []byte
		for n := from; n < to; n++ {
			buf = f.Append(buf, n, time.Now().UnixNano())
			buf = append(buf, '\n')
			if n%1000 == 0 {
				// A stack trace: joined to the line before it.
				buf = append(buf, "  at frame one\n  at frame two\n"...)
			}
		}
		if _, err := fh.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	copytruncate := func(path string) {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path+".1", b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(path, 0); err != nil {
			t.Fatal(err)
		}
	}
	// 12 rounds of 500 lines each, 150 ms apart, rotating every third
	// round; wharf is stopped for a second after round 6.
	var n int64 = 1
	for round := 1; round <= 12; round++ {
		write(copied, n, n+500)
		write(renamed, n, n+500)
		n += 500
		if round == 1 {
			// Files are found by globbing once a second.
			waitFor(t, 10*time.Second, "wharf to find both files", func() bool {
				return w.metrics()["wharf_files_watched"] == 2
			})
		}
		if round%3 == 0 {
			copytruncate(copied)
			if err := os.Rename(renamed, renamed+".1"); err != nil {
				t.Fatal(err)
			}
		}
		if round == 6 {
			w.stop()
			time.Sleep(time.Second)
			w = startWharf(t, data, cfg)
		}
		time.Sleep(150 * time.Millisecond)
	}
	if n-1 != perFile {
		t.Fatalf("wrote %d lines per file, want %d", n-1, perFile)
	}
	for _, path := range []string{copied, renamed} {
		vl.WaitCount(t, fmt.Sprintf(`{filename=%q}`, path), perFile, 60*time.Second)
	}
	time.Sleep(500 * time.Millisecond) // anything extra would show now
	m := w.metrics()
	w.stop()
	if got := m[`wharf_entries_read_total{source="file"}`]; got < perFile {
		t.Errorf("wharf_entries_read_total{source=\"file\"} = %v", got)
	}
	for k, v := range m {
		if strings.HasPrefix(k, "wharf_entries_dropped_total") && v > 0 {
			t.Errorf("%s = %v", k, v)
		}
	}
	for _, path := range []string{copied, renamed} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			rows := vl.StreamRows(t, fmt.Sprintf(`{filename=%q}`, path))
			var lines []string
			for _, row := range rows {
				if row["job"] != "e2e-files" || row["host"] == "" {
					t.Fatalf("row labels: %v", row)
				}
				line := row["_msg"]
				if first, rest, ok := strings.Cut(line, "\n"); ok {
					if rest != "  at frame one\n  at frame two" {
						t.Fatalf("multi-line entry %q", line)
					}
					line = first
				}
				lines = append(lines, line)
			}
			if r := seq.CheckLines(filepath.Base(path), lines, perFile); !r.OK() {
				t.Fatalf("%s", r)
			}
		})
	}
}
