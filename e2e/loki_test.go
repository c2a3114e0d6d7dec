package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wharf-logs/wharf/internal/dockertest"
	"github.com/wharf-logs/wharf/internal/vlogstest"
)

// rowRecord turns a VictoriaLogs row into the file sink's record shape, so
// both are checked the same way.
func rowRecord(t *testing.T, row vlogstest.Row) record {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, row["_time"])
	if err != nil {
		t.Fatalf("row time %q: %v", row["_time"], err)
	}
	r := record{TS: tm.UnixNano(), Line: row["_msg"], Labels: map[string]string{}, Metadata: map[string]string{}}
	for _, k := range []string{"container", "host", "stream", "compose_project", "compose_service"} {
		if v, ok := row[k]; ok {
			r.Labels[k] = v
		}
	}
	for _, k := range []string{"container_id", "image"} {
		r.Metadata[k] = row[k]
	}
	r.Stream = r.Labels["stream"]
	return r
}

// TestShipToVictoriaLogs runs the container set against a real
// Loki-protocol store in both push formats and checks every line arrived
// exactly once with its labels, structured metadata and Docker's timestamp.
func TestShipToVictoriaLogs(t *testing.T) {
	dockertest.Require(t)
	img := dockertest.LoggenImage(t)
	for _, format := range []string{"protobuf", "json-gzip"} {
		t.Run(format, func(t *testing.T) {
			vl := vlogstest.Start(t)
			data := t.TempDir()
			lokiCfg := fmt.Sprintf("loki:\n  url: %s\n  batch_wait: 200ms\n", vl.PushURL())
			if format == "json-gzip" {
				lokiCfg += "  format: json\n  gzip: true\n"
			}
			binary(t)
			pre := dockertest.Run(t, dockertest.RunOptions{Image: img, Args: []string{"-rate", "50", "-exit-after", "8s"}})
			time.Sleep(1500 * time.Millisecond)
			w := startWharf(t, data, baseConfig(data, freePort(t))+lokiCfg)
			want, times := containerSet(t, img, pre)
			m := w.settled(t, "loki", 60*time.Second)
			w.stop()
			if m[`wharf_push_requests_total{sink="loki",status="204"}`] == 0 {
				t.Fatalf("no successful push counted: %v", pushMetrics(m))
			}
			for _, e := range want {
				t.Run(e.c.Name, func(t *testing.T) {
					var recs []record
					for _, row := range vl.StreamRows(t, `{container="`+e.c.Name+`"}`) {
						recs = append(recs, rowRecord(t, row))
					}
					checkDelivered(t, e, img, recs, times[e.c.Name])
				})
			}
		})
	}
}

func pushMetrics(m map[string]float64) []string {
	var out []string
	for k, v := range m {
		if strings.HasPrefix(k, "wharf_push") || strings.HasPrefix(k, "wharf_entries") {
			out = append(out, fmt.Sprintf("%s=%v", k, v))
		}
	}
	return out
}
