// Package lokitest is a Loki push endpoint for tests: it decodes both push
// formats, validates entries the way Loki does (answering 400 with a partial
// success when some entries fail), records what it accepted, and injects
// faults on demand: error statuses (with headers, e.g. a redirect's
// Location), rate limits, delays, hangs, connection resets (before the
// answer, in the middle of the request body or of the answer), HTML error
// pages, huge bodies and successes with a garbage body. It can also stand
// for a proxy with a body limit, answering 413 (Options.MaxBodyBytes).
//
// A Server listens on 127.0.0.1 and can be stopped and started again on the
// same address, so a test can produce "connection refused" outages.
package lokitest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wharf-logs/wharf/internal/entry"
)

// PushPath is the path the server accepts pushes on.
const PushPath = "/loki/api/v1/push"

// Options configure a Server. The zero value accepts every entry; Defaults
// returns Loki's own limits.
type Options struct {
	// MaxAge rejects entries older than now-MaxAge as too_old (Loki's
	// reject_old_samples_max_age); 0 disables the check.
	MaxAge time.Duration
	// MaxFuture rejects entries newer than now+MaxFuture as too_new (Loki's
	// creation_grace_period); 0 disables the check.
	MaxFuture time.Duration
	// MaxLineBytes rejects longer lines as line_too_long (Loki's
	// max_line_size); 0 disables the check.
	MaxLineBytes int
	// TooFarBehind rejects an entry older than the newest accepted entry of
	// its stream minus TooFarBehind (Loki: max_chunk_age/2); 0 disables it.
	TooFarBehind time.Duration
	// RequireTenant answers 401 to pushes without X-Scope-OrgID.
	RequireTenant bool
	// MaxBodyBytes answers 413 to a push whose body, as sent, is larger,
	// and ingests nothing of it, as a proxy in front of Loki with a body
	// limit does (nginx's client_max_body_size). A push whose
	// Content-Length says so takes no injected fault: the proxy answers
	// before anything behind it. 0 means no limit but MaxDecodedBytes.
	MaxBodyBytes int
	// KeepDuplicates stores entries identical to one already stored (same
	// stream, time and line). Loki drops them, and so does the server by
	// default, counting them in Counts.Duplicates.
	KeepDuplicates bool
	// CountOnly counts entries and bytes without storing them, for
	// benchmarks; Entries then returns nothing and duplicates are not
	// detected.
	CountOnly bool
	// Now is the clock validation uses; time.Now when nil.
	Now func() time.Time
	// OnEntry, when set, is called once for every entry the server accepts
	// (every entry Counts.Entries counts, so with CountOnly duplicates too),
	// from the goroutine handling the push, after the server's lock is
	// released and before the push is answered: once the client has its 2xx,
	// OnEntry has seen the entries. It lets a benchmark check every line
	// without storing them. The Entry shares memory with the request: copy
	// what is kept. Calls for different pushes may run concurrently.
	OnEntry func(Entry)
}

// Defaults returns the limits of a default Loki installation.
func Defaults() Options {
	return Options{
		MaxAge:       7 * 24 * time.Hour,
		MaxFuture:    10 * time.Minute,
		MaxLineBytes: 256 << 10,
		TooFarBehind: time.Hour,
	}
}

// Entry is one accepted log entry. Its strings and Metadata share memory
// with the request they came in (and Metadata with other entries): treat them
// as read-only.
type Entry struct {
	Tenant   string
	Labels   string // the stream selector as sent, e.g. {app="web"}
	Time     int64  // Unix nanoseconds
	Line     string
	Metadata entry.Labels
}

// Request records one request the server answered (or dropped, for a reset).
type Request struct {
	Method          string
	Path            string
	Header          http.Header
	BodyBytes       int
	Entries         int // entries in the body, accepted or not
	Accepted        int
	Status          int    // 0 when there was no answer: a reset, or the client left
	ResponseBody    string // the start of the answer's body, at most 4 KiB
	Fault           bool   // a fault decided the answer
	ContentType     string
	ContentEncoding string

	unanswered bool // the answer was cut before its status: record status 0
}

