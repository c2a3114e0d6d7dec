package docker

import "github.com/prometheus/client_golang/prometheus"

// Metrics are what the Docker source counts beyond what every source does
// (source.Metrics). Whoever builds the source registers them (Collectors).
// All fields are safe for concurrent use.
type Metrics struct {
	ContainersWatched    *prometheus.GaugeVec // read_from
	ContainersDiscovered prometheus.Counter
	// Up, Reconnects and Events are about the event stream.
	Up         prometheus.Gauge
	Reconnects prometheus.Counter
	Events     *prometheus.CounterVec // action
	// ProtocolErrors counts the Engine's answers refused or given up on
	// (see ProtocolError), by kind.
	ProtocolErrors *prometheus.CounterVec // kind
}

// NewMetrics returns the Docker source's metrics, registered nowhere.
func NewMetrics() *Metrics {
	return &Metrics{
		ContainersWatched: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "wharf_containers_watched",
			Help: "Containers whose logs are being read, by how they are read.",
		}, []string{"read_from"}),
		ContainersDiscovered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wharf_containers_discovered_total",
			Help: "Containers seen since start.",
		}),
		Up: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wharf_docker_up",
			Help: "1 while the Docker event stream is connected.",
		}),
		Reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wharf_docker_reconnects_total",
			Help: "Reconnections of the Docker event stream.",
		}),
		Events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_docker_events_total",
			Help: "Container events received from Docker.",
		}, []string{"action"}),
		ProtocolErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_docker_protocol_errors_total",
			Help: "Answers of the Docker Engine refused or given up on, by kind (event_too_large, response_too_large, header_timeout, malformed); the call is dropped and made again after a backoff.",
		}, []string{"kind"}),
	}
}

// Collectors returns the metrics, for the caller to register.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.ContainersWatched, m.ContainersDiscovered, m.Up, m.Reconnects, m.Events, m.ProtocolErrors}
}
