package loki

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/wharf-logs/wharf/internal/entry"
	"github.com/wharf-logs/wharf/internal/jsonenc"
)

// Format is the encoding of a push body, as written in loki.format.
type Format string

// Formats Loki's push endpoint takes.
const (
	// FormatProtobuf is a logproto.PushRequest in a snappy block.
	FormatProtobuf Format = "protobuf"
	// FormatJSON is Loki's JSON push body, optionally gzipped.
	FormatJSON Format = "json"
)

// Header values of a push request.
const (
	ContentTypeProtobuf = "application/x-protobuf"
	ContentTypeJSON     = "application/json"
	EncodingGzip        = "gzip"
)

// Tags of logproto.PushRequest and its messages. Every field wharf writes is
// length-delimited except the two timestamp integers.
const (
	tagPushStreams   = 1<<3 | byte(protowire.BytesType) // PushRequest.streams
	tagStreamLabels  = 1<<3 | byte(protowire.BytesType) // StreamAdapter.labels
	tagStreamEntries = 2<<3 | byte(protowire.BytesType) // StreamAdapter.entries
	tagEntryTime     = 1<<3 | byte(protowire.BytesType) // EntryAdapter.timestamp
	tagEntryLine     = 2<<3 | byte(protowire.BytesType) // EntryAdapter.line
	tagEntryMetadata = 3<<3 | byte(protowire.BytesType) // EntryAdapter.structuredMetadata
	tagPairName      = 1<<3 | byte(protowire.BytesType) // LabelPairAdapter.name
	tagPairValue     = 2<<3 | byte(protowire.BytesType) // LabelPairAdapter.value
	tagTimeSeconds   = 1<<3 | byte(protowire.VarintType)
	tagTimeNanos     = 2<<3 | byte(protowire.VarintType)
)

// AppendProtobuf appends b encoded as an uncompressed logproto.PushRequest to
// dst and returns the extended slice. Each stream's labels are its Key, each
// entry carries its stream's Metadata as structured metadata, and entries keep
// their order within the stream. Empty strings are omitted as proto3 does.
//
// The output size is computed first so dst grows at most once.
func AppendProtobuf(dst []byte, b *entry.Batch) []byte { return appendProtobuf(dst, b, true) }

// appendProtobuf is AppendProtobuf, leaving structured metadata out unless
// withMetadata is set.
func appendProtobuf(dst []byte, b *entry.Batch, withMetadata bool) []byte {
	meta := func(s *entry.StreamEntries) entry.Labels {
		if withMetadata {
			return s.Stream.Metadata
		}
		return nil
	}
	total := 0
	for i := range b.Streams {
		if s := &b.Streams[i]; len(s.Entries) > 0 {
			total += 1 + protowire.SizeBytes(streamSize(s, metadataSize(meta(s))))
		}
	}
	dst = slices.Grow(dst, total)
	for i := range b.Streams {
		s := &b.Streams[i]
		if len(s.Entries) == 0 {
			continue
		}
		md := metadataSize(meta(s))
		dst = append(dst, tagPushStreams)
		dst = protowire.AppendVarint(dst, uint64(streamSize(s, md)))
		dst = appendString(dst, tagStreamLabels, s.Stream.Key)
		// The metadata is the same for every entry of the stream: encode it
		// once, then copy those bytes. dst cannot be reallocated meanwhile,
		// it was grown to the final size above.
		mdStart, mdEnd := -1, -1
		for j := range s.Entries {
			e := &s.Entries[j]
			sec, nsec := splitTime(e.Time)
			ts := timestampSize(sec, nsec)
			dst = append(dst, tagStreamEntries)
			dst = protowire.AppendVarint(dst, uint64(entrySize(ts, len(e.Line), md)))
			dst = append(dst, tagEntryTime, byte(ts)) // ts is at most 22 bytes
			if sec != 0 {
				dst = append(dst, tagTimeSeconds)
				dst = protowire.AppendVarint(dst, uint64(sec))
			}
			if nsec != 0 {
				dst = append(dst, tagTimeNanos)
				dst = protowire.AppendVarint(dst, uint64(nsec))
			}
			if len(e.Line) > 0 {
				dst = append(dst, tagEntryLine)
				dst = protowire.AppendVarint(dst, uint64(len(e.Line)))
				dst = append(dst, e.Line...)
			}
			if md == 0 {
				continue
			}
			if mdStart >= 0 {
				dst = append(dst, dst[mdStart:mdEnd]...)
				continue
			}
			mdStart = len(dst)
			for _, p := range meta(s) {
				dst = append(dst, tagEntryMetadata)
				dst = protowire.AppendVarint(dst, uint64(pairSize(p)))
				dst = appendString(dst, tagPairName, p.Name)
				dst = appendString(dst, tagPairValue, p.Value)
			}
			mdEnd = len(dst)
		}
	}
	return dst
}

// splitTime splits Unix nanoseconds into a google.protobuf.Timestamp, whose
// nanos are never negative.
func splitTime(t int64) (sec int64, nsec int32) {
	sec, n := t/1e9, t%1e9
	if n < 0 {
		sec, n = sec-1, n+1e9
	}
	return sec, int32(n)
}

func timestampSize(sec int64, nsec int32) int {
	n := 0
	if sec != 0 {
		n += 1 + protowire.SizeVarint(uint64(sec))
	}
	if nsec != 0 {
		n += 1 + protowire.SizeVarint(uint64(nsec))
	}
	return n
}

func entrySize(ts, line, md int) int {
	n := 2 + ts // the timestamp is always present, even when zero
	if line > 0 {
		n += 1 + protowire.SizeBytes(line)
	}
	return n + md
}

