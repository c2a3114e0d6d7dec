// Package entry defines the values that flow through wharf: log entries, the
// streams they belong to, the batches sinks deliver, the acknowledgement
// counters that let a source learn when its entries are confirmed, and the
// in-order advance over those confirmations.
//
// Data flows one way, sources -> pipeline -> sinks; confirmations flow back
// through [Ack], and [Ordered] turns them into an advance in hand-off order.
package entry

import (
	"hash/maphash"
	"strconv"
	"strings"

	"github.com/wharf-logs/wharf/internal/jsonenc"
)

// Label is one name/value pair of a stream's labels or of an entry's
// structured metadata.
type Label struct {
	Name  string
	Value string
}

// Labels is a label set sorted by name with unique names.
type Labels []Label

// String renders l in Loki's stream selector syntax, e.g. {a="b", c="d"}.
func (l Labels) String() string {
	var b strings.Builder
	b.WriteByte('{')
	for i, p := range l {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(p.Name)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(p.Value))
	}
	b.WriteByte('}')
	return b.String()
}

// AppendJSON appends l as a JSON object of strings, {"a":"b","c":"d"}, in
// its order: the form of labels and structured metadata in the file sink's
// records, dead letters and Loki's JSON push.
func (l Labels) AppendJSON(dst []byte) []byte {
	dst = append(dst, '{')
	for i, p := range l {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = jsonenc.AppendString(dst, p.Name)
		dst = append(dst, ':')
		dst = jsonenc.AppendString(dst, p.Value)
	}
	return append(dst, '}')
}

// Get returns the value of the label called name, or "".
func (l Labels) Get(name string) string {
	for _, p := range l {
		if p.Name == name {
			return p.Value
		}
	}
	return ""
}

// Stream is the destination of a run of entries: a label set plus the
// structured metadata attached to every entry of the stream. A Stream is
// immutable once handed to the pipeline and is shared by all its entries, so
// sinks group entries by the *Stream pointer.
type Stream struct {
	// Labels are the Loki stream labels, sorted and sanitised.
	Labels Labels
	// Metadata is structured metadata sent with each entry (e.g. the
	// container id), kept out of the labels to bound cardinality.
	Metadata Labels
	// Key is Labels.String(), computed once.
	Key string
	// Hash is a hash of Key, used to spread streams over sink shards.
	Hash uint64
	// Origin names what produced the stream for humans and for the file
	// sink's file names: a container name or a file path.
	Origin string
}

var seed = maphash.MakeSeed()

// NewStream returns a Stream for the given sorted labels and metadata.
func NewStream(labels, metadata Labels, origin string) *Stream {
	key := labels.String()
	return &Stream{
		Labels:   labels,
		Metadata: metadata,
		Key:      key,
		Hash:     maphash.String(seed, key),
		Origin:   origin,
	}
}

// Entry is one log line. The Line bytes are owned by the entry once it has
// been handed to the pipeline and must not be modified by anyone.
type Entry struct {
	// Time is Docker's (or the file's) timestamp in Unix nanoseconds.
	Time int64
	// Line is the log line without its trailing newline.
	Line []byte
	// Stream is the stream the entry belongs to; never nil.
	Stream *Stream
	// Ack is told when the entry is confirmed (delivered, dead-lettered or
	// durably queued); it may be nil when nobody waits.
	Ack *Ack
}

// Overhead is the number of bytes an entry is accounted for beyond its line
// when buffers are sized.
const Overhead = 48

// Size returns the bytes e is accounted for in buffer budgets.
func (e *Entry) Size() int { return len(e.Line) + Overhead }
