package loki_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestErrorsHideTheQueryValuesOfTheURL: some receivers take a key or a
// tenant in the push URL's query. The request carries it unchanged, but
// the errors Send returns, which wharf logs and writes into dead letters,
// show each query value as xxxxx, whatever the answer: a status to retry,
// a refusal, a redirect back to the same query, no answer at all.
func TestErrorsHideTheQueryValuesOfTheURL(t *testing.T) {
	const secret = "s3cret-query"
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL.RawQuery)
		mu.Unlock()
		switch len(seen) {
		case 1:
			w.WriteHeader(http.StatusInternalServerError)
		case 2:
			http.Error(w, "entry for stream '{x=\"y\"}' has timestamp too old", http.StatusBadRequest)
		default:
			w.Header().Set("Location", "http://elsewhere/loki/api/v1/push?api_key="+secret)
			w.WriteHeader(http.StatusFound)
		}
	}))
	defer srv.Close()
	query := "?api_key=" + secret + "&tenant=" + secret + "&flag"
	c := newClient(t, testConfig(srv.URL+"/loki/api/v1/push"+query), quietDeps())
	for _, answer := range []string{"500", "400", "302"} {
		err := c.Send(t.Context(), smallBatch())
		if err == nil {
			t.Fatalf("%s: no error", answer)
		}
		if msg := err.Error(); strings.Contains(msg, secret) || !strings.Contains(msg, "/loki/api/v1/push?api_key=xxxxx&tenant=xxxxx&flag") {
			t.Errorf("%s: the error shows a query value, or not the URL with its values hidden: %s", answer, msg)
		}
	}
	mu.Lock()
	for _, q := range seen {
		if q != query[1:] {
			t.Errorf("the request's query was %q, want %q", q, query[1:])
		}
	}
	mu.Unlock()

	// No answer: nothing listens there any more.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c = newClient(t, testConfig("http://"+addr+"/loki/api/v1/push"+query), quietDeps())
	err = c.Send(t.Context(), smallBatch())
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Errorf("connection refused: %v", err)
	}
}
