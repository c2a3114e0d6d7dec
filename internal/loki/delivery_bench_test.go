package loki_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/wharf-logs/wharf/internal/entry"
	"github.com/wharf-logs/wharf/internal/loki"
	"github.com/wharf-logs/wharf/internal/lokitest"
	"github.com/wharf-logs/wharf/internal/pipeline"
	"github.com/wharf-logs/wharf/internal/queue"
)

// BenchmarkDelivery measures the whole delivery path, pipeline to Loki
// client to a counting receiver on loopback, with the disk queue off, on
// but idle (the receiver keeps up), and forced to carry everything (a
// memory buffer too small to ever have room).
func BenchmarkDelivery(b *testing.B) {
	for _, mode := range []string{"no-queue", "queue-idle", "queue-always"} {
		b.Run(mode, func(b *testing.B) {
			srv := lokitest.New(lokitest.Options{CountOnly: true})
			defer srv.Close()
			client, err := loki.New(loki.Config{URL: srv.URL(), Parallelism: 2, StructuredMetadata: true}, loki.Deps{Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				b.Fatal(err)
			}
			defer client.Close()
			out := pipeline.Output{Sink: client, MaxBytes: 16 << 20, BatchBytes: 1 << 20, BatchWait: time.Second,
				MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second}
			if mode != "no-queue" {
				q, err := queue.Open(b.TempDir(), queue.Options{MaxBytes: 1 << 30})
				if err != nil {
					b.Fatal(err)
				}
				out.Queue = q
				if mode == "queue-always" {
					out.MaxBytes = 1 // never room: every submission goes through the queue
					out.SpillAfter = -1
				}
			}
			p, err := pipeline.New([]pipeline.Output{out}, pipeline.Deps{})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- p.Run(ctx) }()

			streams := make([]*entry.Stream, 8)
			for i := range streams {
				streams[i] = entry.NewStream(entry.Labels{{Name: "container", Value: fmt.Sprint("c", i)}, {Name: "stream", Value: "stdout"}},
					entry.Labels{{Name: "container_id", Value: fmt.Sprintf("%064x", i)}}, fmt.Sprint("c", i))
			}
			line := []byte(fmt.Sprintf("%-265s", "2024-11-14T22:01:02.123456Z INFO [api] order placed tenant=42 order=1234567 items=3 total=12.34 EUR took 12ms"))
			const chunk = 1024
			b.SetBytes(int64(chunk * len(line)))
			b.ResetTimer()
			sent := 0
			base := time.Now().UnixNano()
			for i := 0; b.Loop(); i++ {
				es := make([]entry.Entry, chunk)
				for j := range es {
					es[j] = entry.Entry{Time: base + int64(i*chunk+j), Line: line, Stream: streams[j%len(streams)]}
				}
				if err := p.Submit(ctx, es); err != nil {
					b.Fatal(err)
				}
				sent += chunk
			}
			// Count the time until the receiver has everything.
			for srv.Counts().Entries < sent {
				time.Sleep(time.Millisecond)
			}
			b.StopTimer()
			cancel()
			<-done
		})
	}
}
