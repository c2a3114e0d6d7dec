package dockerproxytest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// shortDir returns a directory with a path short enough for sockets.
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "dp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// fakeDaemon is an HTTP server on a unix socket that answers like a small
// part of the Engine API, with streaming /events and /logs.
type fakeDaemon struct {
	path    string
	srv     *http.Server
	streams atomic.Int64 // streaming handlers running now
}

func startDaemon(t *testing.T, dir string) *fakeDaemon {
	t.Helper()
	d := &fakeDaemon{path: filepath.Join(dir, "daemon.sock")}
	ln, err := net.Listen("unix", d.path)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_ping", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.41")
		io.WriteString(w, "OK")
	})
	mux.HandleFunc("GET /v1.41/containers/json", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `[{"Id":"abc","all":%q}]`, r.URL.Query().Get("all"))
	})
	mux.HandleFunc("POST /v1.41/echo", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %d %q", r.Method, len(body), body)
	})
	stream := func(w http.ResponseWriter, r *http.Request) {
		d.streams.Add(1)
		defer d.streams.Add(-1)
		f := w.(http.Flusher)
		for i := 0; ; i++ {
			fmt.Fprintf(w, "{\"n\":%d}\n", i)
			f.Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	mux.HandleFunc("GET /v1.41/events", stream)
	mux.HandleFunc("GET /v1.41/containers/{id}/logs", stream)
	d.srv = &http.Server{Handler: mux}
	served := make(chan struct{})
	go func() { defer close(served); d.srv.Serve(ln) }()
	t.Cleanup(func() {
		d.srv.Close()
		<-served
	})
	return d
}

func startProxy(t *testing.T, dir, target string) *Proxy {
	t.Helper()
	p, err := Start(filepath.Join(dir, "proxy.sock"), "unix://"+target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	return p
}

// client returns an HTTP client that talks to the unix socket at path.
func client(t *testing.T, path string) *http.Client {
	t.Helper()
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func get(t *testing.T, c *http.Client, target string) string {
	t.Helper()
	resp, err := c.Get("http://docker" + target)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

func targets(rs []Request) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Method+" "+r.Target)
	}
	return out
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestForwardsAndRecords(t *testing.T) {
	dir := shortDir(t)
	d := startDaemon(t, dir)
	p := startProxy(t, dir, d.path)
	c := client(t, p.Path())

	if got := get(t, c, "/_ping"); got != "OK" {
		t.Fatalf("ping: %q", got)
	}
	if got := get(t, c, "/v1.41/containers/json?all=1"); got != `[{"Id":"abc","all":"1"}]` {
		t.Fatalf("list: %q", got)
	}
	// A body with a length, and a chunked one: both pass whole, and the
	// request after each on the same connection is recorded.
	resp, err := c.Post("http://docker/v1.41/echo?x=1", "text/plain", strings.NewReader("GET /not-a-request HTTP/1.1\r\n\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `POST 31 "GET /not-a-request HTTP/1.1\r\n\r\n"`; string(body) != want {
		t.Fatalf("echo: %q, want %q", body, want)
	}
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte("first part "))
		pw.Write([]byte("GET /neither HTTP/1.1\r\n\r\n"))
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", "http://docker/v1.41/echo", pr)
	resp, err = c.Do(req) // no length: chunked
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `POST 36 "first part GET /neither HTTP/1.1\r\n\r\n"`; string(body) != want {
		t.Fatalf("chunked echo: %q, want %q", body, want)
	}
	if got := get(t, c, "/v1.41/containers/json?all=0"); !strings.Contains(got, `"all":"0"`) {
		t.Fatalf("list: %q", got)
	}

	rs := p.Requests()
	want := []string{"GET /_ping", "GET /v1.41/containers/json?all=1", "POST /v1.41/echo?x=1", "POST /v1.41/echo", "GET /v1.41/containers/json?all=0"}
	if got := targets(rs); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("recorded %q\nwant %q", got, want)
	}
	// Keep-alive: all on one connection, numbered in order.
	for i, r := range rs {
		if r.Conn != 1 || r.Seq != i+1 || r.Proto != "HTTP/1.1" || r.Upgrade || r.Malformed != "" {
			t.Fatalf("request %d: %+v", i, r)
		}
	}
	if s := p.Stats(); s.Accepted != 1 {
		t.Fatalf("stats %+v: want one connection", s)
	}
}

// TestPipelined sends several requests in one write, bodies that look like
// requests included, and checks each is recorded once and answered.
func TestPipelined(t *testing.T) {
	dir := shortDir(t)
	d := startDaemon(t, dir)
	p := startProxy(t, dir, d.path)
	conn, err := net.Dial("unix", p.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fake := "GET /fake HTTP/1.1\r\nHost: x\r\n\r\n"
	chunk := fmt.Sprintf("%x;ext=1\r\n%s\r\n0\r\nTrailer-A: 1\r\n\r\n", len(fake), fake)
	reqs := "GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n" +
		fmt.Sprintf("POST /v1.41/echo HTTP/1.1\r\nHost: docker\r\ncontent-length: %d\r\n\r\n%s", len(fake), fake) +
		"\r\n" + // a stray CRLF between requests is allowed
		"POST /v1.41/echo?c=1 HTTP/1.1\r\nHost: docker\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk +
		"GET /v1.41/containers/json?all=1&all=2 HTTP/1.1\r\nHost: docker\r\n\r\n"
	if _, err := io.WriteString(conn, reqs); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	var bodies []string
	for range 4 {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		bodies = append(bodies, string(b))
	}
	wantBody := fmt.Sprintf("POST %d %q", len(fake), fake)
	if bodies[0] != "OK" || bodies[1] != wantBody || bodies[2] != wantBody || !strings.Contains(bodies[3], `"all":"1"`) {
		t.Fatalf("answers %q", bodies)
	}
	want := []string{"GET /_ping", "POST /v1.41/echo", "POST /v1.41/echo?c=1", "GET /v1.41/containers/json?all=1&all=2"}
	if got := targets(p.Requests()); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("recorded %q\nwant %q", got, want)
	}
}

// TestByteForByte checks both directions pass unchanged, header spelling,
// odd spacing and binary bytes included.
func TestByteForByte(t *testing.T) {
	dir := shortDir(t)
	upPath := filepath.Join(dir, "raw.sock")
	ln, err := net.Listen("unix", upPath)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	reqBytes := "GET /v1.41/containers/ab%2Fc/logs?follow=1&since=1.000000001 HTTP/1.1\r\nhOsT:   docker \r\nX-Odd:\ta\r\n\r\n"
	var resp bytes.Buffer
	resp.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\n\r\n")
	for i := range 70000 {
		resp.WriteByte(byte(i * 7))
	}
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		buf := make([]byte, len(reqBytes))
		_, err = io.ReadFull(c, buf)
		got <- buf
		if err == nil {
			c.Write(resp.Bytes())
		}
	}()
	p := startProxy(t, dir, upPath)
	conn, err := net.Dial("unix", p.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// In small pieces, so the head arrives over several reads.
	for i := 0; i < len(reqBytes); i += 7 {
		conn.Write([]byte(reqBytes[i:min(i+7, len(reqBytes))]))
		time.Sleep(time.Millisecond)
	}
	if b := <-got; string(b) != reqBytes {
		t.Fatalf("daemon got %q\nwant %q", b, reqBytes)
	}
	back, err := io.ReadAll(conn)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back, resp.Bytes()) {
		t.Fatalf("client got %d bytes, want the %d sent, unchanged", len(back), resp.Len())
	}
	rs := p.Requests()
	if len(rs) != 1 || rs[0].Target != "/v1.41/containers/ab%2Fc/logs?follow=1&since=1.000000001" || rs[0].Method != "GET" {
		t.Fatalf("recorded %+v", rs)
	}
}

