package loki_test

import (
	"crypto/tls"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/wharf-logs/wharf/internal/sink"
)

// countingHandler answers 204 and counts the pushes that reached it.
func countingHandler(n *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		n.Add(1)
		w.WriteHeader(http.StatusNoContent)
	})
}

// TestDefaultConfigVerifiesTLS: with no TLS configuration a Loki whose
// certificate is self-signed is refused, with an error that says which key
// fixes it, and nothing reaches the server; configuring its CA makes it work.
// There is no fallback to an unverified connection.
func TestDefaultConfigVerifiesTLS(t *testing.T) {
	var pushes atomic.Int64
	srv := httptest.NewTLSServer(countingHandler(&pushes))
	defer srv.Close()
	cfg := testConfig(srv.URL + "/loki/api/v1/push")

	c := newClient(t, cfg, quietDeps())
	for range 3 { // the same answer each time: no downgrade on retry
		err := c.Send(t.Context(), smallBatch())
		if err == nil {
			t.Fatal("a self-signed Loki was accepted without its CA")
		}
		t.Log(err)
		if retry, _ := sink.IsRetryable(err); !retry {
			t.Fatalf("error %v is final; a fixed configuration must be able to deliver the batch", err)
		}
		for _, want := range []string{"certificate signed by unknown authority", "set loki.tls.ca_file"} {
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("error %q does not say %q", err, want)
			}
		}
	}
	if n := pushes.Load(); n != 0 {
		t.Fatalf("%d pushes reached an unverified server", n)
	}

	cfg.TLS = trusting(srv)
	c = newClient(t, cfg, quietDeps())
	if err := c.Send(t.Context(), smallBatch()); err != nil {
		t.Fatalf("trusting its CA: %v", err)
	}
	if n := pushes.Load(); n != 1 {
		t.Fatalf("%d pushes, want 1", n)
	}
}

// TestNoTLSDowngrade: a redirect from https to http is not followed, and a
// server offering only TLS 1.1 is refused.
func TestNoTLSDowngrade(t *testing.T) {
	var plainPushes atomic.Int64
	plain := httptest.NewServer(countingHandler(&plainPushes))
	defer plain.Close()
	redirector := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		http.Redirect(w, r, plain.URL+r.URL.Path, http.StatusPermanentRedirect)
	}))
	defer redirector.Close()
	cfg := testConfig(redirector.URL + "/loki/api/v1/push")
	cfg.TLS = trusting(redirector)
	c := newClient(t, cfg, quietDeps())
	if err := c.Send(t.Context(), smallBatch()); err == nil || !strings.Contains(err.Error(), "set loki.url to the final push URL") {
		t.Fatalf("redirect to http: %v", err)
	}
	if n := plainPushes.Load(); n != 0 {
		t.Fatalf("a redirect to http:// carried %d pushes", n)
	}

	var oldPushes atomic.Int64
	old := httptest.NewUnstartedServer(countingHandler(&oldPushes))
	old.TLS = &tls.Config{MaxVersion: tls.VersionTLS11}
	old.Config.ErrorLog = log.New(io.Discard, "", 0) // the failed handshake is the point
	old.StartTLS()
	defer old.Close()
	cfg = testConfig(old.URL + "/loki/api/v1/push")
	cfg.TLS = trusting(old)
	c = newClient(t, cfg, quietDeps())
	if err := c.Send(t.Context(), smallBatch()); err == nil {
		t.Fatal("a TLS 1.1 server was accepted")
	}
	if n := oldPushes.Load(); n != 0 {
		t.Fatalf("%d pushes over TLS 1.1", n)
	}
}
