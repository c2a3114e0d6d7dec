package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wharf-logs/wharf/internal/dockerlog"
)

func TestNegotiate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		daemon  string // Api-Version header; "" sends none
		want    string
		wantErr string
	}{
		{"debian 20.10", "1.41", "1.41", ""},
		{"oldest supported", "1.24", "1.24", ""},
		{"newest supported", "1.51", "1.51", ""},
		{"newer daemon", "1.52", "1.51", ""},
		{"much newer daemon, compared as numbers", "1.100", "1.51", ""},
		{"no header", "", "1.24", ""},
		{"too old", "1.12", "", "speaks API 1.12; wharf needs 1.24"},
		{"too old, compared as numbers", "1.9", "", "speaks API 1.9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fe := newFakeEngine(t)
			fe.setVersion(tc.daemon)
			c := fe.client(t)
			got, err := c.Negotiate(t.Context())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Negotiate = %q, %v; want an error containing %q", got, err, tc.wantErr)
				}
				if !strings.HasPrefix(err.Error(), "docker: ") || !strings.Contains(err.Error(), fe.sock) {
					t.Errorf("error %q does not name the package and the daemon", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Negotiate = %q, %v; want %q", got, err, tc.want)
			}
			// Requests use the negotiated version, which the daemon accepts.
			if _, err := c.List(t.Context()); err != nil {
				t.Fatalf("List after negotiating %s: %v", got, err)
			}
			list := fe.requestsTo("/containers/json")
			if len(list) != 1 || list[0].Path != "/v"+tc.want+"/containers/json" {
				t.Errorf("list requests %v, want one to /v%s/containers/json", list, tc.want)
			}
		})
	}
}

func TestNegotiateOnFirstUseAndAgain(t *testing.T) {
	fe := newFakeEngine(t)
	c := fe.client(t)
	if _, err := c.List(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.List(t.Context()); err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, r := range fe.allRequests() {
		paths = append(paths, r.Path)
	}
	if want := []string{"/_ping", "/v1.41/containers/json", "/v1.41/containers/json"}; !slices.Equal(paths, want) {
		t.Errorf("requests %q, want %q (negotiate once, on first use)", paths, want)
	}

	// The daemon was upgraded: negotiating again follows it.
	fe.setVersion("1.45")
	if v, err := c.Negotiate(t.Context()); err != nil || v != "1.45" {
		t.Fatalf("Negotiate after upgrade = %q, %v", v, err)
	}
	if _, err := c.List(t.Context()); err != nil {
		t.Fatal(err)
	}
	if r := fe.requestsTo("/containers/json"); r[len(r)-1].Path != "/v1.45/containers/json" {
		t.Errorf("after upgrade: %s", r[len(r)-1])
	}
}

func TestNegotiateFailures(t *testing.T) {
	t.Run("daemon answers 503", func(t *testing.T) {
		fe := newFakeEngine(t)
		fe.setDown(true, false)
		_, err := fe.client(t).Negotiate(t.Context())
		if err == nil || !strings.Contains(err.Error(), "503") {
			t.Errorf("Negotiate = %v, want an error with the status", err)
		}
	})
	t.Run("nothing listens", func(t *testing.T) {
		sock := filepath.Join(t.TempDir(), "none.sock")
		c, err := NewClient("unix://" + sock)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, err = c.Negotiate(t.Context())
		if err == nil || !strings.Contains(err.Error(), "cannot reach the daemon") || !strings.Contains(err.Error(), sock) {
			t.Errorf("Negotiate = %v, want an error naming the socket", err)
		}
		// A request negotiates first and reports the same.
		if _, err := c.List(t.Context()); err == nil || !strings.Contains(err.Error(), "cannot reach the daemon") {
			t.Errorf("List = %v", err)
		}
	})
}

func TestVersionLess(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"1.24", "1.41", true},
		{"1.41", "1.24", false},
		{"1.41", "1.41", false},
		{"1.9", "1.24", true},
		{"1.100", "1.51", false},
		{"1.51", "1.100", true},
		{"1", "1.0", false},
		{"1", "1.1", true},
		{"2.0", "1.99", false},
	} {
		if got := versionLess(tc.a, tc.b); got != tc.want {
			t.Errorf("versionLess(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestAPIError(t *testing.T) {
	fe := newFakeEngine(t)
	c := fe.client(t)
	_, err := c.Inspect(t.Context(), "nope")
	var apiErr *APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("Inspect of a missing container: %v (%T), want *APIError", err, err)
	}
	if apiErr.Status != 404 || apiErr.Path != "/containers/nope/json" || apiErr.Message != "No such container: nope" {
		t.Errorf("APIError %+v", apiErr)
	}
	if got, want := err.Error(), "docker: /containers/nope/json: 404 No such container: nope"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !IsNotFound(err) {
		t.Error("IsNotFound is false for a 404")
	}

	id := cid("syslogged")
	fe.run(fakeSpec{ID: id, Name: "syslogged", Driver: "syslog"})
	fe.failLogs(id, http.StatusNotImplemented, "configured logging driver does not support reading")
	_, err = c.Logs(t.Context(), id, LogsOptions{})
	if !errors.As(err, &apiErr) || apiErr.Status != 501 || apiErr.Message != "configured logging driver does not support reading" {
		t.Errorf("Logs of an unreadable driver: %v", err)
	}
	if IsNotFound(err) {
		t.Error("IsNotFound is true for a 501")
	}
}

func TestAPIErrorBodies(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
		want string
	}{
		{"json", `{"message":"boom"}`, "boom"},
		{"plain text", "  page not found\n", "page not found"},
		{"json without message", `{"error":"x"}`, `{"error":"x"}`},
		{"empty", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := memClient(t, func(r *http.Request) (*http.Response, error) {
				if r.URL.Path == "/_ping" {
					return memResponse(r, 200, strings.NewReader("OK"), "Api-Version", "1.41"), nil
				}
				return memResponse(r, 500, strings.NewReader(tc.body)), nil
			})
			_, err := c.List(t.Context())
			var apiErr *APIError
			if !errors.As(err, &apiErr) || apiErr.Status != 500 || apiErr.Message != tc.want {
				t.Errorf("List = %#v, want an APIError 500 with message %q", err, tc.want)
			}
		})
	}
}

