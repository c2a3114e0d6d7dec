package dockertest

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wharf-logs/wharf/internal/seq"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if err := Cleanup(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}

// lines splits docker logs output into lines without their "\n"; a last
// line without newline is kept.
func lines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// checkStream verifies that every line in text belongs to stream and matches
// the line loggen computes for its seq.
func checkStream(t *testing.T, f seq.Format, stream, text string) {
	t.Helper()
	for _, l := range lines(text) {
		l = strings.TrimSuffix(l, "\r")
		n, s, sent, ok := seq.ParseLine(l)
		if !ok {
			t.Fatalf("unparsable line %.80q", l)
		}
		if stream != "" && s != stream {
			t.Fatalf("line %d of stream %s came on %s", n, s, stream)
		}
		if want := f.Line(n, sent); l != want {
			t.Fatalf("line %d: got %d bytes %.80q, want %d bytes %.80q", n, len(l), l, len(want), want)
		}
	}
}

func TestLoggenLines(t *testing.T) {
	Require(t)
	f := seq.Format{Size: 150, StderrFraction: 0.3}
	c := Run(t, RunOptions{
		Args:   append(f.Args(), "-lines", "100"),
		Labels: map[string]string{"app": "loggen"},
		Wait:   true,
	})
	if c.ExitCode != 0 {
		t.Fatalf("exit code %d", c.ExitCode)
	}
	info := Inspect(t, c.ID)
	if info.ID != c.ID || info.Name != c.Name || info.State.Status != "exited" || info.Tty {
		t.Fatalf("inspect: %+v", info)
	}
	if info.LogType == "json-file" && info.LogPath == "" {
		t.Error("json-file container without LogPath")
	}
	if info.Labels[LabelTest] != "1" || info.Labels[LabelRun] != RunID() || info.Labels["app"] != "loggen" {
		t.Errorf("labels %v", info.Labels)
	}
	if !strings.HasPrefix(info.Image, LoggenRepo+":") {
		t.Errorf("image %q", info.Image)
	}

	stdout, stderr := Logs(t, c.ID)
	checkStream(t, f, seq.StreamOut, stdout)
	checkStream(t, f, seq.StreamErr, stderr)
	if r := seq.CheckLines(c.Name, append(lines(stdout), lines(stderr)...), 100); !r.OK() {
		t.Fatal(r)
	}
}

func TestLoggenTTY(t *testing.T) {
	Require(t)
	c := Run(t, RunOptions{Args: []string{"-lines", "50", "-stderr", "0.5"}, TTY: true, Wait: true})
	if !Inspect(t, c.ID).Tty {
		t.Fatal("inspect: Tty false")
	}
	stdout, stderr := Logs(t, c.ID)
	if stderr != "" {
		t.Fatalf("TTY container wrote %d bytes to stderr", len(stderr))
	}
	if n := strings.Count(stdout, "\r\n"); n != 50 {
		t.Fatalf("%d lines end in \\r\\n, want 50", n)
	}
	checkStream(t, seq.Format{Size: 100, StderrFraction: 0.5}, "", stdout)
	if r := seq.CheckLines(c.Name, lines(stdout), 50); !r.OK() {
		t.Fatal(r)
	}
}

func TestLoggenLongLines(t *testing.T) {
	Require(t)
	c := Run(t, RunOptions{
		Args: []string{"-lines", "10", "-long-every", "3", "-long-size", "40960", "-no-final-newline"},
		Wait: true,
	})
	stdout, _ := Logs(t, c.ID)
	got := lines(stdout)
	f := seq.Format{Size: 100, LongEvery: 3, LongSize: 40960}
	checkStream(t, f, seq.StreamOut, stdout)
	if r := seq.CheckLines(c.Name, got, 10); !r.OK() {
		t.Fatal(r)
	}
	for i, l := range got {
		if want := f.Len(int64(i + 1)); len(l) != want {
			t.Errorf("line %d: %d bytes, want %d", i+1, len(l), want)
		}
	}
	if strings.HasSuffix(stdout, "\n") {
		t.Error("final line has a newline despite -no-final-newline")
	}
}

