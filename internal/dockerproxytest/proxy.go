// Package dockerproxytest is a unix-socket proxy for tests that sits between a
// Docker Engine API client and the daemon's socket. It forwards every
// connection byte for byte, records the request line of every request it
// sees, and can cut all open connections at once, and refuse new ones for a
// while, to simulate the daemon connection dropping and coming back.
//
// The Engine API is HTTP/1.1 over the socket. The proxy parses just enough of
// the client's side to find where each request starts: the request line and
// headers, then a body framed by Content-Length or chunked encoding, so
// requests pipelined on a keep-alive connection are each recorded. Responses,
// including the long-lived streams of /containers/{id}/logs and /events, are
// copied as they come and never parsed. A request that asks to upgrade the
// connection (Connection: Upgrade, as docker attach and exec do) is recorded
// with Upgrade set, and what follows it is copied without parsing.
//
// Refusing is done the way a stopped daemon refuses: the listener is closed
// but its socket file is left in place, so a client's connect fails with
// ECONNREFUSED until the proxy listens again.
package dockerproxytest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// maxHead bounds a request line plus headers; a longer head is recorded as
// malformed and the rest of its connection is copied without parsing.
const maxHead = 1 << 20

// dialTimeout bounds the connection to the daemon made for each client.
const dialTimeout = 10 * time.Second

// Request is one request the proxy saw.
type Request struct {
	// Conn numbers the client connection it came on, from 1 in the order
	// accepted; Seq numbers the requests of that connection from 1.
	Conn, Seq int
	Time      time.Time
	// Method and Target are the request line's method and request-target
	// (path and query as sent, e.g. /v1.41/containers/json?all=1).
	Method string
	Target string
	Proto  string
	// Upgrade reports a request that asks to take the connection over
	// (Connection: Upgrade or an Upgrade header).
	Upgrade bool
	// Malformed holds why the head could not be parsed; Method and Target
	// are then empty and the rest of the connection was copied as is.
	Malformed string
}

// Path returns the target without its query.
func (r Request) Path() string {
	p, _, _ := strings.Cut(r.Target, "?")
	return p
}

// Query returns the target's raw query, without the "?".
func (r Request) Query() string {
	_, q, _ := strings.Cut(r.Target, "?")
	return q
}

var (
	apiVersion = regexp.MustCompile(`^/v[0-9]+\.[0-9]+(/|$)`)
	hexID      = regexp.MustCompile(`^[0-9a-f]{12,64}$`)
)

// Endpoint names the request's endpoint without what varies between calls:
// the method, the path without its /vX.Y prefix and with container ids
// (12 to 64 hex digits) written {id}, and the sorted names of the query
// parameters, e.g. "GET /containers/{id}/logs?follow&since&stderr".
func (r Request) Endpoint() string {
	if r.Malformed != "" {
		return "MALFORMED " + r.Malformed
	}
	p := r.Path()
	if loc := apiVersion.FindStringIndex(p); loc != nil {
		p = "/" + p[loc[1]:]
	}
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if hexID.MatchString(s) {
			segs[i] = "{id}"
		}
	}
	out := r.Method + " " + strings.Join(segs, "/")
	if q := r.Query(); q != "" {
		var keys []string
		for kv := range strings.SplitSeq(q, "&") {
			k, _, _ := strings.Cut(kv, "=")
			if k != "" && !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		out += "?" + strings.Join(keys, "&")
	}
	return out
}

// Stats counts what the proxy has done.
type Stats struct {
	Accepted int // client connections accepted
	Open     int // client connections open now
	Cuts     int // calls to Cut or Refuse
	Cut      int // connections closed by those calls
	Failed   int // client connections closed because the daemon could not be reached
}

// Proxy is a running proxy. Its methods are safe for concurrent use.
type Proxy struct {
	path   string
	target string

	mu       sync.Mutex
	ln       *net.UnixListener // nil while refusing or closed
	closed   bool
	gen      int         // bumped by each Refuse, so a stale timer does not resume
	timer    *time.Timer // ends the current refusal
	conns    map[*conn]struct{}
	requests []Request
	stats    Stats
	wg       sync.WaitGroup
}

