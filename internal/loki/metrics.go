package loki

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics count the Client's push requests, labelled sink="loki". Metrics
// is an Observer: give it to the Client as Deps.Observer, and register
// Collectors. It is safe for concurrent use.
type Metrics struct {
	Requests *prometheus.CounterVec   // sink, status
	Duration *prometheus.HistogramVec // sink
}

// NewMetrics returns the push metrics, registered nowhere.
func NewMetrics() *Metrics {
	return &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_push_requests_total",
			Help: "Delivery attempts by outcome (HTTP status code, or error).",
		}, []string{"sink", "status"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "wharf_push_duration_seconds",
			Help:    "Duration of one delivery attempt.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"sink"}),
	}
}

// Observe counts one push request (Observer).
func (m *Metrics) Observe(status string, dur time.Duration, _ int) {
	m.Requests.WithLabelValues(sinkName, status).Inc()
	m.Duration.WithLabelValues(sinkName).Observe(dur.Seconds())
}

// Collectors returns the metrics, for the caller to register.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.Requests, m.Duration}
}
