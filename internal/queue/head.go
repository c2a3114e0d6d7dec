package queue

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/wharf-logs/wharf/internal/datadir"
)

const (
	headName = "head"
	// oldHeadTmpName is the fixed temporary name older versions of wharf
	// wrote the head under; a crash may have left one.
	oldHeadTmpName = "head.tmp"
	headLen        = 20 // "WQHD" | version u16 | reserved u16 | head int64 | crc32c u32
)

var headFileMagic = [4]byte{'W', 'Q', 'H', 'D'}

func appendHead(dst []byte, head int64) []byte {
	start := len(dst)
	dst = append(dst, headFileMagic[:]...)
	dst = le.AppendUint16(dst, formatVersion)
	dst = le.AppendUint16(dst, 0)
	dst = le.AppendUint64(dst, uint64(head))
	return le.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// parseHead decodes a head file. As for segments, a newer version is
// recognised from the first six bytes alone.
func parseHead(b []byte) (int64, headerState) {
	if st := checkVersion(b, headFileMagic); st != headerOK {
		return 0, st
	}
	if len(b) != headLen || crc32.Checksum(b[:16], castagnoli) != le.Uint32(b[16:]) {
		return 0, headerBad
	}
	head := int64(le.Uint64(b[8:]))
	if head < 0 {
		return 0, headerBad
	}
	return head, headerOK
}

// readHead loads the head file. ok is false when there is none, or when it
// could not be used and was moved aside; the queue then starts from its
// oldest segment.
func (q *Queue) readHead() (head int64, ok bool, err error) {
	path := filepath.Join(q.dir, headName)
	f, err := datadir.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("queue: %w", err)
	}
	// Read one byte more than a head holds, so an oversized file is caught
	// without reading all of it.
	b, err := io.ReadAll(io.LimitReader(f, headLen+1))
	f.Close()
	if err != nil {
		return 0, false, fmt.Errorf("queue: %w", err)
	}
	head, st := parseHead(b)
	switch st {
	case headerOK:
		return head, true, nil
	case headerNewer:
		return 0, false, q.moveAside(path, "newer")
	default:
		return 0, false, q.moveAside(path, "corrupt")
	}
}

// writeHead replaces the head file atomically: a reader after a crash finds
// the old head or the new one, never a mix.
func (q *Queue) writeHead(head int64) error {
	if err := datadir.WriteFile(filepath.Join(q.dir, headName), appendHead(nil, head), q.syncFile); err != nil {
		return fmt.Errorf("queue: %w", err)
	}
	return nil
}

// syncDir makes creations, renames and truncations of entries in the queue
// directory durable.
func (q *Queue) syncDir() error {
	d, err := os.Open(q.dir)
	if err != nil {
		return err
	}
	err = q.syncFile(d)
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// moveAside renames a file the queue cannot use to <path>.<why>-<unix time>,
// keeping it for a human instead of deleting what may be someone's logs, and
// reports it in Stats.
func (q *Queue) moveAside(path, why string) error {
	base := path + "." + why + "-" + strconv.FormatInt(time.Now().Unix(), 10)
	target := base
	for i := 1; ; i++ {
		if _, err := os.Lstat(target); errors.Is(err, fs.ErrNotExist) {
			break
		}
		target = base + "-" + strconv.Itoa(i)
	}
	if err := os.Rename(path, target); err != nil {
		return fmt.Errorf("queue: moving aside a %s file: %w", why, err)
	}
	q.stats.MovedAside = append(q.stats.MovedAside, target)
	if why == "newer" {
		q.stats.NewerFiles++
	}
	return nil
}