// conn is one proxied client connection and its daemon connection.
type conn struct {
	id     int
	client net.Conn
	up     net.Conn // nil until dialled
	closed bool     // guarded by Proxy.mu
}

// Start listens on the unix socket at path (which must not exist, or be a
// stale socket, which is removed) and forwards each connection to the unix
// socket target: a path, or a unix:// address such as
// unix:///var/run/docker.sock. Keep path short: a socket path is limited to
// about 100 bytes.
func Start(path, target string) (*Proxy, error) {
	target = strings.TrimPrefix(target, "unix://")
	if target == "" {
		return nil, errors.New("dockerproxytest: no target socket")
	}
	p := &Proxy{path: path, target: target, conns: map[*conn]struct{}{}}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.listenLocked(); err != nil {
		return nil, err
	}
	return p, nil
}

// Path returns the socket the proxy listens on.
func (p *Proxy) Path() string { return p.path }

// Host returns the proxy's address in DOCKER_HOST form, unix://<path>.
func (p *Proxy) Host() string { return "unix://" + p.path }

func (p *Proxy) listenLocked() error {
	if fi, err := os.Lstat(p.path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		os.Remove(p.path)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: p.path, Net: "unix"})
	if err != nil {
		return fmt.Errorf("dockerproxytest: %w", err)
	}
	// Closing to refuse must leave the socket file: connecting to it then
	// fails with ECONNREFUSED, as with a daemon that stopped.
	ln.SetUnlinkOnClose(false)
	p.ln = ln
	p.wg.Add(1)
	go p.accept(ln)
	return nil
}

// stopListeningLocked cancels a pending return to accepting (Refuse's
// timer) and closes the listener, leaving the socket file in place.
func (p *Proxy) stopListeningLocked() {
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
}

func (p *Proxy) accept(ln *net.UnixListener) {
	defer p.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors or the like: try again shortly.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		p.mu.Lock()
		if p.closed || p.ln != ln {
			// Closed or refusing since the kernel accepted it.
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.stats.Accepted++
		cn := &conn{id: p.stats.Accepted, client: c}
		p.conns[cn] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go p.handle(cn)
	}
}

// Cut closes every open connection, on both sides, as a daemon that went
// away would. It returns how many client connections it closed.
func (p *Proxy) Cut() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cutLocked()
}

func (p *Proxy) cutLocked() int {
	n := 0
	for c := range p.conns {
		if !c.closed {
			p.closeLocked(c)
			n++
		}
	}
	p.stats.Cuts++
	p.stats.Cut += n
	return n
}

// Refuse stops accepting connections, so that connecting fails with
// ECONNREFUSED, and cuts every open connection. After d it accepts again;
// with d <= 0 it refuses until Resume. It returns how many connections it
// cut.
func (p *Proxy) Refuse(d time.Duration) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0, errors.New("dockerproxytest: closed")
	}
	p.gen++
	p.stopListeningLocked()
	n := p.cutLocked()
	if d > 0 {
		gen := p.gen
		p.timer = time.AfterFunc(d, func() {
			p.mu.Lock()
			defer p.mu.Unlock()
			if p.gen == gen && !p.closed && p.ln == nil {
				p.timer = nil
				// Failing here leaves the proxy refusing; Resume reports it.
				_ = p.listenLocked()
			}
		})
	}
	return n, nil
}

// Resume accepts connections again after Refuse. It does nothing when the
// proxy is accepting.
func (p *Proxy) Resume() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("dockerproxytest: closed")
	}
	p.gen++
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
	if p.ln != nil {
		return nil
	}
	return p.listenLocked()
}

// Refusing reports whether the proxy refuses connections now.
func (p *Proxy) Refusing() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ln == nil && !p.closed
}

// Requests returns a copy of the requests seen so far, in the order seen.
func (p *Proxy) Requests() []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.requests)
}

// Stats returns the proxy's counters.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.Open = len(p.conns)
	return s
}

