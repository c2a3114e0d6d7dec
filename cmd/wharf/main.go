// Command wharf ships the logs of Docker containers to Grafana Loki, or to
// local NDJSON files when no Loki is configured.
//
//	wharf [run] [--config FILE] [--loki-url URL] [--data-dir DIR] [--listen ADDR]
//	wharf check --config FILE
//	wharf version
package main

import (
	"fmt"
	"io"
	"os"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // runtime failure, or an invalid config found by check
	exitUsage   = 2 // bad flags or an invalid config: nothing was started
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "run":
		return runCmd(args, stdout, stderr)
	case "check":
		return checkCmd(args, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "wharf", version)
		return exitOK
	case "help":
		usage(stdout)
		return exitOK
	}
	fmt.Fprintf(stderr, "wharf: unknown command %q\n", cmd)
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  wharf [run] [--config FILE] [--loki-url URL] [--data-dir DIR] [--listen ADDR]
        ship container logs until SIGINT or SIGTERM (a second signal exits at once)
  wharf check [--config FILE] [flags of run]
        validate the configuration and print it with secrets redacted
  wharf version
        print the version
`)
}
