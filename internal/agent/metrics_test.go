package agent

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

var update = flag.Bool("update", false, "rewrite testdata/metrics.golden from what the agent exposes")

// TestMetricsExposed pins what /metrics shows: the name, type (with a
// histogram's buckets), label names and help of every wharf_* family, in
// testdata/metrics.golden, and checks that README's metrics table lists
// exactly these families with these labels.
//
// The agent reads a plain file and ships to both sinks, each with a disk
// queue, Docker off (its metrics are exported all the same). It is built
// but not run, so what exists before any traffic is fixed. A vec shows in a
// gather only once it has a child, so the test then makes one in each; the
// golden file says which families were there before, with their series
// ("exposed[...]"), and which only after ("no-child").
//
// After a deliberate change to a metric, regenerate the file with
//
//	go test ./internal/agent -run TestMetricsExposed -update
//
// and read the diff: it is what changes for whoever scrapes wharf.
func TestMetricsExposed(t *testing.T) {
	dir := t.TempDir()
	cfg := fileAgentConfig(filepath.Join(dir, "data"), filepath.Join(dir, "app.log"), "http://127.0.0.1:1/loki/api/v1/push")
	cfg.Listen = ""
	on := true
	cfg.File.Enabled = &on
	cfg.Queue.Enabled = true
	a, err := New(cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.closeSinks()

	before := gatherFamilies(t, a)
	touchVecs(a)
	after := gatherFamilies(t, a)

	var lines []string
	var goFamilies, processFamilies int
	for _, mf := range after {
		name := mf.GetName()
		switch {
		case strings.HasPrefix(name, "go_"):
			goFamilies++
			continue
		case strings.HasPrefix(name, "process_"):
			processFamilies++
			continue
		case !strings.HasPrefix(name, "wharf_"):
			t.Errorf("unexpected family %s", name)
			continue
		}
		presence := "no-child"
		if i := slices.IndexFunc(before, func(b *dto.MetricFamily) bool { return b.GetName() == name }); i >= 0 {
			presence = "exposed" + seriesOf(before[i])
		}
		typ := strings.ToLower(mf.GetType().String())
		if h := mf.GetMetric()[0].GetHistogram(); h != nil {
			var bounds []string
			for _, b := range h.GetBucket() {
				bounds = append(bounds, fmt.Sprint(b.GetUpperBound()))
			}
			typ += "[" + strings.Join(bounds, " ") + "]"
		}
		lines = append(lines, fmt.Sprintf("%s %s {%s} %s %q", name, typ, strings.Join(labelNames(mf), ","), presence, mf.GetHelp()))
	}
	if goFamilies == 0 || processFamilies == 0 {
		t.Errorf("the Go and process collectors are missing: %d go_ and %d process_ families", goFamilies, processFamilies)
	}
	got := strings.Join(lines, "\n") + "\n"

	golden := filepath.Join("testdata", "metrics.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("exposed metrics differ from %s (see the test's comment to regenerate it):\ngot:\n%s\nwant:\n%s", golden, got, want)
	}

	readme := readmeMetrics(t)
	exposed := map[string]string{}
	for _, mf := range after {
		if strings.HasPrefix(mf.GetName(), "wharf_") {
			exposed[mf.GetName()] = strings.Join(labelNames(mf), ",")
		}
	}
	for name, labels := range readme {
		if got, ok := exposed[name]; !ok {
			t.Errorf("README lists %s, which is not exposed", name)
		} else if got != labels {
			t.Errorf("README gives %s the labels {%s}; it has {%s}", name, labels, got)
		}
	}
	for name := range exposed {
		if _, ok := readme[name]; !ok {
			t.Errorf("%s is exposed but not in README's metrics table", name)
		}
	}
}

// gatherFamilies gathers the agent's registry.
func gatherFamilies(t *testing.T, a *Agent) []*dto.MetricFamily {
	t.Helper()
	mfs, err := a.metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

// touchVecs makes a child in each of the agent's vecs, so that every family
// shows in a gather.
func touchVecs(a *Agent) {
	m := a.metrics
	for _, v := range []*prometheus.CounterVec{m.Source.EntriesRead, m.Source.BytesRead, m.Source.LinesTruncated, m.Pipeline.EntriesSent, m.Pipeline.BytesSent, m.Pipeline.PushRetries, m.Spill.EntriesWritten, m.Spill.EntriesReplayed, m.Docker.Events, m.Docker.ProtocolErrors, m.Source.ReaderReconnects} {
		v.WithLabelValues("touched")
	}
	for _, v := range []*prometheus.CounterVec{m.Pipeline.EntriesDropped, m.Pipeline.DeadLettered, m.Pipeline.SinkProbes, m.Loki.Requests, m.Source.Errors} {
		v.WithLabelValues("touched", "touched")
	}
	m.Loki.Duration.WithLabelValues("touched")
	m.Pipeline.SinkUp.WithLabelValues("touched")
	m.Docker.ContainersWatched.WithLabelValues("touched")
}

// labelNames returns the sorted label names of a family's series.
func labelNames(mf *dto.MetricFamily) []string {
	var names []string
	for _, m := range mf.GetMetric() {
		for _, l := range m.GetLabel() {
			if !slices.Contains(names, l.GetName()) {
				names = append(names, l.GetName())
			}
		}
	}
	slices.Sort(names)
	return names
}

// seriesOf returns the label pairs of a family's series, e.g.
// [{sink=file} {sink=loki}].
func seriesOf(mf *dto.MetricFamily) string {
	var series []string
	for _, m := range mf.GetMetric() {
		var pairs []string
		for _, l := range m.GetLabel() {
			pairs = append(pairs, l.GetName()+"="+l.GetValue())
		}
		series = append(series, "{"+strings.Join(pairs, ",")+"}")
	}
	return "[" + strings.Join(series, " ") + "]"
}

// readmeRow is a row of README's metrics table: | `name` | `label`, ... | help |.
var readmeRow = regexp.MustCompile("^\\| `(wharf_[a-z_]+)` \\|([^|]*)\\|")

// readmeMetrics returns the label names (sorted, comma-separated) of each
// metric in README's table.
func readmeMetrics(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := readmeRow.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		var labels []string
		for l := range strings.SplitSeq(m[2], ",") {
			if l = strings.Trim(strings.TrimSpace(l), "`"); l != "" {
				labels = append(labels, l)
			}
		}
		slices.Sort(labels)
		out[m[1]] = strings.Join(labels, ",")
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatal("no metrics table found in README.md")
	}
	return out
}
