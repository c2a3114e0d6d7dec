package loki

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	neturl "net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wharf-logs/wharf/internal/entry"
	"github.com/wharf-logs/wharf/internal/sink"
)

// Reasons a batch is rejected, used as metric label values in
// sink.RejectedError.
const (
	ReasonTooOld             = "too_old"             // older than Loki's reject_old_samples_max_age
	ReasonTooNew             = "too_new"             // beyond Loki's creation_grace_period
	ReasonTooFarBehind       = "too_far_behind"      // too old for its stream (out of order)
	ReasonLineTooLong        = "line_too_long"       // longer than Loki's max_line_size
	ReasonRateLimited        = "rate_limited"        // a rate limit reported with 400
	ReasonInvalidLabels      = "invalid_labels"      // labels Loki cannot parse or does not allow
	ReasonStructuredMetadata = "structured_metadata" // structured metadata refused or over limits
	ReasonTooLarge           = "too_large"           // a body over Loki's size limit
	ReasonInvalid            = "invalid"             // anything else Loki refused for good
)

// HTTPError is an answer from the receiver other than 2xx. It is the Err of
// the error Send returns (*sink.RetryableError, *sink.MisconfiguredError,
// *sink.TooLargeError or *sink.RejectedError), so callers can read the
// status with errors.As.
type HTTPError struct {
	URL        string // without credentials or query values (RedactURL)
	StatusCode int
	// Body is a trimmed snippet of the response body for humans.
	Body string
	// Hint, when set, says which setting to check.
	Hint string
}

func (e *HTTPError) Error() string {
	msg := fmt.Sprintf("loki: push to %s: status %d", e.URL, e.StatusCode)
	if e.Body != "" {
		msg += ": " + e.Body
	}
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	return msg
}

// classifyStatus turns a response into Send's error: nil, retryable,
// misconfigured, too large or final. body holds the start of the response
// body; b is the batch that was sent (nil for a probe), used to count
// entries of streams Loki refused as a whole.
//
// Only a 400 is final: it is the one answer by which Loki says it has
// looked at the entries, stored the valid ones and refused the rest. Any
// other answer means nothing was stored, so the batch is kept.
func classifyStatus(url string, status int, h http.Header, body []byte, b *entry.Batch) error {
	if status >= 200 && status < 300 {
		return nil
	}
	herr := &HTTPError{URL: url, StatusCode: status, Body: snippet(body, h.Get("Content-Type"))}
	misconfigured := func(hint string) error {
		herr.Hint = hint
		return &sink.MisconfiguredError{Err: herr, URL: url, Status: status}
	}
	switch {
	case status == http.StatusTooManyRequests:
		// A rate limit: Loki dropped the whole request, so sending it again
		// later duplicates nothing.
		return &sink.RetryableError{Err: herr, After: retryAfter(h.Get("Retry-After"), time.Now()), RateLimited: true}
	case status >= 500:
		// Loki's ingesters failed, or a proxy in front of it did; Loki's
		// de-duplication absorbs entries a partial write already stored.
		return sink.Retryable(herr, retryAfter(h.Get("Retry-After"), time.Now()))
	case status == http.StatusRequestTimeout:
		// A proxy gave up reading the body: nothing was ingested.
		return sink.Retryable(herr, retryAfter(h.Get("Retry-After"), time.Now()))
	case status == http.StatusBadRequest:
		// Loki refused some or all entries. It has ingested the valid ones
		// (partial success), so the batch is final: resending would
		// duplicate nothing but could never succeed either.
		reason, counts := parseRejection(body, b)
		return &sink.RejectedError{Err: herr, Reason: reason, Rejected: counts}
	case status == http.StatusRequestEntityTooLarge:
		// The body exceeds a limit of Loki or of a proxy: nothing was
		// ingested, and smaller batches may get through.
		return &sink.TooLargeError{Err: herr}
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		// Credentials or tenant refused: the request can succeed unchanged
		// once they are fixed, on either side.
		return misconfigured("check loki.basic_auth, loki.bearer_token and loki.tenant_id")
	case status == http.StatusNotFound || status == http.StatusMethodNotAllowed:
		return misconfigured("loki.url must be the push endpoint, e.g. http://loki:3100/loki/api/v1/push")
	case status >= 300 && status < 400:
		// Redirects are not followed: a POST turned into a GET would lose the
		// body. The URL needs fixing.
		if loc := h.Get("Location"); loc != "" {
			return misconfigured("redirected to " + RedactURL(loc) + "; set loki.url to the final push URL")
		}
		return misconfigured("a redirect; set loki.url to the final push URL")
	case status == http.StatusUnsupportedMediaType:
		return misconfigured("the receiver does not take this body; check loki.format")
	}
	// Other answers (a 4xx Loki never sends, a status outside the ranges):
	// nothing says the entries were looked at, so none is given up.
	return misconfigured("") // conservatively
}