// Counts summarises what the server has seen since it was made or Reset.
type Counts struct {
	Requests   int
	Entries    int   // accepted entries, duplicates excluded
	Bytes      int64 // line bytes of accepted entries
	Duplicates int
	// Rejected counts refused entries by reason (too_old, too_new,
	// line_too_long, too_far_behind, invalid_labels).
	Rejected map[string]int
	// Statuses counts answers by HTTP status; 0 counts requests that got
	// none (a reset, or the client left).
	Statuses map[int]int
}

// Fault changes how the server answers. Fields combine: the server waits
// (Delay or Hang) first, then resets the connection (Reset), or answers with
// Status, or else handles the push normally.
type Fault struct {
	// Delay holds the answer for this long (or until the client goes away,
	// Release or Stop).
	Delay time.Duration
	// Hang holds the answer until Release, Stop, or the client goes away.
	Hang bool
	// Reset closes the connection with a TCP reset instead of answering.
	Reset bool
	// Status answers with this status without ingesting anything.
	Status int
	// RetryAfter is sent as the Retry-After header when set.
	RetryAfter string
	// Header holds more headers of the answer, e.g. a redirect's Location.
	Header http.Header
	// Body is the answer's body; a Loki-like text when empty.
	Body string
	// HTML answers with an HTML error page as a proxy would (status 502
	// unless Status says otherwise).
	HTML bool
	// BodyBytes answers with a body of this many bytes (status 500 unless
	// Status says otherwise). The body is streamed from a small buffer, so
	// a 10 MiB answer costs the server no 10 MiB allocation.
	BodyBytes int
	// ResetInBody resets the connection after reading part of the request
	// body (half of it, at least a byte), as a proxy or server dying in the
	// middle of a request does: nothing is ingested and nothing answered.
	// Delay and Hang do not apply.
	ResetInBody bool
	// ResetInAnswer resets the connection in the middle of the answer: the
	// request is handled as the other fields say (a push is ingested unless
	// Status, HTML or BodyBytes decide the answer), then the status line,
	// the headers and half of a body are sent, with a Content-Length
	// promising 1 KiB more, and the connection is reset. A 204 is sent as
	// 200 so it can carry a body.
	ResetInAnswer bool
	// ResetInHeaders handles the request like ResetInAnswer but resets the
	// connection halfway through the status line: a push is ingested but
	// the client cannot know, and sends it again (the copy is dropped as a
	// duplicate, as Loki does, unless KeepDuplicates is set). The request
	// is recorded with status 0.
	ResetInHeaders bool
	// SuccessBody answers a push that was handled normally and fully
	// accepted with 200 and this body (garbage, say) instead of 204.
	SuccessBody string
}

type queuedFault struct {
	f Fault
	n int // requests left; <0 for all
}

// Server is a Loki-behaving push endpoint. Its methods are safe for
// concurrent use. Close it when done: it owns a listener and the goroutines
// serving it.
type Server struct {
	opts Options
	addr string

	mu       sync.Mutex
	running  bool
	http     *http.Server
	served   chan struct{}  // closed when the Serve goroutine has returned
	stopping chan struct{}  // closed by Stop to wake held handlers
	handlers sync.WaitGroup // handlers of the running generation
	conns    sync.WaitGroup // connections of the running generation
	release  chan struct{}  // closed by Release to wake hanging handlers
	held     int            // requests waiting in hold
	faults   []queuedFault

	entries  []Entry
	requests []Request
	counts   Counts
	newest   map[string]int64 // newest accepted time by tenant and stream
	seen     map[dedupKey]struct{}
}

type dedupKey struct {
	tenant, labels string
	time           int64
	line           string
}

// New starts a Server on a free port of 127.0.0.1. It panics if it cannot
// listen, like httptest.NewServer.
func New(opts Options) *Server {
	s := &Server{opts: opts, release: make(chan struct{})}
	s.resetLocked()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("lokitest: listen: %v", err))
	}
	s.addr = ln.Addr().String()
	s.serve(ln)
	return s
}

