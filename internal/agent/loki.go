package agent

import (
	"context"
	"net/url"
	"sync"
	"time"

	"github.com/wharf-logs/wharf/internal/config"
	"github.com/wharf-logs/wharf/internal/entry"
	"github.com/wharf-logs/wharf/internal/loki"
	"github.com/wharf-logs/wharf/internal/metrics"
)

// lokiSink is the Loki client plus the limits that keep entries Loki would
// refuse out of its batches.
type lokiSink struct {
	*loki.Client
	loki.Limits
	noMetadata bool

	mu       sync.Mutex
	stripped map[*entry.Stream]*entry.Stream
}

// Send sends b, without structured metadata when it is turned off. The
// batch's streams are swapped for metadata-free copies; the entries and
// their shared streams are left alone.
func (s *lokiSink) Send(ctx context.Context, b *entry.Batch) error {
	s.strip(b)
	return s.Client.Send(ctx, b)
}

// Stage is Send in two steps (sink.Stager).
func (s *lokiSink) Stage(b *entry.Batch) (func(context.Context) error, func()) {
	s.strip(b)
	return s.Client.Stage(b)
}

// strip swaps b's streams for copies without structured metadata when it is
// turned off.
func (s *lokiSink) strip(b *entry.Batch) {
	if s.noMetadata {
		s.mu.Lock()
		if len(s.stripped) > 10000 {
			clear(s.stripped) // streams come and go with containers
		}
		for i := range b.Streams {
			st := b.Streams[i].Stream
			c := s.stripped[st]
			if c == nil {
				c = entry.NewStream(st.Labels, nil, st.Origin)
				s.stripped[st] = c
			}
			b.Streams[i].Stream = c
		}
		s.mu.Unlock()
	}
}

// pushObserver feeds the push metrics from the client's requests.
type pushObserver struct{ m *metrics.Metrics }

func (o pushObserver) Observe(status string, dur time.Duration, _ int) {
	o.m.PushRequests.WithLabelValues("loki", status).Inc()
	o.m.PushDuration.WithLabelValues("loki").Observe(dur.Seconds())
}

// newLokiSink builds the Loki client from loki.* and what Resolve made of
// its credentials and TLS files, and warns about settings that weaken TLS.
func newLokiSink(cfg config.Loki, res config.Resolved, deps Deps, m *metrics.Metrics) (*lokiSink, error) {
	log := deps.Logger.With("sink", "loki")
	if cfg.TLS.InsecureSkipVerify {
		log.Warn("loki.tls.insecure_skip_verify is set: the server's certificate is not checked, so anyone on the path can read and forge pushes", "url", res.LokiURL)
	}
	if u, err := url.Parse(res.LokiURL); err == nil && u.Scheme == "http" && cfg.TLS != (config.TLS{}) {
		log.Warn("loki.tls is set but loki.url uses http://, so TLS is not used", "url", res.LokiURL)
	}
	c, err := loki.New(loki.Config{
		URL:           res.LokiURL,
		Format:        cfg.Format,
		Gzip:          cfg.Gzip,
		TenantID:      cfg.TenantID,
		Authorization: res.LokiAuth,
		Headers:       cfg.Headers,
		TLS:           res.LokiTLS,
		Timeout:       cfg.Timeout,
		Parallelism:   cfg.Parallelism,
	}, loki.Deps{
		Logger:   log,
		Version:  deps.Version,
		Observer: pushObserver{m},
	})
	if err != nil {
		return nil, err
	}
	return &lokiSink{
		Client: c,
		Limits: loki.Limits{
			MaxAge:       cfg.MaxAge,
			MaxFuture:    cfg.MaxFuture,
			MaxLineBytes: int(cfg.MaxLineBytes),
			LongLines:    cfg.LongLines,
		},
		noMetadata: !cfg.StructuredMetadata,
		stripped:   map[*entry.Stream]*entry.Stream{},
	}, nil
}