// maxRetryAfter caps a Retry-After so a bogus value cannot overflow; the
// caller still applies its own maximum backoff.
const maxRetryAfter = 24 * time.Hour

// retryAfter parses a Retry-After header, in seconds or as an HTTP date,
// returning 0 when it is absent or unparsable.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(t.Sub(now), 0), maxRetryAfter)
	}
	return 0
}

// transportError explains an error from the HTTP round trip. Every such error
// is retryable: the request did not get an answer, so either Loki never saw
// it or de-duplicates it when it comes again, and dropping the batch would
// lose lines for a fault that is usually brief (connection refused or reset,
// timeout, DNS) or is fixed by configuration (TLS).
func transportError(url string, timeout time.Duration, err error) error {
	// *url.Error repeats the method and URL the message already names.
	var uerr *neturl.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	hint := ""
	var (
		unknownAuthority x509.UnknownAuthorityError
		hostname         x509.HostnameError
		invalid          x509.CertificateInvalidError
		recordHeader     tls.RecordHeaderError
		verify           *tls.CertificateVerificationError
	)
	switch {
	case errors.As(err, &unknownAuthority):
		hint = " (set loki.tls.ca_file to the CA that signed the server's certificate)"
	case errors.As(err, &hostname):
		hint = " (the certificate does not name this host: fix loki.url or set loki.tls.server_name)"
	case errors.As(err, &invalid):
		hint = " (the server's certificate is expired or not valid for this use)"
	case errors.As(err, &recordHeader), strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		hint = " (the server does not speak TLS: use an http:// URL)"
	case errors.As(err, &verify):
		hint = " (check loki.tls)"
	case isTimeout(err):
		return sink.Retryable(fmt.Errorf("loki: push to %s: timed out after %s: %w", url, timeout, err), 0)
	}
	return sink.Retryable(fmt.Errorf("loki: push to %s: %w%s", url, err, hint), 0)
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// maxSnippet bounds the body text quoted in an error.
const maxSnippet = 512

// snippet makes a short, single-line, valid UTF-8 excerpt of a response body.
// For an HTML error page (a proxy's, usually) it quotes the title.
func snippet(body []byte, contentType string) string {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return ""
	}
	if strings.Contains(contentType, "html") || bytes.HasPrefix(body, []byte("<")) {
		if t := htmlTitle(body); t != "" {
			body = []byte("html page: " + t)
		} else if strings.Contains(contentType, "html") {
			body = []byte("html page")
		}
	}
	var b strings.Builder
	space := false
	for len(body) > 0 && b.Len() < maxSnippet {
		r, size := utf8.DecodeRune(body)
		body = body[size:]
		if r == ' ' || r == '\n' || r == '\r' || r == '\t' {
			space = true
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		if r < 0x20 || r == 0x7f {
			r = utf8.RuneError
		}
		b.WriteRune(r)
	}
	if len(body) > 0 {
		b.WriteString("...")
	}
	return b.String()
}

func htmlTitle(body []byte) string {
	lower := bytes.ToLower(body)
	i := bytes.Index(lower, []byte("<title>"))
	if i < 0 {
		return ""
	}
	rest := body[i+len("<title>"):]
	j := bytes.Index(bytes.ToLower(rest), []byte("</title>"))
	if j < 0 {
		return ""
	}
	return string(bytes.TrimSpace(rest[:j]))
}

// reasonPatterns maps phrases of Loki's validation messages to reasons. The
// first match wins, so phrases that can occur inside others come later (a
// structured metadata message also speaks of labels). Matching is done on
// lower-cased text.
var reasonPatterns = []struct {
	phrase string
	reason string
	// stream is true for failures Loki reports once per stream rather than
	// once per entry.
	stream bool
}{
	{"timestamp too old", ReasonTooOld, false},
	{"timestamp too new", ReasonTooNew, false},
	{"too far behind", ReasonTooFarBehind, false},
	{"out of order", ReasonTooFarBehind, false},
	{"max entry size", ReasonLineTooLong, false},
	{"line too long", ReasonLineTooLong, false},
	{"structured metadata", ReasonStructuredMetadata, false},
	{"rate limit", ReasonRateLimited, false},
	{"request body too large", ReasonTooLarge, false},
	{"stream limit", ReasonInvalidLabels, true},
	{"label", ReasonInvalidLabels, true},
}

func matchReason(msg string) (reason string, perStream, ok bool) {
	lower := strings.ToLower(msg)
	for _, p := range reasonPatterns {
		if strings.Contains(lower, p.phrase) {
			return p.reason, p.stream, true
		}
	}
	return "", false, false
}

// segment is one failure message of a 400 body and how many times Loki
// reported it.
type segment struct {
	msg   string
	count int
}

const (
	groupedMarker  = " errors like: "
	ignoredMarker  = "total ignored: "
	entryLinePrefx = "entry with timestamp "
)

// parseRejection reads a 400 body and returns the dominant reason and the
// number of rejected entries by reason. Loki writes the body in one of two
// shapes:
//
//   - the distributor's validation errors, grouped by message:
//     "3 errors like: <msg>; 1 errors like: <msg>", or the bare message when
//     there is a single failure;
//   - an ingester's, one line per failure (at most ten):
//     "entry with timestamp <t> ignored, reason: '<msg>',\n...
//     user 'x', total ignored: N out of M for stream: {...}".
//
// The counts are what the body reports, so they fall short when it was cut
// at the read limit. Failures Loki reports per stream (bad labels) are counted
// as the entries of that stream in b. counts is nil when the body names no
// known failure: every entry of the batch is then counted under the reason.
func parseRejection(body []byte, b *entry.Batch) (reason string, counts map[string]int) {
	text := strings.TrimSpace(strings.ToValidUTF8(string(body), "\uFFFD"))
	total := -1
	if i := strings.LastIndex(text, ignoredMarker); i >= 0 {
		rest := text[i+len(ignoredMarker):]
		j := 0
		for j < len(rest) && '0' <= rest[j] && rest[j] <= '9' {
			j++
		}
		if n, err := strconv.Atoi(rest[:j]); err == nil {
			total = n
		}
		// The line holding the total is not a failure of its own.
		k := strings.LastIndexByte(text[:i], '\n')
		text = text[:max(k, 0)]
	}

	var segs []segment
	switch {
	case strings.Contains(text, groupedMarker):
		segs = groupedSegments(text)
	case strings.Contains(text, entryLinePrefx):
		for line := range strings.Lines(text) {
			if strings.Contains(line, entryLinePrefx) {
				segs = append(segs, segment{msg: line, count: 1})
			}
		}
	case text != "":
		segs = []segment{{msg: text, count: 1}}
	}

	counts = make(map[string]int)
	var order []string // reasons in order of appearance, to break ties
	listed := 0
	for _, s := range segs {
		r, perStream, ok := matchReason(s.msg)
		if !ok {
			continue
		}
		n := s.count
		if perStream {
			if m := streamEntries(s.msg, b); m > 0 {
				n = m
			}
		}
		if _, seen := counts[r]; !seen {
			order = append(order, r)
		}
		counts[r] += n
		listed += n
	}
	if len(order) == 0 {
		return ReasonInvalid, nil
	}
	reason = order[0]
	for _, r := range order[1:] {
		if counts[r] > counts[reason] {
			reason = r
		}
	}
	if total > listed {
		// An ingester lists at most a few failures but counts them all.
		counts[reason] += total - listed
	}
	return reason, counts
}

// groupedSegments splits "N errors like: msg; M errors like: msg" into its
// messages. A message may itself contain "; ", so a segment only ends where
// the next count and marker begin.
func groupedSegments(text string) []segment {
	var segs []segment
	for {
		i := strings.Index(text, groupedMarker)
		if i < 0 {
			break
		}
		n, err := strconv.Atoi(lastNumber(text[:i]))
		if err != nil {
			n = 1
		}
		text = text[i+len(groupedMarker):]
		end := len(text)
		if j := strings.Index(text, groupedMarker); j >= 0 {
			// The next segment starts at "; <digits>" before its marker.
			num := lastNumber(text[:j])
			end = max(strings.LastIndex(text[:j-len(num)], "; "), 0)
		}
		segs = append(segs, segment{msg: text[:end], count: n})
		text = text[end:]
	}
	return segs
}

// lastNumber returns the run of digits at the end of s.
func lastNumber(s string) string {
	i := len(s)
	for i > 0 && '0' <= s[i-1] && s[i-1] <= '9' {
		i--
	}
	return s[i:]
}

// streamEntries counts the entries of b whose stream the message names.
func streamEntries(msg string, b *entry.Batch) int {
	if b == nil {
		return 0
	}
	n := 0
	for i := range b.Streams {
		if s := b.Streams[i].Stream; s != nil && strings.Contains(msg, s.Key) {
			n += len(b.Streams[i].Entries)
		}
	}
	return n
}
