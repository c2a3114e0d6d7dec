package source

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the counters every source keeps, defined once for the Docker
// and the plain-file sources, labelled by how a log is read (source:
// docker_api, docker_file, file). Whoever builds the sources registers
// them once (Collectors). All fields are safe for concurrent use.
type Metrics struct {
	EntriesRead      *prometheus.CounterVec // source
	BytesRead        *prometheus.CounterVec // source
	LinesTruncated   *prometheus.CounterVec // source
	ReaderReconnects *prometheus.CounterVec // source
	// Errors counts errors reading sources by kind. The agent and the disk
	// queue count theirs here too, as source="positions" and "queue".
	Errors *prometheus.CounterVec // source, kind
}

// NewMetrics returns the sources' metrics, registered nowhere.
func NewMetrics() *Metrics {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	return &Metrics{
		EntriesRead:      counter("wharf_entries_read_total", "Log entries read from sources.", "source"),
		BytesRead:        counter("wharf_bytes_read_total", "Bytes of log lines read from sources.", "source"),
		LinesTruncated:   counter("wharf_lines_truncated_total", "Lines cut at the maximum line size when read.", "source"),
		ReaderReconnects: counter("wharf_reader_reconnects_total", "Log readers reopened after their stream broke.", "source"),
		Errors:           counter("wharf_source_errors_total", "Errors reading sources, by kind.", "source", "kind"),
	}
}

// Expose creates the read series of a source label, so that the source
// shows on /metrics at 0 before its first line.
func (m *Metrics) Expose(source string) {
	m.EntriesRead.WithLabelValues(source)
	m.BytesRead.WithLabelValues(source)
	m.LinesTruncated.WithLabelValues(source)
}

// Collectors returns the metrics, for the caller to register.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.EntriesRead, m.BytesRead, m.LinesTruncated, m.ReaderReconnects, m.Errors}
}
