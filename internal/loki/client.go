// Package loki delivers batches to a Loki-protocol receiver: it encodes the
// push body (protobuf in a snappy block, or JSON, optionally gzipped), makes
// one HTTP attempt per Send, and classifies the answer as delivered,
// retryable or final. It also decodes push bodies, for test receivers.
package loki

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wharf-logs/wharf/internal/config"
	"github.com/wharf-logs/wharf/internal/entry"
	"github.com/wharf-logs/wharf/internal/sink"
)

// Response body limits: the part kept to explain an error, and the part read
// and thrown away so the connection can be reused. Anything beyond is left
// unread and the connection closed.
const (
	keepBody  = 64 << 10
	drainBody = 1 << 20
)

// Observer is told about every push request the Client makes, e.g. to feed
// metrics the caller registers. status is the HTTP status code in decimal, or
// "error" when no response arrived; bytes is the size of the request body as
// sent. Observe is called from the goroutines calling Send, concurrently, and
// must not block.
type Observer interface {
	Observe(status string, dur time.Duration, bytes int)
}

// Deps are the Client's collaborators.
type Deps struct {
	// Logger receives warnings about the configuration; required.
	Logger *slog.Logger
	// Version is sent in the User-Agent as wharf/<version>; "dev" when empty.
	Version string
	// Transport replaces the HTTP transport built from the configuration,
	// for tests. TLS and proxy settings are then the Transport's business.
	Transport http.RoundTripper
	// Observer, when set, is told about each request.
	Observer Observer
}

// Client pushes batches to Loki. It implements sink.Sink and sink.Sharded:
// Send is safe for concurrent use by up to Shards() goroutines (more work too,
// at the cost of extra encoder buffers).
type Client struct {
	url         string // the push URL, credentials moved to auth
	tenant      string
	auth        string // the Authorization header, or ""
	headers     http.Header
	userAgent   string
	timeout     time.Duration
	parallelism int
	format      string
	gzip        bool

	http     *http.Client
	observer Observer
	log      *slog.Logger

	// senders holds idle encoders and their request body trackers, so the
	// steady state allocates no buffers and holds at most parallelism of
	// them.
	senders chan *sender
	closed  atomic.Bool
}

var (
	_ sink.Sink    = (*Client)(nil)
	_ sink.Sharded = (*Client)(nil)
)

