package dockerlog

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wharf-logs/wharf/internal/dockertest"
	"github.com/wharf-logs/wharf/internal/seq"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if err := dockertest.Cleanup(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	if gen.ref != "" {
		if out, err := exec.Command("docker", "rmi", "--force", gen.ref).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "removing image %s: %v: %s", gen.ref, err, out)
		}
	}
	os.Exit(code)
}

// liveLine is a line as both sides of the comparison see it.
type liveLine struct {
	time    int64
	text    string
	partial bool
}

func (l liveLine) String() string {
	text := l.text
	if len(text) > 50 {
		text = fmt.Sprintf("%.25s...(%d bytes)...%s", text, len(text), text[len(text)-15:])
	}
	return fmt.Sprintf("{%s %q partial=%v}", time.Unix(0, l.time).UTC().Format(time.RFC3339Nano), text, l.partial)
}

// readLogFile reads a container's json-file log to its end, as wharf does
// once the container is gone, and returns its lines per stream and all of
// them in order.
func readLogFile(t *testing.T, path string) (streams [2][]liveLine, all []Line) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	all, corrupt := readAll(t, NewFileReader(f, 0, 0))
	if len(corrupt) > 0 {
		t.Fatalf("%s: %v", path, corrupt)
	}
	for _, l := range all {
		k := 0
		if l.Stream == Stderr {
			k = 1
		}
		streams[k] = append(streams[k], liveLine{l.Time, string(l.Text), l.Partial})
	}
	return streams, all
}

// dockerLogs returns the lines `docker logs --timestamps` prints for a
// container, per stream.
func dockerLogs(t *testing.T, id string) (streams [2][]liveLine) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", "logs", "--timestamps", id)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("docker logs --timestamps %s: %v", id, err)
	}
	for k, out := range [][]byte{stdout.Bytes(), stderr.Bytes()} {
		lines, err := parseDockerLogs(out)
		if err != nil {
			t.Fatalf("docker logs --timestamps %s: %v", id, err)
		}
		streams[k] = lines
	}
	return streams
}

// parseDockerLogs parses what docker logs --timestamps prints for one
// stream: "<timestamp> <text>" per message, where a line Docker split is
// one message per part, each with the timestamp of the first part and only
// the last one ending in "\n". A part's text is not always 16 KiB (the
// daemon decodes each part apart, so an invalid UTF-8 byte becomes three
// bytes), so a line's further parts are found by its timestamp instead.
func parseDockerLogs(out []byte) ([]liveLine, error) {
	var lines []liveLine
	for len(out) > 0 {
		sp := bytes.IndexByte(out, ' ')
		if sp < 0 {
			return nil, fmt.Errorf("no timestamp in %.40q", out)
		}
		ts, err := time.Parse(time.RFC3339Nano, string(out[:sp]))
		if err != nil {
			return nil, err
		}
		prefix := out[:sp+1]
		rest := out[sp+1:]
		var text []byte
		partial := false
		for {
			end := bytes.IndexByte(rest, '\n')
			if end < 0 {
				end = len(rest)
			}
			if j := bytes.Index(rest[:end], prefix); j >= 0 {
				text = append(text, rest[:j]...)
				rest = rest[j+len(prefix):]
				continue
			}
			text = append(text, rest[:end]...)
			if end == len(rest) {
				partial, rest = true, nil
			} else {
				text, rest = bytes.TrimSuffix(text, []byte("\r")), rest[end+1:]
			}
			break
		}
		lines = append(lines, liveLine{ts.UnixNano(), string(text), partial})
		out = rest
	}
	return lines, nil
}

func compareStreams(t *testing.T, got, want [2][]liveLine) {
	t.Helper()
	for k, name := range []string{"stdout", "stderr"} {
		if len(got[k]) != len(want[k]) {
			t.Errorf("%s: %d lines, docker logs has %d", name, len(got[k]), len(want[k]))
		}
		for i := range min(len(got[k]), len(want[k])) {
			if got[k][i] != want[k][i] {
				t.Errorf("%s line %d:\n  file        %v\n  docker logs %v", name, i, got[k][i], want[k][i])
			}
		}
	}
}

// gen is the generator image, built once per test binary and removed by
// TestMain.
var gen struct {
	sync.Mutex
	ref string
}

