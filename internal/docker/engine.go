package docker

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultHost is the Engine address used when neither the configuration nor
// DOCKER_HOST names one.
const DefaultHost = "unix:///var/run/docker.sock"

// API versions wharf can speak. Every endpoint and field wharf reads exists
// since minAPIVersion; the daemon's version is used when it is lower than
// maxAPIVersion, so old and new engines both work without pinning.
const (
	minAPIVersion = "1.24"
	maxAPIVersion = "1.51"
)

// requestTimeout bounds each non-streaming request (list, inspect, ping).
const requestTimeout = 30 * time.Second

// Limits on what wharf takes from the Engine, so that a broken or hostile
// socket cannot make it buffer without end. Docker's own answers stay far
// below them: an event is a few KiB (its attributes are the container's
// labels), an inspection tens of KiB, a list about 2 KiB per container.
const (
	// MaxEventBytes bounds one event of the event stream.
	MaxEventBytes = 1 << 20
	// maxListBytes bounds a container list, and maxListed the containers
	// in it: decoded, a tiny entry costs more memory than its bytes.
	maxListBytes = 64 << 20
	maxListed    = 1 << 18
	// maxInspectBytes bounds the inspection of one container.
	maxInspectBytes = 8 << 20
	// responseHeaderTimeout bounds the wait for the status line and headers
	// of every request, the event and log streams included: dockerd sends
	// them at once and the body follows.
	responseHeaderTimeout = 20 * time.Second
)

// Kinds of ProtocolError, the values of the kind label of
// wharf_docker_protocol_errors_total.
const (
	KindEventTooLarge    = "event_too_large"
	KindResponseTooLarge = "response_too_large"
	KindHeaderTimeout    = "header_timeout"
	KindMalformed        = "malformed"
)

// ProtocolError is an answer of the Engine that wharf refuses or stopped
// waiting for: an event or an answer beyond its limit, no response headers
// within responseHeaderTimeout, or JSON that does not parse. What was read
// of it is dropped (a stream is closed); the caller tries again after a
// backoff.
type ProtocolError struct {
	// Kind is one of the Kind constants.
	Kind string
	// Path is the request's path, e.g. /events.
	Path string
	Err  error
}

func (e *ProtocolError) Error() string { return fmt.Sprintf("docker: %s: %v", e.Path, e.Err) }

// Unwrap returns Err.
func (e *ProtocolError) Unwrap() error { return e.Err }

// errTooLarge is what a capReader returns past its cap.
var errTooLarge = errors.New("docker: answer larger than its limit")

// capReader reads at most n bytes of r, then fails with errTooLarge.
type capReader struct {
	r io.Reader
	n int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.n <= 0 {
		return 0, errTooLarge
	}
	if int64(len(p)) > c.n {
		p = p[:c.n]
	}
	n, err := c.r.Read(p)
	c.n -= int64(n)
	return n, err
}

// decodeError turns an error decoding the answer to path, read through a
// capReader of limit bytes, into a ProtocolError when the answer is at
// fault.
func decodeError(path string, err error, limit int64) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, errTooLarge):
		return &ProtocolError{Kind: KindResponseTooLarge, Path: path, Err: fmt.Errorf("answer larger than %d MiB, not read", limit>>20)}
	case errors.As(err, &syn), errors.As(err, &typ):
		return &ProtocolError{Kind: KindMalformed, Path: path, Err: fmt.Errorf("decoding the answer: %w", err)}
	}
	return fmt.Errorf("docker: %s: decoding the answer: %w", path, err)
}

// headerTimeout reports whether err, from a request whose context has not
// ended, is the transport giving up waiting for the response headers: a
// timeout that is not the dial's.
func headerTimeout(err error) bool {
	var ne net.Error
	var op *net.OpError
	return errors.As(err, &ne) && ne.Timeout() && !(errors.As(err, &op) && op.Op == "dial")
}

