// Package metrics defines every Prometheus metric wharf exports. Metrics are
// registered on a registry owned by the caller (never the global one), so
// tests can build as many agents as they like. No metric carries a
// per-container label value: container names are unbounded.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"

	"github.com/wharf-logs/wharf/internal/source"
)

// Metrics holds wharf's metrics. All fields are safe for concurrent use.
type Metrics struct {
	Registry *prometheus.Registry

	Source *source.Metrics

	EntriesSent    *prometheus.CounterVec // sink
	BytesSent      *prometheus.CounterVec // sink
	EntriesDropped *prometheus.CounterVec // sink, reason
	DeadLettered   *prometheus.CounterVec // sink, reason

	PushRequests *prometheus.CounterVec   // sink, status
	PushRetries  *prometheus.CounterVec   // sink
	PushDuration *prometheus.HistogramVec // sink
	SinkUp       *prometheus.GaugeVec     // sink

	QueuedEntries   *prometheus.CounterVec // sink
	ReplayedEntries *prometheus.CounterVec // sink

	ContainersWatched    *prometheus.GaugeVec // read_from
	FilesWatched         prometheus.Gauge
	DockerUp             prometheus.Gauge
	DockerReconnects     prometheus.Counter
	DockerEvents         *prometheus.CounterVec // action
	ContainersDiscovered prometheus.Counter
}

// New creates the metrics and registers them, together with the standard Go
// and process collectors, on a new registry.
func New() *Metrics {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := factory{r}
	src := source.NewMetrics()
	r.MustRegister(src.Collectors()...)
	return &Metrics{
		Registry: r,
		Source:   src,

		EntriesSent:    f.counter("wharf_entries_sent_total", "Log entries a sink confirmed as delivered.", "sink"),
		BytesSent:      f.counter("wharf_bytes_sent_total", "Bytes of log lines a sink confirmed as delivered.", "sink"),
		EntriesDropped: f.counter("wharf_entries_dropped_total", "Log entries not delivered, by reason; each is also in the dead-letter file unless the reason says otherwise.", "sink", "reason"),
		DeadLettered:   f.counter("wharf_entries_dead_lettered_total", "Log entries written to the dead-letter file.", "sink", "reason"),

		PushRequests: f.counter("wharf_push_requests_total", "Delivery attempts by outcome (HTTP status code, or error).", "sink", "status"),
		PushRetries:  f.counter("wharf_push_retries_total", "Delivery attempts that will be retried.", "sink"),
		PushDuration: f.histogram("wharf_push_duration_seconds", "Duration of one delivery attempt.", "sink"),
		SinkUp:       f.gauge("wharf_sink_up", "1 when the sink's last attempt succeeded, 0 while it is failing.", "sink"),

		QueuedEntries:   f.counter("wharf_queue_entries_written_total", "Entries written to the sink's disk queue while it fell behind.", "sink"),
		ReplayedEntries: f.counter("wharf_queue_entries_replayed_total", "Entries read back from the disk queue to be sent.", "sink"),

		ContainersWatched:    f.gauge("wharf_containers_watched", "Containers whose logs are being read, by how they are read.", "read_from"),
		FilesWatched:         f.plainGauge("wharf_files_watched", "Plain log files being read (files: entries)."),
		DockerUp:             f.plainGauge("wharf_docker_up", "1 while the Docker event stream is connected."),
		DockerReconnects:     f.plainCounter("wharf_docker_reconnects_total", "Reconnections of the Docker event stream."),
		DockerEvents:         f.counter("wharf_docker_events_total", "Container events received from Docker.", "action"),
		ContainersDiscovered: f.plainCounter("wharf_containers_discovered_total", "Containers seen since start."),
	}
}

type factory struct{ r *prometheus.Registry }

func (f factory) counter(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	f.r.MustRegister(c)
	return c
}

func (f factory) gauge(name, help string, labels ...string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	f.r.MustRegister(g)
	return g
}

func (f factory) plainGauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	f.r.MustRegister(g)
	return g
}

func (f factory) plainCounter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	f.r.MustRegister(c)
	return c
}

func (f factory) histogram(name, help string, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    name,
		Help:    help,
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, labels)
	f.r.MustRegister(h)
	return h
}

// CounterFunc registers a counter whose value is read at scrape time.
func (m *Metrics) CounterFunc(name, help string, constLabels prometheus.Labels, fn func() float64) {
	m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: constLabels}, fn))
}

// GaugeFunc registers a gauge whose value is computed at scrape time.
func (m *Metrics) GaugeFunc(name, help string, constLabels prometheus.Labels, fn func() float64) {
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: constLabels}, fn))
}

// Value returns the current value of a counter or gauge, for tests and
// status output.
func Value(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		return 0
	}
	switch {
	case d.Counter != nil:
		return d.Counter.GetValue()
	case d.Gauge != nil:
		return d.Gauge.GetValue()
	case d.Untyped != nil:
		return d.Untyped.GetValue()
	}
	return 0
}
