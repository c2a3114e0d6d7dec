package agent

import (
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestURLQueryValuesStayOutOfLogsAndDeadLetters: a key in loki.url's query
// reaches the receiver, but not wharf's log (at debug level), where failed
// pushes are reported, nor the dead-letter file, whose records carry the
// push's error.
func TestURLQueryValuesStayOutOfLogsAndDeadLetters(t *testing.T) {
	const secret = "s3cret-query"
	srv, data, logPath := fileAgentDirs(t)
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := New(fileAgentConfig(data, logPath, srv.URL()+"?api_key="+secret), Deps{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	runAgent(t, a)

	srv.FailNext(1, http.StatusInternalServerError)
	appendLines(t, logPath, "retried 0")
	waitFor(t, func() string { return "the retried line was not delivered" }, func() bool { return len(received(srv, "retried")) == 1 })
	srv.FailNext(1, http.StatusBadRequest)
	appendLines(t, logPath, "refused 0")
	written := a.metrics.Pipeline.DeadLettered.WithLabelValues("loki", "invalid")
	waitFor(t, func() string { return "the refused line was not dead-lettered" }, func() bool { return testutil.ToFloat64(written) == 1 })

	dead, err := os.ReadFile(filepath.Join(data, "dead-letter", "loki.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	for what, text := range map[string]string{"the log": logs.String(), "the dead letter": string(dead)} {
		if strings.Contains(text, secret) {
			t.Errorf("%s shows the URL's query value:\n%s", what, text)
		}
		if !strings.Contains(text, "api_key=xxxxx") {
			t.Errorf("%s does not name the URL with its query value hidden:\n%s", what, text)
		}
	}
}