// Client is a read-only Docker Engine API client: it can list and inspect
// containers, follow events and read logs, and nothing else. It is safe for
// concurrent use; one Client serves the whole process.
//
// Streams it returns (Events, Logs) are owned by the caller, who must Close
// them; cancelling the context passed when opening a stream unblocks a
// pending read.
type Client struct {
	host  string // as configured, for errors
	local bool   // unix socket: log files are on this host
	base  string // scheme://authority for requests
	http  *http.Client
	tr    *http.Transport

	mu      sync.Mutex
	version string // negotiated, e.g. "1.41"; empty until negotiated
}

// NewClient returns a client for host (DefaultHost when empty). tcp://
// addresses use TLS when DOCKER_TLS_VERIFY is set, with certificates from
// DOCKER_CERT_PATH, as the docker CLI does.
func NewClient(host string) (*Client, error) {
	if host == "" {
		host = DefaultHost
	}
	u, err := url.Parse(host)
	if err != nil {
		return nil, fmt.Errorf("docker: host %q: %w", host, err)
	}
	tr := &http.Transport{
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       10 * time.Second,
		ResponseHeaderTimeout: responseHeaderTimeout,
		DisableCompression:    true,
	}
	c := &Client{host: host, http: &http.Client{Transport: tr}, tr: tr}
	switch u.Scheme {
	case "unix":
		path := u.Path
		if path == "" {
			return nil, fmt.Errorf("docker: host %q has no socket path; write unix:///var/run/docker.sock", host)
		}
		d := net.Dialer{Timeout: 10 * time.Second}
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", path)
		}
		c.base = "http://docker"
		c.local = true
	case "tcp", "http", "https":
		d := net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
		tr.DialContext = d.DialContext
		scheme := "http"
		if u.Scheme == "https" || os.Getenv("DOCKER_TLS_VERIFY") != "" {
			cfg, err := tlsFromEnv()
			if err != nil {
				return nil, err
			}
			tr.TLSClientConfig = cfg
			scheme = "https"
		}
		c.base = scheme + "://" + u.Host
	default:
		return nil, fmt.Errorf("docker: host %q: unsupported scheme %q; use unix:// or tcp://", host, u.Scheme)
	}
	return c, nil
}

func tlsFromEnv() (*tls.Config, error) {
	dir := os.Getenv("DOCKER_CERT_PATH")
	if dir == "" {
		home, _ := os.UserHomeDir()
		dir = filepath.Join(home, ".docker")
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	ca, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		return nil, fmt.Errorf("docker: DOCKER_TLS_VERIFY is set but the CA is unreadable: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("docker: no certificate in %s", filepath.Join(dir, "ca.pem"))
	}
	cfg.RootCAs = pool
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	if err != nil {
		return nil, fmt.Errorf("docker: client certificate in %s: %w", dir, err)
	}
	cfg.Certificates = []tls.Certificate{cert}
	return cfg, nil
}

// Host returns the address the client talks to.
func (c *Client) Host() string { return c.host }

// Local reports whether the daemon runs on this host (a unix socket), so its
// log files may be readable here.
func (c *Client) Local() bool { return c.local }

// Close releases idle connections.
func (c *Client) Close() { c.tr.CloseIdleConnections() }

// APIError is an error answer of the Engine API.
type APIError struct {
	Status  int
	Path    string
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("docker: %s: %d %s", e.Path, e.Status, e.Message)
}

// IsNotFound reports whether err is the Engine's 404 (no such container).
func IsNotFound(err error) bool {
	var e *APIError
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}

// Negotiate asks the daemon for its API version and settles on the highest
// version both sides speak. Requests negotiate on first use; call it again
// after a reconnect to follow a daemon that was upgraded.
func (c *Client) Negotiate(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/_ping", nil)
	if err != nil {
		return "", err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() == nil && headerTimeout(err) {
			return "", &ProtocolError{Kind: KindHeaderTimeout, Path: "/_ping", Err: fmt.Errorf("no answer from %s within %v", c.host, c.tr.ResponseHeaderTimeout)}
		}
		return "", fmt.Errorf("docker: cannot reach the daemon at %s: %w", c.host, err)
	}
	drainClose(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("docker: ping %s: status %d", c.host, resp.StatusCode)
	}
	v := resp.Header.Get("Api-Version")
	if v == "" {
		v = minAPIVersion
	}
	if versionLess(v, minAPIVersion) {
		return "", fmt.Errorf("docker: daemon at %s speaks API %s; wharf needs %s or later", c.host, v, minAPIVersion)
	}
	if versionLess(maxAPIVersion, v) {
		v = maxAPIVersion
	}
	c.mu.Lock()
	c.version = v
	c.mu.Unlock()
	return v, nil
}

// versionLess compares dotted API versions numerically.
func versionLess(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(as), len(bs)); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x < y
		}
	}
	return false
}

