// Package linecap cuts over-long log lines the same way wherever they are
// read (Engine API streams, json-files, plain files): the kept bytes never end
// in a partial UTF-8 sequence, and a marker says how many bytes were dropped.
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
