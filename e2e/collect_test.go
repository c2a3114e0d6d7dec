package e2e

import (
	"bufio"
	"cmp"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wharf-logs/wharf/internal/dockertest"
	"github.com/wharf-logs/wharf/internal/filesink"
	"github.com/wharf-logs/wharf/internal/seq"
)

// record is one line of the file sink's NDJSON.
type record struct {
	Time     string            `json:"time"`
	TS       int64             `json:"ts"`
	Stream   string            `json:"stream"`
	Labels   map[string]string `json:"labels"`
	Metadata map[string]string `json:"metadata"`
	Line     string            `json:"line"`
}

// readRecords reads every file-sink record of a container name, rotated
// files included, oldest first.
func readRecords(t testing.TB, dir, name string) []record {
	t.Helper()
	base := filepath.Join(dir, filesink.FileName(name))
	paths, _ := filepath.Glob(base + ".*")
	var ordered []string
	for i := len(paths); i >= 1; i-- {
		if _, err := os.Stat(base + "." + strconv.Itoa(i)); err == nil {
			ordered = append(ordered, base+"."+strconv.Itoa(i))
		}
	}
	ordered = append(ordered, base)
	var out []record
	for _, p := range ordered {
		f, err := os.Open(p)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 8<<20)
		for sc.Scan() {
			var r record
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatalf("%s: bad record %q: %v", p, sc.Text(), err)
			}
			out = append(out, r)
		}
		f.Close()
	}
	return out
}

// dockerTimes returns Docker's own timestamp of every loggen line of a
// container, by sequence number, from `docker logs --timestamps`.
func dockerTimes(t testing.TB, id string) map[int64]int64 {
	t.Helper()
	out, err := exec.Command("docker", "logs", "--timestamps", id).CombinedOutput()
	if err != nil {
		t.Fatalf("docker logs: %v: %s", err, out)
	}
	times := map[int64]int64{}
	for _, l := range strings.Split(string(out), "\n") {
		ts, rest, ok := strings.Cut(strings.TrimRight(l, "\r"), " ")
		if !ok {
			continue
		}
		tm, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			continue
		}
		if n, _, _, ok := seq.ParseLine(rest); ok {
			if _, dup := times[n]; !dup {
				times[n] = tm.UnixNano()
			}
		}
	}
	return times
}

type expect struct {
	c       dockertest.Container
	lines   int64 // 0: unknown, check contiguity only
	tty     bool
	labels  map[string]string
	firstGT int64 // the first seq received must be greater than this
}

// containerSet starts the containers of the Collect issue after wharf is
// up (pre is one started before it) and returns what each must deliver,
// once they have all exited or been removed, with Docker's timestamps.
func containerSet(t *testing.T, img string, pre dockertest.Container) ([]expect, map[string]map[int64]int64) {
	t.Helper()
	var mu sync.Mutex
	want := []expect{{c: pre, firstGT: 10}}
	add := func(e expect) { mu.Lock(); want = append(want, e); mu.Unlock() }
	var wg sync.WaitGroup
	wg.Go(func() {
		c := dockertest.Run(t, dockertest.RunOptions{Image: img, Args: []string{"-lines", "3000", "-rate", "1500", "-stderr", "0.3"}})
		add(expect{c: c, lines: 3000})
	})
	wg.Go(func() {
		c := dockertest.Run(t, dockertest.RunOptions{Image: img, TTY: true, Args: []string{"-lines", "500", "-rate", "500", "-stderr", "0.2"}})
		add(expect{c: c, lines: 500, tty: true})
	})
	wg.Go(func() {
		c := dockertest.Run(t, dockertest.RunOptions{Image: img, Args: []string{"-lines", "60", "-long-every", "3", "-long-size", "40960", "-stderr", "0.5"}})
		add(expect{c: c, lines: 60})
	})
	wg.Go(func() {
		c := dockertest.Run(t, dockertest.RunOptions{Image: img, TTY: true, Args: []string{"-lines", "20", "-long-every", "2", "-long-size", "40960"}})
		add(expect{c: c, lines: 20, tty: true})
	})
	wg.Go(func() {
		c := dockertest.Run(t, dockertest.RunOptions{Image: img, Args: []string{"-lines", "200"},
			Labels: map[string]string{"com.docker.compose.project": "shop", "com.docker.compose.service": "web"}})
		add(expect{c: c, lines: 200, labels: map[string]string{"compose_project": "shop", "compose_service": "web"}})
	})
	wg.Go(func() {
		// Lives about 100 ms.
		c := dockertest.Run(t, dockertest.RunOptions{Image: img, Args: []string{"-lines", "300", "-rate", "3000"}})
		add(expect{c: c, lines: 300})
	})
	wg.Go(func() {
		// Removed while running: what Docker logged before removal arrives,
		// contiguous from the first line.
		c := dockertest.Run(t, dockertest.RunOptions{Image: img, Args: []string{"-rate", "200"}})
		time.Sleep(2 * time.Second)
		dockertest.Remove(t, c.ID)
		add(expect{c: c})
	})
	wg.Wait()
	times := map[string]map[int64]int64{}
	for _, e := range want {
		if e.lines > 0 || e.c.ID == pre.ID {
			dockertest.Wait(t, e.c.ID)
			times[e.c.Name] = dockerTimes(t, e.c.ID)
		}
	}
	return want, times
}