// get sends a GET for path with query under the negotiated version. The
// caller owns the response body on success; an error status is turned into
// an *APIError with the body closed.
func (c *Client) get(ctx context.Context, path string, query url.Values) (*http.Response, error) {
	c.mu.Lock()
	v := c.version
	c.mu.Unlock()
	if v == "" {
		var err error
		if v, err = c.Negotiate(ctx); err != nil {
			return nil, err
		}
	}
	u := c.base + "/v" + v + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() == nil && headerTimeout(err) {
			return nil, &ProtocolError{Kind: KindHeaderTimeout, Path: path, Err: fmt.Errorf("no answer within %v", c.tr.ResponseHeaderTimeout)}
		}
		return nil, fmt.Errorf("docker: %s: %w", path, err)
	}
	if resp.StatusCode/100 != 2 {
		defer drainClose(resp.Body)
		var msg struct {
			Message string `json:"message"`
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if json.Unmarshal(body, &msg) != nil || msg.Message == "" {
			msg.Message = strings.TrimSpace(string(body))
		}
		return nil, &APIError{Status: resp.StatusCode, Path: path, Message: msg.Message}
	}
	return resp, nil
}

// drainClose reads what is left of a small body (so the connection can be
// reused) and closes it.
func drainClose(rc io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(rc, 256<<10))
	rc.Close()
}

// getJSON decodes the answer to path into v, refusing one beyond limit
// bytes.
func (c *Client) getJSON(ctx context.Context, path string, query url.Values, limit int64, v any) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	resp, err := c.get(ctx, path, query)
	if err != nil {
		return err
	}
	defer drainClose(resp.Body)
	if err := json.NewDecoder(&capReader{r: resp.Body, n: limit}).Decode(v); err != nil {
		return decodeError(path, err, limit)
	}
	return nil
}

// Summary is one row of the container list.
type Summary struct {
	ID     string            `json:"Id"`
	Names  []string          `json:"Names"`
	Image  string            `json:"Image"`
	State  string            `json:"State"`
	Labels map[string]string `json:"Labels"`
	// Created is when the container was created, Unix seconds.
	Created int64 `json:"Created"`
}

// List returns every container, running or not. The answer is decoded
// one container at a time, so only the containers are held, not the
// answer's bytes; one beyond maxListBytes or maxListed is refused.
func (c *Client) List(ctx context.Context) ([]Summary, error) {
	const path = "/containers/json"
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	resp, err := c.get(ctx, path, url.Values{"all": {"1"}})
	if err != nil {
		return nil, err
	}
	defer drainClose(resp.Body)
	dec := json.NewDecoder(&capReader{r: resp.Body, n: maxListBytes})
	tok, err := dec.Token()
	if err != nil {
		return nil, decodeError(path, err, maxListBytes)
	}
	if tok == nil {
		return nil, nil // null: no containers
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, &ProtocolError{Kind: KindMalformed, Path: path, Err: fmt.Errorf("the answer is not a list but %v", tok)}
	}
	var out []Summary
	for dec.More() {
		if len(out) == maxListed {
			return nil, &ProtocolError{Kind: KindResponseTooLarge, Path: path, Err: fmt.Errorf("more than %d containers, not read", maxListed)}
		}
		var s Summary
		if err := dec.Decode(&s); err != nil {
			return nil, decodeError(path, err, maxListBytes)
		}
		out = append(out, s)
	}
	if _, err := dec.Token(); err != nil {
		return nil, decodeError(path, err, maxListBytes)
	}
	return out, nil
}

