package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// configErrors flattens what Parse or Validate returned into the *Errors
// it holds, failing the test on any other kind of error.
func configErrors(t *testing.T, err error) []*Error {
	t.Helper()
	var list []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	} else if err != nil {
		list = []error{err}
	}
	var out []*Error
	for _, e := range list {
		var ce *Error
		if !errors.As(e, &ce) {
			t.Fatalf("error %q (%T) is not a *config.Error naming a key", e, e)
		}
		out = append(out, ce)
	}
	return out
}

// loadBytes is Load on data: parse over the defaults, then validate.
func loadBytes(data string, lookup func(string) (string, bool)) error {
	cfg := Default()
	if err := Parse([]byte(data), "wharf.yaml", lookup, &cfg); err != nil {
		return err
	}
	return cfg.Validate()
}

// writeTemp writes content to a new file in dir and returns its path.
func writeTemp(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// keyPairPEM makes a self-signed certificate and its key, PEM-encoded.
func keyPairPEM(t *testing.T) (cert, key []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "wharf-test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

// TestBadInputNamesTheKey feeds one fault at a time, of every kind a
// configuration can hold, and checks that each gives exactly one error, that
// the error names the exact YAML key, says how to fix it, never panics or
// hangs, and never repeats a secret.
func TestBadInputNamesTheKey(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := keyPairPEM(t)
	_, otherKey := keyPairPEM(t)
	files := strings.NewReplacer(
		"{dir}", dir,
		"{fifo}", fifo,
		"{missing}", filepath.Join(dir, "missing"),
		"{empty}", writeTemp(t, dir, "empty", "\n\n"),
		"{two-lines}", writeTemp(t, dir, "two-lines", "s3cret\nmore\n"),
		"{big}", writeTemp(t, dir, "big", strings.Repeat("s3cret", 20000)),
		"{short-token}", writeTemp(t, dir, "short-token", "s3cret\n"),
		"{not-pem}", writeTemp(t, dir, "not-pem", "s3cret"),
		"{cert}", writeTemp(t, dir, "cert.pem", string(cert)),
		"{other-key}", writeTemp(t, dir, "other-key.pem", string(otherKey)),
	)
	const url = "  url: http://loki:3100/loki/api/v1/push\n"
	const file = "files:\n  - paths: [/var/log/app/*.log]\n"

	for _, tc := range []struct {
		class, name string
		yaml        string
		key         string // the exact path the error names
		fix         string // part of the message saying what to do
	}{
		{"wrong type", "scalar for a section", "docker: yes\n", "docker", "expected a mapping of keys, found the value \"yes\""},
		{"wrong type", "list for a value", "listen: [a, b]\n", "listen", "expected a single value, found a list"},
		{"wrong type", "mapping for a list", "files:\n  paths: /x\n", "files", "expected a list, found a mapping"},
		{"wrong type", "list for a map", "labels:\n  static: [a]\n", "labels.static", "expected a mapping of names to values"},
		{"wrong type", "word for a number", "docker:\n  startup_concurrency: many\n", "docker.startup_concurrency", "is not a whole number; write one such as 8"},
		{"wrong type", "fraction for a number", "loki:\n  parallelism: 1.5\n", "loki.parallelism", "is not a whole number"},
		{"wrong type", "number out of range", "file:\n  max_files: 99999999999999999999\n", "file.max_files", "is too large; write a whole number"},
		{"wrong type", "word for a boolean", "queue:\n  enabled: perhaps\n", "queue.enabled", "write true or false"},
		{"wrong type", "number for a duration", "loki:\n  timeout: 30\n", "loki.timeout", "write it like 10s, 1m30s or 500ms"},
		{"wrong type", "word for a size", "buffer:\n  max_bytes: lots\n", "buffer.max_bytes", "write it like 1048576, 512KiB, 1MiB or 1GiB"},
		{"wrong type", "no value in a map", "labels:\n  static:\n    env:\n", "labels.static.env", "missing value"},
		{"wrong type", "mapping for a list item", "docker:\n  include: [web]\n", "docker.include[0]", "expected a mapping of keys"},

		{"unknown key", "top level", "lsiten: 127.0.0.1:9080\n", "lsiten", "unknown key; valid keys here are: data_dir, listen"},
		{"unknown key", "nested", "loki:\n  tls:\n    ca: /x\n", "loki.tls.ca", "valid keys here are: ca_file"},
		{"unknown key", "in a list item", "files:\n  - path: [/x]\n", "files[0].path", "valid keys here are: paths"},
		{"unknown key", "admin section", "admin:\n  tokn: x\n", "admin.tokn", "valid keys here are: pprof, token, token_file"},
		{"unknown key", "given twice", "admin:\n  pprof: true\n  pprof: false\n", "admin.pprof", "key given twice"},

		{"size", "negative", "loki:\n  batch_size: -1MiB\n", "loki.batch_size", "is negative; write a size like"},
		{"size", "zero", "buffer:\n  max_bytes: 0\n", "buffer.max_bytes", "outside the allowed range 1MiB to 16GiB"},
		{"size", "absurd", "queue:\n  max_bytes: 10TiB\n", "queue.max_bytes", "outside the allowed range 16MiB to 1024GiB"},
		{"size", "overflow", "docker:\n  max_line_bytes: 99999999999999999999GiB\n", "docker.max_line_bytes", "too large to be a size"},
		{"size", "unknown unit", "file:\n  max_file_bytes: 10XB\n", "file.max_file_bytes", "is not a size"},
		{"size", "above batch limit, no cascade", "loki:\n  batch_size: 1GiB\n", "loki.batch_size", "outside the allowed range 1KiB to 64MiB"},
		{"size", "in a files entry", file + "    max_line_bytes: 10\n", "files[0].max_line_bytes", "outside the allowed range 1KiB to 64MiB"},
		{"size", "buffer below two batches", "loki:\n  batch_size: 8MiB\n", "buffer.max_bytes", "must be at least twice loki.batch_size"},

		{"duration", "negative", "loki:\n  batch_wait: -1s\n", "loki.batch_wait", "must be greater than zero"},
		{"duration", "zero", "queue:\n  sync_interval: 0s\n", "queue.sync_interval", "must be greater than zero"},
		{"duration", "absurd", "shutdown_timeout: 8760h\n", "shutdown_timeout", "is more than the maximum of 24h0m0s"},
		{"duration", "absurd max_age", "loki:\n  max_age: 100000h\n", "loki.max_age", "is more than the maximum of 87600h0m0s"},
		{"duration", "overflow", "loki:\n  max_future: 99999999999h\n", "loki.max_future", "is not a duration"},
		{"duration", "negative backoff, no cascade", "loki:\n  max_backoff: -1s\n", "loki.max_backoff", "must be greater than zero"},
		{"duration", "backoff order", "loki:\n  min_backoff: 1m\n  max_backoff: 1s\n", "loki.max_backoff", "is less than loki.min_backoff"},
		{"duration", "in a files entry", file + "    multiline: {max_wait: 2h}\n", "files[0].multiline.max_wait", "more than the maximum of 1h0m0s"},

		{"count", "zero parallelism", "loki:\n  parallelism: 0\n", "loki.parallelism", "must be between 1 and 64"},
		{"count", "negative concurrency", "docker:\n  startup_concurrency: -3\n", "docker.startup_concurrency", "must be between 1 and 256"},
		{"count", "multiline lines", file + "    multiline: {max_lines: -1}\n", "files[0].multiline.max_lines", "must be between 1 and 100000"},
		{"count", "no files followed", "max_followed_files: 0\n", "max_followed_files", "must be between 1 and 1000000"},

		{"secret file", "missing", "loki:\n" + url + "  bearer_token_file: {missing}\n", "loki.bearer_token_file", "no such file or directory; point it at a file wharf can read that holds the bearer token"},
		{"secret file", "a directory", "loki:\n" + url + "  basic_auth: {username: u, password_file: {dir}}\n", "loki.basic_auth.password_file", "is a directory; point it at a file that holds the password"},
		{"secret file", "a FIFO (would block)", "loki:\n" + url + "  bearer_token_file: {fifo}\n", "loki.bearer_token_file", "is not a regular file"},
		{"secret file", "empty", "loki:\n" + url + "  bearer_token_file: {empty}\n", "loki.bearer_token_file", "is empty; write the bearer token into it, on one line"},
		{"secret file", "two lines", "loki:\n" + url + "  basic_auth: {username: u, password_file: {two-lines}}\n", "loki.basic_auth.password_file", "holds more than one line; it must hold the password alone"},
		{"secret file", "too big", "loki:\n" + url + "  bearer_token_file: {big}\n", "loki.bearer_token_file", "more than the 65536 a file holding the bearer token may have"},
		{"secret file", "admin token missing", "admin:\n  token_file: {missing}\n", "admin.token_file", "point it at a file wharf can read that holds the admin token"},
		{"secret file", "admin token too short", "admin:\n  token_file: {short-token}\n", "admin.token_file", "the token has 6 characters; use at least 16"},

		{"secret", "both password and file", "loki:\n" + url + "  basic_auth: {username: u, password: x, password_file: {short-token}}\n", "loki.basic_auth", "set password or password_file, not both"},
		{"secret", "password without user", "loki:\n" + url + "  basic_auth: {password: s3cret}\n", "loki.basic_auth.username", "a password needs a username"},
		{"secret", "basic and bearer", "loki:\n" + url + "  basic_auth: {username: u, password: s3cret}\n  bearer_token_file: {short-token}\n", "loki.bearer_token", "set basic_auth or a bearer token, not both"},
		{"secret", "check's placeholder pasted back", "loki:\n" + url + "  bearer_token: \"<redacted>\"\n", "loki.bearer_token", "holds the placeholder that `wharf check` prints"},
		{"secret", "admin token and file", "admin:\n  token: 0123456789abcdef0\n  token_file: /x\n", "admin.token", "set token or token_file, not both"},
		{"secret", "admin token too short", "admin:\n  token: s3cret\n", "admin.token", "use at least 16"},
		{"secret", "admin token with a space", "admin:\n  token: \"s3cret s3cret s3cret\"\n", "admin.token", "printable ASCII"},
		{"secret", "admin token unset variable", "admin:\n  token: ${WHARF_TEST_SURELY_UNSET_TOKEN}\n", "admin.token", "environment variable WHARF_TEST_SURELY_UNSET_TOKEN is not set; set it in wharf's environment, or use the _file key"},
		{"secret", "unterminated ${ in a secret", "loki:\n  bearer_token: \"s3cret${oops\"\n", "loki.bearer_token", "unterminated ${ in the secret; close it with }"},
		{"secret", "unterminated ${ in an auth header", "loki:\n  headers: {X-Api-Token: \"s3cret${oops\"}\n", "loki.headers.X-Api-Token", "unterminated ${ in the secret"},

		{"tls file", "CA missing", "loki:\n" + url + "  tls: {ca_file: {missing}}\n", "loki.tls.ca_file", "no such file or directory"},
		{"tls file", "CA not PEM", "loki:\n" + url + "  tls: {ca_file: {not-pem}}\n", "loki.tls.ca_file", "holds no PEM certificate; set it to the CA certificate"},
		{"tls file", "CA is a directory", "loki:\n" + url + "  tls: {ca_file: {dir}}\n", "loki.tls.ca_file", "is a directory"},
		{"tls file", "cert without key", "loki:\n" + url + "  tls: {cert_file: {cert}}\n", "loki.tls", "cert_file and key_file go together; set both or neither"},
		{"tls file", "key of another cert", "loki:\n" + url + "  tls: {cert_file: {cert}, key_file: {other-key}}\n", "loki.tls.cert_file", "do not load as a certificate and its key"},

		{"url", "no scheme", "loki:\n  url: loki:3100/loki/api/v1/push\n", "loki.url", "must start with http:// or https://"},
		{"url", "other scheme", "loki:\n  url: ftp://loki/push\n", "loki.url", "must start with http:// or https://"},
		{"url", "no host", "loki:\n  url: http:///loki/api/v1/push\n", "loki.url", "has no host"},
		{"url", "no path", "loki:\n  url: http://loki:3100\n", "loki.url", "has no path; Loki's push endpoint is /loki/api/v1/push"},
		{"url", "fragment", "loki:\n  url: http://loki:3100/loki/api/v1/push#x\n", "loki.url", "has a fragment"},
		{"url", "unparsable, with a password", "loki:\n  url: \"http://user:s3cret@lo ki/%zz\"\n", "loki.url", "is not a URL"},
		{"url", "user in URL and basic_auth", "loki:\n  url: http://u@loki/push\n  basic_auth: {username: u, password: s3cret}\n", "loki.url", "holds a user name and loki.basic_auth is set"},
		{"url", "docker host scheme", "docker:\n  host: ssh://user@host\n", "docker.host", "write unix:///var/run/docker.sock or tcp://host:2375"},
		{"url", "docker socket without path", "docker:\n  host: unix://\n", "docker.host", "has no socket path"},
		{"url", "listen without port", "listen: localhost\n", "listen", "is not host:port (e.g. 127.0.0.1:9080)"},
		{"url", "listen port out of range", "listen: 127.0.0.1:99999\n", "listen", "the port must be a number from 0 to 65535"},

		{"regex", "container name", "docker:\n  include:\n    - name: \"web(\"\n", "docker.include[0].name", "is not a valid regular expression"},
		{"regex", "container image", "docker:\n  exclude:\n    - label: a\n    - image: \"*nginx\"\n", "docker.exclude[1].image", "is not a valid regular expression"},
		{"regex", "multiline start", file + "    multiline: {start: \"(\"}\n", "files[0].multiline.start", "is not a valid regular expression"},
		{"regex", "empty rule", "docker:\n  exclude:\n    - {}\n", "docker.exclude[0]", "empty rule; set name, image or label"},
		{"regex", "label rule without key", "docker:\n  include:\n    - label: =x\n", "docker.include[0].label", "has no key; write key or key=value"},

		{"glob", "path", "files:\n  - paths: [\"/var/log/[\"]\n", "files[0].paths[0]", "is not a valid glob pattern"},
		{"glob", "exclude", file + "    exclude: [\"*.log\", \"[\"]\n", "files[0].exclude[1]", "is not a valid glob pattern"},
		{"glob", "empty path", "files:\n  - paths: [/x, \"\"]\n", "files[0].paths[1]", "is not a valid glob pattern"},
		{"glob", "no paths", "files:\n  - exclude: [\"*.gz\"]\n", "files[0].paths", "no paths; list glob patterns"},

		{"header", "reserved", "loki:\n  headers: {Content-Type: text/plain}\n", "loki.headers.Content-Type", "wharf sets this header itself; remove it"},
		{"header", "bad name", "loki:\n  headers: {\"X Team\": a}\n", "loki.headers.X Team", "not a valid HTTP header name"},
		{"header", "line break", "loki:\n  headers: {X-Team: \"a\\r\\nX-Evil: b\"}\n", "loki.headers.X-Team", "holds a line break"},
		{"header", "authorization twice", "loki:\n" + url + "  bearer_token: s3cret\n  headers: {authorization: x}\n", "loki.headers.authorization", "conflicts with loki.basic_auth or loki.bearer_token"},
		{"header", "tenant twice", "loki:\n  tenant_id: a\n  headers: {X-Scope-OrgID: b}\n", "loki.headers.X-Scope-OrgID", "conflicts with loki.tenant_id"},

		{"label", "invalid name", "labels:\n  static: {my-env: prod}\n", "labels.static.my-env", "not a valid label name"},
		{"label", "built in", "docker:\n  labels_from_container: {stream: x}\n", "docker.labels_from_container.stream", "is set by wharf itself"},
		{"enum", "log level", "log:\n  level: verbose\n", "log.level", "is not one of debug, info, warn, error"},
		{"enum", "read_from", "docker:\n  read_from: socket\n", "docker.read_from", "is not one of api, auto, file"},
		{"env", "unset variable", "data_dir: ${WHARF_TEST_SURELY_UNSET}\n", "data_dir", "environment variable WHARF_TEST_SURELY_UNSET is not set"},
		{"env", "bad variable name", "data_dir: ${1X}\n", "data_dir", "invalid variable name \"1X\""},
	} {
		t.Run(tc.class+"/"+tc.name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() { done <- loadBytes(files.Replace(tc.yaml), func(string) (string, bool) { return "", false }) }()
			var err error
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("loading hangs")
			}
			errs := configErrors(t, err)
			if len(errs) != 1 {
				t.Fatalf("%d errors, want exactly one:\n%v", len(errs), err)
			}
			e := errs[0]
			msg := e.Error()
			if e.Path != tc.key || !strings.Contains(msg, tc.key+": ") {
				t.Errorf("error names %q, want %q: %s", e.Path, tc.key, msg)
			}
			if !strings.Contains(msg, tc.fix) {
				t.Errorf("error\n  %s\ndoes not say\n  %s", msg, tc.fix)
			}
			if strings.Contains(msg, "s3cret") {
				t.Errorf("error reveals a secret: %s", msg)
			}
		})
	}
}

