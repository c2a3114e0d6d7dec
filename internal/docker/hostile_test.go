package docker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// hostileEngine is a broken or hostile Docker socket: it answers /_ping as
// API 1.41 and every other request with what its handler for the path
// writes. It counts the bytes its handlers wrote, so a test can tell how
// much a client took in before it gave up.
type hostileEngine struct {
	sock    string
	srv     *httptest.Server
	written atomic.Int64
	quit    chan struct{}
}

// hostileHandler serves one path; it writes through w, which counts, and
// returns when the client goes away, the test ends, or it is done.
type hostileHandler func(w *countingWriter, r *http.Request, quit <-chan struct{})

// newHostileEngine serves handlers keyed by the path without its version
// prefix ("/events", "/containers/json", "/containers/{id}/json" as
// "/containers/x/json"...); other paths answer 404.
func newHostileEngine(t *testing.T, handlers map[string]hostileHandler) *hostileEngine {
	t.Helper()
	dir, err := os.MkdirTemp("", "wharf-hostile")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	he := &hostileEngine{sock: filepath.Join(dir, "docker.sock"), quit: make(chan struct{})}
	l, err := net.Listen("unix", he.sock)
	if err != nil {
		t.Fatal(err)
	}
	he.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/_ping" {
			w.Header().Set("Api-Version", "1.41")
			fmt.Fprint(w, "OK")
			return
		}
		h := handlers[fakeStripVersion(r.URL.Path)]
		if h == nil {
			fakeError(w, http.StatusNotFound, "page not found")
			return
		}
		h(&countingWriter{w: w, n: &he.written}, r, he.quit)
	}))
	he.srv.Listener.Close()
	he.srv.Listener = l
	he.srv.Start()
	t.Cleanup(func() {
		close(he.quit)
		he.srv.CloseClientConnections()
		he.srv.Close()
	})
	return he
}

