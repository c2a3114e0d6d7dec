package agent

import (
	"log/slog"
	"net/url"

	"github.com/wharf-logs/wharf/internal/config"
	"github.com/wharf-logs/wharf/internal/loki"
)

// lokiConfig converts loki.* and what Resolve made of its credentials and
// TLS files into the Loki client's configuration.
func lokiConfig(c config.Loki, res config.Resolved) loki.Config {
	return loki.Config{
		URL:                res.LokiURL,
		Format:             c.Format,
		Gzip:               c.Gzip,
		TenantID:           c.TenantID,
		Authorization:      res.LokiAuth,
		Headers:            c.Headers,
		TLS:                res.LokiTLS,
		Timeout:            c.Timeout,
		Parallelism:        c.Parallelism,
		StructuredMetadata: c.StructuredMetadata,
		Limits: loki.Limits{
			MaxAge:       c.MaxAge,
			MaxFuture:    c.MaxFuture,
			MaxLineBytes: int(c.MaxLineBytes),
			LongLines:    c.LongLines,
		},
	}
}

// warnLoki logs, once at every start, the settings that leave pushes to
// Loki unprotected: credentials or a tenant sent unencrypted, TLS not
// verified or not used.
func warnLoki(c config.Loki, res config.Resolved, log *slog.Logger) {
	log = log.With("sink", "loki")
	shown := loki.RedactURL(res.LokiURL)
	if msg := c.CleartextWarning(); msg != "" {
		log.Warn(msg, "url", shown)
	}
	if c.TLS.InsecureSkipVerify {
		log.Warn("loki.tls.insecure_skip_verify is set: the server's certificate is not checked, so anyone on the path can read and forge pushes", "url", shown)
	}
	if u, err := url.Parse(res.LokiURL); err == nil && u.Scheme == "http" && c.TLS != (config.TLS{}) {
		log.Warn("loki.tls is set but loki.url uses http://, so TLS is not used", "url", shown)
	}
}
