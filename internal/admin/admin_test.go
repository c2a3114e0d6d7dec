package admin

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestEndpoints(t *testing.T) {
	for _, pprofOn := range []bool{false, true} {
		reg := prometheus.NewRegistry()
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: "wharf_test_total", Help: "x"})
		reg.MustRegister(c)
		c.Add(3)
		problem := ""
		s, err := New(Config{Addr: "127.0.0.1:0", Pprof: pprofOn}, Deps{Gatherer: reg, Ready: []Check{func() string { return problem }}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		base := "http://" + s.Addr()

		if code, body := get(t, base+"/metrics"); code != 200 || !strings.Contains(body, "wharf_test_total 3") {
			t.Fatalf("/metrics: %d %q", code, body)
		}
		if code, _ := get(t, base+"/healthz"); code != 200 {
			t.Fatalf("/healthz: %d", code)
		}
		if code, _ := get(t, base+"/readyz"); code != 200 {
			t.Fatalf("/readyz ready: %d", code)
		}
		problem = "docker: not connected"
		if code, body := get(t, base+"/readyz"); code != 503 || !strings.Contains(body, problem) {
			t.Fatalf("/readyz not ready: %d %q", code, body)
		}
		if code, _ := get(t, base+"/healthz"); code != 200 {
			t.Fatalf("/healthz must not follow readiness: %d", code)
		}
		if code, _ := get(t, base+"/debug/pprof/"); (code == 200) != pprofOn {
			t.Fatalf("pprof enabled=%v answered %d", pprofOn, code)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

func TestBusyAddressFailsAtStartup(t *testing.T) {
	s, err := New(Config{Addr: "127.0.0.1:0"}, Deps{Gatherer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.ln.Close()
	if _, err := New(Config{Addr: s.Addr()}, Deps{Gatherer: prometheus.NewRegistry()}); err == nil || !strings.Contains(err.Error(), "listen") {
		t.Fatalf("second listener on %s: %v", s.Addr(), err)
	}
}
