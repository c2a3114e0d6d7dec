package loki

// What package loki_test checks that the client does not export. The tests
// are an external package because they decode what the client sends with
// lokitest, which imports loki.
var (
	RetryAfter     = retryAfter
	MaxRetryAfter  = maxRetryAfter
	ParseRejection = parseRejection
	Snippet        = snippet
	MaxSnippet     = maxSnippet
	TLSConfig      = tlsConfig
)

// URL returns the push URL without credentials, as the client's errors
// name it.
func (c *Client) URL() string { return c.url }