// genImage builds testdata/gen as a static binary and imports it as a
// one-file image, labelled wharf.test=1.
func genImage(t *testing.T) string {
	t.Helper()
	gen.Lock()
	defer gen.Unlock()
	if gen.ref != "" {
		return gen.ref
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "gen")
	build := exec.CommandContext(t.Context(), "go", "build", "-trimpath", "-o", bin, "./testdata/gen")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the generator: %v\n%s", err, out)
	}
	exe, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	if err := tw.WriteHeader(&tar.Header{Name: "gen", Mode: 0o755, Size: int64(len(exe)), ModTime: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(exe); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	image := fmt.Sprintf("wharf-dockerlog-gen:%d-%d", os.Getpid(), time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	imp := exec.CommandContext(ctx, "docker", "import", "--change", `ENTRYPOINT ["/gen"]`, "--change", "LABEL wharf.test=1", "-", image)
	imp.Stdin = &layer
	if out, err := imp.CombinedOutput(); err != nil {
		t.Fatalf("importing the generator image: %v\n%s", err, out)
	}
	gen.ref = image
	return image
}

// TestLiveDocker runs containers that log through the json-file driver and
// checks that reading their log files gives exactly what docker logs
// --timestamps shows: the same lines, texts and times to the nanosecond.
func TestLiveDocker(t *testing.T) {
	dockertest.Require(t)
	image := genImage(t)
	loggen := seq.Format{Size: 265, StderrFraction: 0.3, LongEvery: 7, LongSize: 40 << 10, JSON: true, ANSI: true}
	for _, tc := range []struct {
		name string
		opts dockertest.RunOptions
	}{
		{"gen", dockertest.RunOptions{Image: image}},
		{"gen tty", dockertest.RunOptions{Image: image, TTY: true}},
		{"loggen", dockertest.RunOptions{Args: append(loggen.Args(), "-lines", "300", "-burst", "-no-final-newline")}},
		{"loggen tty", dockertest.RunOptions{Args: append(loggen.Args(), "-lines", "300", "-burst", "-no-final-newline"), TTY: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.LogDriver = "json-file"
			tc.opts.Wait = true
			c := dockertest.Run(t, tc.opts)
			info := dockertest.Inspect(t, c.ID)
			got, all := readLogFile(t, info.LogPath)
			compareStreams(t, got, dockerLogs(t, c.ID))
			// The container's last line has no newline, and no other.
			var partials []liveLine
			for k := range got {
				for i, l := range got[k] {
					if l.partial {
						partials = append(partials, l)
						if i != len(got[k])-1 {
							t.Errorf("partial line %v is not the last of its stream", l)
						}
					}
				}
			}
			if len(partials) != 1 {
				t.Errorf("partial lines: %v, want the last one only", partials)
			}
			checkResume(t, readFile(t, info.LogPath), all)
			if !tc.opts.TTY && !slices.ContainsFunc(all, func(l Line) bool { return l.Pos.Resume < l.Pos.Seen }) {
				t.Errorf("no line came while the other stream had a split line in progress: the interleaving the test needs did not happen")
			}
		})
	}
}

// TestLiveDockerRestart runs the generator twice in one container: its log
// then holds the first run's last line, without newline, followed by the
// second run, whose first record shows that line ended.
func TestLiveDockerRestart(t *testing.T) {
	dockertest.Require(t)
	c := dockertest.Run(t, dockertest.RunOptions{Image: genImage(t), LogDriver: "json-file", Wait: true})
	dockertest.Start(t, c.ID)
	dockertest.Wait(t, c.ID)
	got, all := readLogFile(t, dockertest.Inspect(t, c.ID).LogPath)
	out := got[0]
	if len(out)%2 != 0 {
		t.Fatalf("%d stdout lines from two identical runs", len(out))
	}
	runs := [][]liveLine{out[:len(out)/2], out[len(out)/2:]}
	for i := range runs[0] {
		a, b := runs[0][i], runs[1][i]
		if a.text != b.text || a.partial != b.partial || a.time >= b.time {
			t.Errorf("line %d: run 1 %v, run 2 %v", i, a, b)
		}
	}
	if tail := runs[0][len(runs[0])-1]; tail.text != "tail-no-newline" || !tail.partial {
		t.Errorf("run 1 ends with %v", tail)
	}
	checkResume(t, readFile(t, dockertest.Inspect(t, c.ID).LogPath), all)
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
