package e2e

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wharf-logs/wharf/internal/dockertest"
	"github.com/wharf-logs/wharf/internal/seq"
	"github.com/wharf-logs/wharf/internal/vlogstest"
)

// tokenGateway is an authenticating gateway in front of a push endpoint, as
// run in front of Loki: a push whose bearer token is not the current one is
// answered 401 and goes no further.
type tokenGateway struct {
	srv     *httptest.Server
	token   atomic.Value // string
	refused atomic.Int64
}

func newTokenGateway(t *testing.T, pushURL, token string) *tokenGateway {
	t.Helper()
	target, err := url.Parse(pushURL)
	if err != nil {
		t.Fatal(err)
	}
	g := &tokenGateway{}
	g.token.Store(token)
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(&url.URL{Scheme: target.Scheme, Host: target.Host})
		r.Out.URL.Path = target.Path
		r.Out.Header.Del("Authorization")
	}}
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+g.token.Load().(string) {
			_, _ = io.Copy(io.Discard, r.Body)
			g.refused.Add(1)
			http.Error(w, "invalid token", http.StatusUnauthorized)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(g.srv.Close)
	return g
}

// URL is the gateway's push URL.
func (g *tokenGateway) URL() string { return g.srv.URL + "/loki/api/v1/push" }

// readyzBody returns the status and body of wharf's /readyz.
func (p *proc) readyzBody() (int, string) {
	p.t.Helper()
	resp, err := http.Get(p.admin + "/readyz")
	if err != nil {
		p.t.Fatalf("readyz: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// credentialsRun is a container logging through a token gateway into
// VictoriaLogs, and the wharf configuration for it.
type credentialsRun struct {
	vl     *vlogstest.VL
	gw     *tokenGateway
	data   string
	listen string
	c      dockertest.Container
}

const (
	rightToken = "right-token-0123456789"
	wrongToken = "wrong-token-0123456789"
	// The container writes credentialsLines at credentialsRate lines/s:
	// a minute, far more than wharf's memory buffer (1 MiB) holds.
	credentialsRate, credentialsLines = 800, 48000
)

func newCredentialsRun(t *testing.T) *credentialsRun {
	t.Helper()
	dockertest.Require(t)
	binary(t)
	vl := vlogstest.Start(t)
	return &credentialsRun{vl: vl, gw: newTokenGateway(t, vl.PushURL(), rightToken), data: t.TempDir(), listen: freePort(t)}
}

// config is wharf's configuration with the given bearer token; a stop
// gives up delivering after 2 s.
func (r *credentialsRun) config(t *testing.T, token string) string {
	cfg := inGroup(t, baseConfig(r.data, r.listen))
	cfg = strings.Replace(cfg, "shutdown_timeout: 20s", "shutdown_timeout: 2s", 1)
	return cfg + "buffer:\n  max_bytes: 1MiB\nloki:\n  url: " + r.gw.URL() + "\n  bearer_token: " + token +
		"\n  batch_size: 256KiB\n  batch_wait: 200ms\n"
}

// startContainer starts the logging container.
func (r *credentialsRun) startContainer(t *testing.T) {
	r.c = dockertest.Run(t, dockertest.RunOptions{Image: dockertest.LoggenImage(t), Labels: groupLabels(t),
		Args: []string{"-lines", strconv.Itoa(credentialsLines), "-rate", strconv.Itoa(credentialsRate), "-stderr", "0.25"}})
}

// refused waits until wharf says on /readyz that the gateway refuses it
// (the status and the URL), holds the refusal for hold, and checks that
// wharf keeps everything meanwhile: sink down, nothing dropped, the disk
// queue taking what memory cannot.
func (r *credentialsRun) refused(t *testing.T, w *proc, hold time.Duration) {
	t.Helper()
	waitFor(t, 30*time.Second, "/readyz to name the 401 and the URL", func() bool {
		code, body := w.readyzBody()
		return code == http.StatusServiceUnavailable && strings.Contains(body, "401") && strings.Contains(body, r.gw.URL())
	})
	time.Sleep(hold)
	m := w.metrics()
	if up := m[`wharf_sink_up{sink="loki"}`]; up != 0 {
		t.Errorf("wharf_sink_up = %v while every push is refused", up)
	}
	if q := m[`wharf_queue_bytes{sink="loki"}`]; q == 0 {
		t.Error("nothing went to the disk queue while every push was refused")
	}
	if dropped := sumMetric(m, "wharf_entries_dropped_total{"); dropped != 0 {
		t.Errorf("%v entries dropped while every push is refused", dropped)
	}
	_, body := w.readyzBody()
	t.Logf("%d requests refused; /readyz: %s", r.gw.refused.Load(), strings.TrimSpace(body))
}

// finish waits for the container's lines to be delivered, stops wharf and
// checks that nothing was dropped or dead-lettered; it returns what
// VictoriaLogs holds of the container, by sequence number.
func (r *credentialsRun) finish(t *testing.T, w *proc) (seq.Report, []vlogstest.Row) {
	t.Helper()
	dockertest.Wait(t, r.c.ID)
	r.vl.WaitCount(t, `_stream:{container="`+r.c.Name+`"}`, credentialsLines, 2*time.Minute)
	waitFor(t, time.Minute, "wharf's disk queue and buffer to empty", func() bool {
		m := w.metrics()
		return m[`wharf_queue_bytes{sink="loki"}`] == 0 && m[`wharf_sink_queue_bytes{sink="loki"}`] == 0
	})
	m := w.metrics()
	w.stop()
	if dropped := sumMetric(m, "wharf_entries_dropped_total{"); dropped != 0 {
		t.Errorf("%v entries dropped", dropped)
	}
	if _, err := os.Stat(filepath.Join(r.data, "dead-letter", "loki.ndjson")); err == nil {
		t.Error("lines were dead-lettered")
	}
	rows := r.vl.StreamRows(t, `{container="`+r.c.Name+`"}`)
	var lines []string
	for _, row := range rows {
		lines = append(lines, row["_msg"])
	}
	rep := seq.CheckLines(r.c.Name, lines, credentialsLines)
	if rep.MissingCount() > 0 || rep.Unparsed > 0 || rep.Unexpected > 0 {
		t.Fatalf("%s", rep)
	}
	return rep, rows
}

// TestRefusedCredentialsLoseNothing ships a container's lines to
// VictoriaLogs through a gateway that checks a bearer token, and rotates
// the gateway's token away and back while wharf runs: every push is
// answered 401, wharf keeps what it reads (in its disk queue once memory is
// full), says on /readyz which status and URL refuse it, and dead-letters
// nothing; once the gateway takes wharf's token again, delivery resumes on
// its own. Every line arrives exactly once.
func TestRefusedCredentialsLoseNothing(t *testing.T) {
	t.Parallel() // keeps to its own containers: see inGroup
	r := newCredentialsRun(t)
	w := startWharf(t, r.data, r.config(t, rightToken))
	r.startContainer(t)
	time.Sleep(5 * time.Second)

	r.gw.token.Store("rotated-token-0123456789")
	r.refused(t, w, 15*time.Second)
	r.gw.token.Store(rightToken)
	accepted := time.Now()
	waitFor(t, 30*time.Second, "/readyz to be 200 once the gateway takes the token again", func() bool {
		code, _ := w.readyzBody()
		return code == http.StatusOK
	})
	t.Logf("ready again %v after the gateway took the token again", time.Since(accepted).Round(100*time.Millisecond))

	rep, _ := r.finish(t, w)
	if len(rep.Duplicated) > 0 {
		t.Fatalf("%s", rep)
	}
	t.Logf("%d lines, each once; %d requests refused", credentialsLines, r.gw.refused.Load())
}

// TestWrongCredentialsFixedByRestart starts wharf with the wrong token:
// every push is answered 401 and wharf keeps what it reads, in memory and
// then in its disk queue, as TestRefusedCredentialsLoseNothing checks. It
// is stopped (it exits saying lines were left undelivered) and started with
// the right token, as an operator fixing the configuration does. No line is
// missing and none is dead-lettered. Lines may arrive twice: those confirmed
// into the disk queue behind lines still in memory at the stop are read
// again after the restart (the position advances over confirmed lines
// only); they carry Docker's timestamps, so Loki drops the copies as
// identical entries. VictoriaLogs keeps them, so the test checks that each
// copy is identical.
func TestWrongCredentialsFixedByRestart(t *testing.T) {
	t.Parallel() // keeps to its own containers: see inGroup
	r := newCredentialsRun(t)
	w := startWharf(t, r.data, r.config(t, wrongToken))
	r.startContainer(t)
	r.refused(t, w, 15*time.Second)
	// The bound on copies is what the disk queue holds at the stop: with
	// the container paused, nothing new is read, so the count stops
	// moving and the one read is the one at the stop.
	dockertest.Pause(t, r.c.ID)
	queued, same := -1.0, 0
	waitFor(t, 30*time.Second, "wharf's disk queue to stop growing while the container is paused", func() bool {
		q := w.metrics()[`wharf_queue_entries_written_total{sink="loki"}`]
		if q == queued {
			same++
		} else {
			queued, same = q, 0
		}
		time.Sleep(800 * time.Millisecond) // samples a second apart
		return same >= 2
	})
	if _, err := w.stopTimed(); err == nil {
		t.Error("wharf exited 0 although it held undelivered lines")
	}

	w = startWharf(t, r.data, r.config(t, rightToken))
	dockertest.Unpause(t, r.c.ID)
	rep, rows := r.finish(t, w)
	if n := float64(len(rep.Duplicated)); n > queued {
		t.Errorf("%v lines arrived twice; at most the %v queued before the restart may", n, queued)
	}
	seen := map[string]string{} // line -> its time
	for _, row := range rows {
		if tm, ok := seen[row["_msg"]]; ok && tm != row["_time"] {
			t.Fatalf("a line arrived twice with different times, %s and %s: Loki would keep both", tm, row["_time"])
		}
		seen[row["_msg"]] = row["_time"]
	}
	t.Logf("%d lines, none missing, %d arrived twice as identical entries (%v were in the disk queue); %d requests refused",
		credentialsLines, len(rep.Duplicated), queued, r.gw.refused.Load())
}