func TestLifecycle(t *testing.T) {
	Require(t)
	c := Run(t, RunOptions{Args: []string{"-rate", "20"}, LogDriver: "local",
		LogOpts: map[string]string{"max-size": "1m", "max-file": "3", "compress": "true"}})
	if s := Inspect(t, c.ID).State; !s.Running || s.Pid == 0 || s.StartedAt.IsZero() {
		t.Fatalf("after run: %+v", s)
	}
	if info := Inspect(t, c.ID); info.LogType != "local" || info.LogConfig["max-file"] != "3" {
		t.Fatalf("log config %s %v", info.LogType, info.LogConfig)
	}
	Pause(t, c.ID)
	if s := Inspect(t, c.ID).State; !s.Paused || s.Status != "paused" {
		t.Fatalf("after pause: %+v", s)
	}
	Unpause(t, c.ID)
	newName := c.Name + "-renamed"
	Rename(t, c.ID, newName)
	if n := Inspect(t, c.ID).Name; n != newName {
		t.Fatalf("after rename: name %q", n)
	}
	Restart(t, c.ID)
	Stop(t, c.ID)
	if s := Inspect(t, c.ID).State; s.Running || s.Status != "exited" || s.ExitCode != 0 {
		t.Fatalf("after stop: %+v (loggen should exit 0 on SIGTERM)", s)
	}
	Start(t, c.ID)
	Kill(t, c.ID, "KILL")
	if code := Wait(t, c.ID); code != 137 {
		t.Fatalf("exit code after SIGKILL %d, want 137", code)
	}
	Remove(t, c.ID)
	Remove(t, c.ID) // already gone: not an error
}

