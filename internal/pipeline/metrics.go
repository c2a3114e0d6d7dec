package pipeline

import "github.com/prometheus/client_golang/prometheus"

// Metrics are what the pipeline counts for each sink (label sink). Whoever
// builds the pipeline registers them (Collectors), together with the
// gauges the Pipeline computes at scrape time (Pipeline.Collectors). All
// fields are safe for concurrent use.
type Metrics struct {
	EntriesSent *prometheus.CounterVec // sink
	BytesSent   *prometheus.CounterVec // sink
	// EntriesDropped counts entries not delivered, by reason. Sources
	// count the log data they lost before reading it here too, as
	// sink="none", and the spools undecodable queue records.
	EntriesDropped *prometheus.CounterVec // sink, reason
	DeadLettered   *prometheus.CounterVec // sink, reason
	PushRetries    *prometheus.CounterVec // sink
	SinkUp         *prometheus.GaugeVec   // sink
	// SinkProbes counts the requests without entries that ask a failing
	// sink's receiver whether it takes requests again, by result (up,
	// down).
	SinkProbes *prometheus.CounterVec // sink, result
}

// NewMetrics returns the pipeline's metrics, registered nowhere.
func NewMetrics() *Metrics {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	return &Metrics{
		EntriesSent:    counter("wharf_entries_sent_total", "Log entries a sink confirmed as delivered.", "sink"),
		BytesSent:      counter("wharf_bytes_sent_total", "Bytes of log lines a sink confirmed as delivered.", "sink"),
		EntriesDropped: counter("wharf_entries_dropped_total", "Log entries not delivered, by reason; each is also in the dead-letter file unless the reason says otherwise.", "sink", "reason"),
		DeadLettered:   counter("wharf_entries_dead_lettered_total", "Log entries written to the dead-letter file.", "sink", "reason"),
		PushRetries:    counter("wharf_push_retries_total", "Delivery attempts that will be retried.", "sink"),
		SinkUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "wharf_sink_up",
			Help: "1 when the sink's last attempt succeeded, 0 while it is failing.",
		}, []string{"sink"}),
		SinkProbes: counter("wharf_sink_probes_total", "Probes of a failing sink's receiver (requests without entries) while a batch waits to be retried, by result: up or down.", "sink", "result"),
	}
}

// Collectors returns the metrics, for the caller to register.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.EntriesSent, m.BytesSent, m.EntriesDropped, m.DeadLettered, m.PushRetries, m.SinkUp, m.SinkProbes}
}

// Collectors returns the gauges computed from the pipeline's state at
// scrape time, three per sink, for the caller to register.
func (p *Pipeline) Collectors() []prometheus.Collector {
	var cs []prometheus.Collector
	for _, o := range p.outs {
		cs = append(cs, o.gauges()...)
	}
	return cs
}

// gauges are the output's scrape-time gauges: what it buffers, the age of
// the oldest entry it has not had confirmed, and how long it has been
// retrying.
func (o *output) gauges() []prometheus.Collector {
	gauge := func(name, help string, fn func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: prometheus.Labels{"sink": o.name}}, fn)
	}
	return []prometheus.Collector{
		gauge("wharf_sink_queue_bytes", "Bytes of entries buffered in memory for the sink, waiting to be sent.",
			func() float64 { return float64(o.bufferedBytes()) }),
		gauge("wharf_oldest_unsent_entry_age_seconds", "Age of the oldest entry buffered for the sink and not yet confirmed (0 when none).",
			func() float64 {
				var oldest int64
				for _, s := range o.shards {
					if t := s.oldest(); t != 0 && (oldest == 0 || t < oldest) {
						oldest = t
					}
				}
				if oldest == 0 {
					return 0
				}
				return max(0, float64(o.p.deps.Now().UnixNano()-oldest)/1e9)
			}),
		gauge("wharf_sink_retrying_seconds", "How long the sink's longest failing batch has been retried (0 when none is).",
			func() float64 {
				var since int64
				for _, s := range o.shards {
					if t := s.failingSince(); t != 0 && (since == 0 || t < since) {
						since = t
					}
				}
				if since == 0 {
					return 0
				}
				return float64(o.p.deps.Now().UnixNano()-since) / 1e9
			}),
	}
}
