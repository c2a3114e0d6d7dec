package agent

import (
	"errors"
	"log/slog"

	"github.com/wharf-logs/wharf/internal/config"
	"github.com/wharf-logs/wharf/internal/metrics"
	"github.com/wharf-logs/wharf/internal/sink"
)

func newLokiSink(cfg config.Loki, deps Deps, m *metrics.Metrics) (sink.Sink, error) {
	_ = slog.Default
	return nil, errors.New("agent: loki sink not wired")
}
