package loki

import (
	"net/url"
	"strings"
)

// RedactURL returns raw with what may be a credential hidden, for logs,
// errors, dead letters and printed configurations: the password of its
// user information and the value of every query parameter show as xxxxx
// (some receivers take a key or a tenant in the query). The keys stay, so a
// reader still sees which parameters are set. A raw with nothing to hide
// is returned as it is; one that does not parse has its user information
// and its query hidden.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return redactUnparsed(raw)
	}
	_, password := u.User.Password()
	if !password && u.RawQuery == "" {
		return raw
	}
	if u.RawQuery != "" {
		u.RawQuery = redactQuery(u.RawQuery)
	}
	return u.Redacted()
}

// redacted stands for a hidden value, as in url.URL.Redacted.
const redacted = "xxxxx"

// redactQuery keeps the keys of a raw query and hides the values.
func redactQuery(q string) string {
	parts := strings.Split(q, "&")
	for i, p := range parts {
		if k, _, ok := strings.Cut(p, "="); ok {
			parts[i] = k + "=" + redacted
		}
	}
	return strings.Join(parts, "&")
}

// redactUnparsed hides, in a URL that does not parse, the user information
// and everything after the first ?.
func redactUnparsed(raw string) string {
	if i := strings.IndexByte(raw, '?'); i >= 0 {
		raw = raw[:i+1] + redacted
	}
	if i := strings.Index(raw, "://"); i >= 0 {
		rest := raw[i+3:]
		host := rest
		if j := strings.IndexAny(rest, "/?"); j >= 0 {
			host = rest[:j]
		}
		if at := strings.LastIndexByte(host, '@'); at >= 0 {
			raw = raw[:i+3] + redacted + rest[at:]
		}
	}
	return raw
}