// Close stops listening, removes the socket file, closes every connection
// and waits for the proxy's goroutines to return.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.stopListeningLocked()
	for c := range p.conns {
		p.closeLocked(c)
	}
	p.mu.Unlock()
	p.wg.Wait()
	if err := os.Remove(p.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("dockerproxytest: %w", err)
	}
	return nil
}

func (p *Proxy) closeLocked(c *conn) {
	if c.closed {
		return
	}
	c.closed = true
	c.client.Close()
	if c.up != nil {
		c.up.Close()
	}
}

func (p *Proxy) record(r Request) {
	p.mu.Lock()
	p.requests = append(p.requests, r)
	p.mu.Unlock()
}

// handle dials the daemon for one client connection and copies both ways
// until both are done, or either fails, or the connection is cut.
func (p *Proxy) handle(c *conn) {
	defer p.wg.Done()
	defer func() {
		p.mu.Lock()
		p.closeLocked(c)
		delete(p.conns, c)
		p.mu.Unlock()
	}()
	up, err := net.DialTimeout("unix", p.target, dialTimeout)
	p.mu.Lock()
	if err != nil {
		p.stats.Failed++
	}
	if err != nil || c.closed {
		p.mu.Unlock()
		if up != nil {
			up.Close()
		}
		return
	}
	c.up = up
	p.mu.Unlock()

	var wg sync.WaitGroup
	fail := func() {
		p.mu.Lock()
		p.closeLocked(c)
		p.mu.Unlock()
	}
	wg.Go(func() {
		if err := p.forwardRequests(c, up); err != nil {
			fail()
			return
		}
		closeWrite(up)
	})
	wg.Go(func() {
		if _, err := io.Copy(c.client, up); err != nil {
			fail()
			return
		}
		closeWrite(c.client)
	})
	wg.Wait()
}

// closeWrite passes an end of stream on: the peer reads EOF and may still
// answer.
func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}

// forwardRequests copies the client's bytes to the daemon unchanged,
// recording each request as its head passes. It returns nil at the client's
// clean end of stream.
func (p *Proxy) forwardRequests(c *conn, up net.Conn) error {
	br := bufio.NewReaderSize(c.client, 32<<10)
	for seq := 1; ; seq++ {
		head, err := readHead(br)
		if len(head) == 0 && err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if err != nil {
			// A head cut short or too long: pass on what came and the rest.
			if errors.Is(err, io.EOF) {
				err = errors.New("connection ended inside a request head")
			}
			if !errors.Is(err, net.ErrClosed) {
				p.record(Request{Conn: c.id, Seq: seq, Time: time.Now(), Malformed: err.Error()})
			}
			return rawCopy(up, head, br)
		}
		req, framing, perr := parseHead(head)
		req.Conn, req.Seq, req.Time = c.id, seq, time.Now()
		if perr != nil {
			req.Malformed = perr.Error()
		}
		p.record(req)
		if perr != nil || req.Upgrade || req.Method == "CONNECT" {
			return rawCopy(up, head, br)
		}
		if _, err := up.Write(head); err != nil {
			return err
		}
		switch {
		case framing.chunked:
			err = copyChunked(up, br)
		case framing.length > 0:
			var n int64
			n, err = io.CopyN(up, br, framing.length)
			if err == io.EOF && n < framing.length {
				err = io.ErrUnexpectedEOF
			}
		}
		var fe framingError
		if errors.As(err, &fe) {
			// Not HTTP as the proxy knows it: stop parsing, keep copying.
			return rawCopy(up, nil, br)
		}
		if err != nil {
			return err
		}
	}
}

// framingError is a chunked body the proxy cannot follow; what was read of
// it has been passed on.
type framingError string

func (e framingError) Error() string { return "dockerproxytest: " + string(e) }

// rawCopy writes head and then everything else the client sends.
func rawCopy(up io.Writer, head []byte, br *bufio.Reader) error {
	if len(head) > 0 {
		if _, err := up.Write(head); err != nil {
			return err
		}
	}
	_, err := io.Copy(up, br)
	return err
}