// checkDelivered checks the records one container delivered.
func checkDelivered(t *testing.T, e expect, img string, recs []record, times map[int64]int64) {
	t.Helper()
	host, _ := os.Hostname()
	if len(recs) == 0 {
		t.Fatal("no records")
	}
	var lines []string
	for _, r := range recs {
		lines = append(lines, r.Line)
		if r.Labels["container"] != e.c.Name || r.Labels["host"] != host {
			t.Fatalf("labels %v", r.Labels)
		}
		for k, v := range e.labels {
			if r.Labels[k] != v {
				t.Fatalf("label %s = %q, want %q (labels %v)", k, r.Labels[k], v, r.Labels)
			}
		}
		if len(r.Labels) != 3+len(e.labels) {
			t.Fatalf("labels %v: want container, host, stream and %v only", r.Labels, e.labels)
		}
		if r.Metadata["container_id"] != e.c.ID || r.Metadata["image"] != img {
			t.Fatalf("metadata %v", r.Metadata)
		}
		_, stream, _, ok := seq.ParseLine(r.Line)
		if !ok {
			t.Fatalf("not a loggen line: %.100q", r.Line)
		}
		wantStream := map[string]string{"out": "stdout", "err": "stderr"}[stream]
		if e.tty {
			wantStream = "stdout" // the terminal merges stderr
		}
		if r.Labels["stream"] != wantStream {
			t.Fatalf("line %.40q in stream %q, want %q", r.Line, r.Labels["stream"], wantStream)
		}
		if strings.HasSuffix(r.Line, "\r") || strings.Contains(r.Line, "\n") {
			t.Fatalf("line keeps its line ending: %.60q", r.Line)
		}
		if len(r.Line) > 16384 && len(r.Line) != 40960 {
			t.Fatalf("long line has %d bytes, want 40960", len(r.Line))
		}
	}
	if e.firstGT > 0 {
		sorted := slices.Clone(lines)
		slices.SortFunc(sorted, func(a, b string) int {
			x, _, _, _ := seq.ParseLine(a)
			y, _, _, _ := seq.ParseLine(b)
			return cmp.Compare(x, y)
		})
		first, _, _, _ := seq.ParseLine(sorted[0])
		if first <= e.firstGT {
			t.Fatalf("start_at end: first line shipped is seq %d; lines written before wharf started must be skipped", first)
		}
		for i := range sorted {
			if n, _, _, _ := seq.ParseLine(sorted[i]); n != first+int64(i) {
				t.Fatalf("line %d has seq %d, want %d: not contiguous from the first shipped", i, n, first+int64(i))
			}
		}
	} else {
		r := seq.CheckLines(e.c.Name, lines, e.lines)
		if !r.OK() {
			t.Fatal(r.String())
		}
		if e.lines == 0 && r.Lines < 100 {
			t.Fatalf("only %d lines from the container removed while running", r.Lines)
		}
	}
	// Docker's nanosecond timestamps are kept.
	if times != nil {
		checked := 0
		for _, r := range recs {
			n, _, _, _ := seq.ParseLine(r.Line)
			if want, ok := times[n]; ok {
				if r.TS != want {
					t.Fatalf("seq %d: time %d, docker says %d", n, r.TS, want)
				}
				checked++
			}
		}
		if checked < len(recs)/2 {
			t.Fatalf("only %d of %d timestamps could be checked", checked, len(recs))
		}
	}
}

