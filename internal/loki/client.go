// Package loki delivers batches to a Loki-protocol receiver: it encodes the
// push body (protobuf in a snappy block, or JSON, optionally gzipped), makes
// one HTTP attempt per Send, and classifies the answer as delivered,
// retryable or final. It also decodes push bodies, for test receivers.
package loki

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

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
// at the cost of extra encoder buffers). It also implements sink.Stager,
// sink.Prober, and sink.Preparer by its Limits.
type Client struct {
	url         string // the push URL, without credentials
	shown       string // url as errors and logs show it (RedactURL)
	tenant      string
	auth        string // the Authorization header, or ""
	headers     http.Header
	userAgent   string
	timeout     time.Duration
	parallelism int
	format      Format
	gzip        bool
	metadata    bool
	limits      Limits

	http     *http.Client
	observer Observer
	log      *slog.Logger
	// probe is the body of a probe, a push of no entries; it is never
	// modified, so requests share it.
	probe Payload

	// senders holds idle encoders and their request body trackers, so the
	// steady state allocates no buffers and holds at most parallelism of
	// them.
	senders chan *sender
	closed  atomic.Bool
}

var (
	_ sink.Sink     = (*Client)(nil)
	_ sink.Sharded  = (*Client)(nil)
	_ sink.Stager   = (*Client)(nil)
	_ sink.Preparer = (*Client)(nil)
	_ sink.Prober   = (*Client)(nil)
)

// Config configures a Client. Its values are resolved and checked by the
// caller (wharf's configuration reads the secret and certificate files and
// refuses what Loki or HTTP would not take), so New does not check them
// again. Zero fields take the defaults noted.
type Config struct {
	// URL is the push endpoint, e.g. http://loki:3100/loki/api/v1/push,
	// without user information: credentials go in Authorization.
	URL string
	// Format is the encoding of push bodies; FormatProtobuf when empty.
	Format Format
	// Gzip compresses JSON bodies; protobuf bodies are always snappy blocks.
	Gzip bool
	// TenantID, when set, is sent as X-Scope-OrgID.
	TenantID string
	// Authorization, when set, is the Authorization header's value, e.g.
	// "Bearer <token>".
	Authorization string
	// Headers are sent with every push, User-Agent included. The client's
	// own headers win over them: those SetsHeader reports, and
	// Authorization and X-Scope-OrgID when the fields above set them.
	Headers map[string]string
	// TLS configures https connections; nil verifies the server against the
	// system's CAs, with TLS 1.2 at least.
	TLS *tls.Config
	// Timeout bounds one push request; 10s when zero.
	Timeout time.Duration
	// Parallelism is how many requests may be in flight, each for its own
	// set of streams; 1 when zero.
	Parallelism int
	// StructuredMetadata sends each stream's Metadata (container_id, image)
	// as Loki structured metadata; off, it is left out of every push, for a
	// Loki that does not allow it (allow_structured_metadata: false).
	StructuredMetadata bool
	// Limits keep the entries Loki would refuse out of the batches
	// (Prepare).
	Limits Limits
}

// Headers the client sets from Config.Authorization and Config.TenantID.
const (
	HeaderAuthorization = "Authorization"
	HeaderTenant        = "X-Scope-OrgID"
)

// SetsHeader reports whether the client sets the request header name on
// every push whatever Config.Headers holds: the body's type, encoding and
// length, and the connection's headers. It is the list wharf's
// configuration refuses in loki.headers.
func SetsHeader(name string) bool {
	switch http.CanonicalHeaderKey(name) {
	case "Content-Type", "Content-Encoding", "Content-Length", "Transfer-Encoding", "Host", "Connection":
		return true
	}
	return false
}