func streamSize(s *entry.StreamEntries, md int) int {
	n := stringSize(s.Stream.Key)
	for j := range s.Entries {
		e := &s.Entries[j]
		sec, nsec := splitTime(e.Time)
		n += 1 + protowire.SizeBytes(entrySize(timestampSize(sec, nsec), len(e.Line), md))
	}
	return n
}

func metadataSize(md entry.Labels) int {
	n := 0
	for _, p := range md {
		n += 1 + protowire.SizeBytes(pairSize(p))
	}
	return n
}

func pairSize(p entry.Label) int { return stringSize(p.Name) + stringSize(p.Value) }

func stringSize(s string) int {
	if s == "" {
		return 0
	}
	return 1 + protowire.SizeBytes(len(s))
}

func appendString(dst []byte, tag byte, s string) []byte {
	if s == "" {
		return dst
	}
	dst = append(dst, tag)
	dst = protowire.AppendVarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// AppendJSON appends b as Loki's JSON push body to dst and returns the
// extended slice:
//
//	{"streams":[{"stream":{"a":"b"},"values":[["<unix ns>","line",{"k":"v"}]]}]}
//
// The metadata object is left out for streams without metadata. Strings are
// escaped as encoding/json does, invalid UTF-8 becoming U+FFFD.
func AppendJSON(dst []byte, b *entry.Batch) []byte { return appendJSON(dst, b, true) }

// appendJSON is AppendJSON, leaving structured metadata out unless
// withMetadata is set.
func appendJSON(dst []byte, b *entry.Batch, withMetadata bool) []byte {
	// A guess good enough to grow once for lines without escapes.
	dst = slices.Grow(dst, 16+b.Bytes+b.Entries*32+len(b.Streams)*256)
	dst = append(dst, `{"streams":[`...)
	first := true
	for i := range b.Streams {
		s := &b.Streams[i]
		if len(s.Entries) == 0 {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, `{"stream":`...)
		dst = s.Stream.Labels.AppendJSON(dst)
		dst = append(dst, `,"values":[`...)
		var md entry.Labels
		if withMetadata {
			md = s.Stream.Metadata
		}
		mdStart, mdEnd := -1, -1
		for j := range s.Entries {
			e := &s.Entries[j]
			if j > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `["`...)
			dst = strconv.AppendInt(dst, e.Time, 10)
			dst = append(dst, `",`...)
			dst = jsonenc.AppendString(dst, e.Line)
			if len(md) > 0 {
				dst = append(dst, ',')
				if mdStart >= 0 {
					// Appending from dst itself is safe even if it grows:
					// the source still points at the old array.
					dst = append(dst, dst[mdStart:mdEnd]...)
				} else {
					mdStart = len(dst)
					dst = md.AppendJSON(dst)
					mdEnd = len(dst)
				}
			}
			dst = append(dst, ']')
		}
		dst = append(dst, "]}"...)
	}
	return append(dst, "]}"...)
}

// Payload is an encoded push body and the headers that describe it. Body
// aliases the Encoder's buffer and is valid until its next Encode call.
type Payload struct {
	Body            []byte
	ContentType     string
	ContentEncoding string // "" or "gzip"
}

// Encoder turns batches into push bodies, reusing its buffers from one call to
// the next. It is not safe for concurrent use: give each sending goroutine its
// own.
type Encoder struct {
	format Format
	gzip   bool
	// noMetadata leaves structured metadata out, for a Loki that does not
	// allow it (Config.StructuredMetadata).
	noMetadata bool

	raw []byte       // the uncompressed body
	out []byte       // the snappy block
	zb  bytes.Buffer // the gzip stream
	zw  *gzip.Writer
}

// NewEncoder returns an Encoder for format, FormatProtobuf or FormatJSON.
// useGzip applies to JSON only: protobuf bodies are always snappy blocks, as
// Loki requires.
func NewEncoder(format Format, useGzip bool) (*Encoder, error) {
	switch format {
	case FormatProtobuf:
		return &Encoder{format: format}, nil
	case FormatJSON:
		return &Encoder{format: format, gzip: useGzip}, nil
	}
	return nil, fmt.Errorf("loki: unknown format %q (want %s or %s)", format, FormatProtobuf, FormatJSON)
}

// Encode encodes b. The returned Payload aliases e's buffers and is valid
// until the next call; b is only read.
func (e *Encoder) Encode(b *entry.Batch) Payload {
	if e.format == FormatProtobuf {
		e.raw = appendProtobuf(e.raw[:0], b, !e.noMetadata)
		e.out = s2.EncodeSnappy(e.out[:0], e.raw)
		return Payload{Body: e.out, ContentType: ContentTypeProtobuf}
	}
	e.raw = appendJSON(e.raw[:0], b, !e.noMetadata)
	if !e.gzip {
		return Payload{Body: e.raw, ContentType: ContentTypeJSON}
	}
	e.zb.Reset()
	if e.zw == nil {
		// Level 1: log text still shrinks several times, at a fraction of the
		// CPU the default level costs per gigabyte shipped.
		e.zw, _ = gzip.NewWriterLevel(&e.zb, gzip.BestSpeed) // the level is valid
	} else {
		e.zw.Reset(&e.zb)
	}
	// Writes to a bytes.Buffer cannot fail.
	_, _ = e.zw.Write(e.raw)
	_ = e.zw.Close()
	return Payload{Body: e.zb.Bytes(), ContentType: ContentTypeJSON, ContentEncoding: EncodingGzip}
}
