package queue

import "github.com/prometheus/client_golang/prometheus"

// Collectors returns the queue's metrics, read from Bytes and Stats at
// scrape time and labelled with the sink whose entries it holds, for the
// caller to register.
func (q *Queue) Collectors(sink string) []prometheus.Collector {
	labels := prometheus.Labels{"sink": sink}
	gauge := func(name, help string, fn func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: labels}, fn)
	}
	counter := func(name, help string, fn func() float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels}, fn)
	}
	return []prometheus.Collector{
		gauge("wharf_queue_bytes", "Bytes in the sink's disk queue not yet delivered.",
			func() float64 { return float64(q.Bytes()) }),
		gauge("wharf_queue_disk_bytes", "Size of the sink's disk queue files (bounded by queue.max_bytes).",
			func() float64 { return float64(q.Stats().DiskBytes) }),
		counter("wharf_queue_corrupt_records_total", "Corrupt stretches of the disk queue skipped on reading.",
			func() float64 { return float64(q.Stats().CorruptRecords) }),
		counter("wharf_queue_torn_bytes_total", "Bytes of a record cut short by a crash, removed when the queue was opened.",
			func() float64 { return float64(q.Stats().TornBytes) }),
		counter("wharf_queue_sync_errors_total", "Failed fsyncs of the sink's disk queue; the entries they covered stay unconfirmed and are read again after a restart.",
			func() float64 { return float64(q.Stats().SyncErrors) }),
	}
}
