package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wharf-logs/wharf/internal/docker"
	"github.com/wharf-logs/wharf/internal/loki"
)

// Validate checks every value and the files the configuration names, and
// returns all problems found, each an *Error naming the YAML path, the bad
// value and the fix.
func (c *Config) Validate() error {
	_, err := c.Resolve()
	return err
}

// Resolved holds what a configuration stands for beyond its values: the
// secrets read from the files it names, the credentials taken out of
// loki.url and the TLS settings built from loki.tls. Resolve reads each file
// once, for validation and for use alike.
type Resolved struct {
	// AdminToken is admin.token or the content of admin.token_file; "" for
	// none.
	AdminToken string
	// LokiURL is loki.url without its user information, which LokiAuth
	// carries instead.
	LokiURL string
	// LokiAuth is the Authorization header for Loki; "" for none.
	LokiAuth string
	// LokiTLS is the TLS configuration of connections to Loki.
	LokiTLS *tls.Config
}

// Resolve validates c as Validate does and returns what its files and
// credentials resolve to. Each section checks its own keys; the rules that
// tie sections together follow in crossSection.
func (c *Config) Resolve() (Resolved, error) {
	p := problems{from: c.current()}
	c.validateTop(&p)
	c.Log.validate(&p)
	c.Labels.validate(&p)
	c.Docker.validate(&p)
	for i := range c.Files {
		c.Files[i].validate(&p, fmt.Sprintf("files[%d]", i))
	}
	c.Buffer.validate(&p)
	c.Queue.validate(&p)
	c.File.validate(&p)
	c.Loki.validate(&p)
	c.crossSection(&p)

	r := Resolved{LokiURL: c.Loki.endpoint()}
	var err error
	r.AdminToken, err = c.Admin.token(p.from)
	p.addErr(err)
	r.LokiAuth, err = c.Loki.authorization(p.from)
	p.addErr(err)
	r.LokiTLS, err = c.Loki.TLS.build(p.from)
	p.addErr(err)
	if err := p.err(); err != nil {
		return Resolved{}, err
	}
	return r, nil
}

// problems collects what Validate finds. Checks add to it rather than
// return, so one run reports every bad value; the range checks report
// whether the value passed, so a rule built on it can stay quiet rather
// than repeat the problem. Messages show values through val and quoted,
// which never show what a ${VAR} held (see expansions).
type problems struct {
	errs []error
	from expansions
}

func (p *problems) add(path, format string, args ...any) {
	p.errs = append(p.errs, &Error{Path: path, Msg: fmt.Sprintf(format, args...)})
}

// addErr adds the problems err holds, which already name their keys.
func (p *problems) addErr(err error) {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		p.errs = append(p.errs, j.Unwrap()...)
	} else if err != nil {
		p.errs = append(p.errs, err)
	}
}

func (p *problems) err() error { return errors.Join(p.errs...) }

// positive checks 0 < d <= max.
func (p *problems) positive(path string, d, max time.Duration) bool {
	switch {
	case d <= 0:
		p.add(path, "%v must be greater than zero", p.val(path, d))
	case d > max:
		p.add(path, "%v is more than the maximum of %v", p.val(path, d), max)
	default:
		return true
	}
	return false
}

// sizeIn checks min <= v <= max.
func (p *problems) sizeIn(path string, v, min, max ByteSize) bool {
	if v < min || v > max {
		p.add(path, "%s is outside the allowed range %s to %s", p.val(path, v), min, max)
		return false
	}
	return true
}

// between checks min <= v <= max for a count.
func (p *problems) between(path string, v, min, max int) {
	if v < min || v > max {
		p.add(path, "%v must be between %d and %d", p.val(path, v), min, max)
	}
}

// oneOf checks that v is one of allowed, which the message lists in order.
func oneOf[T ~string](p *problems, path string, v T, allowed ...T) {
	names := make([]string, len(allowed))
	for i, a := range allowed {
		if v == a {
			return
		}
		names[i] = string(a)
	}
	p.add(path, "%q is not one of %s", p.val(path, v), strings.Join(names, ", "))
}

// Limits of the sizes the cross-section rules compare, so those rules stay
// quiet when a size is already reported out of range.
const (
	minBufferBytes = 1 * MiB
	maxBufferBytes = 16 * GiB
	minBatchBytes  = 1 * KiB
	maxBatchBytes  = 64 * MiB
)

// validateTop checks the top-level keys.
func (c *Config) validateTop(p *problems) {
	if c.DataDir == "" {
		p.add("data_dir", "must not be empty; set a directory wharf may write to")
	}
	if c.Listen != "" {
		if _, port, err := net.SplitHostPort(c.Listen); err != nil {
			p.add("listen", "%q is not host:port (e.g. 127.0.0.1:9080); write \"\" to disable the admin server", p.val("listen", c.Listen))
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			p.add("listen", "%q: the port must be a number from 0 to 65535 (e.g. 127.0.0.1:9080)", p.val("listen", c.Listen))
		}
	}
	p.positive("shutdown_timeout", c.ShutdownTimeout, 24*time.Hour)
	p.between("max_followed_files", c.MaxFollowedFiles, 1, 1000000)
}

