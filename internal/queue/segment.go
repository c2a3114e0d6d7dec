package queue

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"strconv"
)

const (
	// formatVersion is written in segment and head headers. A reader meets a
	// higher one only after a downgrade, and moves such files aside.
	formatVersion = 1

	segHeaderLen = 16 // "WQSG" | version u16 | reserved u16 | record magic u32 | crc32c u32
	frameLen     = 12 // record magic u32 | payload length u32 | crc32c(payload) u32
	segExt       = ".seg"
	segNameLen   = 20 + len(segExt)
	// maxOffset bounds the offsets a file name may claim, so that offset
	// plus size cannot overflow. Real offsets never come near it.
	maxOffset = 1 << 62

	// scanChunk is how much the reader reads at a time while looking for the
	// next record after corruption.
	scanChunk = 64 << 10
)

var (
	segFileMagic = [4]byte{'W', 'Q', 'S', 'G'}
	castagnoli   = crc32.MakeTable(crc32.Castagnoli)
	le           = binary.LittleEndian
)

// segName is the file name of the segment whose first byte is at global
// offset first. Zero padding makes lexical order offset order.
func segName(first int64) string { return fmt.Sprintf("%020d%s", first, segExt) }

// parseSegName returns the first offset named by a segment file name.
func parseSegName(name string) (int64, bool) {
	if len(name) != segNameLen || name[20:] != segExt {
		return 0, false
	}
	for i := range 20 {
		if name[i] < '0' || name[i] > '9' {
			return 0, false
		}
	}
	first, err := strconv.ParseInt(name[:20], 10, 64)
	return first, err == nil && first <= maxOffset
}

type headerState int

const (
	headerOK headerState = iota
	headerNewer
	headerBad
)

// newRecordMagic picks the record magic of a new segment. It is random, not
// a constant, because log lines are chosen by whoever runs the containers: a
// line holding a well-formed frame with a fixed magic would be taken for a
// record when the reader resynchronises after corruption. A per-segment value
// also keeps frames of an older file from being mistaken for this one's.
func newRecordMagic() uint32 {
	for {
		if m := rand.Uint32(); m != 0 {
			return m
		}
	}
}

// checkVersion reads the file magic and format version that start both
// segment and head files. A version above formatVersion means a newer wharf
// wrote the file; its layout past the version is then unknown, so the
// caller checks nothing else.
func checkVersion(b []byte, fileMagic [4]byte) headerState {
	if len(b) < 6 || !bytes.Equal(b[:4], fileMagic[:]) {
		return headerBad
	}
	switch v := le.Uint16(b[4:]); {
	case v > formatVersion:
		return headerNewer
	case v == 0:
		return headerBad
	}
	return headerOK
}

func appendSegHeader(dst []byte, magic uint32) []byte {
	start := len(dst)
	dst = append(dst, segFileMagic[:]...)
	dst = le.AppendUint16(dst, formatVersion)
	dst = le.AppendUint16(dst, 0)
	dst = le.AppendUint32(dst, magic)
	return le.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// parseSegHeader returns the record magic of a segment from its first bytes.
// A version field above formatVersion means a newer wharf wrote the file; its
// layout past the version is then unknown, so nothing else is checked.
func parseSegHeader(b []byte) (magic uint32, st headerState) {
	if st := checkVersion(b, segFileMagic); st != headerOK {
		return 0, st
	}
	if len(b) < segHeaderLen || crc32.Checksum(b[:12], castagnoli) != le.Uint32(b[12:]) {
		return 0, headerBad
	}
	magic = le.Uint32(b[8:])
	if magic == 0 {
		return 0, headerBad
	}
	return magic, headerOK
}

// appendFrame appends a whole record: frame header and payload.
func appendFrame(dst []byte, magic uint32, payload []byte) []byte {
	dst = appendFrameHeader(dst, magic, payload)
	return append(dst, payload...)
}

func appendFrameHeader(dst []byte, magic uint32, payload []byte) []byte {
	dst = le.AppendUint32(dst, magic)
	dst = le.AppendUint32(dst, uint32(len(payload)))
	return le.AppendUint32(dst, crc32.Checksum(payload, castagnoli))
}

// errShort reports that a segment file ends before a range its metadata says
// it holds (a file truncated behind the queue's back, or a length pointing
// past the end). The reader treats it like any other invalid record.
var errShort = errors.New("queue: short read")

// recordReader reads framed records from one segment file. Offsets are
// global; base is the global offset of the file's first byte. It trusts no
// length it reads: a payload is allocated only after its length has been
// checked against maxRec and against the data known to exist, so memory is
// bounded by min(maxRec, segment size) whatever the file holds.
type recordReader struct {
	r      io.ReaderAt
	base   int64
	magic  uint32
	maxRec int64
	hdr    [frameLen]byte
	chunk  []byte
}

func (rr *recordReader) readFull(b []byte, off int64) error {
	n, err := rr.r.ReadAt(b, off-rr.base)
	if n == len(b) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return errShort
	}
	return err
}

