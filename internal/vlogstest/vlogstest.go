// Package vlogstest runs a real VictoriaLogs server for wharf's end-to-end
// tests: it speaks Loki's push API (JSON and protobuf+snappy), so wharf can
// ship to it unchanged, and it answers LogsQL queries to check what arrived.
//
// A test starts one with Start and pushes to PushURL:
//
//	vl := vlogstest.Start(t)
//	// ... run wharf with the Loki URL vl.PushURL() ...
//	vl.WaitCount(t, `_stream:{container="web"}`, 100, 30*time.Second)
//	rows := vl.StreamRows(t, `{container="web"}`)
//
// # How VictoriaLogs stores Loki entries
//
// Observed on v1.52.1 with -loki.disableMessageParsing:
//   - Each row is a flat JSON object of strings. The line is "_msg"; every
//     stream label is a field of its own name, and "_stream" is the label set
//     rendered with names sorted and no spaces: {container="web",stream="stdout"}.
//     "_stream_id" is an opaque hex id.
//   - Structured metadata becomes plain fields named by their keys, e.g.
//     {"container_id":"abc"} yields a field container_id="abc"; nothing marks
//     them as metadata. A metadata key equal to a label name overwrites that
//     label's field (the _stream keeps the label value), and a metadata pair
//     with an empty value is dropped, as are empty fields generally.
//   - "_time" is RFC 3339 in UTC with nanosecond precision and trailing
//     zeros of the fraction dropped, like time.RFC3339Nano:
//     2026-11-26T23:35:06.346306123Z, 2026-11-26T23:35:08.12Z,
//     2026-11-26T23:35:07Z. Parse it with time.RFC3339Nano.
//   - An empty line is stored with _msg set to a placeholder ("missing _msg
//     field; see https://docs.victoriametrics.com/victorialogs/keyconcepts/#message-field").
//   - Exact duplicates (same stream, time and line) are all kept, which lets
//     tests detect duplicate delivery; Loki would drop them.
//   - The push answers 204 even when rows are silently dropped: older than
//     the retention, more than 2 days in the future, or lines over 2 MiB.
//
// Tenants: X-Scope-OrgID must be numeric; "abc" is answered with 400. Send
// none or "0" to land in the default tenant that Query reads. A push with
// X-Scope-OrgID: N is stored under AccountID N and is visible only to
// queries carrying the header AccountID: N, which this package does not
// send.
package vlogstest

import (
	"bufio"
	"bytes"
	"context"
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wharf-logs/wharf/internal/locktest"
)

// Module, Package and Version identify the VictoriaLogs build used.
const (
	Module  = "github.com/VictoriaMetrics/VictoriaLogs"
	Package = Module + "/app/victoria-logs"
	Version = "v1.52.1"
)

// Timeouts. The first go install compiles VictoriaLogs from source, which
// takes about half a minute with a warm module cache and a few minutes
// without one.
const (
	installTimeout = 10 * time.Minute
	startTimeout   = 30 * time.Second
	stopTimeout    = 10 * time.Second
	requestTimeout = 30 * time.Second
)

var installed struct {
	mu   sync.Mutex
	path string
}

// Binary returns the path of the victoria-logs binary in the module's
// .cache/bin directory, running go install first if it is missing or of
// another version. A file lock makes concurrent test packages wait for one
// install instead of each running their own. Safe for concurrent use.
func Binary(ctx context.Context) (string, error) {
	installed.mu.Lock()
	defer installed.mu.Unlock()
	if installed.path != "" {
		return installed.path, nil
	}
	root, err := locktest.ModuleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(root, ".cache", "bin")
	path := filepath.Join(bin, "victoria-logs")
	if !isVersion(path) {
		if err := install(ctx, root, bin, path); err != nil {
			return "", err
		}
	}
	installed.path = path
	return path, nil
}

// isVersion reports whether path is a victoria-logs binary built from
// Version, judging by the module version Go recorded in it.
func isVersion(path string) bool {
	info, err := buildinfo.ReadFile(path)
	return err == nil && info.Main.Path == Module && info.Main.Version == Version
}

