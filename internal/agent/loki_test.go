package agent

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/wharf-logs/wharf/internal/config"
	"github.com/wharf-logs/wharf/internal/loki"
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
		warnLoki(cfg.Loki, res, slog.New(slog.NewTextHandler(&logs, nil)))
		if got := logs.String(); tc.warn == "" && got != "" || !strings.Contains(got, tc.warn) {
			t.Errorf("%s %+v: logged %q, want %q", tc.url, tc.tls, got, tc.warn)
		}
	}
}

// TestLokiConfig: the client gets the URL without its user, the resolved
// credentials, and loki.structured_metadata and the limits as its own
// options.
func TestLokiConfig(t *testing.T) {
	cfg := config.Default()
	cfg.Loki.URL = "https://u:p@loki:3100/loki/api/v1/push"
	cfg.Loki.StructuredMetadata = false
	cfg.Loki.LongLines = loki.LongLinesDrop
	res, err := cfg.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	c := lokiConfig(cfg.Loki, res)
	if c.URL != "https://loki:3100/loki/api/v1/push" || c.Authorization != "Basic dTpw" || c.TLS == nil {
		t.Errorf("url %q auth %q tls %v", c.URL, c.Authorization, c.TLS)
	}
	if c.StructuredMetadata || c.Limits.LongLines != loki.LongLinesDrop || c.Limits.MaxLineBytes != 256<<10 || c.Parallelism != 2 {
		t.Errorf("options %+v", c)
	}
}
