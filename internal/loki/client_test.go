package loki_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharf-logs/wharf/internal/entry"
	"github.com/wharf-logs/wharf/internal/loki"
	"github.com/wharf-logs/wharf/internal/lokitest"
	"github.com/wharf-logs/wharf/internal/sink"
)

// testConfig is the configuration wharf gives the client by default.
func testConfig(url string) loki.Config {
	return loki.Config{URL: url, Format: loki.FormatProtobuf, Timeout: 10 * time.Second, Parallelism: 2, StructuredMetadata: true}
}

func quietDeps() loki.Deps {
	return loki.Deps{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Version: "1.2.3"}
}

func newClient(t *testing.T, cfg loki.Config, deps loki.Deps) *loki.Client {
	t.Helper()
	c, err := loki.New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

var (
	webStream = entry.NewStream(labels("app", "web"), labels("container_id", "c1"), "web")
	dbStream  = entry.NewStream(labels("app", "db"), nil, "db")
)

func smallBatch() *entry.Batch {
	return batchOf(line{webStream, 1_000, "a"}, line{webStream, 2_000, "b"}, line{dbStream, 3_000, "c"})
}

// TestNewGuardsProgrammingErrors: New trusts the values of its Config,
// which wharf's configuration has checked, but refuses a Config or Deps no
// caller could mean.
func TestNewGuardsProgrammingErrors(t *testing.T) {
	const push = "http://loki:3100/loki/api/v1/push"
	for name, tc := range map[string]struct {
		cfg  loki.Config
		deps loki.Deps
	}{
		"nil logger":     {testConfig(push), loki.Deps{}},
		"no url":         {loki.Config{}, quietDeps()},
		"unknown format": {loki.Config{URL: push, Format: "xml"}, quietDeps()},
	} {
		if _, err := loki.New(tc.cfg, tc.deps); err == nil || !strings.HasPrefix(err.Error(), "loki: ") {
			t.Errorf("%s: error %v, want one starting with loki:", name, err)
		}
	}
	c := newClient(t, loki.Config{URL: push}, quietDeps())
	if timeout, format := c.Settings(); c.Shards() != 1 || timeout != 10*time.Second || format != loki.FormatProtobuf {
		t.Errorf("zero Config: shards %d, timeout %v, format %s", c.Shards(), timeout, format)
	}
}

// recorder is a push endpoint that decodes each body and records it with
// its headers.
type recorder struct {
	mu      sync.Mutex
	headers []http.Header
	streams [][]lokitest.PushedStream
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	streams, err := lokitest.DecodePush(body, req.Header.Get("Content-Type"), req.Header.Get("Content-Encoding"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.headers = append(r.headers, req.Header.Clone())
	r.streams = append(r.streams, streams)
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func TestSendHeadersAndBody(t *testing.T) {
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("user:pa:ss"))
	for _, tc := range []struct {
		name     string
		format   loki.Format
		gzip     bool
		auth     string
		ctype    string
		encoding string
	}{
		{"protobuf basic auth", loki.FormatProtobuf, false, basic, loki.ContentTypeProtobuf, ""},
		{"json bearer", loki.FormatJSON, false, "Bearer tok-123", loki.ContentTypeJSON, ""},
		{"gzip json bearer", loki.FormatJSON, true, "Bearer inline", loki.ContentTypeJSON, "gzip"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			srv := httptest.NewServer(rec)
			defer srv.Close()
			cfg := testConfig(srv.URL + "/loki/api/v1/push")
			cfg.Format, cfg.Gzip = tc.format, tc.gzip
			cfg.TenantID = "tenant-1"
			cfg.Headers = map[string]string{"x-extra": "yes"}
			cfg.Authorization = tc.auth
			c := newClient(t, cfg, quietDeps())
			b := smallBatch()
			if err := c.Send(t.Context(), b); err != nil {
				t.Fatal(err)
			}
			if len(rec.headers) != 1 {
				t.Fatalf("%d requests, want 1", len(rec.headers))
			}
			h := rec.headers[0]
			for k, want := range map[string]string{
				"Content-Type":     tc.ctype,
				"Content-Encoding": tc.encoding,
				"X-Scope-Orgid":    "tenant-1",
				"Authorization":    tc.auth,
				"User-Agent":       "wharf/1.2.3",
				"X-Extra":          "yes",
			} {
				if got := h.Get(k); got != want {
					t.Errorf("header %s = %q, want %q", k, got, want)
				}
			}
			if want := expected(b, tc.format == loki.FormatJSON); !reflect.DeepEqual(rec.streams[0], want) {
				t.Errorf("server decoded %+v, want %+v", rec.streams[0], want)
			}
		})
	}
}

func TestSendDefaults(t *testing.T) {
	rec := &recorder{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	deps := quietDeps()
	deps.Version = ""
	c := newClient(t, testConfig(srv.URL+"/push"), deps)
	if c.Name() != "loki" || c.Shards() != 2 {
		t.Fatalf("Name %q Shards %d", c.Name(), c.Shards())
	}
	if err := c.Send(t.Context(), smallBatch()); err != nil {
		t.Fatal(err)
	}
	h := rec.headers[0]
	for _, k := range []string{"Authorization", "X-Scope-Orgid", "Content-Encoding"} {
		if v, ok := h[k]; ok {
			t.Errorf("header %s = %q sent without configuration", k, v)
		}
	}
	if got := h.Get("User-Agent"); got != "wharf/dev" {
		t.Errorf("User-Agent %q", got)
	}
}

type response struct {
	status int
	header map[string]string
	body   string
}

func serve(r response) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		for k, v := range r.header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(r.status)
		_, _ = io.WriteString(w, r.body)
	}
}

func TestSendClassifiesResponses(t *testing.T) {
	b := smallBatch()
	webKey := webStream.Key
	later := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	type want struct {
		retry         bool
		rateLimited   bool
		minAfter      time.Duration
		maxAfter      time.Duration
		misconfigured bool // a *sink.MisconfiguredError naming the URL and status
		tooLarge      bool // a *sink.TooLargeError
		reason        string
		counts        map[string]int
		text          string
	}
	for _, tc := range []struct {
		name string
		resp response
		want *want // nil: success
	}{
		{"204", response{status: 204}, nil},
		{"200 with body", response{status: 200, body: "ok"}, nil},
		{"429", response{status: 429, body: "Ingestion rate limit exceeded"}, &want{retry: true, rateLimited: true, text: "status 429: Ingestion rate limit exceeded"}},
		{"429 retry-after seconds", response{status: 429, header: map[string]string{"Retry-After": "7"}}, &want{retry: true, rateLimited: true, minAfter: 7 * time.Second, maxAfter: 7 * time.Second}},
		{"429 retry-after date", response{status: 429, header: map[string]string{"Retry-After": later}}, &want{retry: true, rateLimited: true, minAfter: 80 * time.Second, maxAfter: 91 * time.Second}},
		{"500", response{status: 500, body: "rpc error: ingester down"}, &want{retry: true, text: "status 500"}},
		{"503 retry-after", response{status: 503, header: map[string]string{"Retry-After": "2"}}, &want{retry: true, minAfter: 2 * time.Second, maxAfter: 2 * time.Second}},
		{"502 html", response{status: 502, header: map[string]string{"Content-Type": "text/html"}, body: "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>"},
			&want{retry: true, text: "html page: 502 Bad Gateway"}},
		{"408", response{status: 408}, &want{retry: true}},
		{"401", response{status: 401, body: "no org id"}, &want{misconfigured: true, text: "no org id (check loki.basic_auth, loki.bearer_token and loki.tenant_id)"}},
		{"403", response{status: 403}, &want{misconfigured: true, text: "(check loki.basic_auth"}},
		{"413", response{status: 413, body: "<html><head><title>413 Request Entity Too Large</title></head></html>"}, &want{tooLarge: true, text: "413 Request Entity Too Large"}},
		{"404", response{status: 404, body: "404 page not found"}, &want{misconfigured: true, text: "404 page not found (loki.url must be the push endpoint"}},
		{"405", response{status: 405}, &want{misconfigured: true, text: "loki.url must be the push endpoint"}},
		{"415", response{status: 415}, &want{misconfigured: true, text: "check loki.format"}},
		{"418", response{status: 418}, &want{misconfigured: true}},
		{"301", response{status: 301, header: map[string]string{"Location": "https://loki/push"}}, &want{misconfigured: true, text: "redirected to https://loki/push; set loki.url to the final push URL"}},
		{"307 without Location", response{status: 307}, &want{misconfigured: true, text: "set loki.url to the final push URL"}},
		{"400 too old", response{status: 400, body: "entry for stream '" + webKey + "' has timestamp too old: 2020-01-01T00:00:00Z, oldest acceptable timestamp is: 2024-01-01T00:00:00Z\n"},
			&want{reason: loki.ReasonTooOld, counts: map[string]int{loki.ReasonTooOld: 1}, text: "timestamp too old"}},
		{"400 grouped", response{status: 400, body: "2 errors like: entry for stream '" + webKey + "' has timestamp too new: 2099-01-01T00:00:00Z; " +
			"1 errors like: Max entry size '10' bytes exceeded for stream '" + webKey + "' while adding an entry with length '20' bytes"},
			&want{reason: loki.ReasonTooNew, counts: map[string]int{loki.ReasonTooNew: 2, loki.ReasonLineTooLong: 1}}},
		{"400 invalid labels counts the stream's entries", response{status: 400, body: "stream '" + webKey + "' has label value too long: 'x'"},
			&want{reason: loki.ReasonInvalidLabels, counts: map[string]int{loki.ReasonInvalidLabels: 2}}},
		{"400 unknown", response{status: 400, body: "couldn't parse push request: unexpected EOF"}, &want{reason: loki.ReasonInvalid, text: "unexpected EOF"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(serve(tc.resp))
			defer srv.Close()
			c := newClient(t, testConfig(srv.URL+"/loki/api/v1/push"), quietDeps())
			err := c.Send(t.Context(), b)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Send: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Send succeeded")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "loki: push to "+srv.URL+"/loki/api/v1/push: status "+fmt.Sprint(tc.resp.status)) || !strings.Contains(msg, tc.want.text) {
				t.Errorf("error %q does not name the URL and status, or lacks %q", msg, tc.want.text)
			}
			var herr *loki.HTTPError
			if !errors.As(err, &herr) || herr.StatusCode != tc.resp.status {
				t.Errorf("no *HTTPError with status %d in %v", tc.resp.status, err)
			}
			retry, after := sink.IsRetryable(err)
			if retry != tc.want.retry {
				t.Fatalf("retryable %v, want %v: %v", retry, tc.want.retry, err)
			}
			if after < tc.want.minAfter || after > tc.want.maxAfter {
				t.Errorf("Retry-After %v, want between %v and %v", after, tc.want.minAfter, tc.want.maxAfter)
			}
			if retry {
				var r *sink.RetryableError
				if errors.As(err, &r) && r.RateLimited != tc.want.rateLimited {
					t.Errorf("RateLimited %v, want %v", r.RateLimited, tc.want.rateLimited)
				}
				return
			}
			var mis *sink.MisconfiguredError
			if got := errors.As(err, &mis); got != tc.want.misconfigured {
				t.Fatalf("misconfigured %v, want %v: %T %v", got, tc.want.misconfigured, err, err)
			}
			if mis != nil {
				if mis.URL != srv.URL+"/loki/api/v1/push" || mis.Status != tc.resp.status {
					t.Errorf("misconfigured names %s and %d, want %s/loki/api/v1/push and %d", mis.URL, mis.Status, srv.URL, tc.resp.status)
				}
				return
			}
			var big *sink.TooLargeError
			if got := errors.As(err, &big); got != tc.want.tooLarge {
				t.Fatalf("too large %v, want %v: %T %v", got, tc.want.tooLarge, err, err)
			}
			if big != nil {
				return
			}
			var rej *sink.RejectedError
			if !errors.As(err, &rej) {
				t.Fatalf("%T is not a *sink.RejectedError", err)
			}
			if rej.Reason != tc.want.reason || !reflect.DeepEqual(rej.Rejected, tc.want.counts) {
				t.Errorf("reason %q counts %v, want %q %v", rej.Reason, rej.Rejected, tc.want.reason, tc.want.counts)
			}
		})
	}
}