// URL returns the push URL, http://127.0.0.1:port/loki/api/v1/push.
func (s *Server) URL() string { return "http://" + s.addr + PushPath }

// Addr returns the address the server listens on, which Start reuses.
func (s *Server) Addr() string { return s.addr }

func (s *Server) serve(ln net.Listener) {
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	// Track connections to their end: net/http may linger on one after its
	// handler returned (to avoid a reset when a body was left unread), and
	// Stop waits for that too so no goroutine outlives it.
	hs.ConnState = func(_ net.Conn, state http.ConnState) {
		switch state {
		case http.StateNew:
			s.conns.Add(1)
		case http.StateClosed, http.StateHijacked:
			s.conns.Done()
		}
	}
	served := make(chan struct{})
	s.mu.Lock()
	s.running, s.http, s.served, s.stopping = true, hs, served, make(chan struct{})
	s.mu.Unlock()
	go func() {
		defer close(served)
		_ = hs.Serve(ln) // returns when Stop closes the server
	}()
}

// Stop closes the listener and every connection, wakes held handlers and
// waits for them to return. Clients then get "connection refused" until
// Start. Stop on a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	if !s.running {
		s.mu.Unlock()
		return
	}
	s.running = false
	close(s.stopping)
	hs, served := s.http, s.served
	s.mu.Unlock()
	_ = hs.Close()
	<-served
	s.handlers.Wait()
	s.conns.Wait()
}

// Start listens again on the same address after Stop. It fails if another
// process took the port meanwhile.
func (s *Server) Start() error {
	s.mu.Lock()
	running := s.running
	s.mu.Unlock()
	if running {
		return nil
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("lokitest: listen on %s again: %w", s.addr, err)
	}
	s.serve(ln)
	return nil
}

// Close stops the server, like Stop; it exists to read well in defer and
// t.Cleanup. Every Server must be stopped so its goroutines end.
func (s *Server) Close() { s.Stop() }

// Inject applies f to the next n requests, after faults injected before it;
// n < 0 applies it to every request until ClearFaults.
func (s *Server) Inject(f Fault, n int) {
	if n == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, queuedFault{f: f, n: n})
}

// FailNext answers the next n requests with status.
func (s *Server) FailNext(n, status int) { s.Inject(Fault{Status: status}, n) }

// FailAll answers every request with status until ClearFaults.
func (s *Server) FailAll(status int) { s.Inject(Fault{Status: status}, -1) }

// ClearFaults drops pending faults and releases hanging requests.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	s.faults = nil
	s.mu.Unlock()
	s.Release()
}

// Release wakes the requests held by Hang or Delay; later ones hang again.
func (s *Server) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.release)
	s.release = make(chan struct{})
}

// Held returns how many requests a Hang or Delay fault holds right now, so a
// test can wait for its request to arrive before releasing it.
func (s *Server) Held() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held
}

// Entries returns a copy of the accepted entries in the order accepted.
func (s *Server) Entries() []Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Entry(nil), s.entries...)
}

// Lines returns the lines of the accepted entries of the stream with the
// given selector, in the order accepted.
func (s *Server) Lines(labels string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, e := range s.entries {
		if e.Labels == labels {
			out = append(out, e.Line)
		}
	}
	return out
}

// Requests returns a copy of the requests answered so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Counts returns a copy of the counters.
func (s *Server) Counts() Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.counts
	c.Rejected = clone(c.Rejected)
	c.Statuses = clone(c.Statuses)
	return c
}

