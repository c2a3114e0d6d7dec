package loki

// The unexported functions that package loki_test checks directly. The tests
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
