package filesink

import "github.com/prometheus/client_golang/prometheus"

// Reasons a file of the sink is removed, the reason label of its metrics.
const (
	// ReasonMaxFiles: a rotation dropped the oldest of an origin's
	// file.max_files files.
	ReasonMaxFiles = "max_files"
	// ReasonMaxTotalBytes: the sink's files held more than
	// file.max_total_bytes.
	ReasonMaxTotalBytes = "max_total_bytes"
)

// Metrics are what the file sink counts. Whoever builds the sink registers
// them (Collectors). All fields are safe for concurrent use.
type Metrics struct {
	// FilesRemoved and BytesRemoved count the files the sink removed, by
	// reason (ReasonMaxFiles, ReasonMaxTotalBytes).
	FilesRemoved *prometheus.CounterVec
	BytesRemoved *prometheus.CounterVec
	// DiskBytes is the size of the sink's files in its directory, measured
	// at the first write and whenever the cap is checked, and kept up to
	// date with what the sink writes and removes in between.
	DiskBytes prometheus.Gauge
}

// NewMetrics returns the file sink's metrics, registered nowhere, with a
// series for each reason from the start.
func NewMetrics() *Metrics {
	m := &Metrics{
		FilesRemoved: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_file_sink_files_removed_total",
			Help: "Files the file sink removed, by reason: max_files (an origin's oldest rotated file) or max_total_bytes (the directory over its cap).",
		}, []string{"reason"}),
		BytesRemoved: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_file_sink_bytes_removed_total",
			Help: "Bytes of the files the file sink removed, by reason.",
		}, []string{"reason"}),
		DiskBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wharf_file_sink_disk_bytes",
			Help: "Size of the file sink's files in its directory (bounded by file.max_total_bytes).",
		}),
	}
	for _, r := range []string{ReasonMaxFiles, ReasonMaxTotalBytes} {
		m.FilesRemoved.WithLabelValues(r)
		m.BytesRemoved.WithLabelValues(r)
	}
	return m
}

// Collectors returns the metrics, for the caller to register.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.FilesRemoved, m.BytesRemoved, m.DiskBytes}
}

// removed counts one removed file.
func (m *Metrics) removed(reason string, size int64) {
	m.FilesRemoved.WithLabelValues(reason).Inc()
	m.BytesRemoved.WithLabelValues(reason).Add(float64(size))
}
