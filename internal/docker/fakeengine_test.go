package docker

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wharf-logs/wharf/internal/dockerlog"
)

// fakeEngine is a Docker Engine API for unit tests, served by httptest on a
// unix socket so that NewClient("unix://"+sock) talks to it as to dockerd.
//
// It holds containers with their logs, the daemon's event log, and a record
// of every request. Tests drive it through its methods, which are safe for
// concurrent use with the requests being served. It answers what wharf
// reads (ping, list, inspect, events, logs) the way Engine 20.10 (API 1.41)
// does, and nothing else: any other path is a 404, any other method a 405.
type fakeEngine struct {
	t    testing.TB
	srv  *httptest.Server
	sock string
	quit chan struct{} // closed by close: streaming handlers return
	once sync.Once

	mu         sync.Mutex
	conns      map[net.Conn]http.ConnState // open connections
	apiVersion string                      // Api-Version of /_ping; "" sends no header
	down       bool                        // every request answers 503, as while dockerd restarts
	loseEvents bool                        // events are not recorded (a restarted daemon forgets them)
	containers map[string]*fakeContainer
	events     []fakeEvent
	eventsGrew chan struct{} // closed and replaced when events grows
	cutStreams chan struct{} // closed and replaced by cutEvents
	clock      int64         // time of the last event, Unix ns
	requests   []fakeRequest
	// eventsHook, when set, is offered each events request first; it
	// reports whether it answered it. Set it before the source starts.
	eventsHook func(w http.ResponseWriter, r *http.Request) bool
}

// fakeContainer is one container of the fake daemon.
type fakeContainer struct {
	spec    fakeSpec
	running bool
	runs    int // starts so far
	logs    []fakeLine
	// followEnd maps a run that ended to the number of log lines the
	// follow streams opened during it send before they end: all lines at
	// the exit, or fewer, as dockerd was seen to close a follow stream
	// before the last message of a dying container.
	followEnd map[int]int
	changed   chan struct{} // closed and replaced on every change
	logsErr   *fakeAPIError
	created   time.Time
	started   time.Time
}

// fakeSpec describes a container to create.
type fakeSpec struct {
	ID     string
	Name   string // without the leading slash
	Image  string
	Labels map[string]string
	TTY    bool
	Driver string // log driver; json-file when empty
	// Created is the container's creation time; now when zero.
	Created time.Time
	// LogPath is the json-file inspect reports; a path under
	// /var/lib/docker/containers when empty. The fake never writes it.
	LogPath string
}

// fakeLine is one line of a container's log.
//
// Stream 3 is the daemon's own error message ("Error grabbing logs: ..."),
// sent without timestamp whatever since says, as dockerd does each time its
// scan of the log passes a record it cannot decode. Any other stream value
// makes a frame header dockerd cannot have written.
type fakeLine struct {
	Time   int64 // Unix ns, as the daemon stamped it
	Stream dockerlog.StreamKind
	Text   string // without newline
}

type fakeEvent struct {
	Action   string
	Type     string
	ID       string
	Attrs    map[string]string
	TimeNano int64
}

type fakeAPIError struct {
	status int
	msg    string
}

// fakeRequest is one request the fake received.
type fakeRequest struct {
	Method string
	Path   string // as sent, with the version prefix
	Query  url.Values
}

func (r fakeRequest) String() string {
	if len(r.Query) == 0 {
		return r.Method + " " + r.Path
	}
	return r.Method + " " + r.Path + "?" + r.Query.Encode()
}

// newFakeEngine starts a fake daemon speaking API 1.41; it is closed when
// the test ends.
func newFakeEngine(t testing.TB) *fakeEngine {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "docker.sock")
	if len(sock) > 100 { // sun_path holds 108 bytes
		dir, err := os.MkdirTemp("", "wharf")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		sock = filepath.Join(dir, "docker.sock")
	}
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	fe := &fakeEngine{
		t:          t,
		sock:       sock,
		quit:       make(chan struct{}),
		apiVersion: "1.41",
		containers: map[string]*fakeContainer{},
		conns:      map[net.Conn]http.ConnState{},
		eventsGrew: make(chan struct{}),
		cutStreams: make(chan struct{}),
	}
	fe.srv = httptest.NewUnstartedServer(fe)
	fe.srv.Config.ConnState = func(c net.Conn, st http.ConnState) {
		fe.mu.Lock()
		defer fe.mu.Unlock()
		if st == http.StateClosed || st == http.StateHijacked {
			delete(fe.conns, c)
		} else {
			fe.conns[c] = st
		}
	}
	fe.srv.Listener.Close()
	fe.srv.Listener = l
	fe.srv.Start()
	t.Cleanup(fe.close)
	return fe
}

