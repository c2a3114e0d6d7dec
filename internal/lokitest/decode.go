package lokitest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/wharf-logs/wharf/internal/entry"
	"github.com/wharf-logs/wharf/internal/loki"
)

// Limits of DecodePush. They bound the memory one push body can cost its
// receiver: twice the decompressed body, plus about 64 bytes per item.
const (
	// MaxDecodedBytes caps the decompressed size of a push body.
	MaxDecodedBytes = 64 << 20
	// MaxDecodedItems caps the streams, entries, labels and metadata pairs
	// of one push body taken together.
	MaxDecodedItems = 1 << 20
)

// Errors of DecodePush, for errors.Is.
var (
	ErrBodyTooLarge = fmt.Errorf("lokitest: push body larger than %d bytes once decompressed", MaxDecodedBytes)
	ErrTooManyItems = fmt.Errorf("lokitest: push body holds more than %d streams, entries and labels", MaxDecodedItems)
)

// PushedStream is one stream of a decoded push request.
type PushedStream struct {
	// Labels is the stream selector as sent in a protobuf body, or built from
	// the label object of a JSON body ({a="b", c="d"}, sorted by name).
	Labels  string
	Entries []PushedEntry
}

// PushedEntry is one decoded log entry.
type PushedEntry struct {
	Time int64 // Unix nanoseconds
	Line string
	// Metadata is in the order sent (sorted by name for JSON). Entries of a
	// stream with equal metadata may share the slice: treat it as read-only.
	Metadata entry.Labels
}

// DecodePush decodes a push request body sent with the given Content-Type and
// Content-Encoding headers: protobuf in a snappy block, or JSON, either one
// possibly gzipped. It never panics on malformed input and bounds the memory
// it uses (MaxDecodedBytes, MaxDecodedItems).
func DecodePush(body []byte, contentType, contentEncoding string) ([]PushedStream, error) {
	switch strings.ToLower(strings.TrimSpace(contentEncoding)) {
	case "", "identity":
	case loki.EncodingGzip:
		var err error
		if body, err = gunzip(body); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("lokitest: unsupported content encoding %q", contentEncoding)
	}
	mediaType, _, _ := strings.Cut(contentType, ";")
	switch strings.ToLower(strings.TrimSpace(mediaType)) {
	case loki.ContentTypeProtobuf:
		n, err := s2.DecodedLen(body)
		if err != nil {
			return nil, fmt.Errorf("lokitest: decode snappy block: %w", err)
		}
		if n > MaxDecodedBytes {
			return nil, ErrBodyTooLarge
		}
		raw, err := s2.Decode(make([]byte, n), body)
		if err != nil {
			return nil, fmt.Errorf("lokitest: decode snappy block: %w", err)
		}
		return decodeProtobuf(raw)
	case loki.ContentTypeJSON, "":
		// Loki reads a body without a Content-Type as JSON too.
		return decodeJSON(body)
	}
	return nil, fmt.Errorf("lokitest: unsupported content type %q", contentType)
}

func gunzip(body []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("lokitest: decode gzip body: %w", err)
	}
	defer zr.Close()
	var out bytes.Buffer
	n, err := out.ReadFrom(io.LimitReader(zr, MaxDecodedBytes+1))
	if err != nil {
		return nil, fmt.Errorf("lokitest: decode gzip body: %w", err)
	}
	if n > MaxDecodedBytes {
		return nil, ErrBodyTooLarge
	}
	return out.Bytes(), nil
}

// maxItems is MaxDecodedItems, lowered by tests.
var maxItems = MaxDecodedItems

// budget counts decoded items against maxItems.
type budget int

func (b *budget) take() error {
	if *b++; int(*b) > maxItems {
		return ErrTooManyItems
	}
	return nil
}

func protoErr(what string, err error) error {
	return fmt.Errorf("lokitest: decode protobuf %s: %w", what, err)
}

// protoDecoder decodes a logproto.PushRequest. Every string it returns is a
// substring of one copy of the body, and consecutive entries with the same
// metadata share one slice, so decoding allocates per stream rather than per
// entry.
type protoDecoder struct {
	raw   []byte
	str   string // raw, as the backing of the strings returned
	items budget
	pairs entry.Labels // scratch for one entry's metadata
}

