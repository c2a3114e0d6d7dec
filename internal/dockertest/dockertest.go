package dockertest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Labels put on everything this package creates.
const (
	// LabelTest marks containers and images as test artefacts.
	LabelTest = "wharf.test"
	// LabelRun carries RunID(), so Cleanup finds this process's leftovers.
	LabelRun = "wharf.test.run"
)

// Timeouts for docker CLI calls. They are generous because a loaded CI
// machine can take seconds to create a container, and tight enough that a
// wedged daemon fails the test instead of hanging it until the go test
// timeout.
const (
	probeTimeout   = 10 * time.Second
	commandTimeout = 2 * time.Minute
)

var runID = sync.OnceValue(func() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
})

// RunID returns the random id of this test process, carried by every
// container it creates in the wharf.test.run label.
func RunID() string { return runID() }

// created records whether this process ever created a container, so
// Cleanup does not need a daemon when no test used one.
var created atomic.Bool

// cmdError is a failed docker CLI call.
type cmdError struct {
	args   []string
	err    error
	stderr string
}

func (e *cmdError) Error() string {
	msg := fmt.Sprintf("dockertest: docker %s: %v", strings.Join(e.args, " "), e.err)
	if e.stderr != "" {
		msg += ": " + e.stderr
	}
	return msg
}

func (e *cmdError) Unwrap() error { return e.err }

// exitCode returns the exit status of the failed command, or -1 if it did
// not run to completion.
func (e *cmdError) exitCode() int {
	var ee *exec.ExitError
	if errors.As(e.err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// execDocker runs the docker CLI with args, feeding it stdin, writing its
// standard output to stdout (if not nil) and returning the end of its
// standard error in the error.
func execDocker(ctx context.Context, stdin io.Reader, stdout io.Writer, args ...string) error {
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Stdin = stdin
	cmd.Stdout = stdout
	stderr := &tailBuffer{max: 4 << 10}
	cmd.Stderr = stderr
	// A killed CLI can leave a child holding the pipes; do not wait on them.
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", err, ctx.Err())
		}
		return &cmdError{args: args, err: err, stderr: oneLine(string(stderr.buf))}
	}
	return nil
}

