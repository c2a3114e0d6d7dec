package agent

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wharf-logs/wharf/internal/config"
)

// TestAdminTokenIsWired runs an agent with no sources and an admin token
// read from a file: the admin endpoints want it, /healthz does not, and the
// loopback address draws no warning.
func TestAdminTokenIsWired(t *testing.T) {
	const token = "0123456789abcdef0123456789abcdef"
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "admin-token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.Listen = "127.0.0.1:0"
	cfg.Docker.Enabled = false
	cfg.Admin.TokenFile = tokenFile
	var logs bytes.Buffer
	a, err := New(cfg, Deps{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	get := func(path, auth string) int {
		req, _ := http.NewRequest(http.MethodGet, "http://"+a.AdminAddr()+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get("/metrics", ""); code != http.StatusUnauthorized {
		t.Errorf("/metrics without the token: %d", code)
	}
	if code := get("/metrics", "Bearer "+token); code != http.StatusOK {
		t.Errorf("/metrics with the token: %d", code)
	}
	if code := get("/healthz", ""); code != http.StatusOK {
		t.Errorf("/healthz: %d", code)
	}
	if strings.Contains(logs.String(), "not loopback") || strings.Contains(logs.String(), token) {
		t.Errorf("logs:\n%s", logs.String())
	}
}

// TestAdminTokenFileMissingStartsNothing: a missing token file stops New
// before the data directory is made.
func TestAdminTokenFileMissingStartsNothing(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Default()
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.Listen = "127.0.0.1:0"
	cfg.Docker.Enabled = false
	cfg.Admin.TokenFile = filepath.Join(dir, "missing")
	_, err := New(cfg, Deps{})
	if err == nil || !strings.Contains(err.Error(), "admin.token_file") {
		t.Fatalf("New: %v", err)
	}
	if _, err := os.Stat(cfg.DataDir); !os.IsNotExist(err) {
		t.Fatalf("data_dir was created: %v", err)
	}
}
