package lokitest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wharf-logs/wharf/internal/entry"
	"github.com/wharf-logs/wharf/internal/loki"
	"github.com/wharf-logs/wharf/internal/lokitest"
	"github.com/wharf-logs/wharf/internal/sink"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var now = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func clock() time.Time { return now }

func newServer(t *testing.T, opts lokitest.Options) *lokitest.Server {
	t.Helper()
	s := lokitest.New(opts)
	t.Cleanup(s.Close)
	return s
}

func newClient(t testing.TB, url string, mutate func(*loki.Config)) *loki.Client {
	t.Helper()
	cfg := loki.Config{URL: url, Timeout: 5 * time.Second, Parallelism: 2, StructuredMetadata: true}
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := loki.New(cfg, loki.Deps{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

var (
	web = entry.NewStream(entry.Labels{{Name: "app", Value: "web"}}, entry.Labels{{Name: "container_id", Value: "c1"}}, "web")
	db  = entry.NewStream(entry.Labels{{Name: "app", Value: "db"}}, nil, "db")
)

type line struct {
	s    *entry.Stream
	t    time.Time
	line string
}

func batch(lines ...line) *entry.Batch {
	b := &entry.Batch{}
	for _, l := range lines {
		b.Add(entry.Entry{Time: l.t.UnixNano(), Line: []byte(l.line), Stream: l.s})
	}
	return b
}

func TestAcceptsAndRecords(t *testing.T) {
	for _, tc := range []struct {
		format loki.Format
		gzip   bool
	}{{loki.FormatProtobuf, false}, {loki.FormatJSON, false}, {loki.FormatJSON, true}} {
		t.Run(fmt.Sprint(tc.format, tc.gzip), func(t *testing.T) {
			srv := newServer(t, lokitest.Defaults())
			c := newClient(t, srv.URL(), func(c *loki.Config) {
				c.Format, c.Gzip, c.TenantID = tc.format, tc.gzip, "t1"
			})
			ts := time.Now()
			b := batch(line{web, ts, "one"}, line{web, ts.Add(time.Millisecond), "two"}, line{db, ts, "three"})
			if err := c.Send(t.Context(), b); err != nil {
				t.Fatal(err)
			}
			want := []lokitest.Entry{
				{Tenant: "t1", Labels: `{app="web"}`, Time: ts.UnixNano(), Line: "one", Metadata: web.Metadata},
				{Tenant: "t1", Labels: `{app="web"}`, Time: ts.Add(time.Millisecond).UnixNano(), Line: "two", Metadata: web.Metadata},
				{Tenant: "t1", Labels: `{app="db"}`, Time: ts.UnixNano(), Line: "three"},
			}
			if got := srv.Entries(); !reflect.DeepEqual(got, want) {
				t.Fatalf("entries %+v\nwant %+v", got, want)
			}
			if got := srv.Lines(`{app="web"}`); !reflect.DeepEqual(got, []string{"one", "two"}) {
				t.Fatalf("Lines = %q", got)
			}
			counts := srv.Counts()
			if counts.Requests != 1 || counts.Entries != 3 || counts.Bytes != int64(len("onetwothree")) || counts.Statuses[204] != 1 {
				t.Fatalf("counts %+v", counts)
			}
			reqs := srv.Requests()
			if len(reqs) != 1 || reqs[0].Status != 204 || reqs[0].Header.Get("X-Scope-OrgID") != "t1" || reqs[0].Accepted != 3 || reqs[0].BodyBytes == 0 {
				t.Fatalf("requests %+v", reqs)
			}
		})
	}
}

// TestPartialSuccess checks the server ingests the valid entries, answers
// 400 in Loki's words, and that the client reads the counts back.
func TestPartialSuccess(t *testing.T) {
	opts := lokitest.Defaults()
	opts.Now = clock
	opts.MaxLineBytes = 10
	srv := newServer(t, opts)
	c := newClient(t, srv.URL(), nil)
	b := batch(
		line{web, now, "ok 1"},
		line{web, now.Add(-8 * 24 * time.Hour), "too old"},
		line{web, now.Add(time.Hour), "too new"},
		line{web, now.Add(time.Hour + time.Second), "too new 2"},
		line{db, now, "this line is too long"},
		line{db, now.Add(time.Second), "ok 2"},
	)
	err := c.Send(t.Context(), b)
	var rej *sink.RejectedError
	if !errors.As(err, &rej) {
		t.Fatalf("error %v, want a rejection", err)
	}
	wantCounts := map[string]int{"too_old": 1, "too_new": 2, "line_too_long": 1}
	if rej.Reason != "too_new" || !reflect.DeepEqual(rej.Rejected, wantCounts) {
		t.Fatalf("reason %q counts %v, want too_new %v", rej.Reason, rej.Rejected, wantCounts)
	}
	if got := srv.Counts().Rejected; !reflect.DeepEqual(got, wantCounts) {
		t.Fatalf("server counted %v", got)
	}
	var lines []string
	for _, e := range srv.Entries() {
		lines = append(lines, e.Line)
	}
	if !reflect.DeepEqual(lines, []string{"ok 1", "ok 2"}) {
		t.Fatalf("stored %q, want the two valid lines", lines)
	}
	body := srv.Requests()[0].ResponseBody
	for _, want := range []string{
		"1 errors like: entry for stream '{app=\"web\"}' has timestamp too old: 2025-05-24T12:00:00Z, oldest acceptable timestamp is: 2025-05-25T12:00:00Z",
		"has timestamp too new: 2025-06-01T13:00:00Z",
		"Max entry size '10' bytes exceeded for stream '{app=\"db\"}' while adding an entry with length '21' bytes",
		"\ntotal ignored: 4 out of 6",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("body %q lacks %q", body, want)
		}
	}
}

func TestTooFarBehind(t *testing.T) {
	opts := lokitest.Defaults()
	opts.Now = clock
	srv := newServer(t, opts)
	c := newClient(t, srv.URL(), nil)
	if err := c.Send(t.Context(), batch(line{web, now, "newest"})); err != nil {
		t.Fatal(err)
	}
	// Within an hour of the newest entry is fine, out of order or not; more
	// is too far behind. Another stream is not affected.
	err := c.Send(t.Context(), batch(line{web, now.Add(-30 * time.Minute), "late"}, line{web, now.Add(-2 * time.Hour), "too late"}, line{db, now.Add(-2 * time.Hour), "other stream"}))
	var rej *sink.RejectedError
	if !errors.As(err, &rej) || rej.Reason != "too_far_behind" || rej.Rejected["too_far_behind"] != 1 {
		t.Fatalf("error %v, want one too_far_behind", err)
	}
	if got := len(srv.Entries()); got != 3 {
		t.Fatalf("%d entries stored, want 3", got)
	}
}

func TestInvalidLabels(t *testing.T) {
	srv := newServer(t, lokitest.Options{})
	for _, tc := range []struct{ labels, want string }{
		{`{app="web"`, "error parsing labels"},
		{`{}`, "at least one label pair"},
	} {
		body := `{"streams":[{"stream":{},"values":[["1","x"]]}]}`
		ctype := "application/json"
		if tc.labels != `{}` {
			// A protobuf body carries the selector verbatim; hand-build one.
			s := &entry.Stream{Key: tc.labels}
			b := &entry.Batch{}
			b.Add(entry.Entry{Time: 1, Line: []byte("x"), Stream: s})
			enc, _ := loki.NewEncoder(loki.FormatProtobuf, false)
			p := enc.Encode(b)
			body, ctype = string(p.Body), p.ContentType
		}
		resp, err := http.Post(srv.URL(), ctype, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		text, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || !strings.Contains(string(text), tc.want) {
			t.Errorf("%s: %d %q, want 400 mentioning %q", tc.labels, resp.StatusCode, text, tc.want)
		}
	}
	if got := srv.Counts().Rejected["invalid_labels"]; got != 2 {
		t.Fatalf("invalid_labels counted %d, want 2", got)
	}
}

func TestRequireTenant(t *testing.T) {
	srv := newServer(t, lokitest.Options{RequireTenant: true})
	err := newClient(t, srv.URL(), nil).Send(t.Context(), batch(line{web, now, "x"}))
	var mis *sink.MisconfiguredError
	if !errors.As(err, &mis) || mis.Status != http.StatusUnauthorized || !strings.Contains(err.Error(), "no org id") {
		t.Fatalf("error %v, want a 401 saying no org id", err)
	}
	if err := newClient(t, srv.URL(), func(c *loki.Config) { c.TenantID = "t" }).Send(t.Context(), batch(line{web, now, "x"})); err != nil {
		t.Fatal(err)
	}
	if e := srv.Entries(); len(e) != 1 || e[0].Tenant != "t" {
		t.Fatalf("entries %+v", e)
	}
}

func TestDeduplicates(t *testing.T) {
	for _, keep := range []bool{false, true} {
		srv := newServer(t, lokitest.Options{KeepDuplicates: keep})
		c := newClient(t, srv.URL(), nil)
		b := batch(line{web, now, "a"}, line{web, now, "b"})
		for range 2 {
			if err := c.Send(t.Context(), b); err != nil {
				t.Fatal(err)
			}
		}
		// A same-time entry with another line is no duplicate.
		if err := c.Send(t.Context(), batch(line{web, now, "c"})); err != nil {
			t.Fatal(err)
		}
		wantEntries, wantDups := 3, 2
		if keep {
			wantEntries, wantDups = 5, 0
		}
		if n, c := len(srv.Entries()), srv.Counts(); n != wantEntries || c.Entries != wantEntries || c.Duplicates != wantDups {
			t.Fatalf("keep=%v: %d entries, counts %+v; want %d entries, %d duplicates", keep, n, c, wantEntries, wantDups)
		}
	}
}

func TestCountOnly(t *testing.T) {
	srv := newServer(t, lokitest.Options{CountOnly: true})
	c := newClient(t, srv.URL(), nil)
	for range 3 {
		if err := c.Send(t.Context(), batch(line{web, now, "abc"}, line{db, now, "de"})); err != nil {
			t.Fatal(err)
		}
	}
	if c := srv.Counts(); c.Entries != 6 || c.Bytes != 15 || len(srv.Entries()) != 0 {
		t.Fatalf("counts %+v, %d entries stored", c, len(srv.Entries()))
	}
	srv.Reset()
	if c := srv.Counts(); c.Entries != 0 || c.Requests != 0 || len(srv.Requests()) != 0 {
		t.Fatalf("after Reset: %+v", c)
	}
}

func TestOnEntry(t *testing.T) {
	for _, countOnly := range []bool{true, false} {
		t.Run(fmt.Sprint("CountOnly=", countOnly), func(t *testing.T) {
			var mu sync.Mutex
			var got []string
			srv := newServer(t, lokitest.Options{CountOnly: countOnly, MaxLineBytes: 3, OnEntry: func(e lokitest.Entry) {
				mu.Lock()
				defer mu.Unlock()
				got = append(got, e.Labels+" "+e.Line)
			}})
			c := newClient(t, srv.URL(), nil)
			for range 2 {
				// "long" is refused (partial success), so OnEntry never sees it;
				// the second push repeats the first.
				_ = c.Send(t.Context(), batch(line{web, now, "abc"}, line{db, now, "de"}, line{db, now.Add(time.Second), "long"}))
			}
			want := []string{`{app="web"} abc`, `{app="db"} de`}
			if countOnly {
				// No duplicate detection: the repeat is accepted and seen again.
				want = append(want, want...)
			}
			mu.Lock()
			defer mu.Unlock()
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("OnEntry saw %q, want %q", got, want)
			}
			if c := srv.Counts(); c.Entries != len(want) {
				t.Fatalf("Counts.Entries %d, OnEntry calls %d", c.Entries, len(want))
			}
			if n := len(srv.Entries()); countOnly && n != 0 || !countOnly && n != len(want) {
				t.Fatalf("%d entries stored", n)
			}
		})
	}
}

func TestBadRequests(t *testing.T) {
	srv := newServer(t, lokitest.Options{})
	for _, tc := range []struct {
		method, path, ctype, body string
		status                    int
	}{
		{"POST", lokitest.PushPath, "application/x-protobuf", "not snappy", 400},
		{"POST", lokitest.PushPath, "application/json", "{", 400},
		{"POST", lokitest.PushPath, "text/plain", "{}", 400},
		{"GET", lokitest.PushPath, "", "", 405},
		{"POST", "/other", "application/json", "{}", 404},
	} {
		req, _ := http.NewRequest(tc.method, "http://"+srv.Addr()+tc.path, strings.NewReader(tc.body))
		req.Header.Set("Content-Type", tc.ctype)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s %s %q: status %d, want %d", tc.method, tc.path, tc.body, resp.StatusCode, tc.status)
		}
	}
	http.DefaultClient.CloseIdleConnections()
}

func TestFaults(t *testing.T) {
	b := batch(line{web, now, "x"})
	type want struct {
		retry bool
		after time.Duration
		text  string
	}
	for _, tc := range []struct {
		name  string
		fault lokitest.Fault
		want  want
	}{
		{"500", lokitest.Fault{Status: 500}, want{retry: true, text: "status 500: lokitest: injected 500"}},
		{"503 with body", lokitest.Fault{Status: 503, Body: "ingesters unavailable"}, want{retry: true, text: "ingesters unavailable"}},
		{"429", lokitest.Fault{Status: 429}, want{retry: true, text: "Ingestion rate limit exceeded"}},
		{"429 retry-after", lokitest.Fault{Status: 429, RetryAfter: "3"}, want{retry: true, after: 3 * time.Second}},
		{"html", lokitest.Fault{HTML: true}, want{retry: true, text: "status 502: html page: 502 Bad Gateway"}},
		{"html 404", lokitest.Fault{HTML: true, Status: 404}, want{text: "html page: 404 Not Found"}},
		{"huge body", lokitest.Fault{BodyBytes: 10 << 20}, want{retry: true, text: "xxx..."}},
		{"reset", lokitest.Fault{Reset: true}, want{retry: true, text: "connection reset"}},
		{"401", lokitest.Fault{Status: 401}, want{text: "status 401"}},
		{"redirect", lokitest.Fault{Status: 302, Header: http.Header{"Location": {"https://loki.example/push"}}}, want{text: "redirected to https://loki.example/push"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, lokitest.Options{})
			c := newClient(t, srv.URL(), nil)
			srv.Inject(tc.fault, 1)
			err := c.Send(t.Context(), b)
			if err == nil {
				t.Fatal("no error")
			}
			retry, after := sink.IsRetryable(err)
			if retry != tc.want.retry || after != tc.want.after || !strings.Contains(err.Error(), tc.want.text) {
				t.Fatalf("error %q retry %v after %v; want %v %v %q", err, retry, after, tc.want.retry, tc.want.after, tc.want.text)
			}
			if len(srv.Entries()) != 0 {
				t.Fatal("a failed request was ingested")
			}
			// The fault was for one request only.
			if err := c.Send(t.Context(), b); err != nil {
				t.Fatalf("after the fault: %v", err)
			}
			if n := len(srv.Entries()); n != 1 {
				t.Fatalf("%d entries after recovery", n)
			}
		})
	}
}

