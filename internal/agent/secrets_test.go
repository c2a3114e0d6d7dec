package agent

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharf-logs/wharf/internal/config"
)

// TestURLQueryValuesStayOutOfLogsAndDeadLetters: a key in loki.url's query
// reaches the receiver, but not wharf's log (at debug level), where failed
// pushes are reported, nor the dead-letter file, whose records carry the
// push's error.
func TestURLQueryValuesStayOutOfLogsAndDeadLetters(t *testing.T) {
	const secret = "s3cret-query"
	srv, data, logPath := fileAgentDirs(t)
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := New(fileAgentConfig(data, logPath, srv.URL()+"?api_key="+secret), Deps{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	runAgent(t, a)

	srv.FailNext(1, http.StatusInternalServerError)
	appendLines(t, logPath, "retried 0")
	waitFor(t, func() string { return "the retried line was not delivered" }, func() bool { return len(received(srv, "retried")) == 1 })
	srv.FailNext(1, http.StatusBadRequest)
	appendLines(t, logPath, "refused 0")
	written := a.metrics.Pipeline.DeadLettered.WithLabelValues("loki", "invalid")
	waitFor(t, func() string { return "the refused line was not dead-lettered" }, func() bool { return testutil.ToFloat64(written) == 1 })

	dead, err := os.ReadFile(filepath.Join(data, "dead-letter", "loki.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	for what, text := range map[string]string{"the log": logs.String(), "the dead letter": string(dead)} {
		if strings.Contains(text, secret) {
			t.Errorf("%s shows the URL's query value:\n%s", what, text)
		}
		if !strings.Contains(text, "api_key=xxxxx") {
			t.Errorf("%s does not name the URL with its query value hidden:\n%s", what, text)
		}
	}
}

// TestWarnsOnceAboutCredentialsOverHTTP: credentials or a tenant that
// would go to Loki unencrypted are warned about once, at start, naming the
// keys; https, a loopback address and a push without credentials are not.
func TestWarnsOnceAboutCredentialsOverHTTP(t *testing.T) {
	const warning = "unencrypted"
	for _, tc := range []struct {
		name string
		loki func(*config.Loki)
		keys []string // nil: no warning
	}{
		{"basic auth", func(l *config.Loki) { l.BasicAuth = config.BasicAuth{Username: "u", Password: "p"} }, []string{"loki.basic_auth"}},
		{"bearer token", func(l *config.Loki) { l.Bearer = "t" }, []string{"loki.bearer_token"}},
		{"user in the URL", func(l *config.Loki) { l.URL = "http://u:p@loki.example:3100/loki/api/v1/push" }, []string{"the user in loki.url"}},
		{"tenant", func(l *config.Loki) { l.TenantID = "team-a" }, []string{"loki.tenant_id"}},
		{"tenant header and a key", func(l *config.Loki) {
			l.Headers = map[string]string{"X-Scope-OrgID": "team-a", "X-Api-Key": "k", "X-Team": "a"}
		}, []string{"loki.headers.X-Api-Key", "loki.headers.X-Scope-OrgID"}},
		{"bearer and tenant", func(l *config.Loki) { l.Bearer, l.TenantID = "t", "team-a" }, []string{"loki.bearer_token", "loki.tenant_id"}},
		{"key in the query", func(l *config.Loki) { l.URL = "http://loki.example:3100/loki/api/v1/push?api_key=k" }, []string{"the query of loki.url"}},
		{"https", func(l *config.Loki) {
			l.URL = "https://loki.example/loki/api/v1/push"
			l.Bearer, l.TenantID = "t", "team-a"
		}, nil},
		{"loopback address", func(l *config.Loki) {
			l.URL = "http://127.0.0.1:3100/loki/api/v1/push"
			l.Bearer = "t"
		}, nil},
		{"localhost", func(l *config.Loki) {
			l.URL = "http://localhost:3100/loki/api/v1/push"
			l.TenantID = "team-a"
		}, nil},
		{"IPv6 loopback", func(l *config.Loki) {
			l.URL = "http://[::1]:3100/loki/api/v1/push"
			l.BasicAuth = config.BasicAuth{Username: "u", Password: "p"}
		}, nil},
		{"nothing to protect", func(l *config.Loki) { l.Headers = map[string]string{"X-Team": "a"} }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := fileAgentConfig(filepath.Join(dir, "data"), filepath.Join(dir, "app.log"), "http://loki.example:3100/loki/api/v1/push")
			tc.loki(&cfg.Loki)
			var logs syncBuffer
			a, err := New(cfg, Deps{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			cancel() // start and stop: a warning at start only
			a.Run(ctx)
			got := logs.String()
			n := strings.Count(got, warning)
			switch {
			case tc.keys == nil && n != 0:
				t.Errorf("warned:\n%s", got)
			case tc.keys != nil && n != 1:
				t.Errorf("%d warnings, want one:\n%s", n, got)
			}
			for _, k := range tc.keys {
				if !strings.Contains(got, k) {
					t.Errorf("the warning does not name %s:\n%s", k, got)
				}
			}
		})
	}
}