// fields walks the fields of the message in raw[off:end], calling fn with
// each field's number, type and the span of its value in raw (for
// length-delimited fields the content, for varints the encoded varint).
func (d *protoDecoder) fields(off, end int, fn func(num protowire.Number, typ protowire.Type, off, end int) error) error {
	b := d.raw[off:end]
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b, off = b[n:], off+n
		var vOff int
		if typ == protowire.BytesType {
			var v []byte
			v, n = protowire.ConsumeBytes(b)
			vOff = off + n - len(v)
		} else {
			n = protowire.ConsumeFieldValue(num, typ, b)
			vOff = off
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		b, off = b[n:], off+n
		if err := fn(num, typ, vOff, off); err != nil {
			return err
		}
	}
	return nil
}

func decodeProtobuf(raw []byte) ([]PushedStream, error) {
	// raw is the decoder's own, fresh from snappy, and never written
	// again: the strings handed out alias it instead of a copy.
	d := &protoDecoder{raw: raw, str: unsafe.String(unsafe.SliceData(raw), len(raw))}
	var streams []PushedStream
	err := d.fields(0, len(raw), func(num protowire.Number, typ protowire.Type, off, end int) error {
		if num != 1 || typ != protowire.BytesType {
			return nil
		}
		if err := d.items.take(); err != nil {
			return err
		}
		s, err := d.stream(off, end)
		if err != nil {
			return err
		}
		streams = append(streams, s)
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrTooManyItems) {
			return nil, err
		}
		return nil, protoErr("push request", err)
	}
	return streams, nil
}

func (d *protoDecoder) stream(off, end int) (PushedStream, error) {
	var s PushedStream
	var prev entry.Labels
	err := d.fields(off, end, func(num protowire.Number, typ protowire.Type, off, end int) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case 1:
			s.Labels = d.str[off:end]
		case 2:
			if err := d.items.take(); err != nil {
				return err
			}
			e, err := d.entry(off, end, prev)
			if err != nil {
				return err
			}
			prev = e.Metadata
			s.Entries = append(s.Entries, e)
		}
		return nil
	})
	return s, err
}

// entry decodes an EntryAdapter, reusing prev as its metadata when equal.
func (d *protoDecoder) entry(off, end int, prev entry.Labels) (PushedEntry, error) {
	var e PushedEntry
	d.pairs = d.pairs[:0]
	err := d.fields(off, end, func(num protowire.Number, typ protowire.Type, off, end int) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case 1:
			t, err := decodeTimestamp(d.raw[off:end])
			if err != nil {
				return err
			}
			e.Time = t
		case 2:
			e.Line = d.str[off:end]
		case 3:
			if err := d.items.take(); err != nil {
				return err
			}
			var p entry.Label
			err := d.fields(off, end, func(num protowire.Number, typ protowire.Type, off, end int) error {
				if typ == protowire.BytesType && num == 1 {
					p.Name = d.str[off:end]
				} else if typ == protowire.BytesType && num == 2 {
					p.Value = d.str[off:end]
				}
				return nil
			})
			if err != nil {
				return err
			}
			d.pairs = append(d.pairs, p)
		}
		return nil
	})
	switch {
	case len(d.pairs) == 0:
	case slices.Equal(d.pairs, prev):
		e.Metadata = prev
	default:
		e.Metadata = slices.Clone(d.pairs)
	}
	return e, err
}

// The timestamps that fit in int64 nanoseconds, as (seconds, nanos) with
// nanos never negative, as google.protobuf.Timestamp has them.
var (
	minSec, minNsec = time.Unix(0, math.MinInt64).Unix(), time.Unix(0, math.MinInt64).Nanosecond()
	maxSec, maxNsec = time.Unix(0, math.MaxInt64).Unix(), time.Unix(0, math.MaxInt64).Nanosecond()
)

func decodeTimestamp(b []byte) (int64, error) {
	var sec, nsec int64
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, protowire.ParseError(n)
		}
		b = b[n:]
		if typ != protowire.VarintType {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return 0, protowire.ParseError(n)
			}
			b = b[n:]
			continue
		}
		x, n := protowire.ConsumeVarint(b)
		if n < 0 {
			return 0, protowire.ParseError(n)
		}
		b = b[n:]
		switch num {
		case 1:
			sec = int64(x)
		case 2:
			nsec = int64(int32(x))
		}
	}
	if nsec < 0 || nsec >= 1e9 {
		return 0, fmt.Errorf("timestamp nanos %d out of range", nsec)
	}
	if sec < minSec || sec > maxSec || sec == minSec && nsec < int64(minNsec) || sec == maxSec && nsec > int64(maxNsec) {
		return 0, fmt.Errorf("timestamp %ds %dns out of range", sec, nsec)
	}
	return sec*1e9 + nsec, nil
}

