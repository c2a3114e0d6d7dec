package dockerlog

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// lsLoggenLine mirrors Line in testdata/loggen40k.
func lsLoggenLine(tag string, n int) string {
	b := []byte(tag + ":")
	for i := len(b); i < n; i++ {
		b = append(b, "0123456789abcdefghijklmnopqrstuvwxyz"[i%36])
	}
	return string(b[:n])
}

// lsLoggenExpected returns the lines the e2e scenario of loggen40k writes,
// per stream, as they must come out of a Stream. The last stdout line has
// no newline.
func lsLoggenExpected(tty bool) (stdout, stderr []string) {
	long := lsLoggenLine("long40k", 40*1024)
	split := lsLoggenLine("split", 30*1024)
	exact := lsLoggenLine("exact16k", 16*1024)
	errLong := lsLoggenLine("errlong", 40*1024)
	if tty {
		// One terminal: stderr lands in stdout, and the stderr line written
		// between the halves of the split line ends its first half.
		return []string{"short-1", "err-1", long, split[:20*1024] + "err-2", split[20*1024:], "cr\rinside", exact, errLong, "tail-no-newline"}, nil
	}
	return []string{"short-1", long, split, "cr\rinside", exact, "tail-no-newline"}, []string{"err-1", "err-2", errLong}
}

// lsDockerAPI is a minimal Engine API client over the unix socket, enough to
// run the generator without the Docker CLI.
type lsDockerAPI struct {
	http *http.Client
}

func (d *lsDockerAPI) do(ctx context.Context, method, path string, query url.Values, body io.Reader, contentType string) (*http.Response, error) {
	u := "http://docker" + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := d.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(msg))
	}
	return resp, nil
}

// call makes a request and decodes its JSON answer into out, if not nil.
func (d *lsDockerAPI) call(ctx context.Context, method, path string, query url.Values, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	resp, err := d.do(ctx, method, path, query, body, "application/json")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// lsLiveDocker returns a client for the local daemon, or skips the test
// (fails it when WHARF_E2E=1) when none answers.
func lsLiveDocker(t *testing.T) *lsDockerAPI {
	t.Helper()
	unavailable := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("WHARF_E2E") == "1" {
			t.Fatalf(format, args...)
		}
		t.Skipf(format, args...)
	}
	sock := "/var/run/docker.sock"
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		if !strings.HasPrefix(h, "unix://") {
			unavailable("DOCKER_HOST=%s is not a unix socket, which this test needs", h)
		}
		sock = strings.TrimPrefix(h, "unix://")
	}
	d := &lsDockerAPI{http: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dialer net.Dialer
			return dialer.DialContext(ctx, "unix", sock)
		},
	}}}
	t.Cleanup(d.http.CloseIdleConnections)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	if err := d.call(ctx, "GET", "/_ping", nil, nil, nil); err != nil {
		unavailable("no Docker daemon answers at %s: %v", sock, err)
	}
	return d
}

// lsLoggenImage builds testdata/loggen40k as a static binary and imports it
// as a one-file image, removed when the test ends.
func lsLoggenImage(t *testing.T, d *lsDockerAPI) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go tool is needed to build the generator: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "loggen40k")
	cmd := exec.CommandContext(t.Context(), goTool, "build", "-trimpath", "-o", bin, "./testdata/loggen40k")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the generator: %v\n%s", err, out)
	}
	exe, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	if err := tw.WriteHeader(&tar.Header{Name: "loggen40k", Mode: 0o755, Size: int64(len(exe)), ModTime: time.Now()}); err != nil {
		t.Fatal(err)
	}
	tw.Write(exe)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}

	tag := fmt.Sprintf("loggen40k-%d-%d", os.Getpid(), time.Now().UnixNano())
	image := "wharf-probe:" + tag
	q := url.Values{"fromSrc": {"-"}, "repo": {"wharf-probe"}, "tag": {tag}}
	q.Add("changes", `ENTRYPOINT ["/loggen40k"]`)
	q.Add("changes", "LABEL wharf.test=1")
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	resp, err := d.do(ctx, "POST", "/images/create", q, &layer, "application/x-tar")
	if err != nil {
		t.Fatalf("importing the generator image: %v", err)
	}
	progress, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || bytes.Contains(progress, []byte(`"error"`)) {
		t.Fatalf("importing the generator image: %v %s", err, progress)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := d.call(ctx, "DELETE", "/images/"+image, url.Values{"force": {"1"}}, nil, nil); err != nil {
			t.Errorf("removing image %s: %v", image, err)
		}
	})
	return image
}

