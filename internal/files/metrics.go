package files

import "github.com/prometheus/client_golang/prometheus"

// Metrics are what the plain-file source counts beyond what every source
// does (source.Metrics). Whoever builds the source registers them
// (Collectors). All fields are safe for concurrent use.
type Metrics struct {
	// Watched is the number of files being read, one reader each.
	Watched prometheus.Gauge
	// Skipped counts the paths the patterns match that are not read, by
	// reason, once for as long as each stays skipped for that reason.
	Skipped *prometheus.CounterVec
	// OverLimit is the number of files matched but not read because
	// max_followed_files are followed.
	OverLimit prometheus.Gauge
}

// NewMetrics returns the plain-file source's metrics, registered nowhere.
func NewMetrics() *Metrics {
	m := &Metrics{
		Watched: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wharf_files_watched",
			Help: "Plain log files being read (files: entries).",
		}),
		Skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_files_skipped_total",
			Help: "Paths the files: patterns match that are not read, by reason, counted once while each stays skipped.",
		}, []string{"reason"}),
		OverLimit: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wharf_files_over_limit",
			Help: "Files the files: patterns match that are not read because max_followed_files are followed.",
		}),
	}
	for _, r := range skipReasons {
		m.Skipped.WithLabelValues(r) // every reason shows from the start
	}
	return m
}

// Collectors returns the metrics, for the caller to register.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.Watched, m.Skipped, m.OverLimit}
}