// decodeJSON reads the body token by token rather than with json.Unmarshal
// so that the number of items, and so the memory, stays bounded.
func decodeJSON(body []byte) ([]PushedStream, error) {
	d := &jsonDecoder{dec: json.NewDecoder(bytes.NewReader(body))}
	streams, err := d.request()
	if err != nil {
		if errors.Is(err, ErrTooManyItems) {
			return nil, err
		}
		return nil, fmt.Errorf("lokitest: decode json: %w", err)
	}
	if _, err := d.dec.Token(); err != io.EOF {
		return nil, errors.New("lokitest: decode json: data after the push request")
	}
	return streams, nil
}

type jsonDecoder struct {
	dec   *json.Decoder
	items budget
}

func (d *jsonDecoder) delim(want json.Delim) error {
	t, err := d.dec.Token()
	if err != nil {
		return err
	}
	if got, ok := t.(json.Delim); !ok || got != want {
		return fmt.Errorf("want %q, got %v at offset %d", want, t, d.dec.InputOffset())
	}
	return nil
}

func (d *jsonDecoder) str() (string, error) {
	t, err := d.dec.Token()
	if err != nil {
		return "", err
	}
	s, ok := t.(string)
	if !ok {
		return "", fmt.Errorf("want a string, got %v at offset %d", t, d.dec.InputOffset())
	}
	return s, nil
}

// object reads an object, calling fn for each key with the decoder placed on
// the value, which fn must consume.
func (d *jsonDecoder) object(fn func(key string) error) error {
	if err := d.delim('{'); err != nil {
		return err
	}
	for d.dec.More() {
		k, err := d.str()
		if err != nil {
			return err
		}
		if err := fn(k); err != nil {
			return err
		}
	}
	return d.delim('}')
}

// array reads an array, calling fn with the decoder placed on each element.
func (d *jsonDecoder) array(fn func() error) error {
	if err := d.delim('['); err != nil {
		return err
	}
	for d.dec.More() {
		if err := fn(); err != nil {
			return err
		}
	}
	return d.delim(']')
}

// skip consumes one value of any kind.
func (d *jsonDecoder) skip() error {
	depth := 0
	for {
		t, err := d.dec.Token()
		if err != nil {
			return err
		}
		if err := d.items.take(); err != nil {
			return err
		}
		if delim, ok := t.(json.Delim); ok {
			if delim == '{' || delim == '[' {
				depth++
			} else {
				depth--
			}
		}
		if depth == 0 {
			return nil
		}
	}
}

func (d *jsonDecoder) labels() (entry.Labels, error) {
	var l entry.Labels
	err := d.object(func(k string) error {
		if err := d.items.take(); err != nil {
			return err
		}
		v, err := d.str()
		l = append(l, entry.Label{Name: k, Value: v})
		return err
	})
	slices.SortStableFunc(l, func(a, b entry.Label) int { return strings.Compare(a.Name, b.Name) })
	return l, err
}

func (d *jsonDecoder) request() ([]PushedStream, error) {
	var streams []PushedStream
	err := d.object(func(k string) error {
		if k != "streams" {
			return d.skip()
		}
		return d.array(func() error {
			if err := d.items.take(); err != nil {
				return err
			}
			s, err := d.stream()
			streams = append(streams, s)
			return err
		})
	})
	return streams, err
}

func (d *jsonDecoder) stream() (PushedStream, error) {
	var s PushedStream
	err := d.object(func(k string) error {
		switch k {
		case "stream":
			l, err := d.labels()
			s.Labels = l.String()
			return err
		case "values":
			return d.array(func() error {
				if err := d.items.take(); err != nil {
					return err
				}
				e, err := d.value()
				s.Entries = append(s.Entries, e)
				return err
			})
		}
		return d.skip()
	})
	return s, err
}

// value reads ["<unix ns>", "line"] or ["<unix ns>", "line", {metadata}].
func (d *jsonDecoder) value() (PushedEntry, error) {
	var e PushedEntry
	if err := d.delim('['); err != nil {
		return e, err
	}
	ts, err := d.str()
	if err != nil {
		return e, err
	}
	if e.Time, err = strconv.ParseInt(ts, 10, 64); err != nil {
		return e, fmt.Errorf("timestamp %q is not Unix nanoseconds", ts)
	}
	if e.Line, err = d.str(); err != nil {
		return e, err
	}
	if d.dec.More() {
		if e.Metadata, err = d.labels(); err != nil {
			return e, err
		}
	}
	return e, d.delim(']')
}
