package config

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wharf-logs/wharf/internal/loki"
)

func (l *Loki) validate(p *problems) {
	l.validateURL(p)
	oneOf(p, "loki.format", l.Format, loki.FormatProtobuf, loki.FormatJSON)
	if l.Gzip && l.Format != loki.FormatJSON {
		p.add("loki.gzip", "applies to format json only; protobuf bodies are always snappy-compressed")
	}
	l.validateHeaders(p)
	l.validateDelivery(p)
}

// validateURL checks loki.url.
func (l *Loki) validateURL(p *problems) {
	if msg := l.urlProblem(p.from); msg != "" {
		p.add("loki.url", "%s", msg)
	}
}

// urlProblem says what is wrong with loki.url, or "". Its messages never
// quote a password, nor a URL that came from ${VAR} (see expansions).
func (l *Loki) urlProblem(from expansions) string {
	if l.URL == "" {
		return ""
	}
	shown := strconv.Quote(redactURL(l.URL))
	e, expanded := from["loki.url"]
	if expanded {
		shown = fromEnv(e.written).String()
	}
	u, err := url.Parse(l.URL)
	switch {
	case err != nil && expanded:
		// The parser's reason quotes a part of the URL.
		return shown + " is not a URL; write the push endpoint, e.g. http://loki:3100/loki/api/v1/push"
	case err != nil:
		// url.Error quotes the URL, which may hold a password.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return fmt.Sprintf("is not a URL (%v); write the push endpoint, e.g. http://loki:3100/loki/api/v1/push", err)
	case u.Scheme != "http" && u.Scheme != "https":
		return shown + " must start with http:// or https:// (e.g. http://loki:3100/loki/api/v1/push)"
	case u.Host == "":
		return shown + " has no host (e.g. http://loki:3100/loki/api/v1/push)"
	case u.Path == "" || u.Path == "/":
		return shown + " has no path; Loki's push endpoint is /loki/api/v1/push (e.g. http://loki:3100/loki/api/v1/push)"
	case u.Fragment != "" || strings.HasSuffix(l.URL, "#"):
		return shown + " has a fragment (#...), which is never sent; remove it"
	}
	return ""
}

// userInURL reports whether loki.url is valid and holds user information,
// which becomes basic authentication.
func (l *Loki) userInURL() bool {
	if l.URL == "" || l.urlProblem(nil) != "" {
		return false
	}
	u, _ := url.Parse(l.URL)
	return u.User != nil
}

// hasAuth reports whether an Authorization header is configured: basic
// auth, a bearer token, or a user in loki.url.
func (l *Loki) hasAuth() bool {
	ba := l.BasicAuth
	return ba.Password != "" || ba.PasswordFile != "" || l.Bearer != "" || l.BearerFile != "" || l.userInURL()
}

// endpoint is loki.url without its user information, which authorization
// sends as basic authentication instead.
func (l *Loki) endpoint() string {
	u, err := url.Parse(l.URL)
	if err != nil || u.User == nil {
		return l.URL
	}
	u.User = nil
	return u.String()
}

// authorization returns the Authorization header wharf sends to Loki, ""
// for none: Basic from loki.basic_auth or the user in loki.url, or Bearer
// from loki.bearer_token. It reads the secret files they name, and refuses
// more than one way of authenticating. Errors name the key and never quote
// a secret, nor a file name from ${VAR} (from).
func (l *Loki) authorization(from expansions) (string, error) {
	p := problems{from: from}
	ba := l.BasicAuth
	userInURL := l.userInURL()
	basic := ba.Password != "" || ba.PasswordFile != ""
	bearer := l.Bearer != "" || l.BearerFile != ""
	switch {
	case ba.Password != "" && ba.PasswordFile != "":
		p.add("loki.basic_auth", "set password or password_file, not both")
	case basic && ba.Username == "":
		p.add("loki.basic_auth.username", "missing; a password needs a username")
	case l.Bearer != "" && l.BearerFile != "":
		p.add("loki.bearer_token", "set bearer_token or bearer_token_file, not both")
	case bearer && (basic || ba.Username != ""):
		p.add("loki.bearer_token", "set basic_auth or a bearer token, not both")
	case userInURL && (basic || ba.Username != ""):
		p.add("loki.url", "holds a user name and loki.basic_auth is set; keep basic_auth and remove the user from the URL")
	case userInURL && bearer:
		p.add("loki.url", "holds a user name and a bearer token is set; keep one")
	}
	password := p.secret("loki.basic_auth.password", ba.Password, ba.PasswordFile, "the password")
	token := p.secret("loki.bearer_token", l.Bearer, l.BearerFile, "the bearer token")
	if err := p.err(); err != nil {
		return "", err
	}
	user := ba.Username
	if userInURL {
		u, _ := url.Parse(l.URL)
		user = u.User.Username()
		password, _ = u.User.Password()
	}
	switch {
	case user != "" || password != "":
		req := http.Request{Header: http.Header{}}
		req.SetBasicAuth(user, password)
		return req.Header.Get(loki.HeaderAuthorization), nil
	case token != "":
		return "Bearer " + token, nil
	}
	return "", nil
}

