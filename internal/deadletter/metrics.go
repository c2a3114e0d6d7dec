package deadletter

import "github.com/prometheus/client_golang/prometheus"

// Metrics are what the dead-letter files count. Whoever builds the Writer
// registers them (Collectors). All fields are safe for concurrent use.
type Metrics struct {
	// FilesRemoved and BytesRemoved count the dead-letter files a rotation
	// removed, past loki.dead_letter.max_files.
	FilesRemoved prometheus.Counter
	BytesRemoved prometheus.Counter
}

// NewMetrics returns the dead-letter metrics, registered nowhere.
func NewMetrics() *Metrics {
	return &Metrics{
		FilesRemoved: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wharf_dead_letter_files_removed_total",
			Help: "Dead-letter files removed because a sink had loki.dead_letter.max_files of them; the entries in them are gone.",
		}),
		BytesRemoved: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wharf_dead_letter_bytes_removed_total",
			Help: "Bytes of the dead-letter files removed past loki.dead_letter.max_files.",
		}),
	}
}

// Collectors returns the metrics, for the caller to register.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.FilesRemoved, m.BytesRemoved}
}
