package dockerlog

import (
	"bytes"

	"github.com/wharf-logs/wharf/internal/linecap"
)

// What the tests read lines with: one allocation per line, rather than the
// shared buffers wharf's readers use.

// Decode is decode without a cache of the last hour.
func Decode(line, dst []byte) (Record, []byte, error) {
	var stamps stampCache
	return decode(line, dst, &stamps)
}

// markerMax holds any truncation marker.
const markerMax = 48

// Next is NextAppend into a line of its own.
func (r *FileReader) Next() (Line, error) {
	l, out, err := r.next(r.out[:0], false)
	r.out = out[:0]
	if err != nil {
		return Line{}, err
	}
	l.Text = bytes.Clone(l.Text)
	return l, nil
}

// Next is NextAppend into a line of its own.
func (s *Stream) Next() (Line, error) {
	o, err := s.next()
	if err != nil {
		return Line{}, err
	}
	var mb [markerMax]byte
	marker := linecap.AppendMarker(mb[:0], o.dropped)
	line := make([]byte, len(o.kept)+len(marker))
	copy(line[copy(line, o.kept):], marker)
	return Line{Time: o.time, Stream: o.kind, Text: line, Truncated: o.dropped > 0, Partial: o.partial}, nil
}