func clone[K comparable](m map[K]int) map[K]int {
	out := make(map[K]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Reset forgets recorded entries, requests, counters and the newest time of
// each stream. Faults stay.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resetLocked()
}

func (s *Server) resetLocked() {
	s.entries, s.requests = nil, nil
	s.counts = Counts{Rejected: map[string]int{}, Statuses: map[int]int{}}
	s.newest = map[string]int64{}
	s.seen = map[dedupKey]struct{}{}
}

func (s *Server) now() time.Time {
	if s.opts.Now != nil {
		return s.opts.Now()
	}
	return time.Now()
}

// nextFault pops the fault for one request, or returns nil.
func (s *Server) nextFault() *Fault {
	if len(s.faults) == 0 {
		return nil
	}
	q := &s.faults[0]
	f := q.f
	if q.n > 0 {
		if q.n--; q.n == 0 {
			s.faults = s.faults[1:]
		}
	}
	return &f
}

// ServeHTTP handles one request. It is exported only to make Server an
// http.Handler; tests talk to it over the network.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if !s.running {
		s.mu.Unlock()
		http.Error(w, "stopping", http.StatusServiceUnavailable)
		return
	}
	s.handlers.Add(1)
	defer s.handlers.Done()
	stopping, release := s.stopping, s.release
	var fault *Fault
	push := r.URL.Path == PushPath && r.Method == http.MethodPost
	overLimit := push && s.opts.MaxBodyBytes > 0 && r.ContentLength > int64(s.opts.MaxBodyBytes)
	if push && !overLimit {
		fault = s.nextFault()
	}
	s.mu.Unlock()

	rec := Request{
		Method:          r.Method,
		Path:            r.URL.Path,
		Header:          r.Header.Clone(),
		ContentType:     r.Header.Get("Content-Type"),
		ContentEncoding: r.Header.Get("Content-Encoding"),
		Fault:           fault != nil,
	}
	switch {
	case r.URL.Path != PushPath:
		s.answer(w, rec, http.StatusNotFound, nil, "404 page not found")
		return
	case r.Method != http.MethodPost:
		w.Header().Set("Allow", http.MethodPost)
		s.answer(w, rec, http.StatusMethodNotAllowed, nil, "method not allowed")
		return
	}

	if fault != nil && fault.ResetInBody {
		n := max(r.ContentLength/2, 1)
		read, _ := io.CopyN(io.Discard, r.Body, n)
		rec.BodyBytes = int(read)
		s.drop(w, rec, true)
		return
	}

	body, err := readBody(w, r)
	rec.BodyBytes = len(body)
	if err == nil && (overLimit || s.opts.MaxBodyBytes > 0 && len(body) > s.opts.MaxBodyBytes) {
		w.Header().Set("Content-Type", "text/html")
		s.answer(w, rec, http.StatusRequestEntityTooLarge, nil, "<html>\r\n<head><title>413 Request Entity Too Large</title></head>\r\n<body>\r\n<center><h1>413 Request Entity Too Large</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")
		return
	}
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			s.answer(w, rec, http.StatusRequestEntityTooLarge, nil, fmt.Sprintf("request body too large: more than %d bytes", MaxDecodedBytes))
			return
		}
		// The client went away mid-body; nothing to answer.
		s.record(rec)
		return
	}

	if fault != nil {
		if !s.hold(r, fault, stopping, release) {
			// Stopped, or the client left: drop the connection unanswered,
			// as a dying server would, rather than let net/http send 200.
			s.drop(w, rec, false)
			return
		}
		if fault.Reset {
			s.drop(w, rec, true)
			return
		}
		if fault.ResetInAnswer || fault.ResetInHeaders {
			// Handle the request into a buffer, then send part of it.
			c := &captured{header: http.Header{}}
			rec.unanswered = fault.ResetInHeaders
			s.respond(c, r, rec, body, fault)
			s.cut(w, c, fault.ResetInHeaders)
			return
		}
	}
	s.respond(w, r, rec, body, fault)
}

// respond answers as fault says, or handles the push when it does not
// decide the answer.
func (s *Server) respond(w http.ResponseWriter, r *http.Request, rec Request, body []byte, fault *Fault) {
	if fault == nil {
		s.push(w, r, rec, body, "")
		return
	}
	if status, h, text := fault.answer(); status != 0 {
		if fault.BodyBytes > 0 && !fault.HTML {
			s.answerLarge(w, rec, status, h, fault.BodyBytes)
			return
		}
		s.answer(w, rec, status, h, text)
		return
	}
	s.push(w, r, rec, body, fault.SuccessBody)
}

// captured is an answer held back to be sent cut short. It keeps at most
// 64 KiB of the body.
type captured struct {
	header http.Header
	status int
	body   []byte
}

