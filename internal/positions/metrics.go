package positions

import "github.com/prometheus/client_golang/prometheus"

// Collectors returns the store's metrics, read from it at scrape time, for
// the caller to register: the failed writes of the positions file.
func (s *Store) Collectors() []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "wharf_positions_write_errors_total",
			Help: "Failed writes of the positions file; the positions are kept in memory and written at the next success.",
		}, func() float64 { return float64(s.WriteErrors()) }),
	}
}
