package main

import (
	"bytes"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wharf-logs/wharf/internal/agent"
	"github.com/wharf-logs/wharf/internal/config"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "wharf.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name      string
		config    string
		args      []string
		code      int
		out, errs string
		notInOut  string
	}{
		{
			name:   "valid, secrets redacted",
			config: "loki:\n  url: http://loki:3100/loki/api/v1/push\n  basic_auth:\n    username: u\n    password: s3cret\n",
			code:   exitOK, out: `password: "<redacted>"`, errs: "configuration is valid", notInOut: "s3cret",
		},
		{
			name:   "unknown key names its path",
			config: "docker:\n  star_at: end\n",
			code:   exitFailure, errs: "wharf.yaml:2: docker.star_at: unknown key",
		},
		{
			name:   "flag overrides the file",
			config: "listen: bad\n",
			args:   []string{"--listen", "127.0.0.1:1"},
			code:   exitOK, out: `listen: "127.0.0.1:1"`,
		},
		{
			name:   "exposed admin without a token is warned about",
			config: "listen: 0.0.0.0:9080\n",
			code:   exitOK, errs: "wharf: warning: listen \"0.0.0.0:9080\" is not a loopback address and admin.token is not set",
		},
		{
			name:   "password in --loki-url is warned about",
			config: "",
			args:   []string{"--loki-url", "http://u:s3cret@loki:3100/loki/api/v1/push"},
			code:   exitOK, errs: "--loki-url holds a password", notInOut: "s3cret",
		},
		{
			name:   "query values of loki.url are hidden",
			config: "loki:\n  url: https://loki:3100/loki/api/v1/push?api_key=s3cret&tenant=s3cret\n",
			code:   exitOK, out: `url: "https://loki:3100/loki/api/v1/push?api_key=xxxxx&tenant=xxxxx"`, notInOut: "s3cret",
		},
		{
			name:   "credentials over http are warned about",
			config: "loki:\n  url: http://loki:3100/loki/api/v1/push\n  tenant_id: team-a\n",
			code:   exitOK, errs: "wharf: warning: loki.url uses http://, so loki.tenant_id would go to loki:3100 unencrypted",
		},
		{
			name:   "bad flag value is validated",
			config: "",
			args:   []string{"--loki-url", "loki:3100"},
			code:   exitFailure, errs: "loki.url",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errs bytes.Buffer
			args := append([]string{"check", "--config", writeConfig(t, tt.config)}, tt.args...)
			code := run(args, &out, &errs)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, out.String(), errs.String())
			}
			if !strings.Contains(out.String(), tt.out) || !strings.Contains(errs.String(), tt.errs) {
				t.Fatalf("stdout %q / stderr %q; want %q / %q", out.String(), errs.String(), tt.out, tt.errs)
			}
			if tt.notInOut != "" && strings.Contains(out.String()+errs.String(), tt.notInOut) {
				t.Fatalf("output reveals %q", tt.notInOut)
			}
		})
	}
}

func TestRunRejectsBadConfigWithUsageCode(t *testing.T) {
	var out, errs bytes.Buffer
	code := run([]string{"run", "--config", writeConfig(t, "buffer:\n  max_bytes: -1\n")}, &out, &errs)
	if code != exitUsage || !strings.Contains(errs.String(), "buffer.max_bytes") {
		t.Fatalf("exit %d, stderr %q", code, errs.String())
	}
	code = run([]string{"run", "--config", "/nonexistent/wharf.yaml"}, &out, &errs)
	if code != exitUsage || !strings.Contains(errs.String(), "/nonexistent/wharf.yaml") {
		t.Fatalf("missing file: exit %d, stderr %q", code, errs.String())
	}
}

func TestVersionAndUnknownCommand(t *testing.T) {
	var out, errs bytes.Buffer
	if code := run([]string{"version"}, &out, &errs); code != exitOK || !strings.HasPrefix(out.String(), "wharf ") {
		t.Fatalf("version: %d %q", code, out.String())
	}
	if code := run([]string{"frobnicate"}, &out, &errs); code != exitUsage || !strings.Contains(errs.String(), "unknown command") {
		t.Fatalf("unknown: %d %q", code, errs.String())
	}
}