// New validates cfg, reads the secret and certificate files it names, and
// returns a Client. It starts nothing and makes no request. Errors name the
// YAML path of the bad value.
func New(cfg config.Loki, deps Deps) (*Client, error) {
	if deps.Logger == nil {
		return nil, errors.New("loki: Deps.Logger is nil")
	}
	u, err := parseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	format := cfg.Format
	if format == "" {
		format = FormatProtobuf
	}
	if format != FormatProtobuf && format != FormatJSON {
		return nil, fmt.Errorf("loki: loki.format %q: want %s or %s", cfg.Format, FormatProtobuf, FormatJSON)
	}
	if cfg.Gzip && format == FormatProtobuf {
		deps.Logger.Warn("loki: loki.gzip only applies to the json format; protobuf bodies are snappy-compressed", "url", redact(u))
	}
	if cfg.Timeout <= 0 {
		return nil, fmt.Errorf("loki: loki.timeout %s: must be positive, e.g. 10s", cfg.Timeout)
	}
	if cfg.Parallelism < 1 {
		return nil, fmt.Errorf("loki: loki.parallelism %d: must be at least 1", cfg.Parallelism)
	}
	auth, err := authorization(cfg, u)
	if err != nil {
		return nil, err
	}
	headers, err := extraHeaders(cfg, auth != "")
	if err != nil {
		return nil, err
	}
	version := deps.Version
	if version == "" {
		version = "dev"
	}
	c := &Client{
		url:         redact(u), // user information, if any, is in auth now
		tenant:      cfg.TenantID,
		auth:        auth,
		headers:     headers,
		userAgent:   "wharf/" + version,
		timeout:     cfg.Timeout,
		parallelism: cfg.Parallelism,
		format:      format,
		gzip:        cfg.Gzip,
		observer:    deps.Observer,
		log:         deps.Logger,
		senders:     make(chan *sender, 2*cfg.Parallelism), // one in flight and one staged per shard
	}

	rt := deps.Transport
	if rt == nil {
		tlsCfg, err := tlsConfig(cfg.TLS)
		if err != nil {
			return nil, err
		}
		if cfg.TLS.InsecureSkipVerify {
			deps.Logger.Warn("loki: loki.tls.insecure_skip_verify is set: the server's certificate is not checked, so anyone on the path can read and forge pushes", "url", c.url)
		}
		if u.Scheme == "http" && (cfg.TLS != config.TLS{}) {
			deps.Logger.Warn("loki: loki.tls is set but loki.url uses http://, so TLS is not used", "url", c.url)
		}
		rt = newTransport(cfg.Parallelism, tlsCfg)
	}
	c.http = &http.Client{
		Transport: rt,
		// A 301 or 302 would turn the POST into a body-less GET; surface
		// redirects as errors that say which URL to configure instead.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c, nil
}

func parseURL(raw string) (*url.URL, error) {
	const example = "http://loki:3100/loki/api/v1/push"
	if raw == "" {
		return nil, fmt.Errorf("loki: loki.url is empty: set it to the push endpoint, e.g. %s", example)
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the URL, which may hold a password.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, fmt.Errorf("loki: loki.url is not a URL (%v): set it to the push endpoint, e.g. %s", err, example)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("loki: loki.url %q: scheme must be http or https, e.g. %s", redact(u), example)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("loki: loki.url %q has no host: set it to the push endpoint, e.g. %s", redact(u), example)
	}
	if u.Path == "" || u.Path == "/" {
		return nil, fmt.Errorf("loki: loki.url %q has no path: set it to the push endpoint, e.g. %s", redact(u), example)
	}
	if u.Fragment != "" {
		return nil, fmt.Errorf("loki: loki.url %q has a fragment (#...), which is never sent: remove it", redact(u))
	}
	return u, nil
}

// redact renders u without its user information.
func redact(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}

// authorization builds the Authorization header from basic auth (or user
// information in the URL) or a bearer token, reading the files named.
func authorization(cfg config.Loki, u *url.URL) (string, error) {
	ba := cfg.BasicAuth
	password := string(ba.Password)
	if ba.PasswordFile != "" {
		if password != "" {
			return "", errors.New("loki: loki.basic_auth.password and loki.basic_auth.password_file are both set: keep one")
		}
		p, err := readSecret("loki.basic_auth.password_file", ba.PasswordFile)
		if err != nil {
			return "", err
		}
		password = p
	}
	basic := ba.Username != "" || password != ""
	if basic && ba.Username == "" {
		return "", errors.New("loki: loki.basic_auth.username is empty but a password is set")
	}
	if u.User != nil {
		if basic {
			return "", errors.New("loki: loki.url holds a user name and loki.basic_auth is set: keep one")
		}
		ba.Username = u.User.Username()
		password, _ = u.User.Password()
		basic = true
	}

	bearer := string(cfg.Bearer)
	if cfg.BearerFile != "" {
		if bearer != "" {
			return "", errors.New("loki: loki.bearer_token and loki.bearer_token_file are both set: keep one")
		}
		t, err := readSecret("loki.bearer_token_file", cfg.BearerFile)
		if err != nil {
			return "", err
		}
		bearer = t
	}
	switch {
	case basic && bearer != "":
		return "", errors.New("loki: loki.basic_auth and loki.bearer_token are both set: keep one")
	case basic:
		req := http.Request{Header: http.Header{}}
		req.SetBasicAuth(ba.Username, password)
		return req.Header.Get("Authorization"), nil
	case bearer != "":
		return "Bearer " + bearer, nil
	}
	return "", nil
}

// maxSecretFile bounds what is read from a secret file, which should hold a
// line.
const maxSecretFile = 64 << 10

func readSecret(path, name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", fmt.Errorf("loki: %s: %w", path, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return "", fmt.Errorf("loki: %s: %w", path, err)
	}
	if len(b) > maxSecretFile {
		return "", fmt.Errorf("loki: %s: %s is larger than %d bytes; it should hold the secret alone", path, name, maxSecretFile)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("loki: %s: %s is empty", path, name)
	}
	if strings.ContainsAny(s, "\r\n") {
		return "", fmt.Errorf("loki: %s: %s holds more than one line", path, name)
	}
	return s, nil
}

// reservedHeaders are set by the client from the body or the configuration.
var reservedHeaders = map[string]string{
	"Content-Type":      "",
	"Content-Encoding":  "",
	"Content-Length":    "",
	"Transfer-Encoding": "",
	"Host":              "",
	"Connection":        "",
	"Authorization":     "loki.basic_auth or loki.bearer_token",
	"X-Scope-Orgid":     "loki.tenant_id",
}

