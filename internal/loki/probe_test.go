package loki_test

import (
	"errors"
	"net/http"
	"testing"

	"github.com/wharf-logs/wharf/internal/loki"
	"github.com/wharf-logs/wharf/internal/lokitest"
	"github.com/wharf-logs/wharf/internal/sink"
)

// TestProbe: a probe is a push of no entries, sent as a push is (URL,
// credentials, tenant, body format), which a receiver takes without storing
// anything; it is classified as a push is, and not counted as one.
func TestProbe(t *testing.T) {
	for _, format := range []loki.Format{loki.FormatProtobuf, loki.FormatJSON} {
		t.Run(string(format), func(t *testing.T) {
			srv := lokitest.New(lokitest.Options{RequireTenant: true})
			defer srv.Close()
			var obs observations
			deps := quietDeps()
			deps.Observer = &obs
			cfg := testConfig(srv.URL())
			cfg.Format, cfg.Gzip = format, format == loki.FormatJSON
			cfg.TenantID, cfg.Authorization = "team-a", "Bearer s3cret"
			c := newClient(t, cfg, deps)

			if err := c.Probe(t.Context()); err != nil {
				t.Fatalf("Probe: %v", err)
			}
			reqs := srv.Requests()
			if len(reqs) != 1 || reqs[0].Status != http.StatusNoContent || reqs[0].Entries != 0 {
				t.Fatalf("requests %+v, want one push of no entries answered 204", reqs)
			}
			h := reqs[0].Header
			if h.Get("Authorization") != "Bearer s3cret" || h.Get("X-Scope-OrgID") != "team-a" || h.Get("User-Agent") != "wharf/1.2.3" {
				t.Errorf("probe headers %v, want a push's", h)
			}
			if len(srv.Entries()) != 0 {
				t.Error("a probe stored entries")
			}

			srv.FailAll(http.StatusUnauthorized)
			var mis *sink.MisconfiguredError
			if err := c.Probe(t.Context()); !errors.As(err, &mis) || mis.Status != http.StatusUnauthorized || mis.URL != srv.URL() {
				t.Errorf("Probe of a receiver answering 401: %v, want it misconfigured", err)
			}
			srv.ClearFaults()
			srv.FailAll(http.StatusServiceUnavailable)
			if retry, _ := sink.IsRetryable(c.Probe(t.Context())); !retry {
				t.Error("Probe of a receiver answering 503 is not retryable")
			}
			srv.Stop()
			if retry, _ := sink.IsRetryable(c.Probe(t.Context())); !retry {
				t.Error("Probe of a receiver that is down is not retryable")
			}
			if got := obs.statuses(); len(got) != 0 {
				t.Errorf("probes observed as pushes: %v", got)
			}
		})
	}
}