// tailBuffer keeps the last max bytes written to it. The CLI's own error
// comes last, after whatever an attached container wrote to stderr, which
// can be large.
type tailBuffer struct {
	buf []byte
	max int
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

// output runs the docker CLI and returns its trimmed standard output.
func output(ctx context.Context, args ...string) (string, error) {
	var out bytes.Buffer
	err := execDocker(ctx, nil, &out, args...)
	return strings.TrimSpace(out.String()), err
}

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// Docker runs the docker CLI with args and returns its trimmed standard
// output, failing t if the command fails. It is the escape hatch for
// anything the other helpers do not cover; containers created through it
// are not removed automatically.
func Docker(t testing.TB, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	out, err := output(ctx, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var probe = sync.OnceValues(func() (arch string, err error) {
	if _, err := exec.LookPath("docker"); err != nil {
		return "", errors.New("docker CLI not found in PATH")
	}
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	out, err := output(ctx, "version", "--format", "{{.Server.APIVersion}} {{.Server.Arch}}")
	if err != nil {
		var ce *cmdError
		if errors.As(err, &ce) && ce.stderr != "" {
			return "", errors.New(ce.stderr)
		}
		return "", err
	}
	_, arch, _ = strings.Cut(out, " ")
	return arch, nil
})

// Require skips t when no Docker daemon answers within 10 seconds, with the
// reason on one line, and fails it instead when WHARF_E2E=1 (as in CI),
// where a missing daemon is a broken environment rather than a choice. The
// probe runs once per process.
func Require(t testing.TB) {
	t.Helper()
	if _, err := probe(); err != nil {
		reason := "docker: " + oneLine(strings.TrimPrefix(err.Error(), "dockertest: "))
		if os.Getenv("WHARF_E2E") == "1" {
			t.Fatal(reason + " (WHARF_E2E=1)")
		}
		t.Skip(reason)
	}
}

// RunOptions describes a container for Create and Run. The zero value runs
// the loggen image with no arguments.
type RunOptions struct {
	// Name is the container name. Empty picks a unique name made of the
	// test name, RunID and a counter.
	Name string
	// Image defaults to LoggenImage(t).
	Image string
	// Args follow the image on the command line; for loggen, its flags.
	Args []string
	// Env holds KEY=VALUE pairs.
	Env []string
	// Labels are added to wharf.test and wharf.test.run, which always win.
	Labels map[string]string
	// TTY allocates a pseudo-terminal (docker run -t): the log stream is
	// raw, stderr merges into stdout and lines end "\r\n".
	TTY bool
	// LogDriver is the log driver (json-file, local, none...); empty uses
	// the daemon default.
	LogDriver string
	// LogOpts are --log-opt pairs, e.g. {"max-size": "1m", "max-file": "3"}.
	LogOpts map[string]string
	// Rm removes the container when it exits (docker run --rm).
	Rm bool
	// Wait makes Run block until the container exits, like docker run
	// without -d, and report its exit code.
	Wait bool
	// Extra holds further docker create flags, placed before the image.
	Extra []string
}

// Container identifies a container created by Create or Run.
type Container struct {
	ID   string
	Name string
	// ExitCode is the container's exit status when RunOptions.Wait was set.
	ExitCode int
}

var nameSeq atomic.Int64

var unsafeName = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

func uniqueName(t testing.TB) string {
	base := strings.Trim(unsafeName.ReplaceAllString(t.Name(), "-"), "-._")
	if len(base) > 40 {
		base = base[:40]
	}
	return fmt.Sprintf("wharf-%s-%s-%d", base, RunID()[:6], nameSeq.Add(1))
}

// Create creates a container without starting it and registers its removal
// when t ends.
func Create(t testing.TB, opts RunOptions) Container {
	t.Helper()
	Require(t)
	if opts.Image == "" {
		opts.Image = LoggenImage(t)
	}
	if opts.Name == "" {
		opts.Name = uniqueName(t)
	}
	// No network: the generator needs none, and a container without one
	// spares the daemon the network setup and teardown that, under heavy
	// create/remove churn, can deadlock Docker 20.10's libnetwork.
	args := []string{"create", "--name", opts.Name, "--network", "none"}
	labels := maps.Clone(opts.Labels)
	if labels == nil {
		labels = make(map[string]string)
	}
	labels[LabelTest] = "1"
	labels[LabelRun] = RunID()
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		args = append(args, "--label", k+"="+labels[k])
	}
	for _, e := range opts.Env {
		args = append(args, "--env", e)
	}
	if opts.TTY {
		args = append(args, "--tty")
	}
	if opts.LogDriver != "" {
		args = append(args, "--log-driver", opts.LogDriver)
	}
	for _, k := range slices.Sorted(maps.Keys(opts.LogOpts)) {
		args = append(args, "--log-opt", k+"="+opts.LogOpts[k])
	}
	if opts.Rm {
		args = append(args, "--rm")
	}
	args = append(args, opts.Extra...)
	args = append(args, opts.Image)
	args = append(args, opts.Args...)

	created.Store(true)
	id := Docker(t, args...)
	t.Cleanup(func() {
		if err := remove(id); err != nil {
			t.Error(err)
		}
	})
	return Container{ID: id, Name: opts.Name}
}

// Run creates and starts a container (see Create). With opts.Wait it
// returns after the container has exited.
func Run(t testing.TB, opts RunOptions) Container {
	t.Helper()
	c := Create(t, opts)
	if !opts.Wait {
		Start(t, c.ID)
		return c
	}
	if !opts.Rm {
		Start(t, c.ID)
		c.ExitCode = Wait(t, c.ID)
		return c
	}
	// An auto-removed container may be gone before docker wait looks for
	// it; docker start -a attaches first and reports the exit status even
	// then. Its output is dropped: tests read logs the way wharf does.
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	err := execDocker(ctx, nil, io.Discard, "start", "--attach", c.ID)
	var ce *cmdError
	switch {
	case err == nil:
	case errors.As(err, &ce) && ce.exitCode() > 0 && ctx.Err() == nil:
		c.ExitCode = ce.exitCode()
	default:
		t.Fatal(err)
	}
	return c
}

// remove force-removes a container, ignoring one that is already gone
// (e.g. removed by --rm or by the test itself).
func remove(id string) error {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	if err := execDocker(ctx, nil, nil, "rm", "--force", "--volumes", id); err != nil && !isNoSuch(err) {
		return err
	}
	return nil
}

func isNoSuch(err error) bool {
	var ce *cmdError
	return errors.As(err, &ce) && strings.Contains(strings.ToLower(ce.stderr), "no such container")
}

// Start starts a created or stopped container.
func Start(t testing.TB, id string) { t.Helper(); Docker(t, "start", id) }

// Stop stops a container, sending SIGTERM and SIGKILL after 10 seconds
// (loggen exits at once on SIGTERM).
func Stop(t testing.TB, id string) { t.Helper(); Docker(t, "stop", "--time", "10", id) }

// Restart restarts a container.
func Restart(t testing.TB, id string) { t.Helper(); Docker(t, "restart", "--time", "10", id) }

// Kill sends signal (e.g. "KILL", "TERM") to a container's main process.
func Kill(t testing.TB, id, signal string) { t.Helper(); Docker(t, "kill", "--signal", signal, id) }

// Rename renames a container.
func Rename(t testing.TB, id, name string) { t.Helper(); Docker(t, "rename", id, name) }

// Pause freezes a container's processes.
func Pause(t testing.TB, id string) { t.Helper(); Docker(t, "pause", id) }

// Unpause thaws a paused container.
func Unpause(t testing.TB, id string) { t.Helper(); Docker(t, "unpause", id) }

// Remove force-removes a container now; one already gone is not an error.
func Remove(t testing.TB, id string) {
	t.Helper()
	if err := remove(id); err != nil {
		t.Fatal(err)
	}
}

// Wait blocks until the container has exited and returns its exit code. Do
// not use it on an auto-removed (Rm) container, which may vanish first; use
// RunOptions.Wait for those.
func Wait(t testing.TB, id string) int {
	t.Helper()
	out := Docker(t, "wait", id)
	code, err := strconv.Atoi(out)
	if err != nil {
		t.Fatalf("dockertest: docker wait %s: unexpected output %q", id, out)
	}
	return code
}

// Logs returns what docker logs prints for the container, stdout and
// stderr apart. For a TTY container everything is on stdout.
func Logs(t testing.TB, id string) (stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	// docker logs copies the container's stderr to its own stderr, so run
	// it directly rather than through execDocker, which keeps stderr for
	// error messages.
	cmd := exec.CommandContext(ctx, "docker", "logs", id)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		t.Fatalf("dockertest: docker logs %s: %v: %s", id, err, oneLine(errb.String()))
	}
	return out.String(), errb.String()
}

// Info is the part of docker inspect that tests use.
type Info struct {
	ID      string
	Name    string // without the leading "/"
	Image   string // the image reference the container was created from
	State   State
	LogPath string // the json-file log; empty for other drivers
	Tty     bool
	Labels  map[string]string
	// LogType and LogConfig are the log driver and its options.
	LogType      string
	LogConfig    map[string]string
	RestartCount int
}

// State is a container's run state as docker inspect reports it.
type State struct {
	Status     string // created, running, paused, restarting, removing, exited, dead
	Running    bool
	Paused     bool
	Restarting bool
	Pid        int
	ExitCode   int
	StartedAt  time.Time
	FinishedAt time.Time
}

type inspectJSON struct {
	ID           string `json:"Id"`
	Name         string
	State        State
	LogPath      string
	RestartCount int
	Config       struct {
		Tty    bool
		Image  string
		Labels map[string]string
	}
	HostConfig struct {
		LogConfig struct {
			Type   string
			Config map[string]string
		}
	}
}

// Inspect returns the container's current Info.
func Inspect(t testing.TB, id string) Info {
	t.Helper()
	out := Docker(t, "inspect", "--type", "container", id)
	var raw []inspectJSON
	if err := json.Unmarshal([]byte(out), &raw); err != nil || len(raw) != 1 {
		t.Fatalf("dockertest: docker inspect %s: cannot decode output (%v): %.200s", id, err, out)
	}
	r := raw[0]
	return Info{
		ID:           r.ID,
		Name:         strings.TrimPrefix(r.Name, "/"),
		Image:        r.Config.Image,
		State:        r.State,
		LogPath:      r.LogPath,
		Tty:          r.Config.Tty,
		Labels:       r.Config.Labels,
		LogType:      r.HostConfig.LogConfig.Type,
		LogConfig:    r.HostConfig.LogConfig.Config,
		RestartCount: r.RestartCount,
	}
}

// Cleanup force-removes every container labelled with this process's
// RunID, and nothing else. It is meant for TestMain, after m.Run, to catch
// containers whose test died before its t.Cleanup ran. It does nothing if
// this process created no container.
func Cleanup() error {
	if !created.Load() {
		return nil
	}
	return removeRun(RunID())
}

func removeRun(id string) error {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	out, err := output(ctx, "ps", "--all", "--quiet", "--no-trunc", "--filter", "label="+LabelRun+"="+id)
	if err != nil {
		return err
	}
	ids := strings.Fields(out)
	if len(ids) == 0 {
		return nil
	}
	err = execDocker(ctx, nil, nil, append([]string{"rm", "--force", "--volumes"}, ids...)...)
	if err != nil && !isNoSuch(err) {
		return err
	}
	return nil
}