// freePort returns a loopback address no one listens on.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestRunBadConfigStartsNothing runs `wharf run` on configs with one fault
// each: it must exit 2 with an error naming the key, without building the
// agent, opening the admin port or creating the data directory.
func TestRunBadConfigStartsNothing(t *testing.T) {
	built := false
	newAgent = func(config.Config, agent.Deps) (*agent.Agent, error) {
		built = true
		return nil, errors.New("the agent must not be built")
	}
	defer func() { newAgent = agent.New }()

	secretDir := t.TempDir()
	empty := filepath.Join(secretDir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, config string
		args         []string
		key          string
	}{
		{"wrong type", "docker:\n  include: web\n", nil, "docker.include: expected a list"},
		{"unknown key", "admin:\n  tokne: x\n", nil, "admin.tokne: unknown key"},
		{"negative size", "buffer:\n  max_bytes: -8MiB\n", nil, "buffer.max_bytes: \"-8MiB\" is negative"},
		{"absurd duration", "shutdown_timeout: 1000h\n", nil, "shutdown_timeout: 1000h0m0s is more than the maximum"},
		{"secret file is a directory", "loki:\n  url: http://loki:3100/loki/api/v1/push\n  bearer_token_file: " + secretDir + "\n", nil, "loki.bearer_token_file: \"" + secretDir + "\" is a directory"},
		{"empty secret file", "loki:\n  url: http://loki:3100/loki/api/v1/push\n  basic_auth: {username: u, password_file: " + empty + "}\n", nil, "loki.basic_auth.password_file: \"" + empty + "\" is empty"},
		{"admin token too short", "admin:\n  token: s3cret\n", nil, "admin.token: the token has 6 characters"},
		{"bad url", "", []string{"--loki-url", "http://loki:3100"}, "loki.url: \"http://loki:3100\" has no path"},
		{"bad regex", "docker:\n  exclude:\n    - image: \"(\"\n", nil, "docker.exclude[0].image"},
		{"bad multiline regex", "files:\n  - paths: [/var/log/*.log]\n    multiline: {start: \"[\"}\n", nil, "files[0].multiline.start"},
		{"bad glob", "files:\n  - paths: [\"/var/log/[\"]\n", nil, "files[0].paths[0]: \"/var/log/[\" is not a valid glob pattern"},
		{"invalid YAML", "loki: [\n", nil, "invalid YAML"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			built = false
			listen := freePort(t)
			dataDir := filepath.Join(t.TempDir(), "data")
			body := "listen: " + listen + "\ndata_dir: " + dataDir + "\n" + tc.config
			var out, errs bytes.Buffer
			args := append([]string{"run", "--config", writeConfig(t, body)}, tc.args...)
			code := run(args, &out, &errs)
			if code != exitUsage {
				t.Fatalf("exit %d, want %d\nstderr: %s", code, exitUsage, errs.String())
			}
			if !strings.Contains(errs.String(), tc.key) {
				t.Fatalf("stderr does not name %q:\n%s", tc.key, errs.String())
			}
			if n := strings.Count(strings.TrimSpace(errs.String()), "\n") + 1; n != 1 {
				t.Errorf("%d lines on stderr, want one error:\n%s", n, errs.String())
			}
			if strings.Contains(errs.String(), "s3cret") || strings.Contains(errs.String(), "panic") {
				t.Errorf("stderr: %s", errs.String())
			}
			if built {
				t.Error("the agent was built from a bad config")
			}
			if c, err := net.DialTimeout("tcp", listen, time.Second); err == nil {
				c.Close()
				t.Errorf("the admin port %s is open", listen)
			}
			if _, err := os.Stat(dataDir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("data_dir was created (%v)", err)
			}
		})
	}
}