func TestSendNetworkErrorsAreRetryable(t *testing.T) {
	// A port nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + ln.Addr().String() + "/push"
	ln.Close()

	hijack := func(reset bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				return
			}
			if tcp, ok := conn.(*net.TCPConn); ok && reset {
				_ = tcp.SetLinger(0) // close with RST
			}
			conn.Close()
		}
	}
	resetSrv := httptest.NewServer(hijack(true))
	defer resetSrv.Close()
	eofSrv := httptest.NewServer(hijack(false))
	defer eofSrv.Close()
	halfSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Promise a body and close after part of it.
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(500)
		_, _ = io.WriteString(w, "partial")
		conn, _, _ := w.(http.Hijacker).Hijack()
		if conn != nil {
			conn.Close()
		}
	}))
	defer halfSrv.Close()

	for name, url := range map[string]string{
		"refused":    refused,
		"reset":      resetSrv.URL + "/push",
		"eof":        eofSrv.URL + "/push",
		"short body": halfSrv.URL + "/push",
	} {
		t.Run(name, func(t *testing.T) {
			var obs observations
			deps := quietDeps()
			deps.Observer = &obs
			c := newClient(t, testConfig(url), deps)
			err := c.Send(t.Context(), smallBatch())
			if retry, _ := sink.IsRetryable(err); !retry {
				t.Fatalf("error %v is not retryable", err)
			}
			if !strings.HasPrefix(err.Error(), "loki: push to "+url) {
				t.Errorf("error %q does not name the URL", err)
			}
			if len(obs.statuses()) != 1 {
				t.Errorf("observed %v, want one request", obs.statuses())
			}
		})
	}
}

