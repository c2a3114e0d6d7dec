package loki_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wharf-logs/wharf/internal/entry"
	"github.com/wharf-logs/wharf/internal/loki"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"-5", 0},
		{" 30 ", 30 * time.Second},
		{"99999999999999", loki.MaxRetryAfter},
		{"Sat, 01 Mar 2025 12:02:00 GMT", 2 * time.Minute},
		{"Saturday, 01-Mar-25 12:00:10 GMT", 10 * time.Second}, // RFC 850
		{"Sat Mar  1 12:00:05 2025", 5 * time.Second},          // asctime
		{"Sat, 01 Mar 2025 11:00:00 GMT", 0},                   // in the past
		{"Sun, 01 Mar 2099 11:00:00 GMT", loki.MaxRetryAfter},
		{"soon", 0},
		{"1.5", 0},
	} {
		if got := loki.RetryAfter(tc.in, now); got != tc.want {
			t.Errorf("retryAfter(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestParseRejection(t *testing.T) {
	web := entry.NewStream(labels("app", "web"), nil, "web")
	db := entry.NewStream(labels("app", "db", "env", "prod"), nil, "db")
	b := batchOf(line{web, 1, "a"}, line{web, 2, "b"}, line{web, 3, "c"}, line{db, 4, "d"})
	const (
		oldMsg  = `entry for stream '{app="web"}' has timestamp too old: 2020-01-01T00:00:00Z, oldest acceptable timestamp is: 2024-01-01T00:00:00Z`
		newMsg  = `entry for stream '{app="web"}' has timestamp too new: 2099-01-01T00:00:00Z`
		sizeMsg = `Max entry size '262144' bytes exceeded for stream '{app="db", env="prod"}' while adding an entry with length '300000' bytes`
	)
	for _, tc := range []struct {
		name   string
		body   string
		reason string
		counts map[string]int
	}{
		{"single distributor error", oldMsg + "\n", loki.ReasonTooOld, map[string]int{loki.ReasonTooOld: 1}},
		{"grouped distributor errors", "3 errors like: " + oldMsg + "; 5 errors like: " + newMsg + "; 1 errors like: " + sizeMsg,
			loki.ReasonTooNew, map[string]int{loki.ReasonTooOld: 3, loki.ReasonTooNew: 5, loki.ReasonLineTooLong: 1}},
		{"one message grouped", "4 errors like: " + sizeMsg, loki.ReasonLineTooLong, map[string]int{loki.ReasonLineTooLong: 4}},
		{"semicolons inside a message", `2 errors like: entry for stream '{app="a; 3 b"}' has timestamp too old: x; 1 errors like: ` + newMsg,
			loki.ReasonTooOld, map[string]int{loki.ReasonTooOld: 2, loki.ReasonTooNew: 1}},
		{"ingester lines with total",
			"entry with timestamp 2024-01-01 00:00:00 +0000 UTC ignored, reason: 'entry too far behind, entry timestamp is: 2024-01-01T00:00:00Z, oldest acceptable timestamp is: 2024-01-01T02:00:00Z',\n" +
				"entry with timestamp 2024-01-01 00:00:01 +0000 UTC ignored, reason: 'entry too far behind, entry timestamp is: 2024-01-01T00:00:01Z, oldest acceptable timestamp is: 2024-01-01T02:00:00Z',\n" +
				"user 'fake', total ignored: 25 out of 40 for stream: {app=\"web\"}",
			loki.ReasonTooFarBehind, map[string]int{loki.ReasonTooFarBehind: 25}},
		{"older ingester out of order",
			"entry with timestamp 1970-01-01 00:00:00 +0000 UTC ignored, reason: 'entry out of order' for stream: {foo=\"bar\"},\ntotal ignored: 1 out of 1",
			loki.ReasonTooFarBehind, map[string]int{loki.ReasonTooFarBehind: 1}},
		{"grouped with total", "2 errors like: " + oldMsg + "\ntotal ignored: 2 out of 4", loki.ReasonTooOld, map[string]int{loki.ReasonTooOld: 2}},
		{"bad labels counted per stream entries", `stream '{app="web"}' has label name too long: 'aaaa'`, loki.ReasonInvalidLabels, map[string]int{loki.ReasonInvalidLabels: 3}},
		{"labels parse error", `Error parsing labels '{app="db", env="prod"}' with error: 1:2: parse error`, loki.ReasonInvalidLabels, map[string]int{loki.ReasonInvalidLabels: 1}},
		{"missing labels", "error at least one label pair is required per stream", loki.ReasonInvalidLabels, map[string]int{loki.ReasonInvalidLabels: 1}},
		{"too many label names", `entry for stream '{app="web"}' has 16 label names; limit 15`, loki.ReasonInvalidLabels, map[string]int{loki.ReasonInvalidLabels: 3}},
		{"structured metadata not allowed", `stream '{app="web"}' includes structured metadata, but this feature is disallowed. Please see ` + "`limits_config.allow_structured_metadata`",
			loki.ReasonStructuredMetadata, map[string]int{loki.ReasonStructuredMetadata: 1}},
		{"rate limit", "Ingestion rate limit exceeded for user fake (limit: 4194304 bytes/sec)", loki.ReasonRateLimited, map[string]int{loki.ReasonRateLimited: 1}},
		{"body too large", "request body too large: 100 bytes, limit: 10 bytes", loki.ReasonTooLarge, map[string]int{loki.ReasonTooLarge: 1}},
		{"unknown text", "couldn't parse push request: proto: illegal wireType 7", loki.ReasonInvalid, nil},
		{"empty", "", loki.ReasonInvalid, nil},
		{"invalid utf8", "\xff\xfe garbage", loki.ReasonInvalid, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reason, counts := loki.ParseRejection([]byte(tc.body), b)
			if reason != tc.reason || !reflect.DeepEqual(counts, tc.counts) {
				t.Fatalf("got %q %v, want %q %v", reason, counts, tc.reason, tc.counts)
			}
		})
	}
}

func TestSnippet(t *testing.T) {
	for _, tc := range []struct {
		body, ctype, want string
	}{
		{"", "", ""},
		{"  line one\n\n  line two\t\r\n", "text/plain", "line one line two"},
		{"<html><head><TITLE> 503 Service Unavailable </TITLE></head><body>...</body></html>", "text/html", "html page: 503 Service Unavailable"},
		{"<html><body>no title</body></html>", "text/html; charset=utf-8", "html page"},
		{"bad \xff and \x00 control", "", "bad \uFFFD and \uFFFD control"},
		{strings.Repeat("x", 2000), "", strings.Repeat("x", loki.MaxSnippet) + "..."},
	} {
		if got := loki.Snippet([]byte(tc.body), tc.ctype); got != tc.want {
			t.Errorf("snippet(%q) = %q, want %q", tc.body, got, tc.want)
		}
	}
}