// TestCollectContainerSet runs the container set of the Collect issue
// against the real daemon with the file sink, reading through the Engine
// API, from the json-files, and as auto chooses, and checks every line
// arrived exactly once, with the right labels and Docker's exact timestamps.
func TestCollectContainerSet(t *testing.T) {
	dockertest.Require(t)
	img := dockertest.LoggenImage(t)
	binary(t)
	for _, mode := range []string{"api", "file", "auto"} {
		t.Run(mode, func(t *testing.T) {
			data := t.TempDir()
			// Running before wharf starts: with start_at end only its later
			// lines are shipped.
			pre := dockertest.Run(t, dockertest.RunOptions{Image: img, Args: []string{"-rate", "50", "-exit-after", "8s"}})
			time.Sleep(1500 * time.Millisecond)
			w := startWharf(t, data, modeConfig(data, freePort(t), mode))
			want, times := containerSet(t, img, pre)
			m := w.settled(t, "file", 60*time.Second)
			w.stop()
			wantSource := map[string]string{"api": "docker_api", "file": "docker_file", "auto": "docker_file"}[mode]
			if m[`wharf_entries_read_total{source="`+wantSource+`"}`] == 0 || m[`wharf_entries_read_total{source="`+wantSource+`"}`] != sumMetric(m, "wharf_entries_read_total{") {
				t.Fatalf("read_from %s: entries read by source: %v", mode, pushMetrics(m))
			}
			for _, e := range want {
				t.Run(e.c.Name, func(t *testing.T) {
					recs := readRecords(t, filepath.Join(data, "logs"), e.c.Name)
					for _, r := range recs {
						if r.Stream != r.Labels["stream"] {
							t.Fatalf("record stream %q, label %q", r.Stream, r.Labels["stream"])
						}
						if tm, err := time.Parse(time.RFC3339Nano, r.Time); err != nil || tm.UnixNano() != r.TS {
							t.Fatalf("time %q does not match ts %d", r.Time, r.TS)
						}
					}
					checkDelivered(t, e, img, recs, times[e.c.Name])
				})
			}
		})
	}
}

// TestRenameWhileRunning renames a logging container: lines read after the
// rename carry the new name, and across both names every line arrives once.
func TestRenameWhileRunning(t *testing.T) {
	dockertest.Require(t)
	img := dockertest.LoggenImage(t)
	data := t.TempDir()
	w := startWharf(t, data, baseConfig(data, freePort(t)))
	c := dockertest.Run(t, dockertest.RunOptions{Image: img, Args: []string{"-lines", "600", "-rate", "200"}})
	time.Sleep(1200 * time.Millisecond)
	newName := c.Name + "-renamed"
	dockertest.Rename(t, c.ID, newName)
	dockertest.Wait(t, c.ID)
	w.settled(t, "file", 30*time.Second)
	w.stop()

	before := readRecords(t, data+"/logs", c.Name)
	after := readRecords(t, data+"/logs", newName)
	if len(before) == 0 || len(after) == 0 {
		t.Fatalf("%d lines under the old name, %d under the new one; want both", len(before), len(after))
	}
	var lines []string
	for _, r := range before {
		if r.Labels["container"] != c.Name {
			t.Fatalf("label %q in the old name's file", r.Labels["container"])
		}
		lines = append(lines, r.Line)
	}
	for _, r := range after {
		if r.Labels["container"] != newName {
			t.Fatalf("label %q in the new name's file", r.Labels["container"])
		}
		lines = append(lines, r.Line)
	}
	if r := seq.CheckLines(c.Name, lines, 600); !r.OK() {
		t.Fatal(r.String())
	}
}