func TestIsNotFound(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("404 not found"), false},
		{&APIError{Status: 404}, true},
		{fmt.Errorf("reading: %w", &APIError{Status: 404}), true},
		{&APIError{Status: 409}, false},
		{&APIError{Status: 500}, false},
	} {
		if got := IsNotFound(tc.err); got != tc.want {
			t.Errorf("IsNotFound(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestNewClient(t *testing.T) {
	t.Setenv("DOCKER_TLS_VERIFY", "")
	for _, tc := range []struct {
		host      string
		wantHost  string
		wantBase  string
		wantLocal bool
		wantErr   string
	}{
		{"", DefaultHost, "http://docker", true, ""},
		{"unix:///var/run/docker.sock", "unix:///var/run/docker.sock", "http://docker", true, ""},
		{"unix:///run/user/1000/docker.sock", "unix:///run/user/1000/docker.sock", "http://docker", true, ""},
		{"tcp://10.0.0.5:2375", "tcp://10.0.0.5:2375", "http://10.0.0.5:2375", false, ""},
		{"http://docker-proxy:2375", "http://docker-proxy:2375", "http://docker-proxy:2375", false, ""},
		{"unix://", "", "", false, "has no socket path"},
		{"unix:", "", "", false, "has no socket path"},
		{"ssh://me@build-host", "", "", false, `unsupported scheme "ssh"`},
		{"npipe:////./pipe/docker_engine", "", "", false, `unsupported scheme "npipe"`},
		{"/var/run/docker.sock", "", "", false, `unsupported scheme ""`},
		{"tcp://[::1", "", "", false, `host "tcp://[::1"`},
	} {
		t.Run(tc.host, func(t *testing.T) {
			c, err := NewClient(tc.host)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("NewClient(%q) = %v, want an error containing %q", tc.host, err, tc.wantErr)
				}
				if !strings.HasPrefix(err.Error(), "docker: ") || !strings.Contains(err.Error(), tc.host) {
					t.Errorf("error %q does not name the package and the host", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewClient(%q): %v", tc.host, err)
			}
			defer c.Close()
			if c.Host() != tc.wantHost || c.base != tc.wantBase || c.Local() != tc.wantLocal {
				t.Errorf("host %q base %q local %v; want %q %q %v", c.Host(), c.base, c.Local(), tc.wantHost, tc.wantBase, tc.wantLocal)
			}
		})
	}
}

func TestNewClientTLSFromEnv(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("DOCKER_TLS_VERIFY", "1")
	t.Setenv("DOCKER_CERT_PATH", dir)
	_, err := NewClient("tcp://10.0.0.5:2376")
	if err == nil || !strings.Contains(err.Error(), "CA is unreadable") {
		t.Errorf("NewClient with DOCKER_TLS_VERIFY and no certificates: %v", err)
	}
	// unix sockets never use TLS.
	c, err := NewClient("unix:///var/run/docker.sock")
	if err != nil {
		t.Fatalf("unix socket with DOCKER_TLS_VERIFY set: %v", err)
	}
	c.Close()
}

func TestFormatUnixNano(t *testing.T) {
	for _, tc := range []struct {
		ns   int64
		want string
	}{
		{1, "0.000000001"},
		{999_999_999, "0.999999999"},
		{1_000_000_000, "1.000000000"},
		{1_700_000_000_000_000_007, "1700000000.000000007"},
		{1_795_734_000_123_456_789, "1795734000.123456789"},
	} {
		if got := formatUnixNano(tc.ns); got != tc.want {
			t.Errorf("formatUnixNano(%d) = %q, want %q", tc.ns, got, tc.want)
		}
		// The fake daemon parses it back to the same nanosecond.
		if back, err := fakeParseSince(formatUnixNano(tc.ns)); err != nil || back != tc.ns {
			t.Errorf("round trip of %d: %d, %v", tc.ns, back, err)
		}
	}
}

// TestEventStreamNext decodes events as the daemon sends them: a skipped
// event must leave nothing behind in the next one (a container event
// without Type, as before API 1.22, or without timeNano).
func TestEventStreamNext(t *testing.T) {
	const in = `{"Type":"container","Action":"start","Actor":{"ID":"abc","Attributes":{"name":"web","image":"nginx"}},"time":1700000000,"timeNano":1700000000123456789}
{"Type":"network","Action":"connect","Actor":{"ID":"net1","Attributes":{"container":"abc","name":"bridge"}},"time":1700000001,"timeNano":1700000001000000000}
{"status":"die","id":"abc","Action":"die","Actor":{"ID":"abc","Attributes":{"exitCode":"0"}},"time":1700000002}
{"Action":"destroy","Actor":{"ID":"abc"},"timeNano":1700000003000000001}
`
	s := newEventStream(io.NopCloser(strings.NewReader(in)))
	want := []Event{
		{Action: "start", ID: "abc", Attributes: map[string]string{"name": "web", "image": "nginx"}, TimeNano: 1700000000123456789},
		{Action: "die", ID: "abc", Attributes: map[string]string{"exitCode": "0"}, TimeNano: 1700000002000000000},
		{Action: "destroy", ID: "abc", TimeNano: 1700000003000000001},
	}
	for i, w := range want {
		got, err := s.Next()
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if got.Action != w.Action || got.ID != w.ID || got.TimeNano != w.TimeNano || fmt.Sprint(got.Attributes) != fmt.Sprint(w.Attributes) {
			t.Errorf("event %d = %+v, want %+v", i, got, w)
		}
	}
	if _, err := s.Next(); err != io.EOF {
		t.Errorf("at the end: %v, want io.EOF", err)
	}

	bad := newEventStream(io.NopCloser(strings.NewReader(`{"Action":"start"` + "\n" + `garbage`)))
	var pe *ProtocolError
	if _, err := bad.Next(); !errors.As(err, &pe) || pe.Kind != KindMalformed || !strings.HasPrefix(err.Error(), "docker: /events: ") {
		t.Errorf("malformed stream: %v, want a malformed ProtocolError", err)
	}
}

func TestClientRequests(t *testing.T) {
	fe := newFakeEngine(t)
	c := fe.client(t)
	ctx := t.Context()
	id := cid("web")
	fe.run(fakeSpec{ID: id, Name: "web", Image: "nginx:1.27", TTY: true, Driver: "local", Labels: map[string]string{"a": "b"}},
		stdoutLine(at(1), "one"), stdoutLine(at(2), "two"))
	webStart := fe.lastEventTime()
	stopped := cid("stopped")
	fe.create(fakeSpec{ID: stopped, Name: "stopped"})

	list, err := c.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(list, func(a, b Summary) int { return strings.Compare(a.Names[0], b.Names[0]) })
	if len(list) != 2 || list[0].Names[0] != "/stopped" || list[0].State != "created" || list[1].ID != id || list[1].State != "running" || list[1].Labels["a"] != "b" {
		t.Errorf("List = %+v; want both containers, stopped ones included", list)
	}

	info, err := c.Inspect(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if info.ID != id || info.Name != "web" || info.Image != "nginx:1.27" || !strings.HasPrefix(info.ImageID, "sha256:") ||
		!info.TTY || !info.Running || info.Paused || info.LogDriver != "local" || !strings.HasSuffix(info.LogPath, id+"-json.log") ||
		info.Labels["a"] != "b" || time.Since(info.Created) > time.Minute || time.Since(info.StartedAt) > time.Minute {
		t.Errorf("Inspect = %+v", info)
	}
	if info, err := c.Inspect(ctx, stopped); err != nil || info.Running || !info.StartedAt.IsZero() {
		t.Errorf("Inspect of a created container = %+v, %v", info, err)
	}

	body, err := c.Logs(ctx, id, LogsOptions{Since: at(2)})
	if err != nil {
		t.Fatal(err)
	}
	ls := dockerlog.NewStream(body, true, 1<<10)
	line, _, err := ls.NextAppend(nil)
	body.Close()
	if err != nil || string(line.Text) != "two" || line.Time != at(2) {
		t.Errorf("Logs since the second line: first line %q at %d, %v", line.Text, line.Time, err)
	}
	body, err = c.Logs(ctx, stopped, LogsOptions{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(body); err != nil || len(b) != 0 {
		t.Errorf("following a stopped container with no log: %q, %v", b, err)
	}
	body.Close()
	logs := fe.requestsTo("/containers/" + id + "/logs")
	if len(logs) != 1 {
		t.Fatalf("logs requests %v", logs)
	}
	q := logs[0].Query
	if q.Get("since") != formatUnixNano(at(2)) || q.Get("stdout") != "1" || q.Get("stderr") != "1" || q.Get("timestamps") != "1" || q.Has("follow") {
		t.Errorf("logs query %s", logs[0])
	}
	if q := fe.requestsTo("/containers/" + stopped + "/logs")[0].Query; q.Get("follow") != "1" || q.Has("since") {
		t.Errorf("follow logs query %v", q)
	}

	// Events: with since the daemon replays from that time.
	evCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	fe.emit("container", "exec_start", id) // not asked for: filtered by the daemon
	fe.emit("image", "pull", "nginx")      // not a container event
	events, err := c.Events(evCtx, webStart)
	if err != nil {
		t.Fatal(err)
	}
	defer events.Close()
	ev, err := events.Next()
	if err != nil || ev.Action != "start" || ev.ID != id || ev.TimeNano != webStart || ev.Attributes["name"] != "web" {
		t.Errorf("first replayed event %+v, %v; want web's start", ev, err)
	}
	if ev, err := events.Next(); err != nil || ev.Action != "create" || ev.ID != stopped {
		t.Errorf("second replayed event %+v, %v; want the create", ev, err)
	}
	fe.destroy(stopped)
	if ev, err := events.Next(); err != nil || ev.Action != "destroy" || ev.ID != stopped {
		t.Errorf("next event %+v, %v; want the destroy", ev, err)
	}
	cancel()
	if _, err := events.Next(); err == nil {
		t.Error("Next after cancel returned no error")
	}
	r := fe.requestsTo("/events")[0]
	if r.Query.Get("since") != formatUnixNano(webStart) || !strings.Contains(r.Query.Get("filters"), `"type":["container"]`) {
		t.Errorf("events query %s", r)
	}
	for _, a := range []string{"create", "start", "restart", "die", "destroy", "rename"} {
		if !strings.Contains(r.Query.Get("filters"), `"`+a+`"`) {
			t.Errorf("events filter %s lacks %q", r.Query.Get("filters"), a)
		}
	}
}