func TestRunRmAndExitCode(t *testing.T) {
	Require(t)
	c := Run(t, RunOptions{Args: []string{"-lines", "5", "-exit-code", "3"}, Rm: true, Wait: true})
	if c.ExitCode != 3 {
		t.Fatalf("exit code %d, want 3", c.ExitCode)
	}
	// --rm removal is asynchronous to the exit.
	deadline := time.Now().Add(10 * time.Second)
	for Docker(t, "ps", "--all", "--quiet", "--filter", "id="+c.ID) != "" {
		if time.Now().After(deadline) {
			t.Fatal("--rm container still present after 10s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestCleanupRemovesOnlyItsRun(t *testing.T) {
	Require(t)
	image := LoggenImage(t)
	otherRun := "cleanup-" + RunID()
	mine := Create(t, RunOptions{})
	id := Docker(t, "create", "--label", LabelTest+"=1", "--label", LabelRun+"="+otherRun, image, "-lines", "1")
	t.Cleanup(func() {
		if err := remove(id); err != nil {
			t.Error(err)
		}
	})
	if err := removeRun(otherRun); err != nil {
		t.Fatal(err)
	}
	if out := Docker(t, "ps", "--all", "--quiet", "--filter", "id="+id); out != "" {
		t.Fatalf("container of run %s survived removeRun", otherRun)
	}
	if out := Docker(t, "ps", "--all", "--quiet", "--filter", "id="+mine.ID); out == "" {
		t.Fatal("removeRun removed a container of another run")
	}
}

func TestLoggenImageCached(t *testing.T) {
	Require(t)
	ref := LoggenImage(t)
	// A second build in a fresh state must land on the same tag without
	// importing again.
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	ref2, built, err := BuildLoggen(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ref2 != ref || built {
		t.Fatalf("second build: %s built=%v, first %s", ref2, built, ref)
	}
	labels := Docker(t, "image", "inspect", "--format", "{{json .Config.Labels}} {{json .Config.Entrypoint}}", ref)
	if labels != `{"wharf.test":"1"} ["/loggen"]` {
		t.Fatalf("image config %s", labels)
	}
}

// dockerSocket returns the daemon's unix socket, or "" if the CLI talks to
// the daemon some other way.
func dockerSocket() string {
	host := os.Getenv("DOCKER_HOST")
	if host == "" {
		return "/var/run/docker.sock"
	}
	if p, ok := strings.CutPrefix(host, "unix://"); ok {
		return p
	}
	return ""
}

// apiLogs fetches a container's logs with timestamps from the engine API.
func apiLogs(t *testing.T, id string) []byte {
	t.Helper()
	sock := dockerSocket()
	if sock == "" {
		t.Skip("docker: DOCKER_HOST is not a unix socket")
	}
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	defer client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(t.Context(), "GET",
		"http://docker/containers/"+id+"/logs?stdout=1&stderr=1&timestamps=1&follow=0", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET logs: %s %v %.200s", resp.Status, err, body)
	}
	return body
}

type frame struct {
	stream  byte
	ts      string
	payload []byte // after the timestamp and its space
}

var tsPrefix = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z `)

func parseFrames(t *testing.T, b []byte) []frame {
	t.Helper()
	var frames []frame
	for len(b) > 0 {
		if len(b) < 8 {
			t.Fatalf("%d trailing bytes", len(b))
		}
		size := int(binary.BigEndian.Uint32(b[4:8]))
		p := b[8 : 8+size]
		ts := tsPrefix.Find(p)
		if ts == nil {
			t.Fatalf("frame without timestamp: %.60q", p)
		}
		frames = append(frames, frame{stream: b[0], ts: string(ts[:len(ts)-1]), payload: p[len(ts):]})
		b = b[8+size:]
	}
	return frames
}

// TestAPILongLineFrames pins what the package doc says the engine API does
// with 16 KiB partial records, which wharf's API reader depends on.
func TestAPILongLineFrames(t *testing.T) {
	Require(t)
	t.Run("json-file", func(t *testing.T) {
		// Lines: 1 short out, 2 long out (40960), 3 short err without newline.
		c := Run(t, RunOptions{
			Args:      []string{"-lines", "3", "-size", "60", "-long-every", "2", "-long-size", "40960", "-stderr", "0.34", "-no-final-newline"},
			LogDriver: "json-file",
			Wait:      true,
		})
		frames := parseFrames(t, apiLogs(t, c.ID))
		type shape struct {
			stream  byte
			size    int
			newline bool
		}
		want := []shape{{1, 61, true}, {1, 16384, false}, {1, 16384, false}, {1, 8193, true}, {2, 60, false}}
		if len(frames) != len(want) {
			t.Fatalf("%d frames, want %d", len(frames), len(want))
		}
		for i, f := range frames {
			got := shape{f.stream, len(f.payload), bytes.HasSuffix(f.payload, []byte("\n"))}
			if got != want[i] {
				t.Errorf("frame %d: %+v, want %+v", i, got, want[i])
			}
		}
		if frames[1].ts != frames[2].ts || frames[2].ts != frames[3].ts {
			t.Errorf("chunks of one line have different timestamps: %s %s %s", frames[1].ts, frames[2].ts, frames[3].ts)
		}
	})
	t.Run("json-file-exact-16KiB", func(t *testing.T) {
		c := Run(t, RunOptions{
			Args:      []string{"-lines", "2", "-size", "16383", "-long-every", "2", "-long-size", "16384"},
			LogDriver: "json-file",
			Wait:      true,
		})
		frames := parseFrames(t, apiLogs(t, c.ID))
		var sizes []int
		for _, f := range frames {
			sizes = append(sizes, len(f.payload))
		}
		// 16383 bytes + "\n" fit one chunk; 16384 bytes leave the "\n" alone.
		if fmt.Sprint(sizes) != "[16384 16384 1]" || string(frames[2].payload) != "\n" {
			t.Fatalf("payload sizes %v", sizes)
		}
	})
	t.Run("tty", func(t *testing.T) {
		c := Run(t, RunOptions{
			Args:      []string{"-lines", "3", "-size", "60", "-long-every", "2", "-long-size", "40960", "-stderr", "0.34", "-no-final-newline"},
			LogDriver: "json-file",
			TTY:       true,
			Wait:      true,
		})
		raw := apiLogs(t, c.ID)
		// No framing: a chunk is a timestamp, a space, then bytes up to the
		// first "\n" or exactly 16384 bytes, as the package doc says.
		var chunks []string
		for rest := raw; len(rest) > 0; {
			ts := tsPrefix.Find(rest)
			if ts == nil {
				t.Fatalf("chunk %d does not start with a timestamp: %.60q", len(chunks), rest)
			}
			rest = rest[len(ts):]
			n := min(len(rest), 16384)
			if i := bytes.IndexByte(rest[:n], '\n'); i >= 0 {
				n = i + 1
			}
			chunks = append(chunks, string(rest[:n]))
			rest = rest[n:]
		}
		var sizes []int
		for _, ch := range chunks {
			sizes = append(sizes, len(ch))
		}
		if fmt.Sprint(sizes) != "[62 16384 16384 8194 60]" {
			t.Fatalf("chunk sizes %v", sizes)
		}
		if !strings.HasSuffix(chunks[0], "\r\n") || !strings.HasSuffix(chunks[3], "\r\n") || strings.HasSuffix(chunks[4], "\n") {
			t.Fatalf("line ends: %q %q %q", chunks[0][55:], chunks[3][8180:], chunks[4][50:])
		}
	})
}