func TestCheckRedactsEverySecret(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("file-secret-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("WHARF_TEST_ADMIN_TOKEN", "env-secret-0123456789")
	secrets := []string{"env-secret-0123456789", "file-secret-0123456789", "pw-secret", "bearer-secret", "url-secret", "header-secret"}
	for _, tc := range []struct{ name, config string }{
		{"admin token from env, basic auth, URL password", `admin:
  token: ${WHARF_TEST_ADMIN_TOKEN}
loki:
  url: https://u:url-secret@loki:3100/loki/api/v1/push
  headers: {X-Api-Token: header-secret, Cookie: header-secret}
`},
		{"admin token file, bearer token", `admin:
  token_file: ` + tokenFile + `
loki:
  url: https://loki:3100/loki/api/v1/push
  bearer_token: bearer-secret
`},
		{"basic auth password", `loki:
  url: https://loki:3100/loki/api/v1/push
  basic_auth: {username: u, password: pw-secret}
`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errs bytes.Buffer
			if code := run([]string{"check", "--config", writeConfig(t, tc.config)}, &out, &errs); code != exitOK {
				t.Fatalf("exit %d: %s", code, errs.String())
			}
			for _, s := range secrets {
				if strings.Contains(out.String()+errs.String(), s) {
					t.Errorf("check reveals %q:\n%s", s, out.String())
				}
			}
			if !strings.Contains(out.String(), "admin:\n") || !strings.Contains(out.String(), "token_file:") {
				t.Errorf("check does not show the admin section:\n%s", out.String())
			}
		})
	}
}

// TestNoFlagTakesASecret: the command line is visible to every user of the
// host, so credentials must never be needed there.
func TestNoFlagTakesASecret(t *testing.T) {
	var usage bytes.Buffer
	if _, err := parseFlags("run", []string{"-h"}, &usage); err == nil {
		t.Fatal("-h did not stop parsing")
	}
	for _, word := range []string{"password", "token", "secret", "bearer", "key", "auth"} {
		for _, line := range strings.Split(usage.String(), "\n") {
			if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], "-") && strings.Contains(strings.ToLower(f[0]), word) {
				t.Errorf("flag %s takes a secret", f[0])
			}
		}
	}
	if !urlHasPassword("http://u:p@loki/push") || urlHasPassword("http://u@loki/push") || urlHasPassword("http://loki/push") {
		t.Error("urlHasPassword")
	}
}

func TestExposedAdmin(t *testing.T) {
	for listen, want := range map[string]bool{
		"":               false,
		"127.0.0.1:9080": false,
		"[::1]:9080":     false,
		"localhost:9080": false,
		":9080":          true,
		"0.0.0.0:9080":   true,
		"[::]:9080":      true,
		"10.0.0.5:9080":  true,
		"wharf-host:80":  true,
	} {
		cfg := config.Default()
		cfg.Listen = listen
		if got := exposedAdmin(cfg); got != want {
			t.Errorf("listen %q: exposed %v, want %v", listen, got, want)
		}
		cfg.Admin.Token = "0123456789abcdef0123"
		if exposedAdmin(cfg) {
			t.Errorf("listen %q with a token: exposed", listen)
		}
	}
}

// runBounded runs wharf with args and returns its exit code and stderr. A
// run that has not ended after 5 s is stopped with SIGTERM (which run
// handles), and the test fails: the callers expect wharf to refuse to start.
func runBounded(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out, errs bytes.Buffer
	done := make(chan int, 1)
	go func() { done <- run(args, &out, &errs) }()
	select {
	case code := <-done:
		return code, errs.String()
	case <-time.After(5 * time.Second):
	}
	syscall.Kill(os.Getpid(), syscall.SIGTERM)
	code := <-done
	t.Errorf("wharf %s started instead of refusing; stopped it (exit %d)", args[0], code)
	return code, errs.String()
}

// TestRunAdminPortTaken: a fault found only once the agent is partly built
// (the admin port is taken) exits 2 with one line, closing what was opened.
func TestRunAdminPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	data := filepath.Join(t.TempDir(), "data")
	body := "data_dir: " + data + "\nlisten: " + ln.Addr().String() + "\ndocker: {enabled: false}\n"
	code, stderr := runBounded(t, "run", "--config", writeConfig(t, body))
	if code != exitUsage || !strings.Contains(stderr, ln.Addr().String()) {
		t.Fatalf("exit %d, want %d naming %s; stderr:\n%s", code, exitUsage, ln.Addr(), stderr)
	}
	if n := strings.Count(strings.TrimSpace(stderr), "\n") + 1; n != 1 {
		t.Errorf("%d lines on stderr, want one:\n%s", n, stderr)
	}
}