// TestCutStreams opens long-lived streams, cuts them, and checks that the
// client sees them end, the daemon's handlers stop, and new requests work.
func TestCutStreams(t *testing.T) {
	dir := shortDir(t)
	d := startDaemon(t, dir)
	p := startProxy(t, dir, d.path)
	c := client(t, p.Path())
	c.Timeout = 0

	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for _, target := range []string{"/v1.41/events", "/v1.41/containers/abc/logs?follow=1", "/v1.41/containers/def/logs?follow=1"} {
		resp, err := c.Get("http://docker" + target)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			defer resp.Body.Close()
			_, err := io.Copy(io.Discard, resp.Body)
			errs <- err
		})
	}
	waitFor(t, "3 streams", func() bool { return d.streams.Load() == 3 })
	if s := p.Stats(); s.Open != 3 {
		t.Fatalf("stats %+v: want 3 open", s)
	}
	if n := p.Cut(); n != 3 {
		t.Fatalf("cut %d connections, want 3", n)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		// A cut stream ends without its final chunk.
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("stream ended with %v, want an unexpected EOF", err)
		}
	}
	waitFor(t, "the daemon's handlers to see the cut", func() bool { return d.streams.Load() == 0 })
	waitFor(t, "no connection open", func() bool { return p.Stats().Open == 0 })
	if got := get(t, c, "/_ping"); got != "OK" {
		t.Fatalf("after the cut: %q", got)
	}
	if s := p.Stats(); s.Cuts != 1 || s.Cut != 3 || s.Accepted != 4 {
		t.Fatalf("stats %+v", s)
	}
}

