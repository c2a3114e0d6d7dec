package filesink

import "github.com/wharf-logs/wharf/internal/sink"

func retryable(err error) error { return sink.Retryable(err, 0) }