func (he *hostileEngine) client(t *testing.T) *Client {
	t.Helper()
	c, err := NewClient("unix://" + he.sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// countingWriter counts what a handler writes and flushes after each write.
type countingWriter struct {
	w http.ResponseWriter
	n *atomic.Int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	if err == nil {
		err = http.NewResponseController(c.w).Flush()
	}
	return n, err
}

// feedLimit is where a hostile handler stops: a client that took this much
// in has not bounded what it reads.
const feedLimit = 256 << 20

// endless returns a handler that answers 200 with head, then repeats chunk
// until the client stops reading or feedLimit is reached.
func endless(head, chunk string) hostileHandler {
	return func(w *countingWriter, r *http.Request, quit <-chan struct{}) {
		w.w.Header().Set("Content-Type", "application/json")
		w.w.WriteHeader(http.StatusOK)
		if _, err := w.Write([]byte(head)); err != nil {
			return
		}
		block := []byte(strings.Repeat(chunk, max(1, (64<<10)/len(chunk))))
		for w.n.Load() < feedLimit {
			select {
			case <-r.Context().Done():
				return
			case <-quit:
				return
			default:
			}
			if _, err := w.Write(block); err != nil {
				return
			}
		}
	}
}

// silent never answers: no status line, no headers.
func silent(_ *countingWriter, r *http.Request, quit <-chan struct{}) {
	select {
	case <-r.Context().Done():
	case <-quit:
	}
}

// callWithin runs call and fails t if it has not returned after a generous
// while: an unbounded reader would run until the handler's feedLimit, a
// missing timeout until the test's.
func callWithin(t *testing.T, what string, call func(ctx context.Context) error) error {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- call(ctx) }()
	select {
	case err := <-done:
		return err
	case <-time.After(20 * time.Second):
		cancel()
		<-done
		t.Fatalf("%s did not return within 20 s", what)
		return nil
	}
}

// TestEventStreamRefusesEndlessEvents: a socket that sends one event that
// never ends, as one long string or as JSON that never closes, or endless
// white space, is dropped once the event passes MaxEventBytes, with an error
// saying so; the client takes in little more than that.
func TestEventStreamRefusesEndlessEvents(t *testing.T) {
	for name, h := range map[string]hostileHandler{
		"endless string":      endless(`{"Type":"container","Action":"start","Actor":{"ID":"`, "a"),
		"endless attributes":  endless(`{"Type":"container","Action":"start","Actor":{"ID":"x","Attributes":{`, `"k":"v",`),
		"endless white space": endless(`{"Type":"container"}`+"\n", " "),
	} {
		t.Run(name, func(t *testing.T) {
			he := newHostileEngine(t, map[string]hostileHandler{"/events": h})
			c := he.client(t)
			err := callWithin(t, "reading the event", func(ctx context.Context) error {
				es, err := c.Events(ctx, 0)
				if err != nil {
					return err
				}
				defer es.Close()
				for {
					if _, err := es.Next(); err != nil {
						return err
					}
				}
			})
			var pe *ProtocolError
			if !errors.As(err, &pe) || pe.Kind != KindEventTooLarge {
				t.Fatalf("Next: %v, want an event_too_large ProtocolError", err)
			}
			// What the client read, plus what the socket buffers held.
			if n := he.written.Load(); n > MaxEventBytes+8<<20 {
				t.Errorf("the handler wrote %d MiB before the client gave up; an event is at most %d MiB", n>>20, MaxEventBytes>>20)
			}
		})
	}
}

// TestAnswersAreBounded: a list or an inspect answer that never ends is
// refused once it passes its cap.
func TestAnswersAreBounded(t *testing.T) {
	for _, tc := range []struct {
		name  string
		path  string
		h     hostileHandler
		call  func(ctx context.Context, c *Client) error
		limit int64
	}{
		{"list of endless small entries", "/containers/json", endless(`[`, `{"Id":"x","Names":["/x"]},`),
			func(ctx context.Context, c *Client) error { _, err := c.List(ctx); return err }, maxListBytes},
		{"list entry that never ends", "/containers/json", endless(`[{"Id":"`, "x"),
			func(ctx context.Context, c *Client) error { _, err := c.List(ctx); return err }, maxListBytes},
		{"inspect with endless labels", "/containers/x/json", endless(`{"Id":"x","Config":{"Labels":{`, `"k":"v",`),
			func(ctx context.Context, c *Client) error { _, err := c.Inspect(ctx, "x"); return err }, maxInspectBytes},
	} {
		t.Run(tc.name, func(t *testing.T) {
			he := newHostileEngine(t, map[string]hostileHandler{tc.path: tc.h})
			c := he.client(t)
			err := callWithin(t, tc.name, func(ctx context.Context) error { return tc.call(ctx, c) })
			var pe *ProtocolError
			if !errors.As(err, &pe) || pe.Kind != KindResponseTooLarge {
				t.Fatalf("got %v, want a response_too_large ProtocolError", err)
			}
			if n := he.written.Load(); n > tc.limit+8<<20 {
				t.Errorf("the handler wrote %d MiB before the client gave up; the cap is %d MiB", n>>20, tc.limit>>20)
			}
		})
	}
}

// TestClientHasAResponseHeaderTimeout: every request, streams included,
// gives up on a daemon that never answers.
func TestClientHasAResponseHeaderTimeout(t *testing.T) {
	c, err := NewClient("unix:///var/run/docker.sock")
	if err != nil {
		t.Fatal(err)
	}
	if d := c.tr.ResponseHeaderTimeout; d <= 0 || d > time.Minute {
		t.Fatalf("response header timeout %v; want one, of at most a minute", d)
	}
}

// TestSilentDaemonTimesOut: a socket that takes requests and never answers
// them: each call returns a header_timeout ProtocolError instead of waiting
// for ever (the events and logs streams) or for the request's own deadline.
func TestSilentDaemonTimesOut(t *testing.T) {
	he := newHostileEngine(t, map[string]hostileHandler{
		"/events": silent, "/containers/json": silent, "/containers/x/json": silent, "/containers/x/logs": silent,
	})
	c := he.client(t)
	c.tr.ResponseHeaderTimeout = 100 * time.Millisecond
	for name, call := range map[string]func(ctx context.Context) error{
		"events": func(ctx context.Context) error {
			es, err := c.Events(ctx, 0)
			if err == nil {
				es.Close()
			}
			return err
		},
		"list":    func(ctx context.Context) error { _, err := c.List(ctx); return err },
		"inspect": func(ctx context.Context) error { _, err := c.Inspect(ctx, "x"); return err },
		"logs": func(ctx context.Context) error {
			rc, err := c.Logs(ctx, "x", LogsOptions{Follow: true})
			if err == nil {
				rc.Close()
			}
			return err
		},
	} {
		err := callWithin(t, name, call)
		var pe *ProtocolError
		if !errors.As(err, &pe) || pe.Kind != KindHeaderTimeout {
			t.Errorf("%s: %v, want a header_timeout ProtocolError", name, err)
		}
	}
}

// TestSourceSurvivesAnEndlessEvent: the Docker source meets an event that
// never ends: it drops the stream, counts and logs it, reconnects with
// backoff without replaying the event again, and goes on reading
// containers.
func TestSourceSurvivesAnEndlessEvent(t *testing.T) {
	fe := newFakeEngine(t)
	var poisoned atomic.Int32
	fe.eventsHook = func(w http.ResponseWriter, r *http.Request) bool {
		if poisoned.Add(1) != 2 {
			return false
		}
		cw := &countingWriter{w: w, n: new(atomic.Int64)}
		endless(`{"Type":"container","Action":"start","Actor":{"ID":"`, "a")(cw, r, fe.quit)
		return true
	}
	h := startSource(t, fe, Config{}, nil)
	before := cid("before")
	fe.run(fakeSpec{ID: before, Name: "before"}, stdoutLine(at(1), "before the endless event"))
	h.waitLines(before, 1)
	fe.cutEvents() // the second stream, replaying from the start event, is the poisoned one
	waitUntil(t, "the refused event to be counted", func() bool {
		return testutil.ToFloat64(h.met.ProtocolErrors.WithLabelValues(KindEventTooLarge)) == 1
	})
	id := cid("after")
	fe.run(fakeSpec{ID: id, Name: "after"}, stdoutLine(at(1), "after the endless event"))
	h.waitLines(id, 1)
	evs := fe.requestsTo("/events")
	if len(evs) < 3 {
		t.Fatalf("%d events requests; want the stream reopened after the endless event", len(evs))
	}
	if s := evs[2].Query.Get("since"); s != "" {
		t.Errorf("the stream after the endless event replays from %s; it would meet the event again", s)
	}
	if w := h.log.warnings("", ""); len(w) == 0 || !strings.Contains(fmt.Sprint(w), "larger than") {
		t.Errorf("the endless event was not logged: %+v", w)
	}
}

// TestSourceBoundsEventActions: the action of an event becomes a label
// value of wharf_docker_events_total; a socket sending made-up actions
// must not grow its series without end.
func TestSourceBoundsEventActions(t *testing.T) {
	fe := newFakeEngine(t)
	var sent atomic.Bool
	fe.eventsHook = func(w http.ResponseWriter, r *http.Request) bool {
		if sent.Swap(true) {
			return false
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		for i := range 100 {
			fmt.Fprintf(w, `{"Type":"container","Action":"made-up-%d","Actor":{"ID":"x"},"timeNano":%d}`+"\n", i, time.Now().UnixNano())
		}
		return true
	}
	h := startSource(t, fe, Config{}, nil)
	waitUntil(t, "the made-up events to be handled", func() bool { return len(fe.requestsTo("/events")) >= 2 })
	if n := testutil.CollectAndCount(h.met.Events); n > len(watchedActions)+1 {
		t.Errorf("wharf_docker_events_total has %d series after 100 made-up actions; want at most %d", n, len(watchedActions)+1)
	}
}
