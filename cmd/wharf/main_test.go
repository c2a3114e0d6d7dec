package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