// secret returns a secret given at path inline or in the file named at
// path+"_file" (read with what it holds named in errors), adding what is
// wrong with either.
func (p *problems) secret(path string, inline Secret, file, what string) string {
	if inline == Redacted {
		p.add(path, "holds the placeholder that `wharf check` prints; put the real secret here, as ${VAR}, or use the _file key")
	}
	if file == "" {
		return string(inline)
	}
	s, err := readSecretFile(file, p.quoted(path+"_file", file), what)
	if err != nil {
		p.add(path+"_file", "%v", err)
	}
	return s
}

// CleartextWarning says which credentials, or which tenant, pushes would
// send unencrypted (the query of loki.url counts, as it may hold a key): over http:// to a host that is not a loopback address
// (traffic to one never leaves the machine). It is "" when there are none.
// wharf logs it at start and `wharf check` prints it.
func (l *Loki) CleartextWarning() string {
	u, err := url.Parse(l.URL)
	if err != nil || u.Scheme != "http" || isLoopback(u.Hostname()) {
		return ""
	}
	var keys []string
	ba := l.BasicAuth
	if ba.Username != "" || ba.Password != "" || ba.PasswordFile != "" {
		keys = append(keys, "loki.basic_auth")
	}
	if l.Bearer != "" || l.BearerFile != "" {
		keys = append(keys, "loki.bearer_token")
	}
	if u.User != nil {
		keys = append(keys, "the user in loki.url")
	}
	if u.RawQuery != "" {
		keys = append(keys, "the query of loki.url") // possibly a key, see RedactURL
	}
	if l.TenantID != "" {
		keys = append(keys, "loki.tenant_id")
	}
	for _, k := range slices.Sorted(maps.Keys(l.Headers)) {
		if isSensitiveHeader(k) || strings.EqualFold(k, loki.HeaderTenant) {
			keys = append(keys, "loki.headers."+k)
		}
	}
	if len(keys) == 0 {
		return ""
	}
	list := strings.Join(keys, ", ")
	if n := len(keys); n > 1 {
		list = strings.Join(keys[:n-1], ", ") + " and " + keys[n-1]
	}
	return fmt.Sprintf("loki.url uses http://, so %s would go to %s unencrypted, readable by anyone on the way; use an https:// URL", list, u.Host)
}

// isLoopback reports a host name that stays on this machine.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// validateHeaders checks loki.headers against the headers the Loki client
// sets itself.
func (l *Loki) validateHeaders(p *problems) {
	for k, v := range l.Headers {
		path := "loki.headers." + k
		switch {
		case !validHeaderName(k):
			p.add(path, "not a valid HTTP header name; use letters, digits and -")
		case strings.ContainsAny(v, "\r\n\x00"):
			p.add(path, "the value holds a line break or NUL; remove it")
		case loki.SetsHeader(k):
			p.add(path, "wharf sets this header itself; remove it")
		case strings.EqualFold(k, loki.HeaderAuthorization) && l.hasAuth():
			p.add(path, "conflicts with loki.basic_auth or loki.bearer_token; keep one")
		case strings.EqualFold(k, loki.HeaderTenant) && l.TenantID != "":
			p.add(path, "conflicts with loki.tenant_id; keep one")
		}
	}
}

// validateDelivery checks the keys that shape requests, retries, the
// entries Loki would refuse and the dead-letter files.
func (l *Loki) validateDelivery(p *problems) {
	p.positive("loki.timeout", l.Timeout, 10*time.Minute)
	p.sizeIn("loki.batch_size", l.BatchSize, minBatchBytes, maxBatchBytes)
	p.positive("loki.batch_wait", l.BatchWait, 10*time.Minute)
	p.between("loki.parallelism", l.Parallelism, 1, 64)
	minOK := p.positive("loki.min_backoff", l.MinBackoff, time.Hour)
	maxOK := p.positive("loki.max_backoff", l.MaxBackoff, 24*time.Hour)
	if minOK && maxOK && l.MaxBackoff < l.MinBackoff {
		p.add("loki.max_backoff", "%v is less than loki.min_backoff %v", p.val("loki.max_backoff", l.MaxBackoff), p.val("loki.min_backoff", l.MinBackoff))
	}
	p.positive("loki.max_age", l.MaxAge, 10*365*24*time.Hour)
	p.positive("loki.max_future", l.MaxFuture, 7*24*time.Hour)
	p.sizeIn("loki.max_line_bytes", l.MaxLineBytes, 1*KiB, 64*MiB)
	oneOf(p, "loki.long_lines", l.LongLines, loki.LongLinesTruncate, loki.LongLinesDrop)
	p.sizeIn("loki.dead_letter.max_file_bytes", l.DeadLetter.MaxFileBytes, 64*KiB, 64*GiB)
	p.between("loki.dead_letter.max_files", l.DeadLetter.MaxFiles, 1, 1000)
}

// validHeaderName reports whether s is an HTTP header name (an RFC 9110
// token).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}