// at reads the record starting at global offset p, which must end by end.
// ok is false when no valid record starts there. The payload is read into
// dst's memory when it is large enough.
func (rr *recordReader) at(p, end int64, dst []byte) (payload []byte, ok bool, err error) {
	if end-p < frameLen {
		return nil, false, nil
	}
	switch err := rr.readFull(rr.hdr[:], p); {
	case errors.Is(err, errShort):
		return nil, false, nil
	case err != nil:
		return nil, false, err
	}
	if le.Uint32(rr.hdr[0:]) != rr.magic {
		return nil, false, nil
	}
	n := int64(le.Uint32(rr.hdr[4:]))
	if n > rr.maxRec || n > end-p-frameLen {
		return nil, false, nil
	}
	if int64(cap(dst)) >= n {
		payload = dst[:n]
	} else {
		payload = make([]byte, n)
	}
	switch err := rr.readFull(payload, p+frameLen); {
	case errors.Is(err, errShort):
		return nil, false, nil
	case err != nil:
		return nil, false, err
	}
	if crc32.Checksum(payload, castagnoli) != le.Uint32(rr.hdr[8:]) {
		return nil, false, nil
	}
	return payload, true, nil
}

// next returns the first valid record that starts at or after p and ends by
// end: its payload and its start and end offsets. Bytes between p and start
// are corrupt. found is false when no valid record is left before end; start
// and stop are then end.
func (rr *recordReader) next(p, end int64, dst []byte) (payload []byte, start, stop int64, found bool, err error) {
	for p < end {
		payload, ok, err := rr.at(p, end, dst)
		if err != nil {
			return nil, p, p, false, err
		}
		if ok {
			return payload, p, p + frameLen + int64(len(payload)), true, nil
		}
		if p, err = rr.findMagic(p+1, end); err != nil {
			return nil, p, p, false, err
		}
	}
	return nil, end, end, false, nil
}

// findMagic returns the offset of the next occurrence of the record magic in
// [p, end) where a frame still fits, or end.
func (rr *recordReader) findMagic(p, end int64) (int64, error) {
	var pat [4]byte
	le.PutUint32(pat[:], rr.magic)
	if rr.chunk == nil {
		rr.chunk = make([]byte, scanChunk)
	}
	for end-p >= frameLen {
		want := min(int64(len(rr.chunk)), end-p)
		n, err := rr.r.ReadAt(rr.chunk[:want], p-rr.base)
		if err != nil && !errors.Is(err, io.EOF) {
			return p, err
		}
		if i := bytes.Index(rr.chunk[:n], pat[:]); i >= 0 {
			return p + int64(i), nil
		}
		if int64(n) < want {
			break // the file ends early
		}
		// Keep the last three bytes: the magic may straddle two chunks.
		p += int64(n) - 3
	}
	return end, nil
}