func TestFailNextAndFailAll(t *testing.T) {
	srv := newServer(t, lokitest.Options{})
	c := newClient(t, srv.URL(), nil)
	b := batch(line{web, now, "x"})
	srv.FailNext(2, 500)
	srv.FailNext(1, 429) // queued after the first fault
	var got []string
	for range 4 {
		err := c.Send(t.Context(), b)
		var herr *loki.HTTPError
		if errors.As(err, &herr) {
			got = append(got, fmt.Sprint(herr.StatusCode))
		} else {
			got = append(got, fmt.Sprint(err))
		}
	}
	if want := []string{"500", "500", "429", "<nil>"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("answers %v, want %v", got, want)
	}
	srv.FailAll(503)
	for range 3 {
		if retry, _ := sink.IsRetryable(c.Send(t.Context(), b)); !retry {
			t.Fatal("FailAll did not fail every request")
		}
	}
	srv.ClearFaults()
	if err := c.Send(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	if s := srv.Counts().Statuses; s[500] != 2 || s[429] != 1 || s[503] != 3 || s[204] != 2 {
		t.Fatalf("statuses %v", s)
	}
}

func TestDelayThenIngest(t *testing.T) {
	srv := newServer(t, lokitest.Options{})
	c := newClient(t, srv.URL(), nil)
	srv.Inject(lokitest.Fault{Delay: 20 * time.Millisecond}, 1)
	if err := c.Send(t.Context(), batch(line{web, now, "x"})); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.Entries()); n != 1 {
		t.Fatalf("%d entries, want the delayed one", n)
	}
}

