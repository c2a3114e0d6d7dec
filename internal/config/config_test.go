package config

import (
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestDefaultIsValid(t *testing.T) {
	cfg := Default()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("default config invalid: %v", err)
	}
	if !cfg.FileEnabled() {
		t.Fatal("with no loki.url the file sink must be on")
	}
}

// TestBadConfigs loads every testdata/bad/*.yaml and checks the error names
// the key and says what to do, as written in the matching .want file.
func TestBadConfigs(t *testing.T) {
	files, _ := filepath.Glob("testdata/bad/*.yaml")
	if len(files) < 20 {
		t.Fatalf("found only %d bad configs", len(files))
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		t.Run(name, func(t *testing.T) {
			want, err := os.ReadFile(strings.TrimSuffix(f, ".yaml") + ".want")
			if err != nil {
				t.Fatal(err)
			}
			data, _ := os.ReadFile(f)
			cfg := Default()
			err = Parse(data, "bad.yaml", os.LookupEnv, &cfg)
			if err == nil {
				err = cfg.Validate()
			}
			if err == nil {
				t.Fatal("no error")
			}
			if w := strings.TrimSpace(string(want)); !strings.Contains(err.Error(), w) {
				t.Fatalf("error\n  %v\ndoes not contain\n  %s", err, w)
			}
		})
	}
}