func (c *captured) Header() http.Header { return c.header }

func (c *captured) WriteHeader(status int) {
	if c.status == 0 {
		c.status = status
	}
}

func (c *captured) Write(p []byte) (int, error) {
	c.WriteHeader(http.StatusOK)
	if room := 64<<10 - len(c.body); room > 0 {
		c.body = append(c.body, p[:min(len(p), room)]...)
	}
	return len(p), nil
}

// cut sends the start of the captured answer and resets the connection:
// half the status line when inHeaders is set, else the status line, the
// headers and half the body, the Content-Length promising 1 KiB more.
func (s *Server) cut(w http.ResponseWriter, c *captured, inHeaders bool) {
	status := c.status
	if status == 0 || status == http.StatusNoContent {
		status = http.StatusOK
	}
	body := c.body
	if len(body) == 0 {
		body = []byte("{}")
	}
	var raw bytes.Buffer
	fmt.Fprintf(&raw, "HTTP/1.1 %d %s\r\n", status, http.StatusText(status))
	line := raw.Len()
	c.header.Del("Content-Length")
	c.header.Del("Transfer-Encoding")
	_ = c.header.Write(&raw)
	fmt.Fprintf(&raw, "Content-Length: %d\r\n\r\n", len(body)+1024)
	raw.Write(body[:(len(body)+1)/2])
	out := raw.Bytes()
	if inHeaders {
		out = out[:line/2]
	}
	conn, bufrw, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	_, _ = bufrw.Write(out)
	_ = bufrw.Flush()
	// Let the client read what was sent before the reset discards it.
	time.Sleep(5 * time.Millisecond)
	if tcp, ok := conn.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = conn.Close()
}

// hold waits as the fault asks and reports whether the request should still
// be answered.
func (s *Server) hold(r *http.Request, f *Fault, stopping, release <-chan struct{}) bool {
	if !f.Hang && f.Delay <= 0 {
		return true
	}
	s.mu.Lock()
	s.held++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.held--
		s.mu.Unlock()
	}()
	var timeout <-chan time.Time
	if !f.Hang {
		t := time.NewTimer(f.Delay)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-timeout:
		return true
	case <-release:
		return true
	case <-r.Context().Done():
		return false
	case <-stopping:
		return false
	}
}

// drop closes the connection without an answer, with a TCP reset when rst is
// set.
func (s *Server) drop(w http.ResponseWriter, rec Request, rst bool) {
	s.record(rec)
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler) // closes the connection without a response
	}
	if tcp, ok := conn.(*net.TCPConn); ok && rst {
		_ = tcp.SetLinger(0) // close with RST, not FIN
	}
	_ = conn.Close()
}

// answer returns the status, headers and body a fault asks for; status 0
// means the push is handled normally.
func (f *Fault) answer() (int, http.Header, string) {
	status := f.Status
	h := f.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	if f.RetryAfter != "" {
		h.Set("Retry-After", f.RetryAfter)
	}
	switch {
	case f.HTML:
		if status == 0 {
			status = http.StatusBadGateway
		}
		h.Set("Content-Type", "text/html")
		text := http.StatusText(status)
		return status, h, fmt.Sprintf("<html>\r\n<head><title>%d %s</title></head>\r\n<body>\r\n<center><h1>%d %s</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n", status, text, status, text)
	case f.BodyBytes > 0:
		if status == 0 {
			status = http.StatusInternalServerError
		}
		return status, h, "" // streamed by answerLarge
	case status == 0:
		return 0, nil, ""
	case f.Body != "":
		return status, h, f.Body
	case status == http.StatusTooManyRequests:
		return status, h, "Ingestion rate limit exceeded for user fake (limit: 4194304 bytes/sec) while attempting to ingest lines, reduce log volume or contact your Loki administrator to see if the limit can be increased"
	}
	return status, h, fmt.Sprintf("lokitest: injected %d %s", status, http.StatusText(status))
}