func TestHangUntilTimeoutOrRelease(t *testing.T) {
	srv := newServer(t, lokitest.Options{})
	b := batch(line{web, now, "x"})

	// The client gives up: a retryable timeout, nothing ingested.
	srv.Inject(lokitest.Fault{Hang: true}, 1)
	short := newClient(t, srv.URL(), func(c *loki.Config) { c.Timeout = 50 * time.Millisecond })
	err := short.Send(t.Context(), b)
	if retry, _ := sink.IsRetryable(err); !retry || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("error %v, want a retryable timeout", err)
	}

	// The server notices the client left and lets go of the request.
	waitFor(t, func() bool { return srv.Held() == 0 })

	// Release lets a hanging request through, which is then ingested.
	srv.Inject(lokitest.Fault{Hang: true}, 1)
	c := newClient(t, srv.URL(), nil)
	done := make(chan error, 1)
	go func() { done <- c.Send(context.Background(), b) }()
	waitFor(t, func() bool { return srv.Held() == 1 })
	srv.Release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := len(srv.Entries()); n != 1 {
		t.Fatalf("%d entries, want 1", n)
	}
}

// waitFor polls cond; the deadline only bounds a broken test.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestStopStartSameAddress(t *testing.T) {
	srv := newServer(t, lokitest.Options{})
	c := newClient(t, srv.URL(), nil)
	b := batch(line{web, now, "x"})
	if err := c.Send(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	addr := srv.Addr()
	srv.Stop()
	srv.Stop() // idempotent
	// The first attempt may find the kept-alive connection closed; a
	// fresh one is refused.
	for i := range 2 {
		err := c.Send(t.Context(), b)
		if retry, _ := sink.IsRetryable(err); !retry {
			t.Fatalf("error %v while stopped, want retryable", err)
		}
		if i == 1 && !strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("error %v while stopped, want connection refused", err)
		}
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	if srv.Addr() != addr {
		t.Fatalf("address changed from %s to %s", addr, srv.Addr())
	}
	if err := c.Send(t.Context(), batch(line{web, now, "y"})); err != nil {
		t.Fatalf("after Start: %v", err)
	}
	if got := srv.Lines(`{app="web"}`); !reflect.DeepEqual(got, []string{"x", "y"}) {
		t.Fatalf("lines %q", got)
	}
}