func TestUnreadableSecretFile(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads files whatever their mode")
	}
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte("0123456789abcdef0123"), 0); err != nil {
		t.Fatal(err)
	}
	errs := configErrors(t, loadBytes("admin:\n  token_file: "+p+"\n", nil))
	if len(errs) != 1 || errs[0].Path != "admin.token_file" || !strings.Contains(errs[0].Msg, "permission denied") {
		t.Fatalf("errors %v", errs)
	}
}

// TestAliasExpansionIsBounded: aliases are decoded at each use, so a few
// kilobytes could expand into billions of values; the decoder stops.
func TestAliasExpansionIsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("files:\n  - &f {paths: &p [")
	for i := range 2000 {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("/x")
	}
	b.WriteString("], exclude: *p}\n")
	for range 1000 {
		b.WriteString("  - *f\n")
	}
	start := time.Now()
	err := loadBytes(b.String(), nil)
	errs := configErrors(t, err)
	if len(errs) != 1 || !strings.HasPrefix(errs[0].Path, "files[") || !strings.Contains(errs[0].Msg, "without repeated *aliases") {
		t.Fatalf("errors %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v", d)
	}
}

// TestManyKeysAreBounded: a mapping of 30,000 keys is refused by the same
// bound as an alias bomb, before yaml.v3 compares its keys pairwise (which
// would take seconds).
func TestManyKeysAreBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("labels:\n  static:\n")
	for i := range 30_000 {
		fmt.Fprintf(&b, "    k%d: v\n", i)
	}
	start := time.Now()
	errs := configErrors(t, loadBytes(b.String(), nil))
	if len(errs) != 1 || !strings.HasPrefix(errs[0].Path, "labels.static.k") || !strings.Contains(errs[0].Msg, "expands to more than") {
		t.Fatalf("errors %v", errs)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("took %v", d)
	}
}