func (s *Server) answer(w http.ResponseWriter, rec Request, status int, h http.Header, text string) {
	for k, v := range h {
		w.Header()[k] = v
	}
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, text)
	rec.Status = status
	if len(text) > 4096 {
		text = text[:4096]
	}
	rec.ResponseBody = text
	s.record(rec)
}

// filler is the content of large answers, written again and again.
var filler = bytes.Repeat([]byte("x"), 32<<10)

// answerLarge answers with a body of n bytes of "x", written from filler.
func (s *Server) answerLarge(w http.ResponseWriter, rec Request, status int, h http.Header, n int) {
	for k, v := range h {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(n))
	w.WriteHeader(status)
	rec.Status = status
	rec.ResponseBody = string(filler[:min(n, 4096)])
	for left := n; left > 0; {
		k, err := w.Write(filler[:min(left, len(filler))])
		if err != nil {
			break // the client stopped reading, as it should
		}
		left -= k
	}
	s.record(rec)
}

func (s *Server) record(rec Request) {
	if rec.unanswered {
		rec.Status, rec.ResponseBody = 0, ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, rec)
	s.counts.Requests++
	s.counts.Statuses[rec.Status]++
}

// failure is a message of the 400 body and the entries it stands for.
type failure struct {
	msg    string
	count  int
	reason string
}

// failures groups identical messages in order of first appearance, as
// Loki's distributor does.
type failures struct {
	list  []failure
	index map[string]int
	total int
}

func (f *failures) add(reason, msg string, n int) {
	if f.index == nil {
		f.index = map[string]int{}
	}
	f.total += n
	if i, ok := f.index[msg]; ok {
		f.list[i].count += n
		return
	}
	f.index[msg] = len(f.list)
	f.list = append(f.list, failure{msg: msg, count: n, reason: reason})
}

// body renders the failures as Loki's 400 text: grouped messages followed by
// the total.
func (f *failures) body(entries int) string {
	var b strings.Builder
	for i, x := range f.list {
		if i > 0 {
			b.WriteString("; ")
		}
		if len(f.list) > 1 || x.count > 1 {
			fmt.Fprintf(&b, "%d errors like: ", x.count)
		}
		b.WriteString(x.msg)
	}
	fmt.Fprintf(&b, "\ntotal ignored: %d out of %d", f.total, entries)
	return b.String()
}

// readBody reads a push body of at most MaxDecodedBytes, sized from
// Content-Length when given, so a large body is read in one allocation.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body := r.Body
	r.Body = http.MaxBytesReader(w, body, MaxDecodedBytes)
	if n := r.ContentLength; n > 0 && n <= MaxDecodedBytes {
		buf := bytes.NewBuffer(make([]byte, 0, n+1))
		_, err := buf.ReadFrom(r.Body)
		return buf.Bytes(), err
	}
	return io.ReadAll(r.Body)
}

func rfc3339(ns int64) string { return time.Unix(0, ns).UTC().Format(time.RFC3339) }

// push ingests a push body and answers as Loki does: 204, or 400 for a
// partial success. successBody, when set, makes the success a 200 with it.
func (s *Server) push(w http.ResponseWriter, r *http.Request, rec Request, body []byte, successBody string) {
	tenant := r.Header.Get("X-Scope-OrgID")
	if s.opts.RequireTenant && tenant == "" {
		s.answer(w, rec, http.StatusUnauthorized, nil, "no org id")
		return
	}
	streams, err := DecodePush(body, rec.ContentType, rec.ContentEncoding)
	if err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, ErrBodyTooLarge) {
			status = http.StatusRequestEntityTooLarge
		}
		s.answer(w, rec, status, nil, err.Error())
		return
	}
	in := s.ingest(tenant, streams)
	if s.opts.OnEntry != nil {
		for _, e := range in.accepted {
			s.opts.OnEntry(e)
		}
	}

	rec.Entries = in.total
	rec.Accepted = in.stored
	if in.fails.total > 0 {
		// Partial success: the valid entries are stored, the answer is 400.
		s.answer(w, rec, http.StatusBadRequest, nil, in.fails.body(in.total))
		return
	}
	if successBody != "" {
		w.Header().Set("Content-Type", "application/octet-stream")
		s.answer(w, rec, http.StatusOK, nil, successBody)
		return
	}
	rec.Status = http.StatusNoContent
	w.WriteHeader(http.StatusNoContent)
	s.record(rec)
}