// lsLiveLine is a line read back from the daemon.
type lsLiveLine struct {
	time    int64
	line    string
	partial bool
}

// lsReadLogs reads a container's logs through a Stream, per stream.
func lsReadLogs(t *testing.T, d *lsDockerAPI, id string, tty, follow bool) [2][]lsLiveLine {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	q := url.Values{"stdout": {"1"}, "stderr": {"1"}, "timestamps": {"1"}}
	if follow {
		q.Set("follow", "1")
	}
	resp, err := d.do(ctx, "GET", "/containers/"+id+"/logs", q, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	s := NewStream(resp.Body, tty, 0)
	var got [2][]lsLiveLine
	for {
		l, err := s.Next()
		if err == io.EOF {
			return got
		}
		if err != nil {
			t.Fatalf("follow=%v, after %d+%d lines: %v", follow, len(got[0]), len(got[1]), err)
		}
		if l.Truncated {
			t.Errorf("follow=%v: %v line %d truncated", follow, l.Stream, len(got[l.Stream-1]))
		}
		got[l.Stream-1] = append(got[l.Stream-1], lsLiveLine{l.Time, string(l.Text), l.Partial})
	}
}

// TestLogStreamLiveDocker runs the generator in a container, with and
// without a TTY, follows its logs through the Engine API while it runs, reads
// them again once it has exited, and checks that every line comes back whole.
//
// A follow stream of Docker 20.10 often ends before the container's last
// message (its final line without newline, here), which a read after the exit
// has: the follow stream is only checked to be a prefix.
func TestLogStreamLiveDocker(t *testing.T) {
	d := lsLiveDocker(t)
	image := lsLoggenImage(t, d)
	for _, tty := range []bool{false, true} {
		t.Run(fmt.Sprintf("tty=%v", tty), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			var created struct{ ID string }
			spec := map[string]any{
				"Image":  image,
				"Cmd":    []string{"e2e"},
				"Tty":    tty,
				"Labels": map[string]string{"wharf.test": "1"},
				// No network: none is needed (see dockertest.Run).
				"HostConfig": map[string]any{"NetworkMode": "none"},
			}
			if err := d.call(ctx, "POST", "/containers/create", nil, spec, &created); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				if err := d.call(ctx, "DELETE", "/containers/"+created.ID, url.Values{"force": {"1"}}, nil, nil); err != nil {
					t.Errorf("removing container %s: %v", created.ID, err)
				}
			})
			began := time.Now()
			if err := d.call(ctx, "POST", "/containers/"+created.ID+"/start", nil, nil, nil); err != nil {
				t.Fatal(err)
			}
			followed := lsReadLogs(t, d, created.ID, tty, true)
			if err := d.call(ctx, "POST", "/containers/"+created.ID+"/wait", nil, nil, nil); err != nil {
				t.Fatal(err)
			}
			got := lsReadLogs(t, d, created.ID, tty, false)
			ended := time.Now()

			wantOut, wantErr := lsLoggenExpected(tty)
			for k, want := range [][]string{wantOut, wantErr} {
				kind := StreamKind(k + 1)
				if len(got[k]) != len(want) {
					t.Errorf("%v: got %d lines, want %d", kind, len(got[k]), len(want))
				}
				var last int64
				for i, l := range got[k][:min(len(got[k]), len(want))] {
					if l.line != want[i] {
						t.Errorf("%v line %d: got %d bytes %.40q..., want %d bytes %.40q...", kind, i, len(l.line), l.line, len(want[i]), want[i])
					}
					if l.partial != (i == len(want)-1 && kind == Stdout) {
						t.Errorf("%v line %d: Partial = %v", kind, i, l.partial)
					}
					if l.time < last || l.time < began.Add(-time.Minute).UnixNano() || l.time > ended.Add(time.Minute).UnixNano() {
						t.Errorf("%v line %d: time %v out of order or range", kind, i, time.Unix(0, l.time).UTC())
					}
					last = l.time
				}
				if len(followed[k]) > len(got[k]) {
					t.Errorf("%v: followed %d lines, then read %d", kind, len(followed[k]), len(got[k]))
					continue
				}
				for i, l := range followed[k] {
					if l != got[k][i] {
						t.Errorf("%v line %d differs between the follow stream and the read after exit", kind, i)
					}
				}
				if missed := len(got[k]) - len(followed[k]); missed > 0 {
					t.Logf("%v: the follow stream ended %d line(s) early", kind, missed)
				}
			}
		})
	}
}
