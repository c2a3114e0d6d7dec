package loki_test

import (
	"testing"

	"github.com/wharf-logs/wharf/internal/loki"
	"github.com/wharf-logs/wharf/internal/lokitest"
)

func benchmarkEncode(bm *testing.B, format loki.Format, gz bool) {
	b := lokitest.BenchBatch(1 << 20)
	enc, err := loki.NewEncoder(format, gz)
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
	b.Run("protobuf+snappy", func(b *testing.B) { benchmarkEncode(b, loki.FormatProtobuf, false) })
	b.Run("json", func(b *testing.B) { benchmarkEncode(b, loki.FormatJSON, false) })
	b.Run("json+gzip", func(b *testing.B) { benchmarkEncode(b, loki.FormatJSON, true) })
}

// BenchmarkAppendProtobuf isolates the protobuf encoding from compression.
func BenchmarkAppendProtobuf(bm *testing.B) {
	b := lokitest.BenchBatch(1 << 20)
	dst := loki.AppendProtobuf(nil, b)
	bm.SetBytes(int64(b.Bytes))
	bm.ReportAllocs()
	for bm.Loop() {
		dst = loki.AppendProtobuf(dst[:0], b)
	}
}