func TestStopWakesHangingRequests(t *testing.T) {
	srv := newServer(t, lokitest.Options{})
	srv.Inject(lokitest.Fault{Hang: true}, -1)
	c := newClient(t, srv.URL(), func(c *loki.Config) { c.Timeout = time.Minute })
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for range 3 {
		wg.Go(func() { errs <- c.Send(context.Background(), batch(line{web, now, "x"})) })
	}
	waitFor(t, func() bool { return srv.Held() == 3 })
	srv.Stop() // must return although the requests hang
	wg.Wait()
	close(errs)
	for err := range errs {
		if retry, _ := sink.IsRetryable(err); !retry {
			t.Fatalf("error %v, want retryable", err)
		}
	}
}

func TestConcurrentClients(t *testing.T) {
	srv := newServer(t, lokitest.Defaults())
	const workers, sends = 4, 25
	var wg sync.WaitGroup
	for w := range workers {
		c := newClient(t, srv.URL(), func(c *loki.Config) { c.Parallelism = 2 })
		s := entry.NewStream(entry.Labels{{Name: "worker", Value: fmt.Sprint(w)}}, nil, "")
		wg.Go(func() {
			for i := range sends {
				if err := c.Send(t.Context(), batch(line{s, time.Now(), fmt.Sprint(i)})); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if c := srv.Counts(); c.Entries != workers*sends || c.Requests != workers*sends {
		t.Fatalf("counts %+v", c)
	}
	for w := range workers {
		var want []string
		for i := range sends {
			want = append(want, fmt.Sprint(i))
		}
		if got := srv.Lines(fmt.Sprintf(`{worker="%d"}`, w)); !reflect.DeepEqual(got, want) {
			t.Fatalf("worker %d lines %q", w, got)
		}
	}
}

func TestBodyTooLarge(t *testing.T) {
	srv := newServer(t, lokitest.Options{})
	resp, err := http.Post(srv.URL(), "application/json", bytes.NewReader(make([]byte, lokitest.MaxDecodedBytes+1)))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	http.DefaultClient.CloseIdleConnections()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413", resp.StatusCode)
	}
}

// TestCutConnections checks the faults that break a connection in the
// middle of the request or of the answer, as the client sees them.
func TestCutConnections(t *testing.T) {
	b := batch(line{web, now, "x"})
	for _, tc := range []struct {
		name     string
		fault    lokitest.Fault
		ingested int  // entries stored by the faulty request
		ok       bool // the client sees success
		status   int  // recorded status of the faulty request
	}{
		{"in request body", lokitest.Fault{ResetInBody: true}, 0, false, 0},
		{"in headers after ingesting", lokitest.Fault{ResetInHeaders: true}, 1, false, 0},
		{"in body of a 500", lokitest.Fault{ResetInAnswer: true, Status: 500}, 0, false, 500},
		{"in body of a 10 MiB 500", lokitest.Fault{ResetInAnswer: true, BodyBytes: 10 << 20}, 0, false, 500},
		{"in body of a success", lokitest.Fault{ResetInAnswer: true}, 1, true, 204},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, lokitest.Options{})
			c := newClient(t, srv.URL(), nil)
			srv.Inject(tc.fault, 1)
			err := c.Send(t.Context(), b)
			if tc.ok != (err == nil) {
				t.Fatalf("Send: %v", err)
			}
			if err != nil {
				if retry, _ := sink.IsRetryable(err); !retry {
					t.Fatalf("error %v is not retryable", err)
				}
			}
			if n := len(srv.Entries()); n != tc.ingested {
				t.Fatalf("%d entries stored, want %d", n, tc.ingested)
			}
			reqs := srv.Requests()
			if len(reqs) != 1 || reqs[0].Status != tc.status || !reqs[0].Fault {
				t.Fatalf("requests %+v, want one with status %d", reqs, tc.status)
			}
			// The next request is answered normally; a copy of an entry
			// already stored is dropped as a duplicate.
			if err := c.Send(t.Context(), b); err != nil {
				t.Fatalf("after the fault: %v", err)
			}
			if n := len(srv.Entries()); n != 1 {
				t.Fatalf("%d entries after recovery, want 1", n)
			}
			if d := srv.Counts().Duplicates; d != tc.ingested {
				t.Fatalf("%d duplicates, want %d", d, tc.ingested)
			}
		})
	}
}