func TestReadRefusesOddConfigFiles(t *testing.T) {
	if _, err := Read(t.TempDir()); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("directory: %v", err)
	}
	if _, err := Read("/nonexistent/wharf.yaml"); err == nil || !strings.Contains(err.Error(), "pass an existing file to --config") {
		t.Errorf("missing: %v", err)
	}
	if _, err := os.Stat("/dev/zero"); err == nil {
		if _, err := Read("/dev/zero"); err == nil || !strings.Contains(err.Error(), "larger than 4 MiB") {
			t.Errorf("/dev/zero: %v", err)
		}
	}
}

func TestAdminToken(t *testing.T) {
	dir := t.TempDir()
	const tok = "0123456789abcdef0123456789abcdef"
	file := writeTemp(t, dir, "token", "  "+tok+"\n")
	env := func(k string) (string, bool) {
		if k == "WHARF_ADMIN_TOKEN" {
			return tok, true
		}
		return "", false
	}
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"none", "", ""},
		{"inline from the environment", "admin:\n  token: ${WHARF_ADMIN_TOKEN}\n", tok},
		{"file, trimmed", "admin:\n  token_file: " + file + "\n", tok},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Default()
			if err := Parse([]byte(tc.yaml), "t.yaml", env, &cfg); err != nil {
				t.Fatal(err)
			}
			r, err := cfg.Resolve()
			if err != nil || r.AdminToken != tc.want {
				t.Fatalf("AdminToken = %q, %v; want %q", r.AdminToken, err, tc.want)
			}
			out := cfg.Render()
			if strings.Contains(out, tok) {
				t.Fatalf("rendered config reveals the token:\n%s", out)
			}
			if tc.want != "" && tc.name != "file, trimmed" && !strings.Contains(out, "token: \"<redacted>\"") {
				t.Fatalf("rendered config does not show the token redacted:\n%s", out)
			}
		})
	}
}

