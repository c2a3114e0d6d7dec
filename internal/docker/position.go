package docker

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/wharf-logs/wharf/internal/dockerlog"
	"github.com/wharf-logs/wharf/internal/tail"
)

// position is a point in a container's log.
//
// It is kept per stream: the Docker timestamp of the last line read from
// stdout and from stderr, and how many lines of that stream carried exactly
// that timestamp (timestamps can repeat and the API's since parameter is
// inclusive). One time per container would not do: Docker's two copier
// goroutines stamp lines when they read them and then take turns writing the
// log, so across streams the log is only roughly in time order, and resuming
// from the newest line read could skip an older line of the other stream
// written after it. Within a stream, times never go backwards.
//
// When the log was read from its json-file, the position also names the
// file and the place in it, which is exact and cheap to resume from; the
// times still let the Engine API take over when the file cannot be read.
type position struct {
	streams [2]streamPos // stdout, stderr
	hasFile bool
	file    filePos
}

type streamPos struct {
	time  int64
	count int
}

// filePos is a place in a json-file log: the file (Offset is where to
// reopen it, the line's Resume) and the line's position in it.
type filePos struct {
	tail tail.Position
	line dockerlog.FilePosition
}

// since is the time to reopen the log from through the API: the older
// stream's position, but no more than sinceWindow before the newer one,
// since a line is stamped only moments before it is written and replaying a
// quiet stream's whole history would cost more than it could save.
func (p position) since() int64 {
	a, b := p.streams[0].time, p.streams[1].time
	lo, hi := min(a, b), max(a, b)
	return max(lo, hi-int64(sinceWindow))
}

// newest is the time of the last line read, of either stream.
func (p position) newest() int64 { return max(p.streams[0].time, p.streams[1].time) }

// sinceWindow bounds how far before the newest line a reopen reaches back.
const sinceWindow = 10 * time.Second

// positionPrefix starts the positions keys of containers.
const positionPrefix = "docker/"

func positionKey(id string) string { return positionPrefix + id }

func startPosition(t int64) position {
	return position{streams: [2]streamPos{{time: t}, {time: t}}}
}

// String encodes p for the positions file:
//
//	v1 <stdout time> <stdout count> <stderr time> <stderr count>
//	f1 <the same four> <end> <seen> <resume> <tail position>
//
// the second when the log was read from its file.
func (p position) String() string {
	b := make([]byte, 0, 160)
	if p.hasFile {
		b = append(b, "f1"...)
	} else {
		b = append(b, "v1"...)
	}
	for _, st := range p.streams {
		b = append(b, ' ')
		b = strconv.AppendInt(b, st.time, 10)
		b = append(b, ' ')
		b = strconv.AppendInt(b, int64(st.count), 10)
	}
	if !p.hasFile {
		return string(b)
	}
	l := p.file.line
	for _, v := range []int64{l.End, l.Seen, l.Resume} {
		b = append(b, ' ')
		b = strconv.AppendInt(b, v, 10)
	}
	b = append(b, ' ')
	b = append(b, p.file.tail.String()...)
	return string(b)
}

// parsePosition decodes what String wrote.
func parsePosition(s string) (position, error) {
	f := strings.Fields(s)
	bad := func(what string) (position, error) {
		return position{}, fmt.Errorf("docker: position %q: %s", s, what)
	}
	if len(f) == 0 || (f[0] == "v1" && len(f) != 5) || (f[0] == "f1" && len(f) != 14) || (f[0] != "v1" && f[0] != "f1") {
		return bad(`want "v1 <time> <count> <time> <count>" or "f1 <time> <count> <time> <count> <end> <seen> <resume> <file position>"`)
	}
	var n [7]int64
	for i := 1; i < min(len(f), 8); i++ {
		v, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil || v < 0 || (i%2 == 0 && i <= 4 && v > 1<<31) {
			return bad("bad number " + strconv.Quote(f[i]))
		}
		n[i-1] = v
	}
	p := position{streams: [2]streamPos{{n[0], int(n[1])}, {n[2], int(n[3])}}}
	if f[0] == "f1" {
		tp, err := tail.ParsePosition(strings.Join(f[8:], " "))
		if err != nil {
			return bad(err.Error())
		}
		p.hasFile = true
		p.file = filePos{tail: tp, line: dockerlog.FilePosition{End: n[4], Seen: n[5], Resume: n[6]}}
		if !(p.file.line.Resume <= p.file.line.Seen && p.file.line.End <= p.file.line.Seen) {
			return bad("offsets out of order")
		}
	}
	return p, nil
}
