package agent

import (
	"path/filepath"
	"time"

	"github.com/wharf-logs/wharf/internal/config"
	"github.com/wharf-logs/wharf/internal/datadir"
	"github.com/wharf-logs/wharf/internal/filesink"
	"github.com/wharf-logs/wharf/internal/loki"
	"github.com/wharf-logs/wharf/internal/pipeline"
	"github.com/wharf-logs/wharf/internal/queue"
)

// buildSinks builds the file sink (when file: or a missing loki.url asks for
// it) and the Loki client (when loki.url is set), each with the pipeline
// output that buffers, batches and retries for it.
func (a *Agent) buildSinks(res config.Resolved, deps Deps) ([]pipeline.Output, error) {
	cfg := a.cfg
	var outs []pipeline.Output
	if cfg.FileEnabled() {
		fs, err := filesink.New(fileSinkConfig(cfg), filesink.Deps{
			Logger:  deps.Logger,
			Metrics: a.metrics.FileSink,
		})
		if err != nil {
			return nil, err
		}
		a.sinks = append(a.sinks, fs)
		a.fileSink = fs
		outs = append(outs, pipeline.Output{
			Sink:       fs,
			MaxBytes:   int64(cfg.Buffer.MaxBytes),
			BatchBytes: 256 << 10,
			BatchWait:  200 * time.Millisecond,
			MinBackoff: cfg.Loki.MinBackoff,
			MaxBackoff: min(cfg.Loki.MaxBackoff, 30*time.Second),
		})
	}
	if cfg.Loki.URL != "" {
		warnLoki(cfg.Loki, res, deps.Logger)
		c, err := loki.New(lokiConfig(cfg.Loki, res), loki.Deps{
			Logger:   deps.Logger.With("sink", "loki"),
			Version:  deps.Version,
			Observer: a.metrics.Loki,
		})
		if err != nil {
			return nil, err
		}
		a.sinks = append(a.sinks, c)
		outs = append(outs, pipeline.Output{
			Sink:       c,
			MaxBytes:   int64(cfg.Buffer.MaxBytes),
			BatchBytes: int(cfg.Loki.BatchSize),
			BatchWait:  cfg.Loki.BatchWait,
			MinBackoff: cfg.Loki.MinBackoff,
			MaxBackoff: cfg.Loki.MaxBackoff,
		})
	}
	return outs, nil
}

// fileSinkConfig converts file: into the file sink's configuration.
func fileSinkConfig(cfg config.Config) filesink.Config {
	return filesink.Config{
		Dir:           cfg.FileDir(),
		MaxFileBytes:  int64(cfg.File.MaxFileBytes),
		MaxFiles:      cfg.File.MaxFiles,
		MaxTotalBytes: int64(cfg.File.MaxTotalBytes),
		Fsync:         cfg.File.Fsync,
	}
}

// openQueues opens a disk queue for each output when queue.enabled is set,
// under <data_dir>/queue/<sink>, once that directory is known to be wharf's
// alone (see checkDataDirs).
func (a *Agent) openQueues(outs []pipeline.Output) error {
	if !a.cfg.Queue.Enabled {
		return nil
	}
	for i := range outs {
		name := outs[i].Sink.Name()
		if err := datadir.CheckBelow(a.cfg.DataDir, filepath.Join("queue", name)); err != nil {
			return err
		}
		q, err := queue.Open(filepath.Join(a.cfg.DataDir, "queue", name), queueOptions(a.cfg.Queue))
		if err != nil {
			return err
		}
		a.queues = append(a.queues, q)
		outs[i].Queue = q
		a.queueMetrics(name, q)
	}
	return nil
}

// queueOptions converts queue: into a disk queue's options.
func queueOptions(c config.Queue) queue.Options {
	return queue.Options{
		MaxBytes: int64(c.MaxBytes),
		// Space is freed a whole segment at a time; small segments keep a
		// small queue from waiting on one big one.
		SegmentBytes: min(max(int64(c.MaxBytes)/16, 1<<20), 64<<20),
		SyncInterval: c.SyncInterval,
	}
}

// queueMetrics registers a disk queue's metrics and reports what opening
// it repaired or moved aside.
func (a *Agent) queueMetrics(sinkName string, q *queue.Queue) {
	m := a.metrics
	m.Registry.MustRegister(q.Collectors(sinkName)...)
	st := q.Stats()
	if st.TornBytes > 0 || st.CorruptRecords > 0 {
		a.log.Warn("disk queue recovered from damage", "sink", sinkName, "torn_bytes", st.TornBytes, "corrupt_records", st.CorruptRecords)
	}
	if n := len(st.MovedAside); n > 0 {
		msg := "disk queue files moved aside and kept; records in them are not replayed"
		if st.NewerFiles == n {
			msg = "disk queue files written by a newer wharf moved aside and kept; this version cannot read them, records in them are not replayed"
		}
		a.log.Warn(msg, "sink", sinkName, "files", st.MovedAside)
		if st.NewerFiles > 0 {
			m.Source.Errors.WithLabelValues("queue", "newer_version").Add(float64(st.NewerFiles))
		}
		if corrupt := n - st.NewerFiles; corrupt > 0 {
			m.Source.Errors.WithLabelValues("queue", "corrupt").Add(float64(corrupt))
		}
	}
}