// close ends every stream and stops the server.
func (fe *fakeEngine) close() {
	fe.once.Do(func() {
		close(fe.quit)
		fe.srv.Close()
	})
}

// client returns a Client for the fake, closed when the test ends.
func (fe *fakeEngine) client(t testing.TB) *Client {
	t.Helper()
	c, err := NewClient("unix://" + fe.sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func (fe *fakeEngine) setVersion(v string) {
	fe.mu.Lock()
	fe.apiVersion = v
	fe.mu.Unlock()
}

// setDown makes the daemon unreachable (every request answers 503 and the
// open event streams end) or reachable again. While it is down with
// loseEvents, state changes happen without events, as across a dockerd
// restart, which forgets its event buffer.
func (fe *fakeEngine) setDown(down, loseEvents bool) {
	fe.mu.Lock()
	fe.down, fe.loseEvents = down, down && loseEvents
	fe.mu.Unlock()
	if down {
		fe.cutEvents()
	}
}

// cutEvents ends the open event streams cleanly, as a proxy or a daemon
// going away does.
func (fe *fakeEngine) cutEvents() {
	fe.mu.Lock()
	close(fe.cutStreams)
	fe.cutStreams = make(chan struct{})
	fe.mu.Unlock()
}

// emitLocked records a container event and wakes the event streams.
func (fe *fakeEngine) emitLocked(action, id string, attrs map[string]string) {
	fe.emitTypeLocked("container", action, id, attrs)
}

func (fe *fakeEngine) emitTypeLocked(typ, action, id string, attrs map[string]string) {
	fe.clock = max(time.Now().UnixNano(), fe.clock+1)
	if fe.loseEvents {
		return
	}
	fe.events = append(fe.events, fakeEvent{Action: action, Type: typ, ID: id, Attrs: attrs, TimeNano: fe.clock})
	close(fe.eventsGrew)
	fe.eventsGrew = make(chan struct{})
}

// emit records any event, such as an image event or a container event the
// source does not ask for (exec_start).
func (fe *fakeEngine) emit(typ, action, id string) {
	fe.mu.Lock()
	defer fe.mu.Unlock()
	fe.emitTypeLocked(typ, action, id, map[string]string{})
}

// lastEventTime is the time of the newest recorded event.
func (fe *fakeEngine) lastEventTime() int64 {
	fe.mu.Lock()
	defer fe.mu.Unlock()
	if len(fe.events) == 0 {
		return 0
	}
	return fe.events[len(fe.events)-1].TimeNano
}

func (c *fakeContainer) changedLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

func (c *fakeContainer) attrs() map[string]string {
	a := map[string]string{"name": c.spec.Name, "image": c.spec.Image}
	for k, v := range c.spec.Labels {
		a[k] = v
	}
	return a
}

func (fe *fakeEngine) get(id string) *fakeContainer {
	c := fe.containers[id]
	if c == nil {
		fe.t.Errorf("fake engine: no container %s", id)
	}
	return c
}

// create adds a stopped container whose log holds lines.
func (fe *fakeEngine) create(spec fakeSpec, lines ...fakeLine) {
	fe.mu.Lock()
	defer fe.mu.Unlock()
	if spec.Driver == "" {
		spec.Driver = "json-file"
	}
	if spec.Image == "" {
		spec.Image = "busybox:latest"
	}
	c := &fakeContainer{spec: spec, followEnd: map[int]int{}, changed: make(chan struct{}), created: spec.Created}
	if c.created.IsZero() {
		c.created = time.Now()
	}
	c.logs = append(c.logs, lines...)
	fe.containers[spec.ID] = c
	fe.emitLocked("create", spec.ID, c.attrs())
}

// run creates a container and starts it.
func (fe *fakeEngine) run(spec fakeSpec, lines ...fakeLine) {
	fe.create(spec, lines...)
	fe.start(spec.ID)
}

func (fe *fakeEngine) start(id string) {
	fe.mu.Lock()
	defer fe.mu.Unlock()
	c := fe.get(id)
	c.running, c.started = true, time.Now()
	c.runs++
	c.changedLocked()
	fe.emitLocked("start", id, c.attrs())
}

// write appends lines to a container's log.
func (fe *fakeEngine) write(id string, lines ...fakeLine) {
	fe.mu.Lock()
	defer fe.mu.Unlock()
	c := fe.get(id)
	c.logs = append(c.logs, lines...)
	c.changedLocked()
}

// exit writes the container's last lines and stops it, in one step. With
// lostInFollow, the open follow streams end before those lines, as dockerd
// was seen to do; a request made afterwards returns them.
func (fe *fakeEngine) exit(id string, lostInFollow bool, last ...fakeLine) {
	fe.mu.Lock()
	defer fe.mu.Unlock()
	c := fe.get(id)
	c.followEnd[c.runs] = len(c.logs)
	c.logs = append(c.logs, last...)
	if !lostInFollow {
		c.followEnd[c.runs] = len(c.logs)
	}
	c.running = false
	c.changedLocked()
	a := c.attrs()
	a["exitCode"] = "0"
	fe.emitLocked("die", id, a)
}

// destroy removes a container; its open log streams end.
func (fe *fakeEngine) destroy(id string) {
	fe.mu.Lock()
	defer fe.mu.Unlock()
	c := fe.get(id)
	c.running = false
	delete(fe.containers, id)
	c.changedLocked()
	fe.emitLocked("destroy", id, c.attrs())
}

// failLogs makes the container's logs endpoint answer status with msg.
func (fe *fakeEngine) failLogs(id string, status int, msg string) {
	fe.mu.Lock()
	defer fe.mu.Unlock()
	fe.get(id).logsErr = &fakeAPIError{status, msg}
}

// requestsTo returns the requests whose path, without the version prefix,
// is path.
func (fe *fakeEngine) requestsTo(path string) []fakeRequest {
	fe.mu.Lock()
	defer fe.mu.Unlock()
	var out []fakeRequest
	for _, r := range fe.requests {
		if fakeStripVersion(r.Path) == path {
			out = append(out, r)
		}
	}
	return out
}

// openConns returns the number of client connections open.
func (fe *fakeEngine) openConns() int {
	fe.mu.Lock()
	defer fe.mu.Unlock()
	return len(fe.conns)
}

func (fe *fakeEngine) allRequests() []fakeRequest {
	fe.mu.Lock()
	defer fe.mu.Unlock()
	return slices.Clone(fe.requests)
}

// fakeStripVersion removes the /v1.xx prefix of an API path.
func fakeStripVersion(p string) string {
	if strings.HasPrefix(p, "/v") {
		if i := strings.IndexByte(p[1:], '/'); i >= 0 {
			return p[i+1:]
		}
	}
	return p
}

// fakeVersionLess compares API versions "1.x" on its own, so that a bug in
// the client's comparison cannot hide in the fake.
func fakeVersionLess(a, b string) bool {
	var am, an, bm, bn int
	fmt.Sscanf(a, "%d.%d", &am, &an)
	fmt.Sscanf(b, "%d.%d", &bm, &bn)
	return am < bm || am == bm && an < bn
}

func fakeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"message": msg})
}