// ingested is what one push stored and refused.
type ingested struct {
	fails    failures
	accepted []Entry // kept for the server or for OnEntry
	total    int     // entries in the push
	stored   int     // entries accepted, duplicates excluded
}

// ingest checks every entry of a push as Loki does and stores those that
// pass, updating the server's counts.
func (s *Server) ingest(tenant string, streams []PushedStream) ingested {
	now := s.now().UnixNano()
	var in ingested
	dups := 0
	var bytes int64
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range streams {
		in.total += len(st.Entries)
		if len(st.Entries) == 0 {
			continue
		}
		if l, err := ParseLabels(st.Labels); err != nil {
			in.fails.add("invalid_labels", fmt.Sprintf("error parsing labels '%s' with error: %v", st.Labels, err), len(st.Entries))
			continue
		} else if len(l) == 0 {
			in.fails.add("invalid_labels", "error at least one label pair is required per stream", len(st.Entries))
			continue
		}
		key := tenant + "\x00" + st.Labels
		for _, e := range st.Entries {
			newest, seen := s.newest[key]
			if reason, msg := s.refusal(now, st.Labels, e, newest, seen); reason != "" {
				in.fails.add(reason, msg, 1)
				continue
			}
			if !seen || e.Time > newest {
				s.newest[key] = e.Time
			}
			if !s.opts.CountOnly && !s.opts.KeepDuplicates {
				k := dedupKey{tenant: tenant, labels: st.Labels, time: e.Time, line: e.Line}
				if _, dup := s.seen[k]; dup {
					dups++
					continue
				}
				s.seen[k] = struct{}{}
			}
			in.stored++
			bytes += int64(len(e.Line))
			if s.opts.CountOnly && s.opts.OnEntry == nil {
				continue
			}
			in.accepted = append(in.accepted, Entry{Tenant: tenant, Labels: st.Labels, Time: e.Time, Line: e.Line, Metadata: e.Metadata})
		}
	}
	if !s.opts.CountOnly {
		s.entries = append(s.entries, in.accepted...)
	}
	s.counts.Entries += in.stored
	s.counts.Bytes += bytes
	s.counts.Duplicates += dups
	for _, f := range in.fails.list {
		s.counts.Rejected[f.reason] += f.count
	}
	return in
}

// refusal returns why Loki would refuse entry e of the stream labels at
// time now, with the message Loki gives, or "" to accept it. newest is the
// stream's newest accepted time, if seen.
func (s *Server) refusal(now int64, labels string, e PushedEntry, newest int64, seen bool) (reason, msg string) {
	switch {
	case s.opts.MaxAge > 0 && e.Time < now-int64(s.opts.MaxAge):
		return "too_old", fmt.Sprintf("entry for stream '%s' has timestamp too old: %s, oldest acceptable timestamp is: %s",
			labels, rfc3339(e.Time), rfc3339(now-int64(s.opts.MaxAge)))
	case s.opts.MaxFuture > 0 && e.Time > now+int64(s.opts.MaxFuture):
		return "too_new", fmt.Sprintf("entry for stream '%s' has timestamp too new: %s", labels, rfc3339(e.Time))
	case s.opts.MaxLineBytes > 0 && len(e.Line) > s.opts.MaxLineBytes:
		return "line_too_long", fmt.Sprintf("Max entry size '%d' bytes exceeded for stream '%s' while adding an entry with length '%d' bytes",
			s.opts.MaxLineBytes, labels, len(e.Line))
	case s.opts.TooFarBehind > 0 && seen && e.Time < newest-int64(s.opts.TooFarBehind):
		return "too_far_behind", fmt.Sprintf("entry too far behind for stream '%s', entry timestamp is: %s, oldest acceptable timestamp is: %s",
			labels, rfc3339(e.Time), rfc3339(newest-int64(s.opts.TooFarBehind)))
	}
	return "", ""
}
