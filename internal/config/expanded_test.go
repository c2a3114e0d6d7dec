package config

import (
	"strings"
	"testing"
)

// TestErrorsNeverQuoteAnExpandedValue: a ${VAR} may hold a secret, put by
// mistake under the wrong key; an error about the value it gave names the
// variable (the text as written) and never quotes what it held. Each case
// sets V to a bad value for its key.
func TestErrorsNeverQuoteAnExpandedValue(t *testing.T) {
	const file = "files:\n  - paths: [/var/log/*.log]\n"
	for _, tc := range []struct {
		name, yaml, value, key string
	}{
		{"listen", "listen: ${V}\n", "s3cret-host", "listen"},
		{"listen port", "listen: \"${V}\"\n", "s3cret:99999", "listen"},
		{"log level", "log:\n  level: ${V}\n", "s3cret", "log.level"},
		{"read_from", "docker:\n  read_from: ${V}\n", "s3cret", "docker.read_from"},
		{"loki url scheme", "loki:\n  url: ${V}\n", "s3cret.example:3100/loki/api/v1/push", "loki.url"},
		{"loki url without path", "loki:\n  url: ${V}\n", "http://s3cret.example:3100", "loki.url"},
		{"loki url unparsable", "loki:\n  url: ${V}\n", "http://s3cret.example/%zz", "loki.url"},
		{"loki url in a longer text", "loki:\n  url: \"http://${V}\"\n", "s3cret.example:3100", "loki.url"},
		{"docker host", "docker:\n  host: ${V}\n", "ssh://s3cret", "docker.host"},
		{"container rule regex", "docker:\n  include:\n    - name: ${V}\n", "s3cret(", "docker.include[0].name"},
		{"container label rule", "docker:\n  include:\n    - label: ${V}\n", "=s3cret", "docker.include[0].label"},
		{"glob", "files:\n  - paths: [\"${V}\"]\n", "/s3cret/[", "files[0].paths[0]"},
		{"multiline regex", file + "    multiline: {start: \"${V}\"}\n", "s3cret[", "files[0].multiline.start"},
		{"duration word", "loki:\n  timeout: ${V}\n", "s3cret", "loki.timeout"},
		{"duration too long", "shutdown_timeout: ${V}\n", "999h", "shutdown_timeout"},
		{"size word", "buffer:\n  max_bytes: ${V}\n", "s3cret", "buffer.max_bytes"},
		{"size out of range", "queue:\n  max_bytes: ${V}\n", "3TiB", "queue.max_bytes"},
		{"count word", "loki:\n  parallelism: ${V}\n", "s3cret", "loki.parallelism"},
		{"count out of range", "loki:\n  parallelism: ${V}\n", "4242", "loki.parallelism"},
		{"boolean word", "queue:\n  enabled: ${V}\n", "s3cret", "queue.enabled"},
		{"backoff order", "loki:\n  min_backoff: ${V}\n  max_backoff: 1s\n", "42m", "loki.max_backoff"},
		{"CA file", "loki:\n  url: http://loki:3100/loki/api/v1/push\n  tls: {ca_file: \"${V}\"}\n", "/nonexistent/s3cret.pem", "loki.tls.ca_file"},
		{"password file", "loki:\n  url: http://loki:3100/loki/api/v1/push\n  bearer_token_file: ${V}\n", "/nonexistent/s3cret", "loki.bearer_token_file"},
		{"admin token file", "admin:\n  token_file: ${V}\n", "/nonexistent/s3cret", "admin.token_file"},
		{"through an alias", "docker:\n  include:\n    - name: &n ${V}\n  exclude:\n    - name: *n\n", "s3cret(", "docker.include[0].name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := func(k string) (string, bool) { return tc.value, k == "V" }
			err := loadBytes(tc.yaml, env)
			errs := configErrors(t, err)
			if len(errs) == 0 {
				t.Fatalf("accepted V=%q", tc.value)
			}
			if errs[0].Path != tc.key {
				t.Errorf("the first error names %q, want %q: %v", errs[0].Path, tc.key, err)
			}
			msg := err.Error()
			if strings.Contains(msg, tc.value) || strings.Contains(msg, "s3cret") {
				t.Errorf("the error quotes what ${V} held:\n%s", msg)
			}
			if !strings.Contains(msg, "${V}") {
				t.Errorf("the error does not name ${V}:\n%s", msg)
			}
		})
	}
}

// TestAValueSetSinceIsQuoted: a flag that replaces a value from ${VAR}
// (--loki-url) is quoted in errors as usual, since it did not come from
// the variable.
func TestAValueSetSinceIsQuoted(t *testing.T) {
	cfg := Default()
	env := func(string) (string, bool) { return "http://s3cret:3100/loki/api/v1/push", true }
	if err := Parse([]byte("loki:\n  url: ${V}\n"), "wharf.yaml", env, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg.Loki.URL = "http://flag:3100"
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), `"http://flag:3100" has no path`) {
		t.Errorf("error %v, want it to quote the URL set since", err)
	}
}
