package e2e

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wharf-logs/wharf/internal/dockertest"
	"github.com/wharf-logs/wharf/internal/lokitest"
	"github.com/wharf-logs/wharf/internal/seq"
)

// receiverLines returns what the test receiver got for a container.
func receiverLines(srv *lokitest.Server, name string) []string {
	var lines []string
	for _, e := range srv.Entries() {
		if strings.Contains(e.Labels, `container="`+name+`"`) {
			lines = append(lines, e.Line)
		}
	}
	return lines
}

// TestRotationUnderLoad reads from the json-file while Docker rotates it
// every fraction of a second (max-size=1m, max-file=3, 20,000 lines/s): every
// line arrives exactly once. With compress=true wharf is also stopped for a
// while, so it resumes in files that were rotated and gzipped meanwhile.
//
//	WHARF_ROTATION_SECONDS=30 go test ./e2e -run TestRotationUnderLoad -v   (the 30 s; CI runs 12 s)
func TestRotationUnderLoad(t *testing.T) {
	dockertest.Require(t)
	img := dockertest.LoggenImage(t)
	binary(t)
	seconds := envInt("WHARF_ROTATION_SECONDS", 10)
	for _, compress := range []bool{false, true} {
		t.Run(fmt.Sprint("compress=", compress), func(t *testing.T) {
			srv := lokitest.New(lokitest.Options{KeepDuplicates: true})
			t.Cleanup(srv.Close)
			data := t.TempDir()
			cfg := modeConfig(data, freePort(t), "file") + "loki:\n  url: " + srv.URL() + "\n  batch_wait: 200ms\n"
			w := startWharf(t, data, cfg)
			// 20,000 lines/s rotate a 1 MiB file every 0.15 s. With
			// compression, wharf is stopped for 4 s, which must be less than
			// what Docker keeps (3 files), so that rate is lower there.
			rate := 20000
			if compress {
				rate = 2000
			}
			total := int64(rate * max(seconds, 12))
			opts := map[string]string{"max-size": "1m", "max-file": "3"}
			if compress {
				opts["compress"] = "true"
			}
			c := dockertest.Run(t, dockertest.RunOptions{Image: img, LogOpts: opts,
				Args: []string{"-lines", strconv.FormatInt(total, 10), "-rate", strconv.Itoa(rate), "-stderr", "0.2"}})
			if compress {
				// Stop wharf for 4 s mid-run: Docker rotates and compresses
				// the file it was reading meanwhile (1 MiB every 3 s).
				time.Sleep(4 * time.Second)
				w.stop()
				time.Sleep(4 * time.Second)
				w = startWharf(t, data, cfg)
			}
			dockertest.Wait(t, c.ID)
			m := w.settled(t, "loki", 2*time.Minute)
			w.stop()
			if got := m[`wharf_entries_read_total{source="docker_file"}`]; got == 0 {
				t.Fatal("nothing read from the file")
			}
			for k, v := range m {
				if strings.HasPrefix(k, "wharf_entries_dropped_total") && v > 0 {
					t.Errorf("%s = %v", k, v)
				}
			}
			lines := receiverLines(srv, c.Name)
			r := seq.CheckLines(c.Name, lines, total)
			if !r.OK() {
				t.Fatalf("%s", r)
			}
		})
	}
}

// TestLogDriversWithoutFile: a container on the local driver is read
// through the Engine API under auto, and reported (not collected) under
// file; one on the none driver is reported in both.
func TestLogDriversWithoutFile(t *testing.T) {
	dockertest.Require(t)
	img := dockertest.LoggenImage(t)
	binary(t)
	for _, mode := range []string{"auto", "file"} {
		t.Run(mode, func(t *testing.T) {
			data := t.TempDir()
			w := startWharf(t, data, modeConfig(data, freePort(t), mode))
			local := dockertest.Run(t, dockertest.RunOptions{Image: img, LogDriver: "local", Args: []string{"-lines", "200", "-rate", "1000"}})
			none := dockertest.Run(t, dockertest.RunOptions{Image: img, LogDriver: "none", Args: []string{"-lines", "200", "-rate", "1000"}})
			dockertest.Wait(t, local.ID)
			dockertest.Wait(t, none.ID)
			waitFor(t, 20*time.Second, "both containers to be looked at", func() bool {
				log := tail(w.logPath, 400)
				return strings.Contains(log, none.Name) && strings.Contains(log, local.Name)
			})
			w.settled(t, "file", 30*time.Second)
			m := w.metrics()
			w.stop()
			got := readRecords(t, data+"/logs", local.Name)
			switch mode {
			case "auto":
				var lines []string
				for _, r := range got {
					lines = append(lines, r.Line)
				}
				if r := seq.CheckLines(local.Name, lines, 200); !r.OK() {
					t.Fatalf("local driver under auto: %s", r)
				}
			case "file":
				if len(got) != 0 {
					t.Fatalf("read_from file collected %d lines of a local-driver container", len(got))
				}
				if m[`wharf_source_errors_total{kind="unreadable",source="docker_file"}`] == 0 {
					t.Fatalf("the local-driver container was not reported: %v", pushMetrics(m))
				}
			}
			if _, err := os.Stat(data + "/logs/" + none.Name + ".ndjson"); err == nil {
				t.Fatal("a none-driver container produced a log file")
			}
			if m[`wharf_source_errors_total{kind="unreadable",source="docker_api"}`]+m[`wharf_source_errors_total{kind="unreadable",source="docker_file"}`] == 0 {
				t.Fatal("the none-driver container was not reported")
			}
		})
	}
}
