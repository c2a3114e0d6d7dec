// Package source holds what every log source (containers, plain files)
// shares: the Submitter it hands entries to, where it starts reading a log
// that was there before wharf, the cap on the label values it sets, and the
// metrics every source counts.
package source

import (
	"context"
	"unicode/utf8"

	"github.com/wharf-logs/wharf/internal/entry"
)

// Submitter takes entries from a source; pipeline.Pipeline implements it.
// Submit may block while the pipeline has no room, until ctx ends.
type Submitter interface {
	Submit(ctx context.Context, entries []entry.Entry) error
}

// StartAt is where a source starts reading a log that existed before wharf
// started and has no saved position (docker.start_at, files[].start_at).
type StartAt string

const (
	// StartEnd ships only what is written from then on.
	StartEnd StartAt = "end"
	// StartBeginning ships the whole log.
	StartBeginning StartAt = "beginning"
)

// MaxLabelValueBytes caps the label values sources set: Loki's default
// max_label_value_length.
const MaxLabelValueBytes = 2048

// CapLabelValue bounds a label value to MaxLabelValueBytes without splitting
// a UTF-8 sequence.
func CapLabelValue(v string) string {
	if len(v) <= MaxLabelValueBytes {
		return v
	}
	v = v[:MaxLabelValueBytes]
	for len(v) > 0 && !utf8.ValidString(v) {
		v = v[:len(v)-1]
	}
	return v
}
