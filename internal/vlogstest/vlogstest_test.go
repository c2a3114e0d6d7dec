package vlogstest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// push sends one Loki JSON push request and returns the status code.
func push(t *testing.T, vl *VL, orgID string, body any) int {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, vl.PushURL(), bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if orgID != "" {
		req.Header.Set("X-Scope-OrgID", orgID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	http.DefaultClient.CloseIdleConnections()
	return resp.StatusCode
}

func TestPushQuery(t *testing.T) {
	vl := Start(t)
	// Nanosecond timestamps a second apart, one with trailing zeros that
	// VictoriaLogs trims from the fraction.
	t1 := time.Now().Add(-time.Minute).Truncate(time.Second).Add(123456789)
	t2 := t1.Add(time.Second).Add(-123456789).Add(120 * time.Millisecond)
	body := map[string]any{"streams": []any{map[string]any{
		"stream": map[string]string{"container": "web", "stream": "stdout"},
		"values": [][]any{
			{strconv.FormatInt(t1.UnixNano(), 10), `first {"a":1}`, map[string]string{"container_id": "abc123", "trace": "t-1"}},
			{strconv.FormatInt(t2.UnixNano(), 10), "second", map[string]string{"container_id": "abc123"}},
		},
	}}}
	if code := push(t, vl, "", body); code != http.StatusNoContent {
		t.Fatalf("push: status %d", code)
	}
	if n := vl.WaitCount(t, `_stream:{container="web"}`, 2, 10*time.Second); n != 2 {
		t.Fatalf("count %d", n)
	}

	rows := vl.StreamRows(t, `{container="web",stream="stdout"}`)
	if len(rows) != 2 {
		t.Fatalf("%d rows: %v", len(rows), rows)
	}
	for i, want := range []struct {
		msg  string
		time time.Time
		meta map[string]string
	}{
		{`first {"a":1}`, t1, map[string]string{"container_id": "abc123", "trace": "t-1"}},
		{"second", t2, map[string]string{"container_id": "abc123"}},
	} {
		r := rows[i]
		if r["_msg"] != want.msg {
			t.Errorf("row %d: _msg %q, want %q (JSON must stay unparsed)", i, r["_msg"], want.msg)
		}
		if r["container"] != "web" || r["stream"] != "stdout" {
			t.Errorf("row %d: labels %v", i, r)
		}
		if r["_stream"] != `{container="web",stream="stdout"}` {
			t.Errorf("row %d: _stream %q", i, r["_stream"])
		}
		if got := r["_time"]; got != want.time.UTC().Format(time.RFC3339Nano) {
			t.Errorf("row %d: _time %q, want %q", i, got, want.time.UTC().Format(time.RFC3339Nano))
		}
		if got, err := time.Parse(time.RFC3339Nano, r["_time"]); err != nil || !got.Equal(want.time) {
			t.Errorf("row %d: _time %q parses to %v (%v), want %v", i, r["_time"], got, err, want.time)
		}
		for k, v := range want.meta {
			if r[k] != v {
				t.Errorf("row %d: metadata %s=%q, want %q", i, k, r[k], v)
			}
		}
		if _, ok := r["trace"]; ok && i == 1 {
			t.Errorf("row 1 has the other row's metadata")
		}
	}

	if got := vl.Count(t, `_stream:{container="absent"}`); got != 0 {
		t.Errorf("count of absent stream %d", got)
	}
	if code := push(t, vl, "abc", body); code != http.StatusBadRequest {
		t.Errorf("push with X-Scope-OrgID abc: status %d, want 400", code)
	}
	if code := push(t, vl, "0", body); code != http.StatusNoContent {
		t.Errorf("push with X-Scope-OrgID 0: status %d", code)
	}
	// Duplicates are kept: the same two entries again make four rows.
	if n := vl.WaitCount(t, `_stream:{container="web"}`, 4, 10*time.Second); n != 4 {
		t.Errorf("count after duplicate push %d, want 4", n)
	}
}

func TestQueryError(t *testing.T) {
	vl := Start(t)
	if _, err := vl.QueryContext(t.Context(), `_stream:{bad=`); err == nil {
		t.Fatal("bad LogsQL did not fail")
	} else {
		t.Log(err)
	}
}

func TestStartProcessClose(t *testing.T) {
	dir := t.TempDir()
	vl, err := StartProcess(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := vl.Close(); err != nil {
		t.Fatal(err)
	}
	if err := vl.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := http.Get(vl.URL() + "/health"); err == nil {
		t.Fatal("server still answers after Close")
	}
	http.DefaultClient.CloseIdleConnections()
	if tail := vl.LogTail(5); !strings.Contains(tail, "has been stopped") {
		t.Fatalf("no clean shutdown in the output:\n%s", tail)
	}
}