// TestResetInBodyOfALargePush cuts a push of several megabytes, which the
// client is still writing when the connection is reset.
func TestResetInBodyOfALargePush(t *testing.T) {
	srv := newServer(t, lokitest.Options{})
	c := newClient(t, srv.URL(), func(c *loki.Config) { c.Format = loki.FormatJSON })
	var lines []line
	for i := range 4000 {
		lines = append(lines, line{web, now.Add(time.Duration(i)), fmt.Sprintf("%04d %s", i, strings.Repeat("y", 1000))})
	}
	b := batch(lines...)
	srv.Inject(lokitest.Fault{ResetInBody: true}, 1)
	err := c.Send(t.Context(), b)
	if retry, _ := sink.IsRetryable(err); !retry {
		t.Fatalf("error %v, want retryable", err)
	}
	if r := srv.Requests(); len(r) != 1 || r[0].BodyBytes == 0 || r[0].BodyBytes > 3<<20 {
		t.Fatalf("requests %+v: want one cut after about half of a 4 MB body", r)
	}
	if err := c.Send(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.Entries()); n != 4000 {
		t.Fatalf("%d entries, want 4000", n)
	}
}

func TestSuccessBody(t *testing.T) {
	srv := newServer(t, lokitest.Options{})
	c := newClient(t, srv.URL(), nil)
	srv.Inject(lokitest.Fault{SuccessBody: "\x00\xffnot json {{{"}, 1)
	if err := c.Send(t.Context(), batch(line{web, now, "x"})); err != nil {
		t.Fatalf("a 200 with any body is a success: %v", err)
	}
	r := srv.Requests()
	if len(r) != 1 || r[0].Status != 200 || r[0].ResponseBody != "\x00\xffnot json {{{" || len(srv.Entries()) != 1 {
		t.Fatalf("requests %+v, %d entries", r, len(srv.Entries()))
	}
}