// readHead reads a request line and headers, up to and including the empty
// line that ends them. Empty lines before the request line (allowed between
// pipelined requests) are part of the head.
func readHead(br *bufio.Reader) ([]byte, error) {
	var head []byte
	started := false
	for {
		line, err := br.ReadSlice('\n')
		head = append(head, line...)
		if err == bufio.ErrBufferFull {
			if len(head) > maxHead {
				return head, errors.New("request head longer than 1 MiB")
			}
			continue
		}
		if err != nil {
			return head, err
		}
		if len(head) > maxHead {
			return head, errors.New("request head longer than 1 MiB")
		}
		blank := len(bytes.TrimRight(line, "\r\n")) == 0
		if !started {
			started = !blank
			continue
		}
		if blank {
			return head, nil
		}
	}
}

// bodyFraming says how a request's body is delimited.
type bodyFraming struct {
	chunked bool
	length  int64
}

// parseHead reads the request line and the headers that matter: how the
// body is framed and whether the connection is to be upgraded.
func parseHead(head []byte) (Request, bodyFraming, error) {
	var r Request
	var f bodyFraming
	lines := strings.Split(strings.TrimLeft(string(head), "\r\n"), "\n")
	reqLine := strings.TrimRight(lines[0], "\r")
	parts := strings.Split(reqLine, " ")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || !strings.HasPrefix(parts[2], "HTTP/") {
		return r, f, fmt.Errorf("bad request line %.80q", reqLine)
	}
	r.Method, r.Target, r.Proto = parts[0], parts[1], parts[2]
	for _, l := range lines[1:] {
		l = strings.TrimRight(l, "\r")
		if l == "" {
			break
		}
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			return r, f, fmt.Errorf("bad header line %.80q", l)
		}
		v = strings.TrimSpace(v)
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "content-length":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return r, f, fmt.Errorf("bad Content-Length %q", v)
			}
			f.length = n
		case "transfer-encoding":
			if hasToken(v, "chunked") {
				f.chunked = true
			}
		case "connection":
			if hasToken(v, "upgrade") {
				r.Upgrade = true
			}
		case "upgrade":
			if v != "" {
				r.Upgrade = true
			}
		}
	}
	return r, f, nil
}

func hasToken(v, token string) bool {
	for t := range strings.SplitSeq(v, ",") {
		if strings.EqualFold(strings.TrimSpace(t), token) {
			return true
		}
	}
	return false
}

// copyChunked copies one chunked body, trailers included. Every byte it
// reads is passed on, also when it then returns a framingError.
func copyChunked(up io.Writer, br *bufio.Reader) error {
	for {
		line, err := readLine(up, br)
		if err != nil {
			return err
		}
		sizeText, _, _ := strings.Cut(strings.TrimRight(string(line), "\r\n"), ";")
		size, err := strconv.ParseInt(strings.TrimSpace(sizeText), 16, 64)
		if err != nil || size < 0 {
			return framingError(fmt.Sprintf("bad chunk size %.40q", line))
		}
		if size == 0 {
			// Trailers, up to an empty line.
			for {
				line, err := readLine(up, br)
				if err != nil {
					return err
				}
				if len(bytes.TrimRight(line, "\r\n")) == 0 {
					return nil
				}
			}
		}
		// The data and its CRLF.
		if _, err := io.CopyN(up, br, size); err != nil {
			return noEOF(err)
		}
		if _, err := readLine(up, br); err != nil {
			return err
		}
	}
}

// readLine reads one line of a chunked body's framing and passes it on. A
// line longer than 4 KiB is a framingError.
func readLine(up io.Writer, br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		b, err := br.ReadSlice('\n')
		line = append(line, b...)
		if _, werr := up.Write(b); werr != nil {
			return nil, werr
		}
		if err == bufio.ErrBufferFull {
			if len(line) > 4<<10 {
				return nil, framingError("chunk framing line longer than 4 KiB")
			}
			continue
		}
		if err != nil {
			return nil, noEOF(err)
		}
		if len(line) > 4<<10 {
			return nil, framingError("chunk framing line longer than 4 KiB")
		}
		return line, nil
	}
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
