package agent

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/wharf-logs/wharf/internal/config"
	"github.com/wharf-logs/wharf/internal/metrics"
)

// TestLokiWarnsAboutWeakTLS: settings that leave the pushes unprotected are
// logged at every start.
func TestLokiWarnsAboutWeakTLS(t *testing.T) {
	for _, tc := range []struct {
		url  string
		tls  config.TLS
		warn string
	}{
		{"https://loki:3100/loki/api/v1/push", config.TLS{InsecureSkipVerify: true}, "loki.tls.insecure_skip_verify is set"},
		{"http://loki:3100/loki/api/v1/push", config.TLS{ServerName: "loki.internal"}, "loki.tls is set but loki.url uses http://"},
		{"https://loki:3100/loki/api/v1/push", config.TLS{ServerName: "loki.internal"}, ""},
	} {
		cfg := config.Default()
		cfg.Loki.URL, cfg.Loki.TLS = tc.url, tc.tls
		res, err := cfg.Resolve()
		if err != nil {
			t.Fatal(err)
		}
		var logs bytes.Buffer
		s, err := newLokiSink(cfg.Loki, res, Deps{Logger: slog.New(slog.NewTextHandler(&logs, nil))}, metrics.New())
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		if got := logs.String(); tc.warn == "" && got != "" || !strings.Contains(got, tc.warn) {
			t.Errorf("%s %+v: logged %q, want %q", tc.url, tc.tls, got, tc.warn)
		}
	}
}
