package filesink

import (
	"strconv"
	"time"

	"github.com/wharf-logs/wharf/internal/entry"
	"github.com/wharf-logs/wharf/internal/jsonenc"
)

// AppendRecord appends e as one NDJSON record:
//
//	{"time":"2026-11-26T23:29:16.123456789Z","stream":"stdout","labels":{...},"metadata":{...},"line":"..."}
//
// time is UTC with nine fractional digits, so records sort as strings and
// keep Docker's nanoseconds; stream repeats the stream label for grep's sake.
// extra fields (name, value pairs) are appended before line.
func AppendRecord(dst []byte, e *entry.Entry, extra ...string) []byte {
	dst = append(dst, `{"time":"`...)
	dst = time.Unix(0, e.Time).UTC().AppendFormat(dst, "2006-01-02T15:04:05.000000000Z")
	dst = append(dst, `","ts":`...)
	dst = strconv.AppendInt(dst, e.Time, 10)
	if s := e.Stream.Labels.Get("stream"); s != "" {
		dst = append(dst, `,"stream":`...)
		dst = jsonenc.AppendString(dst, s)
	}
	dst = append(dst, `,"labels":`...)
	dst = e.Stream.Labels.AppendJSON(dst)
	if len(e.Stream.Metadata) > 0 {
		dst = append(dst, `,"metadata":`...)
		dst = e.Stream.Metadata.AppendJSON(dst)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		dst = append(dst, ',')
		dst = jsonenc.AppendString(dst, extra[i])
		dst = append(dst, ':')
		dst = jsonenc.AppendString(dst, extra[i+1])
	}
	dst = append(dst, `,"line":`...)
	dst = jsonenc.AppendString(dst, e.Line)
	return append(dst, '}', '\n')
}
