package config

import (
	"os"
	"path/filepath"
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
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
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
