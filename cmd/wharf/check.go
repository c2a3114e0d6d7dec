package main

import (
	"fmt"
	"io"
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
	fmt.Fprintln(stderr, "wharf: configuration is valid")
	return exitOK
}