// TestRefuse checks that a refusing proxy makes connecting fail with
// ECONNREFUSED, cuts what was open, and accepts again after the wait or
// on Resume.
func TestRefuse(t *testing.T) {
	dir := shortDir(t)
	d := startDaemon(t, dir)
	p := startProxy(t, dir, d.path)
	c := client(t, p.Path())
	c.Timeout = 0

	resp, err := c.Get("http://docker/v1.41/events")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := io.Copy(io.Discard, resp.Body); resp.Body.Close(); done <- err }()
	waitFor(t, "the stream", func() bool { return d.streams.Load() == 1 })

	n, err := p.Refuse(0)
	if err != nil || n != 1 {
		t.Fatalf("Refuse: %d, %v", n, err)
	}
	if err := <-done; err == nil {
		t.Fatal("stream not cut")
	}
	if !p.Refusing() {
		t.Fatal("not refusing")
	}
	for range 3 {
		_, err := net.Dial("unix", p.Path())
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("dial while refusing: %v, want ECONNREFUSED", err)
		}
	}
	if err := p.Resume(); err != nil {
		t.Fatal(err)
	}
	if got := get(t, c, "/_ping"); got != "OK" {
		t.Fatalf("after Resume: %q", got)
	}

	// Timed: refused at once, accepted again after the wait.
	if _, err := p.Refuse(300 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if _, err := net.Dial("unix", p.Path()); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial while refusing: %v", err)
	}
	waitFor(t, "the proxy to accept again", func() bool { return !p.Refusing() })
	if got := get(t, c, "/_ping"); got != "OK" {
		t.Fatalf("after the refusal: %q", got)
	}
	// A second Refuse replaces the first one's timer.
	p.Refuse(50 * time.Millisecond)
	p.Refuse(0)
	time.Sleep(150 * time.Millisecond)
	if !p.Refusing() {
		t.Fatal("an earlier timer ended a later refusal")
	}
	p.Resume()
}

