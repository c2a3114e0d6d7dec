// Package metrics registers every Prometheus metric wharf exports on a
// registry owned by the caller (never the global one), so tests can build
// as many agents as they like. No metric carries a per-container label
// value: container names are unbounded.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"

	"github.com/wharf-logs/wharf/internal/docker"
	"github.com/wharf-logs/wharf/internal/files"
	"github.com/wharf-logs/wharf/internal/loki"
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
	Docker   *docker.Metrics
	Files    *files.Metrics
	Loki     *loki.Metrics
}

// New creates the metrics and registers them, together with the standard Go
// and process collectors, on a new registry.
func New() *Metrics {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &Metrics{
		Registry: r,
		Source:   source.NewMetrics(),
		Pipeline: pipeline.NewMetrics(),
		Spill:    spill.NewMetrics(),
		Docker:   docker.NewMetrics(),
		Files:    files.NewMetrics(),
		Loki:     loki.NewMetrics(),
	}
	for _, cs := range [][]prometheus.Collector{m.Source.Collectors(), m.Pipeline.Collectors(), m.Spill.Collectors(), m.Docker.Collectors(), m.Files.Collectors(), m.Loki.Collectors()} {
		r.MustRegister(cs...)
	}
	return m
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