func extraHeaders(cfg config.Loki, hasAuth bool) (http.Header, error) {
	h := make(http.Header, len(cfg.Headers))
	for k, v := range cfg.Headers {
		if !config.ValidHeaderName(k) {
			return nil, fmt.Errorf("loki: loki.headers: %q is not a valid header name", k)
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			return nil, fmt.Errorf("loki: loki.headers.%s: the value holds a line break", k)
		}
		canon := http.CanonicalHeaderKey(k)
		if use, ok := reservedHeaders[canon]; ok {
			switch {
			case use == "":
				return nil, fmt.Errorf("loki: loki.headers.%s: wharf sets this header itself", k)
			case canon == "Authorization" && hasAuth, canon == "X-Scope-Orgid" && cfg.TenantID != "":
				return nil, fmt.Errorf("loki: loki.headers.%s conflicts with %s: keep one", k, use)
			}
		}
		h.Set(canon, v)
	}
	return h, nil
}

func tlsConfig(t config.TLS) (*tls.Config, error) {
	c := &tls.Config{
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // the user asked, and New warns
		MinVersion:         tls.VersionTLS12,
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("loki: loki.tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("loki: loki.tls.ca_file: %s holds no PEM certificate", t.CAFile)
		}
		c.RootCAs = pool
	}
	switch {
	case t.CertFile != "" && t.KeyFile != "":
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("loki: loki.tls.cert_file and loki.tls.key_file: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	case t.CertFile != "":
		return nil, errors.New("loki: loki.tls.cert_file is set without loki.tls.key_file")
	case t.KeyFile != "":
		return nil, errors.New("loki: loki.tls.key_file is set without loki.tls.cert_file")
	}
	return c, nil
}

func newTransport(parallelism int, tlsCfg *tls.Config) *http.Transport {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         dialer.DialContext,
		TLSClientConfig:     tlsCfg,
		TLSHandshakeTimeout: 10 * time.Second,
		ForceAttemptHTTP2:   true,
		MaxIdleConns:        parallelism + 2,
		MaxIdleConnsPerHost: parallelism + 2,
		// Shorter than the idle timeouts of Loki (120s) and of common proxies
		// (60-75s), so the client drops an idle connection before a server
		// closes it under a request in flight.
		IdleConnTimeout:       30 * time.Second,
		ExpectContinueTimeout: time.Second,
		// Bodies are about a megabyte; the default 4 KiB means a syscall per
		// 4 KiB.
		WriteBufferSize: 64 << 10,
	}
}

// Name returns "loki".
func (c *Client) Name() string { return "loki" }

// Shards returns loki.parallelism.
func (c *Client) Shards() int { return c.parallelism }

// Close closes idle connections. Call it after the last Send has returned.
func (c *Client) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.http.CloseIdleConnections()
	}
	return nil
}

// Send makes one attempt to push b, within loki.timeout and ctx. It returns
// nil when Loki accepted every entry; a *sink.RetryableError for network
// errors, timeouts, 408, 429 and 5xx (with Retry-After when given); and a
// *sink.RejectedError otherwise. A 400 is Loki's partial success: it has
// stored the valid entries and refused the rest, so the batch is final and
// must not be resent. The Err of either error is an *HTTPError when a
// response arrived. b is only read and not retained.
//
// Send blocks for at most loki.timeout, plus up to a second in the rare case
// the transport is still writing the body after the answer came back.
func (c *Client) Send(ctx context.Context, b *entry.Batch) error {
	s := c.getSender()
	p := s.enc.Encode(b)
	err := c.do(ctx, s, p, b)
	if s.body.wait() {
		c.putSender(s)
	}
	// Otherwise the transport still holds the body: the sender is left to
	// the garbage collector rather than reused under it.
	return err
}

// Stage encodes b now and returns a send that pushes it, for the pipeline
// to encode the next batch while this one is in flight (sink.Stager). A
// second call of send (a retry) encodes b again on its own buffers, as Send
// does, since the transport may still hold the first body.
func (c *Client) Stage(b *entry.Batch) (send func(context.Context) error, release func()) {
	s := c.getSender()
	p := s.enc.Encode(b)
	used := false
	send = func(ctx context.Context) error {
		if used {
			return c.Send(ctx, b)
		}
		used = true
		return c.do(ctx, s, p, b)
	}
	release = func() {
		if !used || s.body.wait() {
			c.putSender(s)
		}
	}
	return send, release
}