// Container is what wharf needs to know about one container.
type Container struct {
	ID        string
	Name      string // without the leading slash
	Image     string // the reference the container was created from
	ImageID   string
	Labels    map[string]string
	TTY       bool
	Running   bool
	Paused    bool
	LogDriver string
	LogPath   string
	Created   time.Time
	StartedAt time.Time
}

type inspectJSON struct {
	ID      string `json:"Id"`
	Name    string `json:"Name"`
	Image   string `json:"Image"`
	Created string `json:"Created"`
	LogPath string `json:"LogPath"`
	State   struct {
		Running   bool   `json:"Running"`
		Paused    bool   `json:"Paused"`
		StartedAt string `json:"StartedAt"`
	} `json:"State"`
	Config struct {
		Image  string            `json:"Image"`
		Tty    bool              `json:"Tty"`
		Labels map[string]string `json:"Labels"`
	} `json:"Config"`
	HostConfig struct {
		LogConfig struct {
			Type string `json:"Type"`
		} `json:"LogConfig"`
	} `json:"HostConfig"`
}

// Inspect returns the container with the given id or name. A missing
// container yields an error for which IsNotFound is true.
func (c *Client) Inspect(ctx context.Context, id string) (Container, error) {
	var j inspectJSON
	if err := c.getJSON(ctx, "/containers/"+url.PathEscape(id)+"/json", nil, maxInspectBytes, &j); err != nil {
		return Container{}, err
	}
	ct := Container{
		ID:        j.ID,
		Name:      strings.TrimPrefix(j.Name, "/"),
		Image:     j.Config.Image,
		ImageID:   j.Image,
		Labels:    j.Config.Labels,
		TTY:       j.Config.Tty,
		Running:   j.State.Running,
		Paused:    j.State.Paused,
		LogDriver: j.HostConfig.LogConfig.Type,
		LogPath:   j.LogPath,
	}
	ct.Created, _ = time.Parse(time.RFC3339Nano, j.Created)
	ct.StartedAt, _ = time.Parse(time.RFC3339Nano, j.State.StartedAt)
	return ct, nil
}

// Event is a container event.
type Event struct {
	Action string
	ID     string
	// Attributes holds the container's labels plus name (and oldName on a
	// rename), image and exitCode.
	Attributes map[string]string
	// TimeNano is the daemon's time of the event, Unix nanoseconds.
	TimeNano int64
}

// EventStream is an open /events stream. It is owned by one goroutine.
//
// It holds at most MaxEventBytes of an event (plus a read buffer): an
// event that grows past that, or white space that never ends, fails Next
// with a ProtocolError and the stream is useless from there on.
type EventStream struct {
	body io.ReadCloser
	in   *eventReader
	dec  *json.Decoder
}

// eventReader is what an EventStream's decoder reads through: it refuses
// to read past limit, the end of the event being decoded at its largest.
type eventReader struct {
	r     io.Reader
	read  int64 // bytes handed to the decoder
	limit int64
}

func (e *eventReader) Read(p []byte) (int, error) {
	room := e.limit - e.read
	if room <= 0 {
		return 0, errTooLarge
	}
	if int64(len(p)) > room {
		p = p[:room]
	}
	n, err := e.r.Read(p)
	e.read += int64(n)
	return n, err
}

