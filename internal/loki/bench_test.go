package loki

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/wharf-logs/wharf/internal/entry"
)

// benchBatch builds a batch of about size bytes of log lines averaging 265
// bytes, spread over a few streams carrying container_id and image metadata.
// The lines mix access logs, JSON and plain application logs with varying
// fields, so compression sees text like the real thing rather than repeats.
func benchBatch(size int) *entry.Batch {
	r := rand.New(rand.NewPCG(1, 2))
	services := []string{"api", "web", "worker", "billing"}
	streams := make([]*entry.Stream, 0, 2*len(services))
	for _, svc := range services {
		id := fmt.Sprintf("%016x%016x%016x%016x", r.Uint64(), r.Uint64(), r.Uint64(), r.Uint64())
		for _, out := range []string{"stdout", "stderr"} {
			streams = append(streams, entry.NewStream(
				labels("compose_project", "shop", "compose_service", svc, "container", "shop-"+svc+"-1", "host", "node-07", "stream", out),
				labels("container_id", id, "image", "registry.example.com/shop/"+svc+":1.4."+fmt.Sprint(r.IntN(20))),
				svc))
		}
	}
	paths := []func() string{
		func() string { return "/api/v1/orders" },
		func() string { return fmt.Sprintf("/api/v1/orders/%d", r.IntN(1_000_000)) },
		func() string { return fmt.Sprintf("/api/v1/cart/%d/items", r.IntN(100_000)) },
		func() string { return fmt.Sprintf("/static/app.%08x.js", r.Uint32()) },
		func() string { return "/healthz" },
		func() string { return fmt.Sprintf("/api/v1/users/%d/profile", r.IntN(1_000_000)) },
		func() string { return fmt.Sprintf("/search?q=%x&page=%d", r.Uint32(), r.IntN(50)) },
	}
	agents := []string{"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36", "curl/8.5.0", "Go-http-client/2.0", "okhttp/4.12.0"}
	levels := []string{"info", "info", "info", "debug", "warn", "error"}
	msgs := []string{"order placed", "payment authorised", "cache miss, loading from database", "retrying upstream call", "user session refreshed", "inventory reserved", "slow query detected"}
	b := &entry.Batch{}
	t := int64(1_700_000_000_000_000_000)
	for b.Bytes < size {
		t += int64(r.IntN(2_000_000))
		var l string
		ts := fmt.Sprintf("2024-11-14T22:%02d:%02d.%06dZ", r.IntN(60), r.IntN(60), r.IntN(1_000_000))
		switch r.IntN(3) {
		case 0:
			l = fmt.Sprintf(`10.%d.%d.%d - - [%s] "GET %s HTTP/1.1" %d %d "https://shop.example.com%s" "%s" rt=%.3f uct=%.3f request_id=%016x%08x pid=%d`,
				r.IntN(256), r.IntN(256), r.IntN(256), ts, paths[r.IntN(len(paths))](), []int{200, 200, 200, 201, 304, 404, 500}[r.IntN(7)],
				r.IntN(50000), paths[r.IntN(len(paths))](), agents[r.IntN(len(agents))], r.Float64(), r.Float64()/10, r.Uint64(), r.Uint32(), 1000+r.IntN(9000))
		case 1:
			l = fmt.Sprintf(`{"ts":"%s","level":"%s","msg":"%s","trace_id":"%016x%016x","span_id":"%016x","user_id":%d,"duration_ms":%.2f,"component":"%s","attempt":%d,"region":"eu-west-1","pid":%d,"http":{"method":"POST","route":"%s","status":%d}}`,
				ts, levels[r.IntN(len(levels))], msgs[r.IntN(len(msgs))], r.Uint64(), r.Uint64(), r.Uint64(), r.IntN(1_000_000), r.Float64()*500, services[r.IntN(len(services))], r.IntN(4), 1000+r.IntN(9000), paths[r.IntN(len(paths))](), []int{200, 201, 400, 503}[r.IntN(4)])
		default:
			l = fmt.Sprintf(`%s %-5s [%s] %s: tenant=%d order=%d items=%d total=%d.%02d EUR took %dms (pool active=%d idle=%d waiting=%d) node=%x thread=worker-%d correlation=%08x-%04x-%04x pid=%d`,
				ts, strings.ToUpper(levels[r.IntN(len(levels))]), services[r.IntN(len(services))], msgs[r.IntN(len(msgs))],
				r.IntN(500), r.IntN(10_000_000), r.IntN(12), r.IntN(900), r.IntN(100), r.IntN(2000), r.IntN(50), r.IntN(50), r.IntN(5), r.Uint32(), r.IntN(64), r.Uint32(), r.IntN(65536), r.IntN(65536), 1000+r.IntN(9000))
		}
		b.Add(entry.Entry{Time: t, Line: []byte(l), Stream: streams[r.IntN(len(streams))]})
	}
	return b
}

func TestBenchBatchIsRealistic(t *testing.T) {
	b := benchBatch(1 << 20)
	if avg := b.Bytes / b.Entries; avg < 230 || avg > 300 {
		t.Fatalf("average line %d bytes, want about 265", avg)
	}
	if testing.Verbose() {
		t.Logf("%d entries, average line %d bytes, sample: %s", b.Entries, b.Bytes/b.Entries, b.Streams[0].Entries[0].Line)
	}
}

func benchmarkEncode(bm *testing.B, format Format, gz bool) {
	b := benchBatch(1 << 20)
	enc, err := NewEncoder(format, gz)
	if err != nil {
		bm.Fatal(err)
	}
	p := enc.Encode(b)
	bm.SetBytes(int64(b.Bytes))
	bm.ReportAllocs()
	bm.ResetTimer()
	for bm.Loop() {
		p = enc.Encode(b)
	}
	bm.ReportMetric(float64(b.Bytes)/float64(len(p.Body)), "ratio")
}

// BenchmarkEncode measures a 1 MiB batch encoded and compressed, in MB/s of
// line bytes.
func BenchmarkEncode(b *testing.B) {
	b.Run("protobuf+snappy", func(b *testing.B) { benchmarkEncode(b, FormatProtobuf, false) })
	b.Run("json", func(b *testing.B) { benchmarkEncode(b, FormatJSON, false) })
	b.Run("json+gzip", func(b *testing.B) { benchmarkEncode(b, FormatJSON, true) })
}

// BenchmarkAppendProtobuf isolates the protobuf encoding from compression.
func BenchmarkAppendProtobuf(bm *testing.B) {
	b := benchBatch(1 << 20)
	dst := AppendProtobuf(nil, b)
	bm.SetBytes(int64(b.Bytes))
	bm.ReportAllocs()
	for bm.Loop() {
		dst = AppendProtobuf(dst[:0], b)
	}
}

func BenchmarkDecodePush(bm *testing.B) {
	b := benchBatch(1 << 20)
	for _, format := range []Format{FormatProtobuf, FormatJSON} {
		bm.Run(string(format), func(bm *testing.B) {
			enc, _ := NewEncoder(format, false)
			p := enc.Encode(b)
			bm.SetBytes(int64(b.Bytes))
			bm.ReportAllocs()
			for bm.Loop() {
				if _, err := DecodePush(p.Body, p.ContentType, p.ContentEncoding); err != nil {
					bm.Fatal(err)
				}
			}
		})
	}
}