type observations struct {
	mu   sync.Mutex
	list []string
}

func (o *observations) Observe(status string, d time.Duration, n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.list = append(o.list, fmt.Sprintf("%s %d", status, n))
}

func (o *observations) statuses() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.list...)
}

func TestSendObserves(t *testing.T) {
	var code atomic.Int32
	code.Store(204)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(int(code.Load()))
	}))
	defer srv.Close()
	var obs observations
	deps := quietDeps()
	deps.Observer = &obs
	c := newClient(t, testConfig(srv.URL+"/push"), deps)
	b := smallBatch()
	enc, _ := loki.NewEncoder(loki.FormatProtobuf, false)
	size := len(enc.Encode(b).Body)
	_ = c.Send(t.Context(), b)
	code.Store(503)
	_ = c.Send(t.Context(), b)
	want := []string{fmt.Sprint("204 ", size), fmt.Sprint("503 ", size)}
	if got := obs.statuses(); !reflect.DeepEqual(got, want) {
		t.Fatalf("observed %v, want %v", got, want)
	}
}

// TestMetricsCountRequests: Metrics, as the Client's Observer, counts each
// request by status and its duration, as sink="loki".
func TestMetricsCountRequests(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	m := loki.NewMetrics()
	deps := quietDeps()
	deps.Observer = m
	c := newClient(t, testConfig(srv.URL+"/push"), deps)
	for range 2 {
		if err := c.Send(t.Context(), smallBatch()); err != nil {
			t.Fatal(err)
		}
	}
	if got := testutil.ToFloat64(m.Requests.WithLabelValues("loki", "204")); got != 2 {
		t.Errorf(`wharf_push_requests_total{sink="loki",status="204"} = %v, want 2`, got)
	}
	if n := testutil.CollectAndCount(m.Duration, "wharf_push_duration_seconds"); n != 1 {
		t.Errorf("%d wharf_push_duration_seconds series, want the one of sink loki", n)
	}
}

func TestSendTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	cfg := testConfig(srv.URL + "/push")
	cfg.Timeout = 100 * time.Millisecond
	c := newClient(t, cfg, quietDeps())
	err := c.Send(t.Context(), smallBatch())
	if retry, _ := sink.IsRetryable(err); !retry || !strings.Contains(err.Error(), "timed out after 100ms") {
		t.Fatalf("error %v, want a retryable timeout", err)
	}
}

func TestSendHonoursCallerContext(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer srv.Close()
	c := newClient(t, testConfig(srv.URL+"/push"), quietDeps())
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := c.Send(ctx, smallBatch())
	if retry, _ := sink.IsRetryable(err); !retry || !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want a retryable context.Canceled", err)
	}
}

// TestSendBoundsErrorBody checks that a huge error body is neither kept nor
// read to its end.
func TestSendBoundsErrorBody(t *testing.T) {
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(500)
		for range 160 { // 10 MiB
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	c := newClient(t, testConfig(srv.URL+"/push"), quietDeps())
	b := smallBatch()
	_ = c.Send(t.Context(), b) // warm the connection and the sender pool

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	err := c.Send(t.Context(), b)
	runtime.ReadMemStats(&after)
	if retry, _ := sink.IsRetryable(err); !retry {
		t.Fatalf("error %v, want retryable", err)
	}
	if n := len(err.Error()); n > 1024 {
		t.Errorf("error message is %d bytes", n)
	}
	// The client keeps 64 KiB and discards up to 1 MiB through a small
	// buffer; reading the whole body into memory would allocate 10 MiB.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 2<<20 {
		t.Errorf("Send allocated %d bytes for a 10 MiB error body", alloc)
	}
}

