package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Validate checks every value and returns all problems found, each an *Error
// naming the YAML path, the bad value and the fix.
func (c *Config) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, &Error{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	oneOf := func(path, v string, allowed ...string) {
		for _, a := range allowed {
			if v == a {
				return
			}
		}
		bad(path, "%q is not one of %s", v, strings.Join(allowed, ", "))
	}
	positiveDur := func(path string, d time.Duration, max time.Duration) bool {
		if d <= 0 {
			bad(path, "%v must be greater than zero", d)
			return false
		} else if max > 0 && d > max {
			bad(path, "%v is more than the maximum of %v", d, max)
			return false
		}
		return true
	}
	sizeIn := func(path string, v, min, max ByteSize) bool {
		if v < min || v > max {
			bad(path, "%s is outside the allowed range %s to %s", v, min, max)
			return false
		}
		return true
	}

	if c.DataDir == "" {
		bad("data_dir", "must not be empty; set a directory wharf may write to")
	}
	if c.Listen != "" {
		if _, port, err := net.SplitHostPort(c.Listen); err != nil {
			bad("listen", "%q is not host:port (e.g. 127.0.0.1:9080); write \"\" to disable the admin server", c.Listen)
		} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
			bad("listen", "%q: the port must be a number from 0 to 65535 (e.g. 127.0.0.1:9080)", c.Listen)
		}
	}
	if _, err := c.AdminToken(); err != nil {
		errs = append(errs, err)
	}
	positiveDur("shutdown_timeout", c.ShutdownTimeout, 24*time.Hour)
	oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	oneOf("log.format", c.Log.Format, "text", "json")

	for k, v := range c.Labels.Static {
		if err := CheckLabelName(k); err != nil {
			bad("labels.static."+k, "%v", err)
		} else if isBuiltinLabel(k) {
			bad("labels.static."+k, "%q is set by wharf itself; choose another name (the host label's value is labels.host)", k)
		}
		if v == "" {
			bad("labels.static."+k, "empty value; Loki ignores empty labels, remove the key")
		}
	}

	d := &c.Docker
	oneOf("docker.read_from", d.ReadFrom, "api", "auto", "file")
	oneOf("docker.start_at", d.StartAt, "end", "beginning")
	sizeIn("docker.max_line_bytes", d.MaxLineBytes, 1*KiB, 64*MiB)
	if d.StartupConcurrency < 1 || d.StartupConcurrency > 256 {
		bad("docker.startup_concurrency", "%d must be between 1 and 256", d.StartupConcurrency)
	}
	if d.Host != "" {
		u, err := url.Parse(d.Host)
		switch {
		case err != nil || (u.Scheme != "unix" && u.Scheme != "tcp" && u.Scheme != "http" && u.Scheme != "https"):
			bad("docker.host", "%q is not a Docker address; write unix:///var/run/docker.sock or tcp://host:2375", redactURL(d.Host))
		case u.Scheme == "unix" && u.Path == "":
			bad("docker.host", "%q has no socket path; write unix:///var/run/docker.sock", d.Host)
		case u.Scheme != "unix" && u.Host == "":
			bad("docker.host", "%q has no host; write tcp://host:2375", redactURL(d.Host))
		}
	}
	for i, r := range d.Include {
		r.check(fmt.Sprintf("docker.include[%d]", i), bad)
	}
	for i, r := range d.Exclude {
		r.check(fmt.Sprintf("docker.exclude[%d]", i), bad)
	}
	for k, v := range d.LabelsFromContainer {
		if err := CheckLabelName(k); err != nil {
			bad("docker.labels_from_container."+k, "%v", err)
		} else if isBuiltinLabel(k) {
			bad("docker.labels_from_container."+k, "%q is set by wharf itself; choose another name", k)
		} else if _, dup := c.Labels.Static[k]; dup {
			bad("docker.labels_from_container."+k, "%q is also in labels.static; keep one", k)
		}
		if v == "" {
			bad("docker.labels_from_container."+k, "empty container label key; name the container label to copy")
		}
	}
	if n := len(c.Labels.Static) + len(d.LabelsFromContainer) + len(DockerLabels); n > MaxLabels {
		bad("labels.static", "with docker.labels_from_container and the %d built-in labels a stream would have %d labels; Loki allows %d, remove some", len(DockerLabels), n, MaxLabels)
	}

	for i, f := range c.Files {
		path := fmt.Sprintf("files[%d]", i)
		if len(f.Paths) == 0 {
			bad(path+".paths", "no paths; list glob patterns of the files to read, e.g. /var/log/app/*.log")
		}
		for j, p := range f.Paths {
			if _, err := filepath.Match(p, ""); err != nil || p == "" {
				bad(fmt.Sprintf("%s.paths[%d]", path, j), "%s", globProblem(p))
			}
		}
		for j, p := range f.Exclude {
			if _, err := filepath.Match(p, ""); err != nil || p == "" {
				bad(fmt.Sprintf("%s.exclude[%d]", path, j), "%s", globProblem(p))
			}
		}
		for k, v := range f.Labels {
			if err := CheckLabelName(k); err != nil {
				bad(path+".labels."+k, "%v", err)
			} else if k == "filename" || k == "host" {
				bad(path+".labels."+k, "%q is set by wharf itself; choose another name", k)
			}
			if v == "" {
				bad(path+".labels."+k, "empty value; Loki ignores empty labels, remove the key")
			}
		}
		if n := len(f.Labels) + len(c.Labels.Static) + 2; n > MaxLabels {
			bad(path+".labels", "with labels.static, filename and host a stream would have %d labels; Loki allows %d", n, MaxLabels)
		}
		oneOf(path+".start_at", f.StartAt, "end", "beginning")
		sizeIn(path+".max_line_bytes", f.MaxLineBytes, 1*KiB, 64*MiB)
		if f.Multiline.Start != "" {
			if _, err := regexp.Compile(f.Multiline.Start); err != nil {
				bad(path+".multiline.start", "%s", regexpProblem(f.Multiline.Start, err, `^\d{4}-\d{2}-\d{2} `))
			}
		}
		positiveDur(path+".multiline.max_wait", f.Multiline.MaxWait, time.Hour)
		if f.Multiline.MaxLines < 1 || f.Multiline.MaxLines > 100000 {
			bad(path+".multiline.max_lines", "%d must be between 1 and 100000", f.Multiline.MaxLines)
		}
		sizeIn(path+".multiline.max_bytes", f.Multiline.MaxBytes, 1*KiB, 64*MiB)
	}

	bufferOK := sizeIn("buffer.max_bytes", c.Buffer.MaxBytes, 1*MiB, 16*GiB)
	sizeIn("queue.max_bytes", c.Queue.MaxBytes, 16*MiB, 1024*GiB)
	positiveDur("queue.sync_interval", c.Queue.SyncInterval, time.Minute)

	if c.File.Enabled != nil && !*c.File.Enabled && c.Loki.URL == "" {
		bad("file.enabled", "false with no loki.url leaves wharf nowhere to send logs; set loki.url or enable the file sink")
	}
	sizeIn("file.max_file_bytes", c.File.MaxFileBytes, 64*KiB, 64*GiB)
	if c.File.MaxFiles < 1 || c.File.MaxFiles > 1000 {
		bad("file.max_files", "%d must be between 1 and 1000", c.File.MaxFiles)
	}

	l := &c.Loki
	var userInURL bool
	if l.URL != "" {
		u, err := url.Parse(l.URL)
		switch {
		case err != nil:
			// url.Error quotes the URL, which may hold a password.
			var uerr *url.Error
			if errors.As(err, &uerr) {
				err = uerr.Err
			}
			bad("loki.url", "is not a URL (%v); write the push endpoint, e.g. http://loki:3100/loki/api/v1/push", err)
		case u.Scheme != "http" && u.Scheme != "https":
			bad("loki.url", "%q must start with http:// or https:// (e.g. http://loki:3100/loki/api/v1/push)", redactURL(l.URL))
		case u.Host == "":
			bad("loki.url", "%q has no host (e.g. http://loki:3100/loki/api/v1/push)", redactURL(l.URL))
		case u.Path == "" || u.Path == "/":
			bad("loki.url", "%q has no path; Loki's push endpoint is /loki/api/v1/push (e.g. http://loki:3100/loki/api/v1/push)", redactURL(l.URL))
		case u.Fragment != "" || strings.HasSuffix(l.URL, "#"):
			bad("loki.url", "%q has a fragment (#...), which is never sent; remove it", redactURL(l.URL))
		default:
			userInURL = u.User != nil
		}
	}
	oneOf("loki.format", l.Format, "protobuf", "json")
	if l.Gzip && l.Format != "json" {
		bad("loki.gzip", "applies to format json only; protobuf bodies are always snappy-compressed")
	}
	basic := l.BasicAuth.Password != "" || l.BasicAuth.PasswordFile != ""
	bearer := l.Bearer != "" || l.BearerFile != ""
	switch {
	case l.BasicAuth.Password != "" && l.BasicAuth.PasswordFile != "":
		bad("loki.basic_auth", "set password or password_file, not both")
	case basic && l.BasicAuth.Username == "":
		bad("loki.basic_auth.username", "missing; a password needs a username")
	case l.Bearer != "" && l.BearerFile != "":
		bad("loki.bearer_token", "set bearer_token or bearer_token_file, not both")
	case bearer && (basic || l.BasicAuth.Username != ""):
		bad("loki.bearer_token", "set basic_auth or a bearer token, not both")
	case userInURL && (basic || l.BasicAuth.Username != ""):
		bad("loki.url", "holds a user name and loki.basic_auth is set; keep basic_auth and remove the user from the URL")
	case userInURL && bearer:
		bad("loki.url", "holds a user name and a bearer token is set; keep one")
	}
	for _, s := range []struct {
		path string
		v    Secret
	}{{"loki.basic_auth.password", l.BasicAuth.Password}, {"loki.bearer_token", l.Bearer}} {
		if s.v == Redacted {
			bad(s.path, "holds the placeholder that `wharf check` prints; put the real secret here, as ${VAR}, or use the _file key")
		}
	}
	for _, f := range []struct{ path, file, what string }{
		{"loki.basic_auth.password_file", l.BasicAuth.PasswordFile, "the password"},
		{"loki.bearer_token_file", l.BearerFile, "the bearer token"},
	} {
		if f.file != "" {
			if _, err := ReadSecretFile(f.file, f.what); err != nil {
				bad(f.path, "%v", err)
			}
		}
	}
	if (l.TLS.CertFile == "") != (l.TLS.KeyFile == "") {
		bad("loki.tls", "cert_file and key_file go together; set both or neither")
	}
	checkTLSFiles(l.TLS, bad)
	for k, v := range l.Headers {
		hp := "loki.headers." + k
		canon := canonical(k)
		switch {
		case !ValidHeaderName(k):
			bad(hp, "not a valid HTTP header name; use letters, digits and -")
		case strings.ContainsAny(v, "\r\n\x00"):
			bad(hp, "the value holds a line break or NUL; remove it")
		case reservedHeader(canon):
			bad(hp, "wharf sets this header itself; remove it")
		case canon == "Authorization" && (basic || bearer || userInURL):
			bad(hp, "conflicts with loki.basic_auth or loki.bearer_token; keep one")
		case canon == "X-Scope-Orgid" && l.TenantID != "":
			bad(hp, "conflicts with loki.tenant_id; keep one")
		}
	}
	positiveDur("loki.timeout", l.Timeout, 10*time.Minute)
	batchOK := sizeIn("loki.batch_size", l.BatchSize, 1*KiB, 64*MiB)
	positiveDur("loki.batch_wait", l.BatchWait, 10*time.Minute)
	if l.Parallelism < 1 || l.Parallelism > 64 {
		bad("loki.parallelism", "%d must be between 1 and 64", l.Parallelism)
	}
	minOK := positiveDur("loki.min_backoff", l.MinBackoff, time.Hour)
	maxOK := positiveDur("loki.max_backoff", l.MaxBackoff, 24*time.Hour)
	if minOK && maxOK && l.MaxBackoff < l.MinBackoff {
		bad("loki.max_backoff", "%v is less than loki.min_backoff %v", l.MaxBackoff, l.MinBackoff)
	}
	positiveDur("loki.max_age", l.MaxAge, 10*365*24*time.Hour)
	positiveDur("loki.max_future", l.MaxFuture, 7*24*time.Hour)
	sizeIn("loki.max_line_bytes", l.MaxLineBytes, 1*KiB, 64*MiB)
	oneOf("loki.long_lines", l.LongLines, "truncate", "drop")
	sizeIn("loki.dead_letter.max_file_bytes", l.DeadLetter.MaxFileBytes, 64*KiB, 64*GiB)
	if l.DeadLetter.MaxFiles < 1 || l.DeadLetter.MaxFiles > 1000 {
		bad("loki.dead_letter.max_files", "%d must be between 1 and 1000", l.DeadLetter.MaxFiles)
	}
	if bufferOK && batchOK && c.Buffer.MaxBytes < 2*l.BatchSize {
		bad("buffer.max_bytes", "%s must be at least twice loki.batch_size (%s)", c.Buffer.MaxBytes, l.BatchSize)
	}
	return errors.Join(errs...)
}

