// Package metrics defines every Prometheus metric wharf exports. Metrics are
// registered on a registry owned by the caller (never the global one), so
// tests can build as many agents as they like. No metric carries a
// per-container label value: container names are unbounded.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"

	"github.com/wharf-logs/wharf/internal/pipeline"
	"github.com/wharf-logs/wharf/internal/source"
	"github.com/wharf-logs/wharf/internal/spill"
)

// Metrics holds wharf's metrics. All fields are safe for concurrent use.
type Metrics struct {
	Registry *prometheus.Registry

	Source   *source.Metrics
	Pipeline *pipeline.Metrics
	Spill    *spill.Metrics

	PushRequests *prometheus.CounterVec   // sink, status
	PushDuration *prometheus.HistogramVec // sink

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
	src, pipe, sp := source.NewMetrics(), pipeline.NewMetrics(), spill.NewMetrics()
	r.MustRegister(src.Collectors()...)
	r.MustRegister(pipe.Collectors()...)
	r.MustRegister(sp.Collectors()...)
	return &Metrics{
		Registry: r,
		Source:   src,
		Pipeline: pipe,
		Spill:    sp,

		PushRequests: f.counter("wharf_push_requests_total", "Delivery attempts by outcome (HTTP status code, or error).", "sink", "status"),
		PushDuration: f.histogram("wharf_push_duration_seconds", "Duration of one delivery attempt.", "sink"),

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