func newEventStream(body io.ReadCloser) *EventStream {
	in := &eventReader{r: bufio.NewReaderSize(body, 16<<10)}
	return &EventStream{body: body, in: in, dec: json.NewDecoder(in)}
}

// watchedActions are the container events wharf acts on; filtering them in
// the daemon keeps exec and attach noise off the wire.
var watchedActions = []string{"create", "start", "restart", "die", "destroy", "rename", "pause", "unpause"}

// Events opens the container event stream. With since > 0 (Unix
// nanoseconds) the daemon first replays the events from that time, which is
// how a reconnect recovers the window it missed.
func (c *Client) Events(ctx context.Context, since int64) (*EventStream, error) {
	filters, _ := json.Marshal(map[string][]string{"type": {"container"}, "event": watchedActions})
	q := url.Values{"filters": {string(filters)}}
	if since > 0 {
		q.Set("since", formatUnixNano(since))
	}
	resp, err := c.get(ctx, "/events", q)
	if err != nil {
		return nil, err
	}
	return newEventStream(resp.Body), nil
}

// Next blocks until the next event, the end of the stream, or the
// cancellation of the context the stream was opened with.
func (s *EventStream) Next() (Event, error) {
	for {
		// Fresh each time: decoding into a used struct would keep fields,
		// and merge attributes, of a skipped event.
		var m struct {
			Type   string `json:"Type"`
			Action string `json:"Action"`
			Actor  struct {
				ID         string            `json:"ID"`
				Attributes map[string]string `json:"Attributes"`
			} `json:"Actor"`
			Time     int64 `json:"time"`
			TimeNano int64 `json:"timeNano"`
		}
		// The event starts where the last one ended; what the decoder has
		// read ahead of it counts towards it.
		s.in.limit = s.dec.InputOffset() + MaxEventBytes
		if err := s.dec.Decode(&m); err != nil {
			var syn *json.SyntaxError
			switch {
			case errors.Is(err, io.EOF):
				return Event{}, io.EOF
			case errors.Is(err, errTooLarge):
				return Event{}, &ProtocolError{Kind: KindEventTooLarge, Path: "/events", Err: fmt.Errorf("an event larger than %d MiB; the stream is dropped", MaxEventBytes>>20)}
			case errors.As(err, &syn):
				return Event{}, &ProtocolError{Kind: KindMalformed, Path: "/events", Err: fmt.Errorf("not an event; the stream is dropped: %w", err)}
			}
			return Event{}, fmt.Errorf("docker: events: %w", err)
		}
		if m.Type != "" && m.Type != "container" {
			continue
		}
		tn := m.TimeNano
		if tn == 0 {
			tn = m.Time * 1e9
		}
		return Event{Action: m.Action, ID: m.Actor.ID, Attributes: m.Actor.Attributes, TimeNano: tn}, nil
	}
}

// Close closes the stream.
func (s *EventStream) Close() error { return s.body.Close() }

// LogsOptions selects what Logs returns.
type LogsOptions struct {
	// Since is the Unix nanosecond time of the first line wanted; lines at
	// exactly Since are included. 0 means from the first line.
	Since int64
	// Follow keeps the stream open for new lines until the container stops.
	Follow bool
}

// Logs opens the container's log stream with timestamps, stdout and stderr.
// The caller must Close it; cancelling ctx unblocks a pending Read.
func (c *Client) Logs(ctx context.Context, id string, o LogsOptions) (io.ReadCloser, error) {
	q := url.Values{"stdout": {"1"}, "stderr": {"1"}, "timestamps": {"1"}}
	if o.Follow {
		q.Set("follow", "1")
	}
	if o.Since > 0 {
		q.Set("since", formatUnixNano(o.Since))
	}
	resp, err := c.get(ctx, "/containers/"+url.PathEscape(id)+"/logs", q)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// formatUnixNano renders t as the API's "seconds.nanoseconds".
func formatUnixNano(t int64) string {
	return fmt.Sprintf("%d.%09d", t/1e9, t%1e9)
}