func (r ContainerRule) check(path string, bad func(string, string, ...any)) {
	if r.Name == "" && r.Image == "" && r.Label == "" {
		bad(path, "empty rule; set name, image or label")
	}
	if _, err := regexp.Compile(r.Name); err != nil {
		bad(path+".name", "%s", regexpProblem(r.Name, err, "^web-"))
	}
	if _, err := regexp.Compile(r.Image); err != nil {
		bad(path+".image", "%s", regexpProblem(r.Image, err, `^nginx(:|$)`))
	}
	if k, _, _ := strings.Cut(r.Label, "="); r.Label != "" && k == "" {
		bad(path+".label", "%q has no key; write key or key=value", r.Label)
	}
}

// Label limits, after Loki's defaults.
const (
	// MaxLabels is Loki's default max_label_names_per_series.
	MaxLabels = 15
	// MaxLabelValueBytes caps label values (Loki's max_label_value_length
	// default is 2048).
	MaxLabelValueBytes = 2048
)

// DockerLabels are the labels wharf sets on container streams.
var DockerLabels = []string{"container", "compose_project", "compose_service", "stream", "host"}

func isBuiltinLabel(name string) bool {
	for _, b := range DockerLabels {
		if b == name {
			return true
		}
	}
	return false
}

// CheckLabelName reports whether name is a valid Loki label name.
func CheckLabelName(name string) error {
	if name == "" {
		return errors.New("empty label name")
	}
	for i, c := range name {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return fmt.Errorf("%q is not a valid label name; use letters, digits and _, not starting with a digit", name)
		}
	}
	if strings.HasPrefix(name, "__") {
		return fmt.Errorf("%q is reserved: names starting with __ are internal to Loki", name)
	}
	return nil
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// redactURL hides a password in a URL's user info.
func redactURL(s string) string {
	if !strings.Contains(s, "://") || !strings.Contains(s, "@") {
		return s
	}
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, has := u.User.Password(); !has {
		return s
	}
	return u.Redacted()
}

// CapLabelValue bounds a label value to MaxLabelValueBytes without splitting
// a UTF-8 sequence.
func CapLabelValue(v string) string {
	if len(v) <= MaxLabelValueBytes {
		return v
	}
	v = v[:MaxLabelValueBytes]
	for len(v) > 0 && !utf8.ValidString(v) {
		v = v[:len(v)-1]
	}
	return v
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

// regexpProblem explains a regular expression that does not compile.
func regexpProblem(expr string, err error, example string) string {
	why := strings.TrimPrefix(err.Error(), "error parsing regexp: ")
	return fmt.Sprintf("%q is not a valid regular expression (%s); write it in Go's RE2 syntax, e.g. %q, and quote it in YAML", expr, why, example)
}

// globProblem explains a glob pattern that filepath.Match refuses.
func globProblem(p string) string {
	if p == "" {
		return `"" is not a valid glob pattern; remove it or write a pattern like /var/log/app/*.log`
	}
	return fmt.Sprintf(`%q is not a valid glob pattern; close every [ with ] or write \[ for a literal [ (filepath.Match syntax, e.g. /var/log/app/*.log)`, p)
}
