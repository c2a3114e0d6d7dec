package files

import "github.com/prometheus/client_golang/prometheus"

// Metrics are what the plain-file source counts beyond what every source
// does (source.Metrics). Whoever builds the source registers them
// (Collectors). All fields are safe for concurrent use.
type Metrics struct {
	// Watched is the number of files being read, one reader each.
	Watched prometheus.Gauge
}

// NewMetrics returns the plain-file source's metrics, registered nowhere.
func NewMetrics() *Metrics {
	return &Metrics{
		Watched: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wharf_files_watched",
			Help: "Plain log files being read (files: entries).",
		}),
	}
}

// Collectors returns the metrics, for the caller to register.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.Watched}
}
