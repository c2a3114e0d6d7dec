package spill

import "github.com/prometheus/client_golang/prometheus"

// Metrics are what the spools count for each sink (label sink). Spools
// only count; whoever owns the registry registers them (Collectors). All
// fields are safe for concurrent use.
type Metrics struct {
	EntriesWritten  *prometheus.CounterVec // sink
	EntriesReplayed *prometheus.CounterVec // sink
}

// NewMetrics returns the spools' metrics, registered nowhere.
func NewMetrics() *Metrics {
	return &Metrics{
		EntriesWritten: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_queue_entries_written_total",
			Help: "Entries written to the sink's disk queue while it fell behind.",
		}, []string{"sink"}),
		EntriesReplayed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_queue_entries_replayed_total",
			Help: "Entries read back from the disk queue to be sent.",
		}, []string{"sink"}),
	}
}

// Collectors returns the metrics, for the caller to register.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.EntriesWritten, m.EntriesReplayed}
}