func (c *Client) do(ctx context.Context, s *sender, p Payload, b *entry.Batch) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	body := s.body.reset(p.Body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, body)
	if err != nil {
		body.Close()
		return fmt.Errorf("loki: push to %s: %w", c.url, err)
	}
	req.ContentLength = int64(len(p.Body))
	req.GetBody = s.body.open
	for k, v := range c.headers {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", p.ContentType)
	if p.ContentEncoding != "" {
		req.Header.Set("Content-Encoding", p.ContentEncoding)
	}
	if c.tenant != "" {
		req.Header.Set("X-Scope-OrgID", c.tenant)
	}
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	req.Header.Set("User-Agent", c.userAgent)

	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		c.observe("error", start, len(p.Body))
		return transportError(c.url, c.timeout, err)
	}
	kept, rerr := readBody(resp, resp.StatusCode/100 != 2)
	c.observe(strconv.Itoa(resp.StatusCode), start, len(p.Body))
	if rerr != nil && resp.StatusCode/100 == 2 {
		// Loki answered success before the body failed; the entries are in.
		c.log.Debug("loki: reading the push response failed", "url", c.url, "err", rerr)
	}
	return classifyStatus(c.url, resp.StatusCode, resp.Header, kept, b)
}

func (c *Client) observe(status string, start time.Time, n int) {
	if c.observer != nil {
		c.observer.Observe(status, time.Since(start), n)
	}
}

// readBody reads and closes resp.Body, returning up to keepBody bytes when
// keep is set. At most keepBody+drainBody bytes are read in all.
func readBody(resp *http.Response, keep bool) ([]byte, error) {
	defer resp.Body.Close()
	var kept []byte
	if keep {
		var buf bytes.Buffer
		if _, err := buf.ReadFrom(io.LimitReader(resp.Body, keepBody)); err != nil {
			return buf.Bytes(), err
		}
		kept = buf.Bytes()
	}
	_, err := io.CopyN(io.Discard, resp.Body, drainBody)
	if err == io.EOF {
		err = nil
	}
	return kept, err
}

// sender is what one Send needs and reuses: an encoder and the tracker of
// the request body that aliases its buffer.
type sender struct {
	enc  *Encoder
	body bodyTracker
}

func (c *Client) getSender() *sender {
	select {
	case s := <-c.senders:
		return s
	default:
	}
	enc, _ := NewEncoder(c.format, c.gzip) // the format was checked by New
	return &sender{enc: enc}
}

func (c *Client) putSender(s *sender) {
	select {
	case c.senders <- s:
	default:
		// More concurrent Sends than shards: drop the extra buffers.
	}
}

// bodyWait bounds how long Send waits for the transport to close the request
// body after the response came back. The transport may close it from another
// goroutine after Do has returned; until then the buffer behind it must not
// be reused.
const bodyWait = time.Second

// bodyTracker hands out readers of one request body (the first for the
// request, more through GetBody when the transport replays it) and reports
// when all of them are closed.
type bodyTracker struct {
	data    []byte
	readers atomic.Int32  // open readers
	closed  chan struct{} // signalled when readers drops to zero
}

func (t *bodyTracker) reset(data []byte) io.ReadCloser {
	t.data = data
	t.readers.Store(0)
	if t.closed == nil {
		t.closed = make(chan struct{}, 1)
	}
	select {
	case <-t.closed: // a stale signal from the previous request
	default:
	}
	r, _ := t.open()
	return r
}

func (t *bodyTracker) open() (io.ReadCloser, error) {
	t.readers.Add(1)
	return &trackedReader{Reader: bytes.NewReader(t.data), t: t}, nil
}

// wait blocks until every reader is closed or bodyWait has passed, and
// reports whether they all were. It is called after Do has returned, when no
// more readers can be opened.
func (t *bodyTracker) wait() bool {
	if t.readers.Load() == 0 {
		return true
	}
	timer := time.NewTimer(bodyWait)
	defer timer.Stop()
	for {
		select {
		case <-t.closed:
			if t.readers.Load() == 0 {
				return true
			}
		case <-timer.C:
			return t.readers.Load() == 0
		}
	}
}

type trackedReader struct {
	*bytes.Reader
	t    *bodyTracker
	once sync.Once
}

func (r *trackedReader) Close() error {
	r.once.Do(func() {
		if r.t.readers.Add(-1) == 0 {
			select {
			case r.t.closed <- struct{}{}:
			default:
			}
		}
	})
	return nil
}
