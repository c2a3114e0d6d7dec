// Package linecap cuts over-long log lines the same way wherever they are
// read (Engine API streams, json-files, plain files): the kept bytes never end
// in a partial UTF-8 sequence, and a marker says how many bytes were dropped.
// Lines Loki would refuse as too long are cut with the same marker.
package linecap

import (
	"strconv"
	"unicode/utf8"
)

// Cut moves an incomplete UTF-8 sequence at the end of kept, the first part
// of a cut line, to the dropped bytes, so that truncation alone never makes
// a line invalid.
func Cut(kept []byte, dropped int) ([]byte, int) {
	for i := len(kept) - 1; i >= 0 && i >= len(kept)-utf8.UTFMax+1; i-- {
		if utf8.RuneStart(kept[i]) {
			if !utf8.FullRune(kept[i:]) {
				dropped += len(kept) - i
				kept = kept[:i]
			}
			break
		}
	}
	return kept, dropped
}

// AppendMarker appends " …[truncated N bytes]" for dropped bytes, if any.
func AppendMarker(dst []byte, dropped int) []byte {
	if dropped <= 0 {
		return dst
	}
	dst = append(dst, " …[truncated "...)
	dst = strconv.AppendInt(dst, int64(dropped), 10)
	return append(dst, " bytes]"...)
}

// MarkerLen returns the length of the marker AppendMarker appends for
// dropped bytes, for a caller that must fit line and marker in a limit.
func MarkerLen(dropped int) int {
	if dropped <= 0 {
		return 0
	}
	n := len(" …[truncated  bytes]") + 1
	for ; dropped >= 10; dropped /= 10 {
		n++
	}
	return n
}

// Builder assembles a line that arrives in pieces (the parts Docker split
// it into, or the reads of a file) in bounded memory: it keeps the line's
// first max bytes and only counts the rest. Reset starts a line; the zero
// value keeps nothing until then. A Builder belongs to one reader and is not
// safe for concurrent use.
type Builder struct {
	max   int
	kept  []byte
	total int
	last  byte // the last byte added, to drop the "\r" of "\r\n"
}

// Reset starts a new line, of which the first max bytes will be kept. The
// buffer of the previous line is reused.
func (b *Builder) Reset(max int) {
	b.max, b.kept, b.total, b.last = max, b.kept[:0], 0, 0
}

// Add appends p to the line.
func (b *Builder) Add(p []byte) {
	if len(p) == 0 {
		return
	}
	if room := b.max - len(b.kept); room > 0 {
		b.kept = append(b.kept, p[:min(room, len(p))]...)
	}
	b.total += len(p)
	b.last = p[len(p)-1]
}

// End returns the line: the bytes kept and the number of bytes dropped.
// With stripCR, a "\r" that ends the line is not part of it: the line ended
// in "\r\n", whose "\n" the caller did not add. kept aliases b's buffer
// until the next Reset. When bytes were dropped, kept may end inside a
// character: pass both to Cut before use, as EndMarked does.
func (b *Builder) End(stripCR bool) (kept []byte, dropped int) {
	total := b.total
	if stripCR && total > 0 && b.last == '\r' {
		total--
	}
	kept = b.kept[:min(len(b.kept), total)]
	return kept, total - len(kept)
}

// EndMarked is End for a caller that hands the line out from b's buffer:
// it returns the line as it is to be read, cut by Cut and followed by the
// marker when bytes were dropped, valid until the next Reset, and whether
// bytes were dropped. The buffer keeps its room for the marker for the lines
// after.
func (b *Builder) EndMarked(stripCR bool) (line []byte, truncated bool) {
	kept, dropped := b.End(stripCR)
	if dropped == 0 {
		return kept, false
	}
	b.kept = AppendMarker(Cut(kept, dropped))
	return b.kept, true
}

// Release gives back b's buffer, which Reset would otherwise reuse: a reader
// that goes idle after a long line keeps none of it. Call it only between
// lines, once the last line's bytes are no longer needed.
func (b *Builder) Release() { b.kept = nil }

// Kept returns the number of bytes of the line b holds: at most max.
func (b *Builder) Kept() int { return len(b.kept) }

// Cap returns the capacity of b's buffer: the memory it holds, kept across
// lines.
func (b *Builder) Cap() int { return cap(b.kept) }
