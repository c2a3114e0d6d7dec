package agent

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/wharf-logs/wharf/internal/deadletter"
	"github.com/wharf-logs/wharf/internal/docker"
	"github.com/wharf-logs/wharf/internal/files"
	"github.com/wharf-logs/wharf/internal/filesink"
	"github.com/wharf-logs/wharf/internal/loki"
	"github.com/wharf-logs/wharf/internal/pipeline"
	"github.com/wharf-logs/wharf/internal/source"
	"github.com/wharf-logs/wharf/internal/spill"
)

// metrics are the agent's registry and the metrics of the parts it builds.
// Each part defines and counts its own; the agent alone registers them, on
// a registry of its own (never the global one, so tests can build as many
// agents as they like). The scrape-time collectors of the positions store,
// the disk queues and the pipeline are registered as those are built. No
// metric carries a per-container label value: container names are
// unbounded.
type metrics struct {
	Registry *prometheus.Registry

	Source   *source.Metrics
	Pipeline *pipeline.Metrics
	Spill    *spill.Metrics
	Docker   *docker.Metrics
	Files    *files.Metrics
	FileSink *filesink.Metrics
	Loki     *loki.Metrics

	DeadLetter *deadletter.Metrics
}

// newMetrics makes every part's metrics and registers them, with the
// standard Go and process collectors, on a new registry. The metrics of
// the Docker and file sources and of the file sink are registered even
// when those are off, so a scrape always shows the same families.
func newMetrics() *metrics {
	m := &metrics{
		Registry:   prometheus.NewRegistry(),
		Source:     source.NewMetrics(),
		Pipeline:   pipeline.NewMetrics(),
		Spill:      spill.NewMetrics(),
		Docker:     docker.NewMetrics(),
		Files:      files.NewMetrics(),
		FileSink:   filesink.NewMetrics(),
		DeadLetter: deadletter.NewMetrics(),
		Loki:       loki.NewMetrics(),
	}
	m.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, cs := range [][]prometheus.Collector{
		m.Source.Collectors(), m.Pipeline.Collectors(), m.Spill.Collectors(),
		m.Docker.Collectors(), m.Files.Collectors(), m.FileSink.Collectors(), m.Loki.Collectors(), m.DeadLetter.Collectors(),
	} {
		m.Registry.MustRegister(cs...)
	}
	return m
}

// lost is what sources count log data lost before it could be read in:
// the pipeline's wharf_entries_dropped_total with sink="none".
func (m *metrics) lost() *prometheus.CounterVec {
	return m.Pipeline.EntriesDropped.MustCurryWith(prometheus.Labels{"sink": "none"})
}

// queueErrors is what the spools count failed disk queue writes in: the
// sources' wharf_source_errors_total with source="queue".
func (m *metrics) queueErrors() *prometheus.CounterVec {
	return m.Source.Errors.MustCurryWith(prometheus.Labels{"source": "queue"})
}