func install(ctx context.Context, root, bin, path string) error {
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return fmt.Errorf("vlogstest: %w", err)
	}
	unlock, err := locktest.File(filepath.Join(root, ".cache", "victoria-logs-install.lock"))
	if err != nil {
		return err
	}
	defer unlock()
	if isVersion(path) { // installed by another process while we waited
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, installTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "install", Package+"@"+Version)
	cmd.Dir = root
	// GOWORK=off: a go.work around the checkout must not leak into an
	// install that has nothing to do with it.
	cmd.Env = append(os.Environ(), "GOBIN="+bin, "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("vlogstest: go install %s@%s: %w: %s", Package, Version, err, strings.TrimSpace(string(out)))
	}
	if !isVersion(path) {
		return fmt.Errorf("vlogstest: go install %s@%s did not produce %s", Package, Version, path)
	}
	return nil
}

// VL is a running VictoriaLogs process. Its methods are safe for concurrent
// use; Close stops it.
type VL struct {
	addr    string // host:port of the HTTP listener
	logPath string
	client  *http.Client
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the process has been waited for
	waitErr error         // set before exited is closed
	close   sync.Once
}

// Start starts VictoriaLogs with its data and output in t.TempDir() and
// stops it when t ends. If t failed, the last lines of the server's output
// are logged.
func Start(t testing.TB) *VL {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), installTimeout+startTimeout)
	defer cancel()
	begin := time.Now()
	vl, err := StartProcess(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(begin); d > 5*time.Second {
		t.Logf("vlogstest: install and start took %v", d.Round(time.Millisecond))
	}
	t.Cleanup(func() {
		if err := vl.Close(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("vlogstest: last lines of %s:\n%s", vl.logPath, vl.LogTail(30))
		}
	})
	return vl
}

// StartProcess starts VictoriaLogs with its data in dir/data and its output
// in dir/victoria-logs.log, and returns once it answers /health. ctx bounds
// the install and the start only; the process runs until Close, which the
// caller must call.
func StartProcess(ctx context.Context, dir string) (*VL, error) {
	bin, err := Binary(ctx)
	if err != nil {
		return nil, err
	}
	// The free port is found by binding and releasing it, so another process
	// can take it in between; retry rather than fail on that race.
	for attempt := 1; ; attempt++ {
		vl, err := startOnce(ctx, bin, dir)
		if err == nil || attempt == 3 || ctx.Err() != nil || !errors.Is(err, errExited) {
			return vl, err
		}
	}
}

var errExited = errors.New("exited")

func startOnce(ctx context.Context, bin, dir string) (*VL, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "victoria-logs.log")
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("vlogstest: %w", err)
	}
	defer logFile.Close() // the child has its own descriptor
	cmd := exec.Command(bin,
		"-storageDataPath", filepath.Join(dir, "data"),
		"-httpListenAddr", addr,
		"-retentionPeriod", "100y",
		// Without it, JSON-looking lines are split into fields and _msg
		// loses the original line.
		"-loki.disableMessageParsing",
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("vlogstest: start %s: %w", bin, err)
	}
	vl := &VL{
		addr:    addr,
		logPath: logPath,
		client:  &http.Client{Transport: &http.Transport{}, Timeout: requestTimeout},
		cmd:     cmd,
		exited:  make(chan struct{}),
	}
	go func() {
		vl.waitErr = cmd.Wait()
		close(vl.exited)
	}()
	if err := vl.waitHealthy(ctx); err != nil {
		vl.Close()
		return nil, err
	}
	return vl, nil
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("vlogstest: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func (v *VL) waitHealthy(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, v.URL()+"/health", nil)
		if resp, err := v.client.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-v.exited:
			return fmt.Errorf("vlogstest: victoria-logs on %s %w (%v) before answering /health:\n%s", v.addr, errExited, v.waitErr, v.LogTail(10))
		case <-ctx.Done():
			return fmt.Errorf("vlogstest: victoria-logs on %s not healthy: %w:\n%s", v.addr, ctx.Err(), v.LogTail(10))
		case <-tick.C:
		}
	}
}

// Close stops the server: SIGTERM, then SIGKILL if it has not exited within
// 10 seconds. It returns once the process is gone; later calls do nothing.
// An exit caused by Close's own signals is not an error.
func (v *VL) Close() error {
	var err error
	v.close.Do(func() {
		defer v.client.CloseIdleConnections()
		select {
		case <-v.exited:
			err = fmt.Errorf("vlogstest: victoria-logs exited early: %v", v.waitErr)
			return
		default:
		}
		v.cmd.Process.Signal(syscall.SIGTERM)
		t := time.NewTimer(stopTimeout)
		defer t.Stop()
		select {
		case <-v.exited:
		case <-t.C:
			v.cmd.Process.Kill()
			<-v.exited
			err = fmt.Errorf("vlogstest: victoria-logs ignored SIGTERM for %v and was killed", stopTimeout)
		}
	})
	return err
}

