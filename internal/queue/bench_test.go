package queue

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/wharf-logs/wharf/internal/entry"
)

// benchEntries returns about size bytes of 265-byte lines from 8 containers,
// in runs of 16 lines per stream as a pipeline batch holds them.
func benchEntries(size int) (entries []entry.Entry, lineBytes int) {
	var streams []*entry.Stream
	for i := range 8 {
		streams = append(streams, entry.NewStream(
			entry.Labels{{Name: "compose_project", Value: "shop"}, {Name: "compose_service", Value: fmt.Sprint("svc", i)}, {Name: "container", Value: fmt.Sprint("shop-svc", i, "-1")}, {Name: "stream", Value: "stdout"}},
			entry.Labels{{Name: "container_id", Value: fmt.Sprintf("%064x", i)}},
			fmt.Sprint("shop-svc", i, "-1")))
	}
	t := int64(1_795_734_000_000_000_000)
	for i := 0; lineBytes < size; i++ {
		line := fmt.Appendf(nil, `{"level":"info","ts":"2026-11-26T10:00:00.%09dZ","msg":"request served","method":"GET","path":"/api/v1/items/%d","status":200,"bytes":%d,"duration_ms":%d,"trace_id":"%032x","user_agent":"Mozilla/5.0 (X11; Linux x86_64)"}`, i, i, i*7, i%97, i)
		line = line[:min(len(line), 265)]
		for len(line) < 265 {
			line = append(line, ' ')
		}
		t += int64(1000 + i%500)
		entries = append(entries, entry.Entry{Time: t, Line: line, Stream: streams[(i/16)%len(streams)]})
		lineBytes += len(line)
	}
	return entries, lineBytes
}

// consumeAll commits everything appended, as a reader would have, so a
// benchmark's disk use stays bounded.
func (q *Queue) consumeAll() {
	q.mu.Lock()
	q.cursor = q.written
	end := q.written
	q.mu.Unlock()
	q.Commit(end)
}

// BenchmarkAppendSync measures appending 1 MiB records until each is
// reported durable by group commit.
func BenchmarkAppendSync(b *testing.B) {
	entries, _ := benchEntries(1 << 20)
	payload := AppendEntries(nil, entries)
	q := openQueue(b, b.TempDir(), Options{MaxBytes: 4 << 30})
	run(b, q)
	var durable atomic.Int64
	all := make(chan struct{})
	b.SetBytes(int64(len(payload)))
	b.ResetTimer()
	for i := range b.N {
		err := q.Append(context.Background(), payload, func(err error) {
			if err != nil {
				b.Error(err)
			}
			if durable.Add(1) == int64(b.N) {
				close(all)
			}
		})
		if err != nil {
			b.Fatal(err)
		}
		if i%512 == 511 {
			q.consumeAll()
		}
	}
	<-all
	b.StopTimer()
	q.consumeAll()
}

// BenchmarkNextDecode measures reading 1 MiB records back and decoding them;
// MB/s counts line bytes.
func BenchmarkNextDecode(b *testing.B) {
	entries, lineBytes := benchEntries(1 << 20)
	payload := AppendEntries(nil, entries)
	q := openQueue(b, b.TempDir(), Options{})
	for range 64 {
		if err := q.Append(context.Background(), payload, nil); err != nil {
			b.Fatal(err)
		}
	}
	var d Decoder
	b.SetBytes(int64(lineBytes))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		p, _, err := q.next(context.Background(), false)
		if errors.Is(err, errEmpty) {
			q.mu.Lock()
			q.cursor = q.head
			q.mu.Unlock()
			p, _, err = q.next(context.Background(), false)
		}
		if err != nil {
			b.Fatal(err)
		}
		got, err := d.Decode(p)
		if err != nil || len(got) != len(entries) {
			b.Fatalf("decoded %d entries: %v", len(got), err)
		}
	}
}

func BenchmarkAppendEntries(b *testing.B) {
	entries, lineBytes := benchEntries(1 << 20)
	buf := AppendEntries(nil, entries)
	b.SetBytes(int64(lineBytes))
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendEntries(buf[:0], entries)
	}
}

func BenchmarkDecode(b *testing.B) {
	entries, lineBytes := benchEntries(1 << 20)
	payload := AppendEntries(nil, entries)
	var d Decoder
	b.SetBytes(int64(lineBytes))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.Decode(payload); err != nil {
			b.Fatal(err)
		}
	}
}
