// Package admin serves wharf's HTTP endpoints for operators: Prometheus
// metrics, liveness, readiness and, when enabled, pprof. With a token set,
// every endpoint but /healthz requires it as a bearer token.
package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check reports a reason the process is not ready, or "" when it is.
type Check func() string

// Config configures the admin server.
type Config struct {
	// Addr is the listen address; the server is off when empty.
	Addr  string
	Pprof bool
	// Token, when set, must come as "Authorization: Bearer <Token>" on
	// every request but GET /healthz.
	Token string
}

// Deps are what the endpoints report on.
type Deps struct {
	Gatherer prometheus.Gatherer
	// Ready checks run on /readyz; all must pass.
	Ready  []Check
	Logger *slog.Logger
}

// Server is the admin HTTP server.
type Server struct {
	cfg  Config
	deps Deps
	ln   net.Listener
	srv  *http.Server
}

// New listens on cfg.Addr (so a bad or busy address fails at startup, not
// later) and returns a server that Run will serve.
func New(cfg Config, deps Deps) (*Server, error) {
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("admin: listen on %s: %w; set listen to a free address or \"\" to disable", cfg.Addr, err)
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, deps: deps, ln: ln}
	if cfg.Token == "" && !isLoopback(ln.Addr()) {
		what := "metrics and readiness"
		if cfg.Pprof {
			what += ", and pprof (profiles, the command line)"
		}
		deps.Logger.Warn("admin: listening on an address that is not loopback without a token: anyone who can reach it can read "+what+"; set admin.token_file (or admin.token), or listen on 127.0.0.1",
			"addr", ln.Addr().String())
	}
	s.srv = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(deps.Logger.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// isLoopback reports whether a listener's address accepts connections from
// this host only.
func isLoopback(a net.Addr) bool {
	tcp, ok := a.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Handler returns the server's routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.deps.Gatherer, promhttp.HandlerOpts{
		ErrorLog:            slog.NewLogLogger(s.deps.Logger.Handler(), slog.LevelWarn),
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	}))
	// /healthz answers as long as the process serves HTTP: it must never
	// fail under load, or an orchestrator would restart a busy shipper.
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		var problems []string
		for _, c := range s.deps.Ready {
			if p := c(); p != "" {
				problems = append(problems, p)
			}
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if len(problems) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, strings.Join(problems, "\n"))
			return
		}
		fmt.Fprintln(w, "ready")
	})
	if s.cfg.Pprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	if s.cfg.Token == "" {
		return mux
	}
	return requireToken(s.cfg.Token, mux)
}

// requireToken answers 401 to every request without the bearer token but
// those for /healthz, which reveals nothing and serves liveness probes that
// cannot send headers. Unknown paths need the token too, so nothing can be
// learnt by probing. Tokens are compared by their hashes in constant time.
func requireToken(token string, next http.Handler) http.Handler {
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			scheme, got, _ := strings.Cut(r.Header.Get("Authorization"), " ")
			sum := sha256.Sum256([]byte(strings.TrimSpace(got)))
			if !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="wharf admin"`)
				http.Error(w, "unauthorized: send the admin token as Authorization: Bearer <token>", http.StatusUnauthorized)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// Run serves until ctx ends, then shuts down, giving open requests a few
// seconds to finish.
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("admin: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(sctx); err != nil {
		s.srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("admin: %w", err)
	}
	return nil
}