// LogTail returns the last n lines of the server's output.
func (v *VL) LogTail(n int) string {
	b, err := os.ReadFile(v.logPath)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// URL returns the server's base URL, http://127.0.0.1:PORT.
func (v *VL) URL() string { return "http://" + v.addr }

// PushURL returns the Loki push endpoint,
// http://127.0.0.1:PORT/insert/loki/api/v1/push. Send no X-Scope-OrgID, or
// a numeric one ("0" is the tenant Query reads).
func (v *VL) PushURL() string { return v.URL() + "/insert/loki/api/v1/push" }

// FlushContext makes everything pushed so far visible to queries, instead
// of after VictoriaLogs' own flush interval of about a second.
func (v *VL) FlushContext(ctx context.Context) error {
	_, err := v.get(ctx, "/internal/force_flush", nil)
	return err
}

// Flush is FlushContext for tests.
func (v *VL) Flush(t testing.TB) {
	t.Helper()
	if err := v.FlushContext(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// Row is one result row: field name to value; "_msg", "_time", "_stream"
// and the label and metadata fields.
type Row = map[string]string

// QueryContext runs a LogsQL query and returns its rows in the order the
// server sent them, which is not fixed unless the query sorts.
func (v *VL) QueryContext(ctx context.Context, logsql string) ([]Row, error) {
	body, err := v.get(ctx, "/select/logsql/query", url.Values{"query": {logsql}})
	if err != nil {
		return nil, err
	}
	var rows []Row
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var r Row
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("vlogstest: query %q: decode row %.200q: %w", logsql, sc.Bytes(), err)
		}
		rows = append(rows, r)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("vlogstest: query %q: %w", logsql, err)
	}
	return rows, nil
}

// Query is QueryContext for tests.
func (v *VL) Query(t testing.TB, logsql string) []Row {
	t.Helper()
	rows, err := v.QueryContext(t.Context(), logsql)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// StreamRows flushes and returns every row of the streams matching
// selector (e.g. `{container="web"}`), oldest first. Rows with equal
// _time come in no fixed order.
func (v *VL) StreamRows(t testing.TB, selector string) []Row {
	t.Helper()
	v.Flush(t)
	return v.Query(t, "_stream:"+selector+" | sort by (_time)")
}

// CountContext returns the number of rows matching a LogsQL filter, which
// must not contain pipes.
func (v *VL) CountContext(ctx context.Context, filter string) (int64, error) {
	rows, err := v.QueryContext(ctx, filter+" | stats count() as wharf_count")
	if err != nil {
		return 0, err
	}
	if len(rows) == 0 {
		return 0, nil
	}
	n, err := strconv.ParseInt(rows[0]["wharf_count"], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("vlogstest: count %q: unexpected row %v", filter, rows[0])
	}
	return n, nil
}

// Count is CountContext for tests.
func (v *VL) Count(t testing.TB, filter string) int64 {
	t.Helper()
	n, err := v.CountContext(t.Context(), filter)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// WaitCount flushes and counts the rows matching filter (see Count) until
// there are at least n, and returns the count, which may exceed n. It fails
// t if the count is still short after timeout.
func (v *VL) WaitCount(t testing.TB, filter string, n int64, timeout time.Duration) int64 {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if err := v.FlushContext(t.Context()); err != nil {
			t.Fatal(err)
		}
		got, err := v.CountContext(t.Context(), filter)
		if err != nil {
			t.Fatal(err)
		}
		if got >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("vlogstest: %d rows match %s after %v, want %d", got, filter, timeout, n)
		}
		select {
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (v *VL) get(ctx context.Context, path string, query url.Values) ([]byte, error) {
	u := v.URL() + path
	if query != nil {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("vlogstest: %w", err)
	}
	resp, err := v.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("vlogstest: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("vlogstest: GET %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("vlogstest: GET %s: %s: %s", u, resp.Status, strings.TrimSpace(string(body)))
	}
	return body, nil
}
