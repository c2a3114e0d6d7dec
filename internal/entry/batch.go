package entry

// Batch is a set of entries grouped by stream, in the order they were added
// within each stream. A sink sends a batch in one request; the pipeline owns it
// and reuses it after the send has returned, so a sink must not retain it.
type Batch struct {
	Streams []StreamEntries
	// Entries and Bytes count all entries and their line bytes.
	Entries int
	Bytes   int
	// Oldest is the smallest entry time in the batch (Unix nanoseconds).
	Oldest int64

	index map[*Stream]int
}

// StreamEntries is the part of a batch that belongs to one stream.
type StreamEntries struct {
	Stream  *Stream
	Entries []Entry
}

// Add appends e to the batch.
func (b *Batch) Add(e Entry) {
	if b.index == nil {
		b.index = make(map[*Stream]int)
	}
	i, ok := b.index[e.Stream]
	if !ok {
		i = len(b.Streams)
		if i < cap(b.Streams) {
			b.Streams = b.Streams[:i+1]
			b.Streams[i].Stream = e.Stream
			b.Streams[i].Entries = b.Streams[i].Entries[:0]
		} else {
			b.Streams = append(b.Streams, StreamEntries{Stream: e.Stream})
		}
		b.index[e.Stream] = i
	}
	b.Streams[i].Entries = append(b.Streams[i].Entries, e)
	if b.Entries == 0 || e.Time < b.Oldest {
		b.Oldest = e.Time
	}
	b.Entries++
	b.Bytes += len(e.Line)
}

// Reset empties the batch, keeping its memory for reuse. Entries are cleared
// so their lines can be collected.
func (b *Batch) Reset() {
	for i := range b.Streams {
		clear(b.Streams[i].Entries)
		b.Streams[i].Entries = b.Streams[i].Entries[:0]
		b.Streams[i].Stream = nil
	}
	b.Streams = b.Streams[:0]
	clear(b.index)
	b.Entries, b.Bytes, b.Oldest = 0, 0, 0
}

// Ack releases one confirmation for every entry in the batch.
func (b *Batch) Ack() {
	for i := range b.Streams {
		AckEntries(b.Streams[i].Entries)
	}
}