func (l *Log) validate(p *problems) {
	oneOf(p, "log.level", l.Level, LogDebug, LogInfo, LogWarn, LogError)
	oneOf(p, "log.format", l.Format, LogText, LogJSON)
}

func (l *Labels) validate(p *problems) {
	for k, v := range l.Static {
		if err := CheckLabelName(k); err != nil {
			p.add("labels.static."+k, "%v", err)
		} else if isBuiltinLabel(k) {
			p.add("labels.static."+k, "%q is set by wharf itself; choose another name (the host label's value is labels.host)", k)
		}
		if v == "" {
			p.add("labels.static."+k, "empty value; Loki ignores empty labels, remove the key")
		}
	}
}

func (b *Buffer) validate(p *problems) {
	p.sizeIn("buffer.max_bytes", b.MaxBytes, minBufferBytes, maxBufferBytes)
}

func (q *Queue) validate(p *problems) {
	p.sizeIn("queue.max_bytes", q.MaxBytes, 16*MiB, 1024*GiB)
	p.positive("queue.sync_interval", q.SyncInterval, time.Minute)
}

func (f *File) validate(p *problems) {
	fileOK := p.sizeIn("file.max_file_bytes", f.MaxFileBytes, 64*KiB, 64*GiB)
	p.between("file.max_files", f.MaxFiles, 1, 1000)
	switch {
	case f.MaxTotalBytes == 0: // no cap
	case !p.sizeIn("file.max_total_bytes", f.MaxTotalBytes, 1*MiB, 64*1024*GiB):
	case fileOK && f.MaxTotalBytes < f.MaxFileBytes:
		p.add("file.max_total_bytes", "%s is less than file.max_file_bytes (%s); make it at least that, or 0 for no cap", f.MaxTotalBytes, f.MaxFileBytes)
	}
}

// crossSection checks the rules that tie one section to another: label
// names and counts across labels.static and the sources, a file sink that
// may not be off without Loki, and the buffer that must hold two batches.
func (c *Config) crossSection(p *problems) {
	for k := range c.Docker.LabelsFromContainer {
		if _, dup := c.Labels.Static[k]; dup && CheckLabelName(k) == nil && !isBuiltinLabel(k) {
			p.add("docker.labels_from_container."+k, "%q is also in labels.static; keep one", k)
		}
	}
	if n := len(c.Labels.Static) + len(c.Docker.LabelsFromContainer) + len(docker.BuiltinLabels()); n > loki.MaxLabels {
		p.add("labels.static", "with docker.labels_from_container and the %d built-in labels a stream would have %d labels; Loki allows %d, remove some", len(docker.BuiltinLabels()), n, loki.MaxLabels)
	}
	for i, f := range c.Files {
		if n := len(f.Labels) + len(c.Labels.Static) + 2; n > loki.MaxLabels {
			p.add(fmt.Sprintf("files[%d].labels", i), "with labels.static, filename and host a stream would have %d labels; Loki allows %d", n, loki.MaxLabels)
		}
	}
	if c.File.Enabled != nil && !*c.File.Enabled && c.Loki.URL == "" {
		p.add("file.enabled", "false with no loki.url leaves wharf nowhere to send logs; set loki.url or enable the file sink")
	}
	b, batch := c.Buffer.MaxBytes, c.Loki.BatchSize
	if b >= minBufferBytes && b <= maxBufferBytes && batch >= minBatchBytes && batch <= maxBatchBytes && b < 2*batch {
		p.add("buffer.max_bytes", "%s must be at least twice loki.batch_size (%s)", p.val("buffer.max_bytes", b), p.val("loki.batch_size", batch))
	}
}

// isBuiltinLabel reports the labels wharf sets on container streams.
func isBuiltinLabel(name string) bool {
	return slices.Contains(docker.BuiltinLabels(), name)
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

// redactURL hides, in a value that looks like a URL, the password of its
// user information and the values of its query (loki.RedactURL).
func redactURL(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	return loki.RedactURL(s)
}

// regexpProblem adds the problem of the regular expression at path, which
// does not compile. The reason quotes a part of it, so it is left out for
// an expression from ${VAR}.
func (p *problems) regexpProblem(path, expr string, err error, example string) {
	why := " (" + strings.TrimPrefix(err.Error(), "error parsing regexp: ") + ")"
	if _, ok := p.from[path]; ok {
		why = ""
	}
	p.add(path, "%s is not a valid regular expression%s; write it in Go's RE2 syntax, e.g. %q, and quote it in YAML", p.quoted(path, expr), why, example)
}
