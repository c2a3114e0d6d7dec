package queue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/wharf-logs/wharf/internal/entry"
)

// Entry payloads, version 1. Integers are varints as in encoding/binary;
// a string is a uvarint length and its bytes.
//
//	byte     version (1)
//	uvarint  stream count S, then S streams:
//	         uvarint label count, name/value string pairs;
//	         uvarint metadata count, name/value string pairs;
//	         origin string
//	uvarint  entry count N, then N entries:
//	         uvarint stream index (< S);
//	         varint time, as the difference from the previous entry's (the first's from 0);
//	         line string
const payloadVersion = 1

// Minimum encoded sizes, used to bound counts by the bytes that remain
// before anything is allocated for them.
const (
	minStreamLen = 3 // three zero counts/lengths
	minLabelLen  = 2
	minEntryLen  = 3
)

// AppendEntries appends to dst one payload holding entries and returns the
// extended slice. Each distinct *Stream is written once per payload; Acks are
// not encoded. A nil Stream is written as an empty one.
func AppendEntries(dst []byte, entries []entry.Entry) []byte {
	// Entries come in runs of one stream and a payload holds few streams,
	// so a small array searched linearly beats a map until it overflows.
	var small [16]*entry.Stream
	streams := small[:0]
	var index map[*entry.Stream]int
	size := 1 + 2*binary.MaxVarintLen64
	var last *entry.Stream
	for i := range entries {
		e := &entries[i]
		size += 3*binary.MaxVarintLen64 + len(e.Line)
		if e.Stream == last && i > 0 {
			continue
		}
		last = e.Stream
		if index != nil {
			if _, ok := index[last]; ok {
				continue
			}
			index[last] = len(streams)
		} else if slices.Contains(streams, last) {
			continue
		}
		streams = append(streams, last)
		size += streamSize(last)
		if index == nil && len(streams) > len(small) {
			index = make(map[*entry.Stream]int, 2*len(streams))
			for k, s := range streams {
				index[s] = k
			}
		}
	}
	dst = slices.Grow(dst, size)

	dst = append(dst, payloadVersion)
	dst = binary.AppendUvarint(dst, uint64(len(streams)))
	for _, s := range streams {
		if s == nil {
			dst = append(dst, 0, 0, 0)
			continue
		}
		dst = appendLabels(dst, s.Labels)
		dst = appendLabels(dst, s.Metadata)
		dst = appendString(dst, s.Origin)
	}
	dst = binary.AppendUvarint(dst, uint64(len(entries)))
	var prev int64
	k := 0
	last = nil
	for i := range entries {
		e := &entries[i]
		if e.Stream != last || i == 0 {
			last = e.Stream
			if index != nil {
				k = index[last]
			} else {
				k = slices.Index(streams, last)
			}
		}
		dst = appendUvarint(dst, uint64(k))
		dst = binary.AppendVarint(dst, e.Time-prev)
		prev = e.Time
		dst = appendUvarint(dst, uint64(len(e.Line)))
		dst = append(dst, e.Line...)
	}
	return dst
}

func streamSize(s *entry.Stream) int {
	if s == nil {
		return minStreamLen
	}
	n := 3 * binary.MaxVarintLen64
	for _, l := range s.Labels {
		n += 2*binary.MaxVarintLen64 + len(l.Name) + len(l.Value)
	}
	for _, l := range s.Metadata {
		n += 2*binary.MaxVarintLen64 + len(l.Name) + len(l.Value)
	}
	return n + len(s.Origin)
}

func appendUvarint(dst []byte, v uint64) []byte {
	if v < 0x80 {
		return append(dst, byte(v))
	}
	return binary.AppendUvarint(dst, v)
}

func appendString(dst []byte, s string) []byte {
	return append(appendUvarint(dst, uint64(len(s))), s...)
}

func appendLabels(dst []byte, ls entry.Labels) []byte {
	dst = appendUvarint(dst, uint64(len(ls)))
	for _, l := range ls {
		dst = appendString(dst, l.Name)
		dst = appendString(dst, l.Value)
	}
	return dst
}

// maxInterned bounds a Decoder's intern map. Past it the map is started
// afresh: streams decoded before keep their pointers, and a stream seen again
// gets a new one, which costs a batch an extra group, not correctness.
const maxInterned = 100_000

// Decoder decodes payloads written by AppendEntries. It interns streams across
// payloads, so the entries of one stream share one *entry.Stream, as sinks
// group entries by that pointer. Streams are interned by their whole encoded
// form (labels, metadata and origin), not by labels alone: two containers with
// the same labels but different metadata are different streams to the
// pipeline. A Decoder is not safe for concurrent use; its zero value is ready.
type Decoder struct {
	streams map[string]*entry.Stream
	table   []*entry.Stream
}