// TestUpgradeRecorded checks that a request asking to take the connection
// over is recorded as such, and what follows is copied, not parsed.
func TestUpgradeRecorded(t *testing.T) {
	dir := shortDir(t)
	upPath := filepath.Join(dir, "raw.sock")
	ln, err := net.Listen("unix", upPath)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
		io.Copy(c, br) // echo the raw stream
	}()
	p := startProxy(t, dir, upPath)
	conn, err := net.Dial("unix", p.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "POST /v1.41/containers/abc/attach?stream=1&stdin=1 HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("%v %v", resp, err)
	}
	raw := "GET /inside-the-stream HTTP/1.1\r\n\r\n"
	io.WriteString(conn, raw)
	echo := make([]byte, len(raw))
	if _, err := io.ReadFull(br, echo); err != nil || string(echo) != raw {
		t.Fatalf("echo %q, %v", echo, err)
	}
	rs := p.Requests()
	if len(rs) != 1 || !rs[0].Upgrade || rs[0].Method != "POST" {
		t.Fatalf("recorded %+v; want the attach only, as an upgrade", rs)
	}
	if got := rs[0].Endpoint(); got != "POST /containers/abc/attach?stdin&stream" {
		t.Fatalf("endpoint %q", got)
	}
}

func TestMalformedIsRecordedAndCopied(t *testing.T) {
	dir := shortDir(t)
	upPath := filepath.Join(dir, "raw.sock")
	ln, err := net.Listen("unix", upPath)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- ""
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c)
		got <- string(b)
	}()
	p := startProxy(t, dir, upPath)
	conn, err := net.Dial("unix", p.Path())
	if err != nil {
		t.Fatal(err)
	}
	sent := "HELLO\r\n\r\nGET / HTTP/1.1\r\n\r\n"
	io.WriteString(conn, sent)
	conn.(*net.UnixConn).CloseWrite()
	if b := <-got; b != sent {
		t.Fatalf("daemon got %q, want %q", b, sent)
	}
	conn.Close()
	rs := p.Requests()
	if len(rs) != 1 || rs[0].Malformed == "" {
		t.Fatalf("recorded %+v", rs)
	}
}

func TestEndpoint(t *testing.T) {
	id := strings.Repeat("0123456789abcdef", 4)
	for _, c := range []struct {
		r    Request
		want string
	}{
		{Request{Method: "GET", Target: "/_ping"}, "GET /_ping"},
		{Request{Method: "HEAD", Target: "/_ping"}, "HEAD /_ping"},
		{Request{Method: "GET", Target: "/v1.41/containers/json?all=1"}, "GET /containers/json?all"},
		{Request{Method: "GET", Target: "/v1.41/containers/" + id + "/json"}, "GET /containers/{id}/json"},
		{Request{Method: "GET", Target: "/v1.41/containers/" + id + "/logs?timestamps=1&stdout=1&stderr=1&follow=1&since=1.5"}, "GET /containers/{id}/logs?follow&since&stderr&stdout&timestamps"},
		{Request{Method: "GET", Target: "/v1.41/events?filters=%7B%7D&since=2"}, "GET /events?filters&since"},
		{Request{Method: "GET", Target: "/v1.41"}, "GET /"},
		{Request{Method: "GET", Target: "/version"}, "GET /version"},
		{Request{Malformed: "bad"}, "MALFORMED bad"},
	} {
		if got := c.r.Endpoint(); got != c.want {
			t.Errorf("%s %s: %q, want %q", c.r.Method, c.r.Target, got, c.want)
		}
	}
}

func TestCloseRemovesSocketAndStopsEverything(t *testing.T) {
	dir := shortDir(t)
	d := startDaemon(t, dir)
	p, err := Start(filepath.Join(dir, "p.sock"), d.path)
	if err != nil {
		t.Fatal(err)
	}
	c := client(t, p.Path())
	c.Timeout = 0
	resp, err := c.Get("http://docker/v1.41/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p.Refuse(time.Hour) // a pending timer must not outlive Close
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p.Path()); !os.IsNotExist(err) {
		t.Fatalf("socket left behind: %v", err)
	}
	if _, err := p.Refuse(0); err == nil {
		t.Fatal("Refuse after Close succeeded")
	}
	if err := p.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	// The stale socket of a crashed run is replaced.
	ln, err := net.Listen("unix", filepath.Join(dir, "stale.sock"))
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	p2, err := Start(filepath.Join(dir, "stale.sock"), d.path)
	if err != nil {
		t.Fatal(err)
	}
	p2.Close()
}