func TestParseOverridesDefaults(t *testing.T) {
	env := map[string]string{"TENANT": "42", "EMPTY": ""}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cfg := Default()
	err := Parse([]byte(`
data_dir: /var/lib/wharf
loki:
  url: https://logs.example.com/loki/api/v1/push
  tenant_id: ${TENANT}
  headers:
    X-Team: "${EMPTY:-core}"
    X-Cost: "$$5"
  batch_size: 512KiB
  batch_wait: 250ms
docker:
  include:
    - name: "^web"
    - label: com.example.ship=true
  labels_from_container:
    app: com.example.app
labels:
  static:
    env: prod
max_followed_files: 200
files:
  - paths: [/var/log/containers/*.log]
    follow_symlinks: true
  - paths: [/var/log/app/*.log]
`), "t.yaml", lookup, &cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"data_dir", cfg.DataDir, "/var/lib/wharf"},
		{"tenant", cfg.Loki.TenantID, "42"},
		{"default from empty var", cfg.Loki.Headers["X-Team"], "core"},
		{"literal dollar", cfg.Loki.Headers["X-Cost"], "$5"},
		{"batch_size", cfg.Loki.BatchSize, 512 * KiB},
		{"batch_wait", cfg.Loki.BatchWait, 250 * time.Millisecond},
		{"untouched default", cfg.Loki.Timeout, 10 * time.Second},
		{"include", len(cfg.Docker.Include), 2},
		{"label rule", cfg.Docker.Include[1].Label, "com.example.ship=true"},
		{"mapping", cfg.Docker.LabelsFromContainer["app"], "com.example.app"},
		{"file sink off with loki", cfg.FileEnabled(), false},
		{"max_followed_files", cfg.MaxFollowedFiles, 200},
		{"follow_symlinks", cfg.Files[0].FollowSymlinks, true},
		{"follow_symlinks off by default", cfg.Files[1].FollowSymlinks, false},
		{"max_followed_files default", Default().MaxFollowedFiles, 4096},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

// TestParseReadsValuesAsWritten: numbers, booleans and durations are read
// from their text, quoted or not and after ${VAR} expansion; a variable's
// value is text, so an empty one empties a string.
func TestParseReadsValuesAsWritten(t *testing.T) {
	env := map[string]string{"N": "4", "ON": "true", "EMPTY": "", "NULL": "null"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cfg := Default()
	err := Parse([]byte(`
listen: ${EMPTY}
loki:
  parallelism: "3"
  gzip: "true"
  timeout: "5s"
  tenant_id: ${NULL}
  max_backoff: 0x10m
docker:
  startup_concurrency: ${N}
admin:
  pprof: ${ON}
file:
  max_files: 1_000
  enabled: null
`), "t.yaml", lookup, &cfg)
	if err == nil || !strings.Contains(err.Error(), `t.yaml:8: loki.max_backoff: "0x10m" is not a duration`) {
		t.Fatalf("error %v, want one for loki.max_backoff", err)
	}
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"empty variable", cfg.Listen, ""},
		{"quoted count", cfg.Loki.Parallelism, 3},
		{"quoted boolean", cfg.Loki.Gzip, true},
		{"quoted duration", cfg.Loki.Timeout, 5 * time.Second},
		{"text null", cfg.Loki.TenantID, "null"},
		{"count from a variable", cfg.Docker.StartupConcurrency, 4},
		{"boolean from a variable", cfg.Admin.Pprof, true},
		{"count with _", cfg.File.MaxFiles, 1000},
		{"null keeps the default", cfg.File.Enabled == nil, true},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

// TestParseReportsEveryBadValue: yaml.v3 goes on decoding after a bad value,
// so every one is reported, each at its own line and path.
func TestParseReportsEveryBadValue(t *testing.T) {
	cfg := Default()
	err := Parse([]byte(`
loki:
  parallelism: 1.5
  gzip: maybe
  tls: {insecure_skip_verify: 1, ca_file: [x]}
buffer:
  max_bytes: lots
`), "t.yaml", nil, &cfg)
	got := strings.Split(fmt.Sprint(err), "\n")
	want := []string{
		`config: t.yaml:3: loki.parallelism: "1.5" is not a whole number; write one such as 8`,
		`config: t.yaml:4: loki.gzip: "maybe" is not a boolean; write true or false`,
		`config: t.yaml:5: loki.tls.insecure_skip_verify: "1" is not a boolean; write true or false`,
		`config: t.yaml:5: loki.tls.ca_file: expected a single value, found a list`,
		`config: t.yaml:7: buffer.max_bytes: "lots" is not a size; write it like 1048576, 512KiB, 1MiB or 1GiB`,
	}
	if !slices.Equal(got, want) {
		t.Fatalf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestEnvValueCannotChangeStructure(t *testing.T) {
	lookup := func(string) (string, bool) { return "x\nlisten: 0.0.0.0:1", true }
	cfg := Default()
	if err := Parse([]byte("loki:\n  tenant_id: ${T}\n"), "t.yaml", lookup, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:9080" || !strings.Contains(cfg.Loki.TenantID, "listen") {
		t.Fatalf("variable changed the document: listen=%q tenant=%q", cfg.Listen, cfg.Loki.TenantID)
	}
}

func TestRenderRedactsSecrets(t *testing.T) {
	cfg := Default()
	cfg.Loki.URL = "https://user:hunter2@logs.example.com/loki/api/v1/push"
	cfg.Loki.BasicAuth = BasicAuth{Username: "user", Password: "hunter2"}
	cfg.Loki.Bearer = "tok-abc"
	cfg.Loki.Headers = map[string]string{"Authorization": "Bearer xyz", "X-Team": "core"}
	out := cfg.Render()
	for _, secret := range []string{"hunter2", "tok-abc", "xyz"} {
		if strings.Contains(out, secret) {
			t.Errorf("rendered config reveals %q:\n%s", secret, out)
		}
	}
	for _, want := range []string{"batch_wait: 1s", "batch_size: 1MiB", "X-Team: \"core\"", "username: \"user\""} {
		if !strings.Contains(out, want) {
			t.Errorf("rendered config lacks %q:\n%s", want, out)
		}
	}
	// The rendering is itself a valid config that loads back the same.
	back := Default()
	if err := Parse([]byte(out), "render", func(string) (string, bool) { return "", false }, &back); err != nil {
		t.Fatalf("rendered config does not load: %v\n%s", err, out)
	}
	if back.Loki.BatchSize != cfg.Loki.BatchSize || back.ShutdownTimeout != cfg.ShutdownTimeout {
		t.Fatal("rendered config does not round-trip")
	}
}

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]ByteSize{
		"0": 0, "1048576": MiB, "512KiB": 512 * KiB, "1 GiB": GiB, "10MB": 10e6, "1.5MiB": 3 * MiB / 2,
	} {
		got, err := ParseByteSize(in)
		if err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "1XB", "-1", "1e400"} {
		if _, err := ParseByteSize(in); err == nil {
			t.Errorf("ParseByteSize(%q) accepted", in)
		}
	}
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/bad/*.yaml")
	for _, p := range files {
		data, _ := os.ReadFile(p)
		f.Add(data)
	}
	f.Add([]byte("loki:\n  url: http://x/\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := Default()
		if err := Parse(data, "fuzz.yaml", func(string) (string, bool) { return "v", true }, &cfg); err != nil {
			return
		}
		_ = cfg.Validate()
		_ = cfg.Render()
	})
}

// TestResolveLokiCredentials: the Authorization header comes from
// basic_auth, a bearer token or the user in loki.url, secrets read from
// their files, and the URL the client gets holds no credentials.
func TestResolveLokiCredentials(t *testing.T) {
	dir := t.TempDir()
	passwordFile := filepath.Join(dir, "password")
	bearerFile := filepath.Join(dir, "token")
	for p, s := range map[string]string{passwordFile: "pa:ss\n", bearerFile: "  tok-123\n"} {
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	const push = "http://loki:3100/loki/api/v1/push"
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("user:pa:ss"))
	for _, tc := range []struct {
		name     string
		mutate   func(*Loki)
		url      string
		wantAuth string
	}{
		{"none", func(*Loki) {}, push, ""},
		{"basic auth from a file", func(l *Loki) { l.BasicAuth = BasicAuth{Username: "user", PasswordFile: passwordFile} }, push, basic},
		{"basic auth inline", func(l *Loki) { l.BasicAuth = BasicAuth{Username: "user", Password: "pa:ss"} }, push, basic},
		{"bearer from a file", func(l *Loki) { l.BearerFile = bearerFile }, push, "Bearer tok-123"},
		{"bearer inline", func(l *Loki) { l.Bearer = "inline" }, push, "Bearer inline"},
		{"credentials in the url", func(l *Loki) { l.URL = "http://user:pa%3Ass@loki:3100/loki/api/v1/push" }, push, basic},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Default()
			cfg.Loki.URL = push
			tc.mutate(&cfg.Loki)
			r, err := cfg.Resolve()
			if err != nil {
				t.Fatal(err)
			}
			if r.LokiAuth != tc.wantAuth || r.LokiURL != tc.url {
				t.Fatalf("auth %q url %q, want %q %q", r.LokiAuth, r.LokiURL, tc.wantAuth, tc.url)
			}
		})
	}
}

// TestResolveTLSDefault: with loki.tls unset, the server is verified
// against the system's CAs, with TLS 1.2 at least.
func TestResolveTLSDefault(t *testing.T) {
	def := Default()
	if def.Loki.TLS != (TLS{}) {
		t.Fatalf("default loki.tls is %+v, want nothing set (verification on, system CAs)", def.Loki.TLS)
	}
	r, err := def.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	tc := r.LokiTLS
	if tc == nil || tc.InsecureSkipVerify || tc.MinVersion < tls.VersionTLS12 || tc.RootCAs != nil || len(tc.Certificates) != 0 {
		t.Fatalf("default TLS config: %+v", tc)
	}
}

// TestResolveTLSFiles: the CA and the client certificate are loaded into the
// settings the client uses.
func TestResolveTLSFiles(t *testing.T) {
	dir := t.TempDir()
	cert, key := keyPairPEM(t)
	cfg := Default()
	cfg.Loki.TLS = TLS{
		CAFile:     writeTemp(t, dir, "ca.pem", string(cert)),
		CertFile:   writeTemp(t, dir, "cert.pem", string(cert)),
		KeyFile:    writeTemp(t, dir, "key.pem", string(key)),
		ServerName: "loki.internal",
	}
	r, err := cfg.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	if tc := r.LokiTLS; tc.RootCAs == nil || len(tc.Certificates) != 1 || tc.ServerName != "loki.internal" {
		t.Fatalf("TLS config: %+v", tc)
	}
}

// TestFileMaxTotalBytes: file.max_total_bytes caps the file sink's
// directory at 10GiB unless set; 0 turns the cap off; a cap below one file
// is refused, naming both keys.
func TestFileMaxTotalBytes(t *testing.T) {
	if got := Default().File.MaxTotalBytes; got != 10*GiB {
		t.Errorf("default file.max_total_bytes = %v, want 10GiB", got)
	}
	for _, tc := range []struct {
		yaml string
		want ByteSize
		err  string
	}{
		{"file:\n  max_total_bytes: 0\n", 0, ""},
		{"file:\n  max_total_bytes: 200MiB\n", 200 * MiB, ""},
		{"file:\n  max_total_bytes: 1MiB\n  max_file_bytes: 1MiB\n", 1 * MiB, ""},
		{"file:\n  max_total_bytes: 50MiB\n", 0, "file.max_total_bytes: 50MiB is less than file.max_file_bytes (100MiB); make it at least that, or 0 for no cap"},
		{"file:\n  max_total_bytes: 512KiB\n  max_file_bytes: 64KiB\n", 0, "file.max_total_bytes: 512KiB is outside the allowed range 1MiB to 65536GiB"},
		{"file:\n  max_total_bytes: -1GiB\n", 0, "file.max_total_bytes: \"-1GiB\" is negative"},
		// A bad max_file_bytes is reported once, not again through the cap.
		{"file:\n  max_total_bytes: 1GiB\n  max_file_bytes: 100GiB\n", 0, "file.max_file_bytes: 100GiB is outside the allowed range"},
	} {
		t.Run(tc.yaml, func(t *testing.T) {
			cfg := Default()
			err := Parse([]byte(tc.yaml), "t.yaml", nil, &cfg)
			if err == nil {
				err = cfg.Validate()
			}
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				if cfg.File.MaxTotalBytes != tc.want {
					t.Errorf("file.max_total_bytes = %v, want %v", cfg.File.MaxTotalBytes, tc.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) || strings.Count(err.Error(), "\n") > 0 {
				t.Errorf("error %v, want one containing %q", err, tc.err)
			}
		})
	}
}
