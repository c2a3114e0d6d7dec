package lokitest_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/wharf-logs/wharf/internal/entry"
	"github.com/wharf-logs/wharf/internal/loki"
	"github.com/wharf-logs/wharf/internal/lokitest"
)

// BenchmarkSend pushes 1 MiB batches through the loki client to a counting
// server over loopback, in MB/s of line bytes. Client and server share the
// machine, so this bounds the test harness rather than measuring Loki.
func BenchmarkSend(b *testing.B) {
	srv := lokitest.New(lokitest.Options{CountOnly: true})
	defer srv.Close()
	c := newClient(b, srv.URL(), func(c *loki.Config) { c.Timeout = time.Minute })
	s := entry.NewStream(entry.Labels{{Name: "app", Value: "bench"}}, entry.Labels{{Name: "container_id", Value: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}}, "")
	batch := &entry.Batch{}
	t := time.Now().UnixNano()
	for i := 0; batch.Bytes < 1<<20; i++ {
		line := fmt.Sprintf("%s level=info msg=\"request served\" method=GET path=/api/v1/orders/%d status=200 duration_ms=%d request_id=%016x user_agent=\"Mozilla/5.0 (X11; Linux x86_64)\" bytes=%d region=eu-west-1 pod=web-%d",
			time.Unix(0, t).UTC().Format(time.RFC3339Nano), i*7919%100000, i%997, uint64(i)*0x9E3779B97F4A7C15, i*31%65536, i%12)
		batch.Add(entry.Entry{Time: t + int64(i), Line: []byte(line), Stream: s})
	}
	b.SetBytes(int64(batch.Bytes))
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Send(b.Context(), batch); err != nil {
			b.Fatal(err)
		}
	}
}

func TestBenchBatchIsRealistic(t *testing.T) {
	b := lokitest.BenchBatch(1 << 20)
	if avg := b.Bytes / b.Entries; avg < 230 || avg > 300 {
		t.Fatalf("average line %d bytes, want about 265", avg)
	}
	if testing.Verbose() {
		t.Logf("%d entries, average line %d bytes, sample: %s", b.Entries, b.Bytes/b.Entries, b.Streams[0].Entries[0].Line)
	}
}

func BenchmarkDecodePush(bm *testing.B) {
	b := lokitest.BenchBatch(1 << 20)
	for _, format := range []loki.Format{loki.FormatProtobuf, loki.FormatJSON} {
		bm.Run(string(format), func(bm *testing.B) {
			enc, _ := loki.NewEncoder(format, false)
			p := enc.Encode(b)
			bm.SetBytes(int64(b.Bytes))
			bm.ReportAllocs()
			for bm.Loop() {
				if _, err := lokitest.DecodePush(p.Body, p.ContentType, p.ContentEncoding); err != nil {
					bm.Fatal(err)
				}
			}
		})
	}
}