// TestSendReusesConnections shows that bodies are read and closed on every
// path: a connection whose response body is left open cannot carry the next
// request.
func TestSendReusesConnections(t *testing.T) {
	var conns atomic.Int32
	var status atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(int(status.Load()))
		_, _ = io.WriteString(w, strings.Repeat("some error text ", 1000))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	c := newClient(t, testConfig(srv.URL+"/push"), quietDeps())
	for _, s := range []int{204, 200, 400, 429, 500, 401, 204} {
		status.Store(int32(s))
		for range 3 {
			_ = c.Send(t.Context(), smallBatch())
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for sequential requests, want 1", n)
	}
}

func TestSendConcurrent(t *testing.T) {
	rec := &recorder{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	for _, format := range []loki.Format{loki.FormatProtobuf, loki.FormatJSON} {
		rec.streams = nil
		cfg := testConfig(srv.URL + "/push")
		cfg.Format, cfg.Gzip, cfg.Parallelism = format, format == loki.FormatJSON, 3
		c := newClient(t, cfg, quietDeps())
		const workers, sends = 6, 20 // more workers than shards
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				s := entry.NewStream(labels("worker", fmt.Sprint(w)), labels("m", "v"), "")
				for i := range sends {
					b := batchOf(line{s, int64(i), strings.Repeat(fmt.Sprintf("w%d-i%d ", w, i), 50+i)})
					if err := c.Send(t.Context(), b); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		// Every body must be intact: one stream, one entry, its own line.
		if len(rec.streams) != workers*sends {
			t.Fatalf("%s: %d requests, want %d", format, len(rec.streams), workers*sends)
		}
		for _, ss := range rec.streams {
			e := ss[0].Entries[0]
			var w, i int
			if _, err := fmt.Sscanf(e.Line, "w%d-i%d ", &w, &i); err != nil || ss[0].Labels != fmt.Sprintf(`{worker="%d"}`, w) ||
				e.Line != strings.Repeat(fmt.Sprintf("w%d-i%d ", w, i), 50+i) {
				t.Fatalf("%s: corrupt request %q %q", format, ss[0].Labels, e.Line[:min(len(e.Line), 40)])
			}
		}
	}
}

// trusting is the TLS configuration wharf builds from a loki.tls.ca_file
// holding srv's certificate.
func trusting(srv *httptest.Server) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

func TestSendTLS(t *testing.T) {
	srv := httptest.NewUnstartedServer(&recorder{})
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // failed handshakes are the point
	srv.StartTLS()
	defer srv.Close()
	plain := httptest.NewServer(&recorder{})
	defer plain.Close()
	withName := func(c *tls.Config, name string) *tls.Config { c.ServerName = name; return c }

	for _, tc := range []struct {
		name    string
		url     string
		tls     *tls.Config
		wantErr string // "" for success
	}{
		{"ca file", srv.URL, trusting(srv), ""},
		{"ca file and server name", srv.URL, withName(trusting(srv), "example.com"), ""},
		{"unknown authority", srv.URL, nil, "set loki.tls.ca_file"},
		{"wrong server name", srv.URL, withName(trusting(srv), "loki.internal"), "loki.tls.server_name"},
		{"insecure", srv.URL, &tls.Config{InsecureSkipVerify: true}, ""},
		{"https to plain http", strings.Replace(plain.URL, "http://", "https://", 1), trusting(srv), "use an http:// URL"},
		{"tls settings on http", plain.URL, trusting(srv), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(tc.url + "/loki/api/v1/push")
			cfg.TLS = tc.tls
			c := newClient(t, cfg, quietDeps())
			err := c.Send(t.Context(), smallBatch())
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Send: %v", err)
			case tc.wantErr != "":
				if retry, _ := sink.IsRetryable(err); !retry || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want a retryable one mentioning %q", err, tc.wantErr)
				}
			}
		})
	}
}