// Decode returns the entries of payload, in the order they were encoded, with
// nil Acks. Their Lines alias payload, which the caller must therefore not
// modify or reuse while the entries live (a payload from Next is the caller's
// own and may simply be handed over). A corrupt payload returns an error,
// never a panic; what Decode allocates is bounded by a small multiple of the
// payload's size.
func (d *Decoder) Decode(payload []byte) ([]entry.Entry, error) {
	r := decodeReader{b: payload}
	if v := r.byte(); r.err == nil && v != payloadVersion {
		return nil, fmt.Errorf("queue: entry payload version %d is not supported", v)
	}
	ns := r.count(minStreamLen)
	if r.err != nil {
		return nil, r.error()
	}
	if d.streams == nil {
		d.streams = make(map[string]*entry.Stream)
	}
	d.table = d.table[:0]
	for range ns {
		start := r.off
		r.skipLabels()
		r.skipLabels()
		r.bytes()
		if r.err != nil {
			return nil, r.error()
		}
		raw := payload[start:r.off]
		s, ok := d.streams[string(raw)]
		if !ok {
			if len(d.streams) >= maxInterned {
				// A new map, as a cleared one would keep its size.
				d.streams = make(map[string]*entry.Stream)
			}
			key := string(raw)
			s = parseStream(raw, key)
			d.streams[key] = s
		}
		d.table = append(d.table, s)
	}
	n := r.count(minEntryLen)
	if r.err != nil {
		return nil, r.error()
	}
	out := make([]entry.Entry, n)
	var t int64
	for i := range out {
		k := r.uvarint()
		t += r.varint()
		line := r.bytes()
		if r.err != nil {
			return nil, r.error()
		}
		if k >= uint64(len(d.table)) {
			return nil, fmt.Errorf("queue: corrupt entry payload: stream %d of %d at byte %d", k, len(d.table), r.off)
		}
		out[i] = entry.Entry{Time: t, Line: line, Stream: d.table[k]}
	}
	if r.off != len(payload) {
		return nil, fmt.Errorf("queue: corrupt entry payload: %d bytes after the last entry", len(payload)-r.off)
	}
	clear(d.table)
	return out, nil
}

// parseStream builds a Stream from its encoded form raw, already validated
// by Decode. Its strings are slices of key, which holds the same bytes, so
// they cost one allocation together.
func parseStream(raw []byte, key string) *entry.Stream {
	r := decodeReader{b: raw}
	labels := r.labels(key)
	meta := r.labels(key)
	origin := r.str(key)
	return entry.NewStream(labels, meta, origin)
}

var errTruncated = errors.New("truncated")

// decodeReader reads varints and strings from b; after the first error every
// read returns zero and err stays set.
type decodeReader struct {
	b   []byte
	off int
	err error
}

func (r *decodeReader) error() error {
	return fmt.Errorf("queue: corrupt entry payload at byte %d: %w", r.off, r.err)
}

func (r *decodeReader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *decodeReader) byte() byte {
	if r.err != nil || r.off >= len(r.b) {
		r.fail(errTruncated)
		return 0
	}
	r.off++
	return r.b[r.off-1]
}

func (r *decodeReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	if r.off < len(r.b) && r.b[r.off] < 0x80 {
		r.off++
		return uint64(r.b[r.off-1])
	}
	v, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 {
		r.fail(errors.New("bad varint"))
		return 0
	}
	r.off += n
	return v
}

func (r *decodeReader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b[r.off:])
	if n <= 0 {
		r.fail(errors.New("bad varint"))
		return 0
	}
	r.off += n
	return v
}

// count reads a count of items of at least min bytes each and rejects one
// the remaining bytes cannot hold, so no allocation is sized by a lie.
func (r *decodeReader) count(min int) int {
	v := r.uvarint()
	if r.err == nil && v > uint64((len(r.b)-r.off)/min) {
		r.fail(fmt.Errorf("count %d exceeds the remaining bytes", v))
		return 0
	}
	return int(v)
}

// length reads a string length and checks it against the remaining bytes.
func (r *decodeReader) length() int {
	v := r.uvarint()
	if r.err == nil && v > uint64(len(r.b)-r.off) {
		r.fail(errTruncated)
		return 0
	}
	return int(v)
}

// bytes returns the next string as a slice of b whose capacity ends with it,
// so appending to one line cannot overwrite the next.
func (r *decodeReader) bytes() []byte {
	n := r.length()
	if r.err != nil {
		return nil
	}
	r.off += n
	return r.b[r.off-n : r.off : r.off]
}

// str returns the next string as a slice of key, a copy of b.
func (r *decodeReader) str(key string) string {
	n := r.length()
	if r.err != nil {
		return ""
	}
	r.off += n
	return key[r.off-n : r.off]
}

func (r *decodeReader) skipLabels() {
	n := r.count(minLabelLen)
	for i := 0; i < 2*n && r.err == nil; i++ {
		r.bytes()
	}
}

func (r *decodeReader) labels(key string) entry.Labels {
	n := r.count(minLabelLen)
	if n == 0 {
		return nil
	}
	ls := make(entry.Labels, n)
	for i := range ls {
		ls[i] = entry.Label{Name: r.str(key), Value: r.str(key)}
	}
	return ls
}