// New returns a Client for cfg. It starts nothing and makes no request.
func New(cfg Config, deps Deps) (*Client, error) {
	if deps.Logger == nil {
		return nil, errors.New("loki: Deps.Logger is nil")
	}
	if cfg.URL == "" {
		return nil, errors.New("loki: Config.URL is empty")
	}
	if cfg.Format == "" {
		cfg.Format = FormatProtobuf
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	cfg.Parallelism = max(cfg.Parallelism, 1)
	enc, err := NewEncoder(cfg.Format, cfg.Gzip)
	if err != nil {
		return nil, err
	}
	probe := enc.Encode(&entry.Batch{})
	probe.Body = bytes.Clone(probe.Body)
	headers := make(http.Header, len(cfg.Headers))
	for k, v := range cfg.Headers {
		headers.Set(k, v)
	}
	version := deps.Version
	if version == "" {
		version = "dev"
	}
	rt := deps.Transport
	if rt == nil {
		tlsCfg := cfg.TLS
		if tlsCfg == nil {
			tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		rt = newTransport(cfg.Parallelism, tlsCfg)
	}
	return &Client{
		url:         cfg.URL,
		shown:       RedactURL(cfg.URL),
		tenant:      cfg.TenantID,
		auth:        cfg.Authorization,
		headers:     headers,
		userAgent:   "wharf/" + version,
		timeout:     cfg.Timeout,
		parallelism: cfg.Parallelism,
		format:      cfg.Format,
		gzip:        cfg.Gzip,
		metadata:    cfg.StructuredMetadata,
		limits:      cfg.Limits,
		observer:    deps.Observer,
		log:         deps.Logger,
		probe:       probe,
		senders:     make(chan *sender, 2*cfg.Parallelism), // one in flight and one staged per shard
		http: &http.Client{
			Transport: rt,
			// A 301 or 302 would turn the POST into a body-less GET; surface
			// redirects as errors that say which URL to configure instead.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}, nil
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

// sinkName is the Client's name as a sink, in metric labels and file names.
const sinkName = "loki"

// Name returns "loki".
func (c *Client) Name() string { return sinkName }

// Prepare keeps an entry Loki would refuse out of the batches, by
// Config.Limits (sink.Preparer).
func (c *Client) Prepare(e *entry.Entry, now time.Time) string { return c.limits.Prepare(e, now) }

// Shards returns Config.Parallelism.
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
// errors, timeouts, 408, 429 and 5xx (with Retry-After when given); a
// *sink.TooLargeError for 413; a *sink.RejectedError for 400; and a
// *sink.MisconfiguredError for any other answer (401, 403, 404, 405, a
// redirect...), which says nothing was stored and names what to check. A
// 400 is Loki's partial success: it has stored the valid entries and
// refused the rest, so the batch is final and must not be resent. The Err
// of each error is an *HTTPError when a response arrived. b is only read
// and not retained.
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
	req, err := c.newRequest(ctx, p, s.body.reset(p.Body), s.body.open)
	if err != nil {
		return err
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		c.observe("error", start, len(p.Body))
		return transportError(c.shown, c.timeout, err)
	}
	kept, rerr := readBody(resp, resp.StatusCode/100 != 2)
	c.observe(strconv.Itoa(resp.StatusCode), start, len(p.Body))
	if rerr != nil && resp.StatusCode/100 == 2 {
		// Loki answered success before the body failed; the entries are in.
		c.log.Debug("loki: reading the push response failed", "url", c.shown, "err", rerr)
	}
	return classifyStatus(c.shown, resp.StatusCode, resp.Header, kept, b)
}

// Probe makes one request as a push of no entries: the same URL, headers
// and credentials as Send, with an empty PushRequest for body (sink.Prober).
// Loki answers it once it has checked the tenant, without asking its
// ingesters; so does a proxy or gateway in front of it. It returns nil when
// the receiver answered 2xx, and otherwise an error classified as Send's
// are. A probe is not a delivery attempt: the Observer is not told.
func (c *Client) Probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	open := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(c.probe.Body)), nil }
	body, _ := open()
	req, err := c.newRequest(ctx, c.probe, body, open)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return transportError(c.shown, c.timeout, err)
	}
	kept, _ := readBody(resp, resp.StatusCode/100 != 2)
	return classifyStatus(c.shown, resp.StatusCode, resp.Header, kept, nil)
}

// newRequest makes a push request of p with the client's headers; body
// reads p.Body and getBody opens it again when the transport replays it.
// body is closed when the request cannot be made.
func (c *Client) newRequest(ctx context.Context, p Payload, body io.ReadCloser, getBody func() (io.ReadCloser, error)) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, body)
	if err != nil {
		body.Close()
		return nil, fmt.Errorf("loki: push to %s: %w", c.shown, err)
	}
	req.ContentLength = int64(len(p.Body))
	req.GetBody = getBody
	req.Header.Set("User-Agent", c.userAgent) // loki.headers may replace it
	for k, v := range c.headers {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", p.ContentType)
	if p.ContentEncoding != "" {
		req.Header.Set("Content-Encoding", p.ContentEncoding)
	}
	if c.tenant != "" {
		req.Header.Set(HeaderTenant, c.tenant)
	}
	if c.auth != "" {
		req.Header.Set(HeaderAuthorization, c.auth)
	}
	return req, nil
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
	enc.noMetadata = !c.metadata
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
