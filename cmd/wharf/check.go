package main

import (
	"fmt"
	"io"
	"net"

	"github.com/wharf-logs/wharf/internal/config"
)

// checkCmd validates the configuration and prints the effective one with
// secrets redacted. Exit 0 when valid, 1 when not.
func checkCmd(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags("check", args, stderr)
	if err != nil {
		return exitUsage
	}
	cfg, err := o.load()
	if err != nil {
		fmt.Fprintln(stderr, err)
		fmt.Fprintln(stderr, "wharf: configuration is invalid; see the key named above and README's configuration reference")
		return exitFailure
	}
	fmt.Fprint(stdout, cfg.Render())
	if exposedAdmin(cfg) {
		fmt.Fprintf(stderr, "wharf: warning: listen %q is not a loopback address and admin.token is not set: anyone who can reach it can read the admin endpoints; set admin.token_file\n", cfg.Listen)
	}
	if msg := cfg.Loki.CleartextWarning(); msg != "" {
		fmt.Fprintln(stderr, "wharf: warning: "+msg)
	}
	if urlHasPassword(o.lokiURL) {
		fmt.Fprintln(stderr, "wharf: warning: --loki-url holds a password, which other users of this host can read in the process list; put it in loki.basic_auth.password_file instead")
	}
	fmt.Fprintln(stderr, "wharf: configuration is valid")
	return exitOK
}

// exposedAdmin reports an admin server that may be reachable from other
// hosts without a token. Host names other than localhost count as
// reachable: what they resolve to is only known when listening.
func exposedAdmin(cfg config.Config) bool {
	if cfg.Listen == "" || cfg.Admin.Token != "" || cfg.Admin.TokenFile != "" {
		return false
	}
	host, _, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return false // Validate has refused it
	}
	if host == "localhost" {
		return false
	}
	ip := net.ParseIP(host)
	return ip == nil || !ip.IsLoopback()
}