func (fe *fakeEngine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fe.mu.Lock()
	fe.requests = append(fe.requests, fakeRequest{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query()})
	down, version := fe.down, fe.apiVersion
	fe.mu.Unlock()
	if down {
		fakeError(w, http.StatusServiceUnavailable, "daemon is restarting")
		return
	}
	if r.Method != http.MethodGet {
		fakeError(w, http.StatusMethodNotAllowed, "wharf must only read")
		return
	}
	if r.URL.Path == "/_ping" {
		if version != "" {
			w.Header().Set("Api-Version", version)
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprint(w, "OK")
		return
	}
	want, rest, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/v"), "/")
	if !ok || !strings.HasPrefix(r.URL.Path, "/v") {
		fakeError(w, http.StatusNotFound, "page not found")
		return
	}
	if version == "" {
		version = "1.24" // what a daemon without the header speaks
	}
	if fakeVersionLess(version, want) {
		fakeError(w, http.StatusBadRequest, fmt.Sprintf("client version %s is too new. Maximum supported API version is %s", want, version))
		return
	}
	rest = "/" + rest
	switch {
	case rest == "/containers/json":
		fe.serveList(w, r)
	case rest == "/events":
		fe.serveEvents(w, r)
	case strings.HasPrefix(rest, "/containers/") && strings.HasSuffix(rest, "/json"):
		fe.serveInspect(w, strings.TrimSuffix(strings.TrimPrefix(rest, "/containers/"), "/json"))
	case strings.HasPrefix(rest, "/containers/") && strings.HasSuffix(rest, "/logs"):
		fe.serveLogs(w, r, strings.TrimSuffix(strings.TrimPrefix(rest, "/containers/"), "/logs"))
	default:
		fakeError(w, http.StatusNotFound, "page not found")
	}
}

func (c *fakeContainer) state() string {
	if c.running {
		return "running"
	}
	if c.started.IsZero() {
		return "created"
	}
	return "exited"
}

func (fe *fakeEngine) serveList(w http.ResponseWriter, r *http.Request) {
	all := r.URL.Query().Get("all") == "1"
	type summary struct {
		ID      string            `json:"Id"`
		Names   []string          `json:"Names"`
		Image   string            `json:"Image"`
		State   string            `json:"State"`
		Status  string            `json:"Status"`
		Labels  map[string]string `json:"Labels"`
		Created int64             `json:"Created"`
	}
	out := []summary{}
	fe.mu.Lock()
	for _, c := range fe.containers {
		if all || c.running {
			out = append(out, summary{ID: c.spec.ID, Names: []string{"/" + c.spec.Name}, Image: c.spec.Image, State: c.state(), Labels: c.spec.Labels, Created: c.created.Unix()})
		}
	}
	fe.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

func (fe *fakeEngine) serveInspect(w http.ResponseWriter, id string) {
	fe.mu.Lock()
	c := fe.containers[id]
	if c == nil {
		fe.mu.Unlock()
		fakeError(w, http.StatusNotFound, "No such container: "+id)
		return
	}
	started := "0001-01-01T00:00:00Z"
	if !c.started.IsZero() {
		started = c.started.UTC().Format(time.RFC3339Nano)
	}
	labels := c.spec.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	logPath := c.spec.LogPath
	if logPath == "" {
		logPath = "/var/lib/docker/containers/" + c.spec.ID + "/" + c.spec.ID + "-json.log"
	}
	v := map[string]any{
		"Id":      c.spec.ID,
		"Name":    "/" + c.spec.Name,
		"Image":   "sha256:" + strings.Repeat("ab", 32),
		"Created": c.created.UTC().Format(time.RFC3339Nano),
		"LogPath": logPath,
		"State": map[string]any{
			"Status":    c.state(),
			"Running":   c.running,
			"Paused":    false,
			"StartedAt": started,
		},
		"Config": map[string]any{
			"Image":  c.spec.Image,
			"Tty":    c.spec.TTY,
			"Labels": labels,
		},
		"HostConfig": map[string]any{
			"LogConfig": map[string]any{"Type": c.spec.Driver, "Config": map[string]string{}},
		},
	}
	fe.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// fakeParseSince parses the API's "seconds[.nanoseconds]".
func fakeParseSince(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	sec, frac, _ := strings.Cut(s, ".")
	n, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return 0, err
	}
	var ns int64
	if frac != "" {
		frac = (frac + "000000000")[:9]
		if ns, err = strconv.ParseInt(frac, 10, 64); err != nil {
			return 0, err
		}
	}
	return n*1e9 + ns, nil
}

func fakeFlush(w http.ResponseWriter) {
	_ = http.NewResponseController(w).Flush()
}

// serveEvents streams NDJSON events. With since, the recorded events from
// that time on come first; then new events until the stream is cut, the
// client goes away or the fake closes.
func (fe *fakeEngine) serveEvents(w http.ResponseWriter, r *http.Request) {
	if fe.eventsHook != nil && fe.eventsHook(w, r) {
		return
	}
	q := r.URL.Query()
	since, err := fakeParseSince(q.Get("since"))
	if err != nil {
		fakeError(w, http.StatusBadRequest, "bad since: "+err.Error())
		return
	}
	var filters map[string][]string
	if f := q.Get("filters"); f != "" {
		if err := json.Unmarshal([]byte(f), &filters); err != nil {
			fakeError(w, http.StatusBadRequest, "bad filters: "+err.Error())
			return
		}
	}
	keep := func(ev fakeEvent) bool {
		if t := filters["type"]; len(t) > 0 && !slices.Contains(t, ev.Type) {
			return false
		}
		if a := filters["event"]; len(a) > 0 && !slices.Contains(a, ev.Action) {
			return false
		}
		return true
	}
	fe.mu.Lock()
	next := len(fe.events)
	if q.Has("since") {
		next = 0
		for next < len(fe.events) && fe.events[next].TimeNano < since {
			next++
		}
	}
	cut := fe.cutStreams
	fe.mu.Unlock()

	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	fakeFlush(w)
	enc := json.NewEncoder(w)
	for {
		fe.mu.Lock()
		batch := slices.Clone(fe.events[next:])
		next = len(fe.events)
		grew := fe.eventsGrew
		fe.mu.Unlock()
		for _, ev := range batch {
			if !keep(ev) {
				continue
			}
			enc.Encode(map[string]any{
				"status": ev.Action, "id": ev.ID, "from": ev.Attrs["image"],
				"Type": ev.Type, "Action": ev.Action,
				"Actor": map[string]any{"ID": ev.ID, "Attributes": ev.Attrs},
				"scope": "local", "time": ev.TimeNano / 1e9, "timeNano": ev.TimeNano,
			})
		}
		fakeFlush(w)
		select {
		case <-grew:
		case <-cut:
			return
		case <-r.Context().Done():
			return
		case <-fe.quit:
			return
		}
	}
}

// serveLogs streams a container's log: multiplexed frames without a TTY,
// raw "<timestamp> <line>\r\n" with one. since is inclusive; with follow the
// stream stays open while the container runs.
func (fe *fakeEngine) serveLogs(w http.ResponseWriter, r *http.Request, id string) {
	q := r.URL.Query()
	since, err := fakeParseSince(q.Get("since"))
	if err != nil {
		fakeError(w, http.StatusBadRequest, "bad since: "+err.Error())
		return
	}
	follow := q.Get("follow") == "1" || q.Get("follow") == "true"
	stamps := q.Get("timestamps") == "1" || q.Get("timestamps") == "true"
	want := map[dockerlog.StreamKind]bool{
		dockerlog.Stdout: q.Get("stdout") == "1" || q.Get("stdout") == "true",
		dockerlog.Stderr: q.Get("stderr") == "1" || q.Get("stderr") == "true",
	}
	fe.mu.Lock()
	c := fe.containers[id]
	var apiErr *fakeAPIError
	tty, live, run := false, false, 0
	if c != nil {
		apiErr, tty, live, run = c.logsErr, c.spec.TTY, c.running, c.runs
	}
	fe.mu.Unlock()
	// Following a stopped container returns its log and ends; following a
	// running one streams until that run ends.
	streaming := follow && live
	switch {
	case c == nil:
		fakeError(w, http.StatusNotFound, "No such container: "+id)
		return
	case apiErr != nil:
		fakeError(w, apiErr.status, apiErr.msg)
		return
	case !want[dockerlog.Stdout] && !want[dockerlog.Stderr]:
		fakeError(w, http.StatusBadRequest, "Bad parameters: you must choose at least one stream")
		return
	}
	if tty {
		w.Header().Set("Content-Type", "application/vnd.docker.raw-stream")
	} else {
		w.Header().Set("Content-Type", "application/vnd.docker.multiplexed-stream")
	}
	w.WriteHeader(http.StatusOK)
	fakeFlush(w)
	sent := 0
	var buf []byte
	for {
		fe.mu.Lock()
		gone := fe.containers[id] != c
		lines, changed := c.logs, c.changed
		end, ended := c.followEnd[run]
		fe.mu.Unlock()
		limit := len(lines)
		if streaming && ended {
			limit = min(limit, end)
		}
		buf = buf[:0]
		for _, l := range lines[min(sent, limit):limit] {
			daemonErr := l.Stream == 3
			if !daemonErr && l.Time < since || l.Stream <= dockerlog.Stderr && !want[l.Stream] {
				continue
			}
			body := l.Text
			if stamps && !daemonErr {
				body = time.Unix(0, l.Time).UTC().Format("2006-01-02T15:04:05.000000000Z") + " " + body
			}
			if tty {
				buf = append(buf, body...)
				buf = append(buf, '\r', '\n')
				continue
			}
			body += "\n"
			buf = append(buf, byte(l.Stream), 0, 0, 0)
			buf = binary.BigEndian.AppendUint32(buf, uint32(len(body)))
			buf = append(buf, body...)
		}
		sent = max(sent, limit)
		if _, err := w.Write(buf); err != nil {
			return
		}
		fakeFlush(w)
		if !streaming || ended || gone {
			return
		}
		select {
		case <-changed:
		case <-r.Context().Done():
			return
		case <-fe.quit:
			return
		}
	}
}