// selfSigned makes a client certificate and key, PEM-encoded.
func selfSigned(t *testing.T) (certPEM, keyPEM []byte, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "wharf-test-client"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err = x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), cert
}

func TestSendClientCertificate(t *testing.T) {
	certPEM, keyPEM, cert := selfSigned(t)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	var peer atomic.Value
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if len(r.TLS.PeerCertificates) > 0 {
			peer.Store(r.TLS.PeerCertificates[0].Subject.CommonName)
		}
		w.WriteHeader(204)
	}))
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()

	cfg := testConfig(srv.URL + "/push")
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	cfg.TLS = trusting(srv)
	cfg.TLS.Certificates = []tls.Certificate{pair}
	c := newClient(t, cfg, quietDeps())
	if err := c.Send(t.Context(), smallBatch()); err != nil {
		t.Fatal(err)
	}
	if got := peer.Load(); got != "wharf-test-client" {
		t.Fatalf("server saw client certificate %v", got)
	}

	// Without the certificate the handshake fails, retryably.
	cfg.TLS = trusting(srv)
	c = newClient(t, cfg, quietDeps())
	if retry, _ := sink.IsRetryable(c.Send(t.Context(), smallBatch())); !retry {
		t.Fatal("a refused handshake is not retryable")
	}
}

// TestSendWithoutStructuredMetadata: with Config.StructuredMetadata off,
// the client pushes what it pushes for the same streams without metadata,
// and the batch it was given keeps its streams.
func TestSendWithoutStructuredMetadata(t *testing.T) {
	var mu sync.Mutex
	var bodies [][]byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, body)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	for _, format := range []loki.Format{loki.FormatProtobuf, loki.FormatJSON} {
		cfg := testConfig(srv.URL + "/push")
		cfg.Format, cfg.StructuredMetadata = format, false
		c := newClient(t, cfg, quietDeps())
		b := smallBatch()
		if err := c.Send(t.Context(), b); err != nil {
			t.Fatal(err)
		}
		send, release := c.Stage(b)
		if err := send(t.Context()); err != nil {
			t.Fatal(err)
		}
		release()
		enc, _ := loki.NewEncoder(format, false)
		want := enc.Encode(withoutMetadata(smallBatch())).Body
		mu.Lock()
		for i, got := range bodies {
			if !bytes.Equal(got, want) {
				t.Errorf("%s: push %d differs from the batch without metadata", format, i)
			}
		}
		bodies = nil
		mu.Unlock()
		if b.Streams[0].Stream != webStream {
			t.Errorf("%s: the batch's streams were replaced", format)
		}
	}
}

// TestClientPrepares: the client keeps entries out of its batches by
// Config.Limits.
func TestClientPrepares(t *testing.T) {
	cfg := testConfig("http://loki:3100/loki/api/v1/push")
	cfg.Limits = loki.Limits{MaxLineBytes: 2048, LongLines: loki.LongLinesDrop}
	c := newClient(t, cfg, quietDeps())
	e := entry.Entry{Time: time.Now().UnixNano(), Line: bytes.Repeat([]byte("x"), 4096), Stream: webStream}
	if got := c.Prepare(&e, time.Now()); got != loki.ReasonLineTooLong {
		t.Fatalf("Prepare = %q, want %q", got, loki.ReasonLineTooLong)
	}
}

// A User-Agent in Config.Headers is what the receiver sees: configuration
// accepts it, so the client must not overwrite it with its own.
func TestSendConfiguredUserAgent(t *testing.T) {
	rec := &recorder{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	cfg := testConfig(srv.URL + "/push")
	cfg.Headers = map[string]string{"user-agent": "edge-proxy-id/7"}
	c := newClient(t, cfg, quietDeps())
	if err := c.Send(t.Context(), smallBatch()); err != nil {
		t.Fatal(err)
	}
	if got := rec.headers[0].Values("User-Agent"); len(got) != 1 || got[0] != "edge-proxy-id/7" {
		t.Errorf("User-Agent %q, want the configured one only", got)
	}
}
