package admin

import (
	"context"
	"io"
	"log/slog"
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

func getWith(t *testing.T, url, authorization string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func TestTokenProtectsEveryEndpointButHealthz(t *testing.T) {
	const token = "0123456789abcdef0123456789abcdef"
	reg := prometheus.NewRegistry()
	s, err := New(Config{Addr: "127.0.0.1:0", Pprof: true, Token: token}, Deps{Gatherer: reg, Ready: []Check{func() string { return "" }}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	base := "http://" + s.Addr()

	for _, path := range []string{"/metrics", "/readyz", "/debug/pprof/", "/debug/pprof/cmdline", "/nope", "/healthz/../metrics", "//metrics"} {
		for _, auth := range []string{"", "Bearer", "Bearer wrong", "Bearer " + token + "x", "Basic " + token, token} {
			code, h, body := getWith(t, base+path, auth)
			if code != http.StatusUnauthorized {
				t.Errorf("%s with %q: %d, want 401", path, auth, code)
			}
			if !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s: 401 without WWW-Authenticate: Bearer", path)
			}
			if strings.Contains(body, token) {
				t.Errorf("%s: answer reveals the token", path)
			}
		}
	}
	for _, path := range []string{"/metrics", "/readyz", "/debug/pprof/"} {
		for _, auth := range []string{"Bearer " + token, "bearer " + token} {
			if code, _, _ := getWith(t, base+path, auth); code != http.StatusOK {
				t.Errorf("%s with the token (%q): %d", path, auth[:6], code)
			}
		}
	}
	if code, _, body := getWith(t, base+"/healthz", ""); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz without a token: %d %q; liveness probes must not need it", code, body)
	}
}

func TestWarnsWhenExposedWithoutToken(t *testing.T) {
	for _, tc := range []struct {
		addr, token string
		warn        bool
	}{
		{"127.0.0.1:0", "", false},
		{"localhost:0", "", false},
		{":0", "", true},
		{"0.0.0.0:0", "", true},
		{":0", "0123456789abcdef0123", false},
	} {
		var logs strings.Builder
		s, err := New(Config{Addr: tc.addr, Token: tc.token}, Deps{
			Gatherer: prometheus.NewRegistry(),
			Logger:   slog.New(slog.NewTextHandler(&logs, nil)),
		})
		if err != nil {
			t.Fatal(err)
		}
		s.ln.Close()
		if got := strings.Contains(logs.String(), "level=WARN") && strings.Contains(logs.String(), "admin.token_file"); got != tc.warn {
			t.Errorf("listen %q token %v: warned %v, want %v\n%s", tc.addr, tc.token != "", got, tc.warn, logs.String())
		}
	}
}