// TestLargeBodyIsStreamed: a 10 MiB answer is written from a small buffer.
func TestLargeBodyIsStreamed(t *testing.T) {
	srv := newServer(t, lokitest.Options{})
	srv.Inject(lokitest.Fault{BodyBytes: 10 << 20}, 1)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	resp, err := http.Post(srv.URL(), "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	runtime.ReadMemStats(&after)
	http.DefaultClient.CloseIdleConnections()
	if resp.StatusCode != 500 || n != 10<<20 || resp.ContentLength != 10<<20 {
		t.Fatalf("status %d, %d bytes (Content-Length %d)", resp.StatusCode, n, resp.ContentLength)
	}
	if a := after.TotalAlloc - before.TotalAlloc; a > 2<<20 {
		t.Errorf("%d bytes allocated for a 10 MiB answer", a)
	}
}

// TestMaxBodyBytes: a push over the body limit is answered 413 like a
// proxy's, nothing of it stored, and leaves the injected faults to the
// pushes that get through.
func TestMaxBodyBytes(t *testing.T) {
	srv := newServer(t, lokitest.Options{MaxBodyBytes: 1000})
	c := newClient(t, srv.URL(), func(c *loki.Config) { c.Format = loki.FormatJSON })
	srv.FailNext(1, http.StatusServiceUnavailable)
	big := batch(line{web, now, strings.Repeat("x", 2000)})
	var herr *loki.HTTPError
	if err := c.Send(t.Context(), big); !errors.As(err, &herr) || herr.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(err.Error(), "413 Request Entity Too Large") {
		t.Fatalf("push over the limit: %v, want a 413 like nginx's", err)
	}
	if err := c.Send(t.Context(), batch(line{web, now, "small"})); !errors.As(err, &herr) || herr.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("push under the limit: %v, want the injected 503", err)
	}
	if err := c.Send(t.Context(), batch(line{web, now, "small"})); err != nil {
		t.Fatal(err)
	}
	if got := srv.Lines(web.Key); len(got) != 1 || got[0] != "small" {
		t.Fatalf("stored %q, want only the small line", got)
	}
	if st := srv.Counts().Statuses; st[413] != 1 || st[503] != 1 || st[204] != 1 {
		t.Fatalf("statuses %v", st)
	}
}
