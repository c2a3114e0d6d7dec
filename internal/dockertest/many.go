package dockertest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// CreateMany creates n containers from opts (Name is ignored: each gets a
// unique one; LogDriver, LogOpts, Rm and Extra are not supported) without
// starting them, and registers their removal when t ends. It talks to the
// Engine API over its unix socket, a few requests at a time, rather than
// running the CLI once per container: creating and removing a thousand
// containers that way takes seconds instead of minutes.
func CreateMany(t testing.TB, n int, opts RunOptions) []Container {
	t.Helper()
	Require(t)
	if opts.LogDriver != "" || len(opts.LogOpts) > 0 || opts.Rm || len(opts.Extra) > 0 {
		t.Fatal("dockertest: CreateMany supports Image, Args, Env, Labels and TTY only")
	}
	if opts.Image == "" {
		opts.Image = LoggenImage(t)
	}
	api, err := newEngine()
	if err != nil {
		t.Skip("dockertest: CreateMany: " + err.Error())
	}
	labels := maps.Clone(opts.Labels)
	if labels == nil {
		labels = make(map[string]string)
	}
	labels[LabelTest] = "1"
	labels[LabelRun] = RunID()
	body := map[string]any{
		"Image":  opts.Image,
		"Cmd":    opts.Args,
		"Env":    opts.Env,
		"Labels": labels,
		"Tty":    opts.TTY,
		// No network, as Run: see there.
		"HostConfig": map[string]any{"NetworkMode": "none"},
	}
	created.Store(true)
	out := make([]Container, n)
	var mu sync.Mutex
	var ids []string
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		if err := api.removeAll(ids); err != nil {
			t.Error(err)
		}
	})
	err = parallel(n, func(i int) error {
		name := uniqueName(t)
		id, err := api.create(name, body)
		if err != nil {
			return err
		}
		mu.Lock()
		ids = append(ids, id)
		mu.Unlock()
		out[i] = Container{ID: id, Name: name}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// StartMany starts created containers through the Engine API, a few at a
// time.
func StartMany(t testing.TB, cs []Container) {
	t.Helper()
	api, err := newEngine()
	if err != nil {
		t.Fatal(err)
	}
	if err := parallel(len(cs), func(i int) error { return api.start(cs[i].ID) }); err != nil {
		t.Fatal(err)
	}
}

// manyParallel is how many Engine API requests CreateMany and the removal
// it registers keep in flight.
const manyParallel = 8

func parallel(n int, f func(i int) error) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	next := make(chan int)
	for range min(n, manyParallel) {
		wg.Go(func() {
			for i := range next {
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}

// engine is a minimal Engine API client over the daemon's unix socket.
type engine struct{ c *http.Client }

func newEngine() (*engine, error) {
	path := "/var/run/docker.sock"
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		p, ok := strings.CutPrefix(h, "unix://")
		if !ok {
			return nil, fmt.Errorf("DOCKER_HOST=%s is not a unix socket", h)
		}
		path = p
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
		MaxIdleConnsPerHost: manyParallel,
	}
	return &engine{c: &http.Client{Transport: tr, Timeout: commandTimeout}}, nil
}

func (e *engine) do(method, path string, body any, want ...int) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://docker"+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("dockertest: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	for _, w := range want {
		if resp.StatusCode == w {
			return b, nil
		}
	}
	return nil, fmt.Errorf("dockertest: %s %s: %s: %s", method, path, resp.Status, oneLine(string(b)))
}

func (e *engine) create(name string, body any) (string, error) {
	b, err := e.do("POST", "/containers/create?name="+url.QueryEscape(name), body, http.StatusCreated)
	if err != nil {
		return "", err
	}
	var r struct {
		ID string `json:"Id"`
	}
	if err := json.Unmarshal(b, &r); err != nil || r.ID == "" {
		return "", fmt.Errorf("dockertest: create %s: unexpected answer %.200q", name, b)
	}
	return r.ID, nil
}

func (e *engine) start(id string) error {
	_, err := e.do("POST", "/containers/"+id+"/start", nil, http.StatusNoContent, http.StatusNotModified)
	return err
}

// removeAll force-removes containers; one already gone is not an error.
func (e *engine) removeAll(ids []string) error {
	start := time.Now()
	err := parallel(len(ids), func(i int) error {
		_, err := e.do("DELETE", "/containers/"+ids[i]+"?force=1&v=1", nil, http.StatusNoContent, http.StatusNotFound)
		return err
	})
	if err != nil {
		return fmt.Errorf("%w (removing %d containers, %v)", err, len(ids), time.Since(start).Round(time.Millisecond))
	}
	return nil
}