// TestErrorsNeverQuoteSecrets checks the messages of secrets gone wrong in
// every way that quotes a value elsewhere.
func TestErrorsNeverQuoteSecrets(t *testing.T) {
	const secret = "hunter2hunter2hunter2"
	for _, y := range []string{
		"loki:\n  url: \"http://u:" + secret + "@lo ki/%zz\"\n",
		"loki:\n  url: \"ftp://u:" + secret + "@loki/push\"\n",
		"loki:\n  url: \"http://u:" + secret + "@loki\"\n",
		"loki:\n  basic_auth: {username: u, password: \"" + secret + "${\"}\n",
		"loki:\n  basic_auth: {username: u, password: \"" + secret + "${9}\"}\n",
		"loki:\n  headers: {Authorization: \"" + secret + "${\"}\n",
		"admin:\n  token: \"" + secret + " x\"\n",
		"admin:\n  token: \"" + secret + "${\"\n",
		"docker:\n  host: \"ftp://u:" + secret + "@h\"\n",
	} {
		err := loadBytes(y, nil)
		if err == nil {
			t.Errorf("accepted %q", y)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error reveals the secret: %v", err)
		}
	}
}

func ExampleConfig_Validate() {
	cfg := Default()
	cfg.Loki.URL = "http://loki:3100"
	cfg.Loki.BatchWait = -time.Second
	fmt.Println(cfg.Validate())
	// Output:
	// config: loki.url: "http://loki:3100" has no path; Loki's push endpoint is /loki/api/v1/push (e.g. http://loki:3100/loki/api/v1/push)
	// config: loki.batch_wait: -1s must be greater than zero
}
