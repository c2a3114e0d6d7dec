package loki

import "time"

// What package loki_test checks that the client does not export. The tests
// are an external package because they decode what the client sends with
// lokitest, which imports loki.
var (
	RetryAfter     = retryAfter
	MaxRetryAfter  = maxRetryAfter
	ParseRejection = parseRejection
	Snippet        = snippet
	MaxSnippet     = maxSnippet
)

// URL returns the push URL without credentials, as the client's errors
// name it.
func (c *Client) URL() string { return c.url }

// Settings returns the timeout and format the client applies, for the test
// of a zero Config's defaults.
func (c *Client) Settings() (time.Duration, Format) { return c.timeout, c.format }

// OmitMetadata turns structured metadata off in e, as the client does when
// its Config says so.
func OmitMetadata(e *Encoder) { e.noMetadata = true }
