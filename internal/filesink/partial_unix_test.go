//go:build unix

package filesink

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/wharf-logs/wharf/internal/diskfulltest"
	"github.com/wharf-logs/wharf/internal/entry"
	"github.com/wharf-logs/wharf/internal/sink"
)

func TestRotatorPartialWriteLeavesWholeRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "web.ndjson")
	r := NewRotator(path, 1<<20, 2, false)
	defer r.Close()
	if err := r.Write(numbered(0, 100)); err != nil {
		t.Fatal(err)
	}
	chunk := append(append(numbered(1, 100), numbered(2, 100)...), numbered(3, 100)...)
	lift := diskfulltest.Limit(t, 150) // room for half of record 1
	err := r.Write(chunk)
	lift()
	if err == nil {
		t.Fatal("Write beyond the file size limit succeeded")
	}
	if got := readNumbers(t, path); !slices.Equal(got, []int{0}) {
		t.Fatalf("after the failed write the file holds %v, want [0] and nothing partial", got)
	}
	// The retry appends whole records after the last good one.
	if err := r.Write(chunk); err != nil {
		t.Fatal(err)
	}
	if got := readNumbers(t, path); !slices.Equal(got, []int{0, 1, 2, 3}) {
		t.Errorf("after the retry: %v", got)
	}
}

func TestSendDiskFullIsRetryableAndLeavesValidNDJSON(t *testing.T) {
	dir := t.TempDir()
	s := newSink(t, Config{Dir: dir})
	web := containerStream("web")
	if err := s.Send(t.Context(), batchOf(3, web)); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "web.ndjson")
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	// A batch bigger than one write chunk (256 KiB), failing part way.
	big := &entry.Batch{}
	for i := range 3000 {
		line := make([]byte, 200)
		for j := range line {
			line[j] = 'a' + byte(i%26)
		}
		big.Add(entry.Entry{Time: int64(i), Line: line, Stream: web})
	}
	lift := diskfulltest.Limit(t, uint64(st.Size())+300<<10)
	err = s.Send(t.Context(), big)
	lift()
	if retry, _ := sink.IsRetryable(err); err == nil || !retry {
		t.Fatalf("Send on a full disk = %v, want a retryable error", err)
	}
	recs := readRecords(t, path) // fails on a partial record
	if len(recs) < 3 || lines(recs[:3])[0] != "web 0" {
		t.Fatalf("the records written before are damaged: %d records", len(recs))
	}
	if err := s.Send(t.Context(), big); err != nil {
		t.Fatalf("retry: %v", err)
	}
	recs = readRecords(t, path)
	if n := len(recs); n < 3+3000 {
		t.Errorf("%d records after the retry, want at least %d", n, 3+3000)
	}
	if last := recs[len(recs)-1]; last.TS != 2999 {
		t.Errorf("last record %+v, want the batch's last entry", last)
	}
}
