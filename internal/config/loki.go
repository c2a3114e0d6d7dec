package config

import (
	"errors"
	"net/url"
	"strings"
	"time"
)

func (l *Loki) validate(p *problems) {
	userInURL := l.validateURL(p)
	oneOf(p, "loki.format", l.Format, "protobuf", "json")
	if l.Gzip && l.Format != "json" {
		p.add("loki.gzip", "applies to format json only; protobuf bodies are always snappy-compressed")
	}
	l.validateAuth(p, userInURL)
	if (l.TLS.CertFile == "") != (l.TLS.KeyFile == "") {
		p.add("loki.tls", "cert_file and key_file go together; set both or neither")
	}
	checkTLSFiles(l.TLS, p)
	l.validateHeaders(p, l.hasAuth() || userInURL)
	l.validateDelivery(p)
}

// validateURL checks loki.url and reports whether it holds a user name.
func (l *Loki) validateURL(p *problems) (userInURL bool) {
	if l.URL == "" {
		return false
	}
	u, err := url.Parse(l.URL)
	switch {
	case err != nil:
		// url.Error quotes the URL, which may hold a password.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		p.add("loki.url", "is not a URL (%v); write the push endpoint, e.g. http://loki:3100/loki/api/v1/push", err)
	case u.Scheme != "http" && u.Scheme != "https":
		p.add("loki.url", "%q must start with http:// or https:// (e.g. http://loki:3100/loki/api/v1/push)", redactURL(l.URL))
	case u.Host == "":
		p.add("loki.url", "%q has no host (e.g. http://loki:3100/loki/api/v1/push)", redactURL(l.URL))
	case u.Path == "" || u.Path == "/":
		p.add("loki.url", "%q has no path; Loki's push endpoint is /loki/api/v1/push (e.g. http://loki:3100/loki/api/v1/push)", redactURL(l.URL))
	case u.Fragment != "" || strings.HasSuffix(l.URL, "#"):
		p.add("loki.url", "%q has a fragment (#...), which is never sent; remove it", redactURL(l.URL))
	default:
		return u.User != nil
	}
	return false
}

// hasAuth reports whether basic auth or a bearer token is configured.
func (l *Loki) hasAuth() bool {
	return l.BasicAuth.Password != "" || l.BasicAuth.PasswordFile != "" || l.Bearer != "" || l.BearerFile != ""
}

// validateAuth checks that one way of authenticating is configured, and
// reads the secret files it names.
func (l *Loki) validateAuth(p *problems, userInURL bool) {
	ba := l.BasicAuth
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
	for _, s := range []struct {
		path string
		v    Secret
	}{{"loki.basic_auth.password", ba.Password}, {"loki.bearer_token", l.Bearer}} {
		if s.v == Redacted {
			p.add(s.path, "holds the placeholder that `wharf check` prints; put the real secret here, as ${VAR}, or use the _file key")
		}
	}
	for _, f := range []struct{ path, file, what string }{
		{"loki.basic_auth.password_file", ba.PasswordFile, "the password"},
		{"loki.bearer_token_file", l.BearerFile, "the bearer token"},
	} {
		if f.file != "" {
			if _, err := ReadSecretFile(f.file, f.what); err != nil {
				p.add(f.path, "%v", err)
			}
		}
	}
}

// validateHeaders checks loki.headers against the headers wharf sets.
func (l *Loki) validateHeaders(p *problems, auth bool) {
	for k, v := range l.Headers {
		path := "loki.headers." + k
		canon := canonical(k)
		switch {
		case !ValidHeaderName(k):
			p.add(path, "not a valid HTTP header name; use letters, digits and -")
		case strings.ContainsAny(v, "\r\n\x00"):
			p.add(path, "the value holds a line break or NUL; remove it")
		case reservedHeader(canon):
			p.add(path, "wharf sets this header itself; remove it")
		case canon == "Authorization" && auth:
			p.add(path, "conflicts with loki.basic_auth or loki.bearer_token; keep one")
		case canon == "X-Scope-Orgid" && l.TenantID != "":
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
		p.add("loki.max_backoff", "%v is less than loki.min_backoff %v", l.MaxBackoff, l.MinBackoff)
	}
	p.positive("loki.max_age", l.MaxAge, 10*365*24*time.Hour)
	p.positive("loki.max_future", l.MaxFuture, 7*24*time.Hour)
	p.sizeIn("loki.max_line_bytes", l.MaxLineBytes, 1*KiB, 64*MiB)
	oneOf(p, "loki.long_lines", l.LongLines, "truncate", "drop")
	p.sizeIn("loki.dead_letter.max_file_bytes", l.DeadLetter.MaxFileBytes, 64*KiB, 64*GiB)
	p.between("loki.dead_letter.max_files", l.DeadLetter.MaxFiles, 1, 1000)
}

// reservedHeader reports headers the Loki client sets itself.
func reservedHeader(canon string) bool {
	switch canon {
	case "Content-Type", "Content-Encoding", "Content-Length", "Transfer-Encoding", "Host", "Connection":
		return true
	}
	return false
}

// ValidHeaderName reports whether s is an HTTP header name (an RFC 9110
// token).
func ValidHeaderName(s string) bool {
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
